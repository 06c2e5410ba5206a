"""Emoji names: English name -> its name in another language, name <-> other names, and name -> same-subgroup name.

Raw input: ``emoji.EMOJI_DATA`` of the PyPI package ``emoji`` (2.x, BSD licence; data from Unicode
CLDR, Unicode licence) with every language loaded (``emoji.config.load_language()``): per emoji its
English name, aliases (GitHub/Slack shortcodes) and names in 13 other languages; Python's
:func:`unicodedata.name` for single-code-point emoji (the character's official name); and, when
Debian ``unicode-data`` is installed, ``/usr/share/unicode/emoji/emoji-test.txt`` (Unicode
licence) for each emoji's group and subgroup. Only fully-qualified emoji without a skin-tone
modifier are read (about 1,900; the skin-tone variants repeat their base's names).

Texts are names, never glyphs: ``:grinning_face:`` -> ``grinning face`` (colons dropped,
underscores to spaces, whitespace squashed); a flag's English name gets the CLDR ``flag: `` prefix
(``Mali`` -> ``flag: Mali``). Names are words and short phrases, many under 10 characters by
nature. The split key is ``emoji:<code points>`` (``emoji:1F600``, ``emoji:1F1F2-1F1F1``).

Tasks: ``emoji_name_to_<lang>`` for German, Spanish, French, Italian and Portuguese: English name
-> the name in that language, when it differs (retrieval, translation); ``emoji_name_paraphrase``:
English name <-> an alias or the Unicode character name, when their words differ and neither's
words contain the other's (apostrophes, ``flag``, ``for``, ``sign`` and ``symbol`` ignored;
two-letter aliases such as country codes dropped) (``grinning face with big eyes`` <-> ``smiling face with open mouth``;
symmetric, sts); ``emoji_same_subgroup``: name -> the name of another emoji of the same Unicode
subgroup (``face-smiling``, ``animal-mammal``...; symmetric, clustering, ``label`` = the subgroup;
at most 50 emoji per subgroup, sampled with ``random.Random(0)``, so the 258 country flags do not
dominate; left out when ``unicode-data`` is not installed).
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.splits import same_split_partner

__all__ = ["LANGUAGES", "SOURCE", "EmojiRaw", "build", "clean_name", "emoji_key", "locate", "parse_emoji_test"]

EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
LANGUAGES: dict[str, str] = {"de": "German", "es": "Spanish", "fr": "French", "it": "Italian", "pt": "Portuguese"}
"""The ``emoji`` package's languages whose names are paired with the English name."""
MAX_PER_SUBGROUP = 50
_FULLY_QUALIFIED = 2  # emoji.STATUS["fully_qualified"]
_WORDS = re.compile(r"[^\W_]+")


class EmojiRaw(TypedDict):
    """The raw input: ``emoji.EMOJI_DATA`` (all languages loaded) and emoji-test.txt's text (``None`` if absent)."""

    data: dict[str, dict[str, Any]]
    emoji_test: str | None


def clean_name(name: str) -> str:
    """A readable name from an ``emoji`` shortcode.

    >>> clean_name(":St._Kitts_&_Nevis:")
    'St. Kitts & Nevis'
    """
    return re.sub(r"\s+", " ", name.strip().strip(":").replace("_", " ")).strip()


def emoji_key(glyph: str) -> str:
    r"""The split key: the emoji's code points in hex.

    >>> emoji_key("\U0001f1f2\U0001f1f1")
    'emoji:1F1F2-1F1F1'
    """
    return "emoji:" + "-".join(f"{ord(ch):04X}" for ch in glyph)


def parse_emoji_test(text: str) -> dict[str, str]:
    """``{emoji: subgroup}`` for the fully-qualified emoji of Unicode's emoji-test.txt."""
    out: dict[str, str] = {}
    subgroup = ""
    for line in text.splitlines():
        if line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
            continue
        fields, _, rest = line.partition(";")
        if not rest.strip().startswith("fully-qualified") or not fields.strip():
            continue
        glyph = "".join(chr(int(cp, 16)) for cp in fields.split())
        out[glyph] = subgroup
    return out


def _is_flag(glyph: str) -> bool:
    first = ord(glyph[0])
    return 0x1F1E6 <= first <= 0x1F1FF or (first == 0x1F3F4 and len(glyph) > 1 and ord(glyph[1]) >= 0xE0000)


def _english(glyph: str, entry: Mapping[str, Any]) -> str:
    name = clean_name(entry["en"])
    return f"flag: {name}" if _is_flag(glyph) and not name.lower().startswith("flag") else name


def _words(text: str) -> set[str]:
    text = text.lower().replace("\u2019", "").replace("'", "")  # women's / women’s -> womens
    return set(_WORDS.findall(text)) - {"flag", "for", "sign", "symbol"}


def _other_names(glyph: str, entry: Mapping[str, Any]) -> list[str]:
    names = [clean_name(a) for a in entry.get("alias", [])]
    core = glyph.replace("\ufe0f", "")
    if len(core) == 1:
        official = unicodedata.name(core, "")
        if official:
            names.append(official.lower())
    return names


def build(raw: EmojiRaw) -> list[TaskPairs]:
    """The emoji tasks (pure): translations, paraphrases and, with emoji-test.txt, same-subgroup names."""
    emoji = {
        glyph: entry
        for glyph, entry in raw["data"].items()
        if entry.get("status") == _FULLY_QUALIFIED and "skin_tone" not in entry["en"]
    }
    out: list[TaskPairs] = []
    for code, language in LANGUAGES.items():
        spec = task(
            f"emoji_name_to_{code}",
            "emoji",
            "translation",
            ("English emoji name", f"retrieving its {language} name"),
            (f"{language} emoji name", "retrieval"),
            domain="Unicode",
            category="retrieval",
        )
        pairs = []
        for glyph, entry in emoji.items():
            english, other = _english(glyph, entry), clean_name(entry.get(code, ""))
            if other and english.lower() != other.lower():
                pairs.append(Pair(english, other, emoji_key(glyph)))
        out.append(TaskPairs(spec, pairs))
    paraphrase = TaskPairs(
        task(
            "emoji_name_paraphrase",
            "emoji",
            "paraphrase",
            ("emoji name", "retrieving other names of the same emoji"),
            domain="Unicode",
            category="sts",
        )
    )
    for glyph, entry in emoji.items():
        english = _english(glyph, entry)
        seen = {english.lower()}
        for other in _other_names(glyph, entry):
            a, b = _words(english), _words(other)
            if len(other) < 3 or other.lower() in seen or not b or a <= b or b <= a:
                continue
            seen.add(other.lower())
            paraphrase.pairs.append(Pair(english, other, emoji_key(glyph)))
    out.append(paraphrase)
    if raw["emoji_test"] is not None:
        out.append(_same_subgroup(emoji, parse_emoji_test(raw["emoji_test"])))
    return out


def _same_subgroup(emoji: Mapping[str, Mapping[str, Any]], subgroups: Mapping[str, str]) -> TaskPairs:
    same = TaskPairs(
        task(
            "emoji_same_subgroup",
            "emoji",
            "topic",
            ("emoji name", "clustering emoji by their Unicode subgroup"),
            domain="Unicode",
            category="clustering",
        )
    )
    by_subgroup: dict[str, list[str]] = defaultdict(list)
    key_of: dict[str, str] = {}
    for glyph, entry in emoji.items():
        if glyph in subgroups:
            name = _english(glyph, entry)
            if name not in key_of:
                key_of[name] = emoji_key(glyph)
                by_subgroup[subgroups[glyph]].append(name)
    rng = random.Random(0)
    for label, members in sorted(by_subgroup.items()):
        chosen = sorted(rng.sample(members, MAX_PER_SUBGROUP)) if len(members) > MAX_PER_SUBGROUP else members
        for a, b in same_split_partner(chosen, key_of.__getitem__, rng):
            same.pairs.append(Pair(a, b, key_of[a], label=label))
    return same


def locate(emoji_test: Path = EMOJI_TEST) -> EmojiRaw:
    """The ``emoji`` package's data with every language loaded, and emoji-test.txt when installed.

    Raises:
        SourceUnavailable: the ``emoji`` package is not installed.
    """
    try:
        import emoji
    except ImportError as exc:
        raise SourceUnavailable("emoji: the emoji package is not installed (pip install emoji)") from exc
    emoji.config.load_language()
    data = {glyph: dict(entry) for glyph, entry in emoji.EMOJI_DATA.items()}
    text = emoji_test.read_text(encoding="utf-8") if emoji_test.is_file() else None
    return EmojiRaw(data=data, emoji_test=text)


SOURCE = Source(
    name="emoji",
    licence="BSD-3-Clause (emoji package); Unicode License (its CLDR names; unicode-data's emoji-test.txt)",
    install="pip install emoji; apt-get install unicode-data (for the subgroup task)",
    locate=locate,
    build=build,
    debian_packages=("unicode-data",),
    python_packages=("emoji",),
)
