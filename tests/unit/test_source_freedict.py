"""The freedict source: FreeDict eng-X entries parsed into translation and cross-lingual tasks."""

from __future__ import annotations

import pytest

from tests.source_checks import Text, check_tasks, installed
from training.recipe.sources import Pair, SourceUnavailable, freedict

# Entries copied from /usr/share/dictd/freedict-eng-*.dict.dz (FreeDict 2022.04.21), as dictd.entries gives them.
DEU = [
    (
        "track",
        "track /tɹˈak/\nBahn <fem>, Kurs <masc>\n         Note: eines Kometen, einer Rakete\n"
        "   Synonym: {course}\n\n see: {courses}, {tracks}\n\n         Note: of a comet, missile\n",
    ),
    (
        "track",
        "track /tɹˈak/\nRennbahn <fem>, Rennstrecke <fem>, Strecke <fem>, Parcours <masc> [Schw.]  [sport]\n"
        "   Synonyms: {race course}, {course}, {race track}, {race circuit}, {circuit}\n\n"
        " see: {race courses}, {courses}, {race tracks}, {tracks}, {race circuits}, {circuits}\n\n",
    ),
    ("basement", "basement /bˈeɪsmənt/\nFundament <neut>, Sockel <masc>\n"),
    (
        "basement",
        "basement /bˈeɪsmənt/\nUnterschicht <fem>, Unterlage <fem> [geol.]\n   Synonym: {substratum}\n\n",
    ),
    (
        "sister",
        'sister /sˈɪstə/\nSchwester <fem> [soc.]\n      "sb.\'s kid sister"  - jds. kleine/jüngere Schwester\n'
        " see: {sisters}, {sis}, {big sister}, {little sister}, {Sis, can you help me with this?}\n\n",
    ),
]
FRA = [
    ("abate", "abate /əbeit/\n1. s'abaisser, s'abattre\n2. abaisser, abréger, amoindrir, diminuer\n3. s'amoindrir\n"),
    ("basement", "basement /beismənt/\ncave\n"),
    ("sister", "sister /sistər/\nsœur\n"),
]
SPA = [
    ("airfield", "airfield /ɛəfiːld/\naeropuerto\n"),
    ("sister", "sister /sistər/\nhermana\n"),
]


def test_parse_entry_keeps_translations_synonyms_and_english_notes() -> None:
    parsed = freedict.parse_entry(DEU[0][1])
    assert parsed == freedict.FreeDictEntry("track", ("Bahn, Kurs",), ("course",), ("of a comet, missile",))
    numbered = freedict.parse_entry(FRA[0][1])
    assert numbered is not None
    assert numbered.senses == ("s'abaisser, s'abattre", "abaisser, abréger, amoindrir, diminuer", "s'amoindrir")
    verb = freedict.parse_entry("cast /kˈast/ (cast /kˈast/ <>, cast /kˈast/ <>) <v>\ngießen <v, trans>\n")
    assert verb == freedict.FreeDictEntry("cast", ("gießen",))


def test_build_on_excerpt() -> None:
    tasks = {t.spec.name: t for t in freedict.build({"deu": DEU, "fra": FRA, "spa": SPA})}
    assert list(tasks) == [
        "freedict_eng_deu_translation",
        "freedict_eng_fra_translation",
        "freedict_eng_spa_translation",
        "freedict_cross_lingual_equivalent",
    ]
    deu = tasks["freedict_eng_deu_translation"]
    assert deu.pairs == [  # dictionary order
        Pair("track (of a comet, missile; course)", "Bahn, Kurs", "freedict:track"),
        Pair("track (race course, course, race track)", "Rennbahn, Rennstrecke, Strecke, Parcours", "freedict:track"),
        Pair("basement", "Fundament, Sockel", "freedict:basement"),
        Pair("basement (substratum)", "Unterschicht, Unterlage", "freedict:basement"),
        Pair("sister", "Schwester", "freedict:sister"),
    ]
    assert tasks["freedict_eng_fra_translation"].pairs == [
        Pair("abate", "s'abaisser, s'abattre; abaisser, abréger, amoindrir, diminuer; s'amoindrir", "freedict:abate"),
        Pair("basement", "cave", "freedict:basement"),
        Pair("sister", "sœur", "freedict:sister"),
    ]
    assert tasks["freedict_eng_spa_translation"].pairs == [
        Pair("airfield", "aeropuerto", "freedict:airfield"),
        Pair("sister", "hermana", "freedict:sister"),
    ]
    # only "sister" has one single-sense entry in two or more dictionaries ("basement" has two German senses)
    (cross,) = tasks["freedict_cross_lingual_equivalent"].pairs
    assert cross.key == "freedict:sister"
    assert {cross.query, cross.pos} < {"Schwester", "sœur", "hermana"}
    spec = deu.spec
    assert (spec.shape, spec.category, spec.task_type) == ("asymmetric", "retrieval", "translation")
    assert (
        spec.query_instruction
        == "Represent the bilingual dictionary English word for retrieving its German translation: "
    )
    assert tasks["freedict_cross_lingual_equivalent"].spec.shape == "symmetric"


def test_build_without_other_languages_has_no_cross_lingual_task() -> None:
    assert [t.spec.name for t in freedict.build({"fra": FRA})] == ["freedict_eng_fra_translation"]


def test_locate_names_the_packages(tmp_path) -> None:
    with pytest.raises(SourceUnavailable, match="dict-freedict-eng-deu"):
        freedict.locate(tmp_path)


def test_real_dictionaries() -> None:
    raw = installed(freedict.locate, "FreeDict dictionaries not installed: ")
    tasks = freedict.build(raw)
    text = Text(min_len=2, banned=(), pattern=r"[<>{}\[\]]|\s\s|\s/\S")
    check_tasks(tasks, "freedict", len(raw) + (len(raw) > 1), query=text, pos=text)
    assert all(len(t.pairs) <= freedict.MAX_PAIRS for t in tasks)
