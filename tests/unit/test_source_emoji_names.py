"""The emoji source: emoji names into translation, paraphrase and same-subgroup tasks."""

from __future__ import annotations

import re
from typing import Any

from tests.source_checks import Text, check_tasks, installed
from training.recipe.sources import Pair, emoji_names
from training.recipe.sources.emoji_names import EmojiRaw

# Copied from emoji 2.16's EMOJI_DATA after emoji.config.load_language() (the languages used here only).
DATA: dict[str, dict[str, Any]] = {
    "\U0001f600": {
        "en": ":grinning_face:", "status": 2, "E": 1, "alias": [":grinning:"], "es": ":cara_sonriendo:",
        "pt": ":rosto_risonho:", "it": ":faccina_con_un_gran_sorriso:", "fr": ":visage_rieur:",
        "de": ":grinsendes_gesicht:",
    },
    "\U0001f603": {
        "en": ":grinning_face_with_big_eyes:", "status": 2, "E": 0.6, "alias": [":smiley:"],
        "es": ":cara_sonriendo_con_ojos_grandes:", "pt": ":rosto_risonho_com_olhos_bem_abertos:",
        "it": ":faccina_con_sorriso_e_occhi_spalancati:", "fr": ":visage_souriant_avec_de_grands_yeux:",
        "de": ":grinsendes_gesicht_mit_großen_augen:",
    },
    "\U0001f642": {
        "en": ":slightly_smiling_face:", "status": 2, "E": 1, "es": ":cara_sonriendo_ligeramente:",
        "pt": ":rosto_levemente_sorridente:", "it": ":faccina_con_sorriso_accennato:",
        "fr": ":visage_avec_un_léger_sourire:", "de": ":leicht_lächelndes_gesicht:",
    },
    "\U0001f402": {
        "en": ":ox:", "status": 2, "E": 1, "es": ":buey:", "pt": ":boi:", "it": ":bue:", "fr": ":bœuf:",
        "de": ":ochse:",
    },
    "\U0001f1f2\U0001f1f1": {
        "en": ":Mali:", "status": 2, "E": 2, "alias": [":flag_for_Mali:", ":mali:"], "es": ":bandera_mali:",
        "pt": ":bandeira_mali:", "it": ":bandiera_mali:", "fr": ":drapeau_mali:", "de": ":flagge_mali:",
    },
    "\U0001f549\ufe0f": {
        "en": ":om:", "status": 2, "E": 0.7, "alias": [":om_symbol:"], "variant": True, "es": ":om:", "pt": ":om:",
        "it": ":om:", "fr": ":om:", "de": ":om:",
    },
    "\U0001f549": {
        "en": ":om:", "status": 4, "E": 0.7, "alias": [":om_symbol:"], "variant": True, "es": ":om:", "pt": ":om:",
        "it": ":om:", "fr": ":om:", "de": ":om:",
    },
    "\U0001f44d\U0001f3fb": {
        "en": ":thumbs_up_light_skin_tone:", "status": 2, "E": 1, "es": ":pulgar_hacia_arriba_tono_de_piel_claro:",
        "pt": ":polegar_para_cima_pele_clara:", "it": ":pollice_in_su_carnagione_chiara:",
        "fr": ":pouce_vers_le_haut_peau_claire:", "de": ":daumen_hoch_helle_hautfarbe:",
    },
}  # fmt: skip
# Lines copied from /usr/share/unicode/emoji/emoji-test.txt (Debian unicode-data 15.0).
EMOJI_TEST = """\
# group: Smileys & Emotion

# subgroup: face-smiling
1F600                                                  ; fully-qualified     # 😀 E1.0 grinning face
1F603                                                  ; fully-qualified     # 😃 E0.6 grinning face with big eyes
1F642                                                  ; fully-qualified     # 🙂 E1.0 slightly smiling face

# subgroup: hand-fingers-closed
1F44D 1F3FB                                            ; fully-qualified     # 👍🏻 E1.0 thumbs up: light skin tone

# group: Animals & Nature

# subgroup: animal-mammal
1F402                                                  ; fully-qualified     # 🐂 E1.0 ox

# group: Symbols

# subgroup: religion
1F549 FE0F                                             ; fully-qualified     # 🕉️ E0.7 om
1F549                                                  ; unqualified         # 🕉 E0.7 om

# group: Flags

# subgroup: country-flag
1F1F2 1F1F1                                            ; fully-qualified     # 🇲🇱 E2.0 flag: Mali
"""
SMILING = ["grinning face", "grinning face with big eyes", "slightly smiling face"]


def test_parse_emoji_test() -> None:
    assert emoji_names.parse_emoji_test(EMOJI_TEST) == {
        "\U0001f600": "face-smiling",
        "\U0001f603": "face-smiling",
        "\U0001f642": "face-smiling",
        "\U0001f44d\U0001f3fb": "hand-fingers-closed",
        "\U0001f402": "animal-mammal",
        "\U0001f549\ufe0f": "religion",
        "\U0001f1f2\U0001f1f1": "country-flag",
    }


def test_build_on_excerpt() -> None:
    tasks = {t.spec.name: t for t in emoji_names.build(EmojiRaw(data=DATA, emoji_test=EMOJI_TEST))}
    assert list(tasks) == [
        "emoji_name_to_de",
        "emoji_name_to_es",
        "emoji_name_to_fr",
        "emoji_name_to_it",
        "emoji_name_to_pt",
        "emoji_name_paraphrase",
        "emoji_same_subgroup",
    ]
    # no skin-tone variant, no unqualified form; "om" is "om" in German: no pair
    assert tasks["emoji_name_to_de"].pairs == [
        Pair("grinning face", "grinsendes gesicht", "emoji:1F600"),
        Pair("grinning face with big eyes", "grinsendes gesicht mit großen augen", "emoji:1F603"),
        Pair("slightly smiling face", "leicht lächelndes gesicht", "emoji:1F642"),
        Pair("ox", "ochse", "emoji:1F402"),
        Pair("flag: Mali", "flagge mali", "emoji:1F1F2-1F1F1"),
    ]
    assert tasks["emoji_name_to_fr"].pairs[3] == Pair("ox", "bœuf", "emoji:1F402")
    # "grinning", "flag for Mali", "mali", "om symbol" and the Unicode names equal to the name are left out
    assert tasks["emoji_name_paraphrase"].pairs == [
        Pair("grinning face with big eyes", "smiley", "emoji:1F603"),
        Pair("grinning face with big eyes", "smiling face with open mouth", "emoji:1F603"),
    ]
    same = tasks["emoji_same_subgroup"].pairs  # ox, om and Mali are alone in their subgroups
    assert sorted(p.query for p in same) == SMILING
    assert all(p.label == "face-smiling" and p.pos in SMILING and p.pos != p.query for p in same)
    assert sorted(p.key for p in same) == ["emoji:1F600", "emoji:1F603", "emoji:1F642"]
    spec = tasks["emoji_name_to_es"].spec
    assert spec.query_instruction == "Represent the Unicode English emoji name for retrieving its Spanish name: "
    assert (tasks["emoji_same_subgroup"].spec.shape, tasks["emoji_same_subgroup"].spec.category) == (
        "symmetric",
        "clustering",
    )


def test_build_without_emoji_test_has_no_subgroup_task() -> None:
    names = [t.spec.name for t in emoji_names.build(EmojiRaw(data=DATA, emoji_test=None))]
    assert "emoji_same_subgroup" not in names and len(names) == 6


def test_real_data() -> None:
    raw = installed(emoji_names.locate, "emoji package not installed: ")
    tasks = emoji_names.build(raw)
    text = Text(
        min_len=2,
        max_len=120,
        banned=(),
        pattern=r"[\U0001f000-\U0001faff\u2600-\u27bf]",  # names, never glyphs
        ok=lambda name: not re.search(r"[:_]\w|\s\s", name.removeprefix("flag: ")),
    )
    check_tasks(tasks, "emoji", 6 + (raw["emoji_test"] is not None), query=text, pos=text)
