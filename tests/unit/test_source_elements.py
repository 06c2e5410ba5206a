"""The elements source: the Elements database's descriptions split into fact sentences."""

from __future__ import annotations

import pytest

from tests.source_checks import Text, check_tasks, installed
from training.recipe.sources import Pair, SourceUnavailable, elements

# Entries copied from /usr/share/dictd/elements.dict.dz (Debian dict-elements), as dictd.entries gives them.
EXCERPT = [
    ("aluminium", "aluminium\nSame as {aluminum}, chiefly British in usage. [1913 Webster]\n\n"),
    (
        "helium",
        "helium\nSymbol: He\nAtomic number: 2\nAtomic weight: 4.0026\nColourless, odourless gaseous nonmetallic "
        "element. Belongs to group 18\nof\nthe periodic table. Lowest boiling point of all elements and can only be\n"
        "solidified under pressure. Chemically inert, no known compounds.\nDiscovered in the solar spectrum in 1868 "
        "by Lockyer.\n\n",
    ),
    (
        "neon",
        "neon\nSymbol: Ne\nAtomic number: 10\nAtomic weight: 20.183\nColourless gaseous element of group 18 on the "
        "periodic table (noble\ngases). Neon occurs in the atmosphere, and comprises 0.0018% of the\nvolume\nof the "
        "atmosphere. It has a distinct reddish glow when used in discharge\ntubes and neon based lamps. It forms "
        "almost no chemical compounds. Neon\nwas discovered in 1898 by Sir William Ramsey and M.W. Travers.\n\n",
    ),
]
HELIUM = [
    "Colourless, odourless gaseous nonmetallic element.",
    "Belongs to group 18 of the periodic table.",
    "Lowest boiling point of all elements and can only be solidified under pressure.",
    "Chemically inert, no known compounds.",
    "Discovered in the solar spectrum in 1868 by Lockyer.",
]
NEON = [
    "Colourless gaseous element of group 18 on the periodic table (noble gases).",
    "Neon occurs in the atmosphere, and comprises 0.0018% of the volume of the atmosphere.",
    "It has a distinct reddish glow when used in discharge tubes and neon based lamps.",
    "It forms almost no chemical compounds.",
    "Neon was discovered in 1898 by Sir William Ramsey and M.W. Travers.",
]


def test_parse_entry() -> None:
    assert elements.parse_entry(EXCERPT[0][1]) is None  # a cross-reference, no Symbol: line
    neon = elements.parse_entry(EXCERPT[2][1])
    assert neon is not None
    assert (neon.name, neon.symbol, neon.number) == ("neon", "Ne", "10")
    assert neon.card == "neon (symbol Ne, atomic number 10)"
    assert elements.sentences(neon.description) == NEON


def test_build_on_excerpt() -> None:
    fact, same = elements.build(EXCERPT)
    # "Belongs to group 18 of the periodic table." is 42 characters: kept; every sentence is one element's
    assert fact.pairs == [Pair(s, "helium (symbol He, atomic number 2)", "elements:helium") for s in HELIUM] + [
        Pair(s, "neon (symbol Ne, atomic number 10)", "elements:neon") for s in NEON
    ]
    ring = [(HELIUM, "helium"), (NEON, "neon")]
    assert same.pairs == [
        Pair(s[i], s[(i + 1) % len(s)], "elements:" + name, label=name) for s, name in ring for i in range(len(s))
    ]
    assert (same.spec.shape, same.spec.category) == ("symmetric", "clustering")
    assert fact.spec.query_instruction == (
        "Represent the periodic table fact sentence for retrieving the chemical element it describes: "
    )


def test_locate_names_the_package(tmp_path) -> None:
    with pytest.raises(SourceUnavailable, match="dict-elements"):
        elements.locate(tmp_path)


def test_real_database() -> None:
    raw = installed(elements.locate, "dict-elements not installed: ")
    tasks = elements.build(raw)
    text = Text(min_len=25, stripped=False, banned=("{", "\ufffd", "  "), banned_starts=("Symbol:", "Atomic"))
    check_tasks(tasks, "elements", ["elements_fact_to_element", "elements_same_element_facts"], query=text, pos=text)
    assert all(len({p.key for p in t.pairs}) >= 110 for t in tasks)
