"""The devil source: The Devil's Dictionary's entries parsed into word <-> satirical definition tasks."""

from __future__ import annotations

import pytest

from tests.source_checks import Text, check_tasks, installed
from training.recipe.sources import Pair, SourceUnavailable, devil

# Entries copied from /usr/share/dictd/devil.dict.dz (Debian dict-devil 1.0), as dictd.entries gives them.
EXCERPT = [
    (
        "abatis",
        "ABATIS, n.  Rubbish in front of a fort, to prevent the rubbish outside\n"
        "from molesting the rubbish inside.\n\n",
    ),
    (
        "abdication",
        "ABDICATION, n.  An act whereby a sovereign attests his sense of the\nhigh temperature of the throne.\n\n"
        "    Poor Isabella's Dead, whose abdication\n    Set all tongues wagging in the Spanish nation.\n"
        "                                                                  G.J.\n\n",
    ),
    ("accord", "ACCORD, n.  Harmony.\n\n"),
    (
        "babe",
        "BABE or BABY, n.  A misshapen creature of no particular age, sex, or\ncondition, chiefly remarkable for the "
        "violence of the sympathies and\nantipathies it excites in others, itself without sentiment or emotion. \n\n"
        "            Ere babes were invented\n            The girls were contended.\n\n",
    ),
    ("cui bono", "CUI BONO?  [Latin]  What good would that do _me_?\n\n"),
    (
        "danger",
        "DANGER, n.\n\n    A savage beast which, when it sleeps,\n        Man girds at and despises,\n"
        "                                                          Ambat Delaso\n\n",
    ),
    (
        "rip",
        "R.I.P.  A careless abbreviation of _requiescat in pace_, attesting to\nindolent goodwill to the dead.  "
        "According to the learned Dr. Drigge,\nhowever, the letters originally meant nothing more than _reductus in\n"
        "pulvis_.\n\n",
    ),
    ("white", "WHITE, adj. and n.  Black.\n\n"),
]


def test_build_on_excerpt() -> None:
    word_to_def, def_to_word = devil.build(EXCERPT)
    expected = [
        ("abatis", "Rubbish in front of a fort, to prevent the rubbish outside from molesting the rubbish inside."),
        ("abdication", "An act whereby a sovereign attests his sense of the high temperature of the throne."),
        (
            "babe or baby",
            "A misshapen creature of no particular age, sex, or condition, chiefly remarkable for the violence of the "
            "sympathies and antipathies it excites in others, itself without sentiment or emotion.",
        ),
        ("cui bono", "What good would that do me?"),
        (
            "r.i.p.",
            "A careless abbreviation of requiescat in pace, attesting to indolent goodwill to the dead. According to "
            "the learned Dr. Drigge, however, the letters originally meant nothing more than reductus in pulvis.",
        ),
    ]  # ACCORD and WHITE: definitions under 10 characters; DANGER: only a verse
    assert word_to_def.pairs == [Pair(w, d, "devil:" + w) for w, d in expected]
    assert def_to_word.pairs == [Pair(d, w, "devil:" + w) for w, d in expected]
    assert word_to_def.spec.query_instruction == (
        "Represent the satirical dictionary English word for retrieving its satirical definition: "
    )
    assert def_to_word.spec.task_type == "reverse dictionary"


def test_parse_entry_drops_slurs() -> None:
    assert devil.parse_entry("AFRICAN, n.  A nigger that votes our way.\n\n") is None


def test_locate_names_the_package(tmp_path) -> None:
    with pytest.raises(SourceUnavailable, match="dict-devil"):
        devil.locate(tmp_path)


def test_real_dictionary() -> None:
    raw = installed(devil.locate, "dict-devil not installed: ")
    tasks = devil.build(raw)
    definition = Text(stripped=False, banned=(), pattern=r"[_{}\[\]]|\s\s|\bn\.\s|^[A-Z]{3,}")
    check_tasks(
        tasks,
        "devil",
        ["devil_word_to_definition", "devil_definition_to_word"],
        min_pairs=900,
        sides={"devil_word_to_definition": (None, definition), "devil_definition_to_word": (definition, None)},
    )
