"""Jay Kominek's Elements database: a fact about a chemical element -> the element, and fact <-> fact.

Raw files: ``/usr/share/dictd/elements.index`` + ``elements.dict.dz`` (dictd format, read with
:func:`training.recipe.sources.dictd.read`), from Debian ``dict-elements``: 137 entries, of which
about 120 are elements (``Symbol:``, ``Atomic number:``, ``Atomic weight:`` lines, then a short
description); the rest are cross-references (``aluminium``: "Same as {aluminum}"), competing names
and ``neutron``/``iupac``, which have no ``Symbol:`` line and are skipped. Licence: public domain
(``/usr/share/doc/dict-elements/copyright``).

One pair per element would give about 120 pairs, under the 300 a task needs, so the tasks pair the
description's sentences instead: the description is squashed (the file wraps lines mid-sentence),
braces dropped, and split into sentences at ``. `` before a capital letter (not after an initial,
``A. Debierne``). Dropped: sentences under 25 characters, sentences with a character the UTF-8
reading could not decode (the file has a few Latin-1 bytes: ``Münzenberg``), and sentences that
occur in two elements' entries (``Radioactive metallic transuranic element.``). The split key is
``elements:<element name>``, so all of an element's sentences land in one split. Each element's
line is the positive of its 4-5 sentences, so a batch can hold one positive twice.

Tasks: ``elements_fact_to_element``: a sentence -> the element as ``actinium (symbol Ac, atomic
number 89)`` (retrieval); ``elements_same_element_facts``: a sentence -> the next sentence about the
same element, cyclically (symmetric, clustering, ``label`` = the element).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.dictd import read

__all__ = ["SOURCE", "Element", "build", "locate", "parse_entry", "sentences"]

ROOT = Path("/usr/share/dictd")
_MIN_SENTENCE = 25
_MAX_CHARS = 400
_FIELD = re.compile(r"^(Symbol|Atomic number|Atomic weight|Atmic weight):\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Element:
    """One element of the database: name, symbol, atomic number and description."""

    name: str
    symbol: str
    number: str
    description: str

    @property
    def card(self) -> str:
        """The element as one line: ``actinium (symbol Ac, atomic number 89)``."""
        return f"{self.name} (symbol {self.symbol}, atomic number {self.number})"


def parse_entry(entry: str) -> Element | None:
    """The :class:`Element` of an entry, or ``None`` for an entry without ``Symbol:`` and ``Atomic number:``."""
    lines = [line.strip() for line in entry.strip().splitlines()]
    if not lines:
        return None
    fields: dict[str, str] = {}
    text: list[str] = []
    for line in lines[1:]:
        found = _FIELD.match(line)
        if found:
            fields[found.group(1).lower()] = found.group(2).strip()
        elif line:
            text.append(line)
    if "symbol" not in fields or "atomic number" not in fields:
        return None
    description = re.sub(r"\s+", " ", " ".join(text).replace("{", "").replace("}", "")).strip()
    return Element(lines[0].lower(), fields["symbol"], fields["atomic number"], description)


def sentences(text: str) -> list[str]:
    """Split a description at ``. `` (or ``! ``/``? ``) before a capital letter, except after an initial.

    >>> sentences("Discovered by A. Debierne in 1899. Used as a source.")
    ['Discovered by A. Debierne in 1899.', 'Used as a source.']
    """
    out: list[str] = []
    start = 0
    for match in re.finditer(r"[.!?]\s+(?=[A-Z])", text):
        before = text[start : match.start()].rsplit(" ", 1)[-1]
        if re.fullmatch(r"(?:[A-Z]\.)*[A-Z]|Sir|Dr|St|Mr|approx|ca", before):
            continue
        out.append(text[start : match.start() + 1].strip())
        start = match.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def _usable(sentence: str) -> bool:
    # U+FFFD: a Latin-1 byte of the file (Münzenberg) that dictd's UTF-8 reading could not decode
    return _MIN_SENTENCE <= len(sentence) <= _MAX_CHARS and "\ufffd" not in sentence


def build(raw: list[tuple[str, str]]) -> list[TaskPairs]:
    """The two elements tasks from the database's ``(headword, entry)`` list (pure)."""
    fact = TaskPairs(
        task(
            "elements_fact_to_element",
            "elements",
            "entity retrieval",
            ("fact sentence", "retrieving the chemical element it describes"),
            ("element name and symbol", "retrieval"),
            domain="periodic table",
            category="retrieval",
        )
    )
    same = TaskPairs(
        task(
            "elements_same_element_facts",
            "elements",
            "topic",
            ("fact sentence", "clustering facts by the chemical element they describe"),
            domain="periodic table",
            category="clustering",
        )
    )
    elements: dict[str, Element] = {}
    for _, entry in raw:
        parsed = parse_entry(entry)
        if parsed is not None and parsed.name not in elements:
            elements[parsed.name] = parsed
    facts = {
        name: list(dict.fromkeys(s for s in sentences(e.description) if _usable(s))) for name, e in elements.items()
    }
    shared = Counter(s for found in facts.values() for s in found)
    for name, element in elements.items():
        own = [s for s in facts[name] if shared[s] == 1]
        key = "elements:" + name
        for sentence in own:
            fact.pairs.append(Pair(sentence, element.card, key))
        # a ring over three or more sentences; two sentences make one pair, not the same pair both ways
        for i in range(len(own) if len(own) > 2 else len(own) - 1):
            same.pairs.append(Pair(own[i], own[(i + 1) % len(own)], key, label=name))
    return [fact, same]


def locate(root: Path = ROOT) -> list[tuple[str, str]]:
    """The database's ``(headword, entry)`` list; :class:`SourceUnavailable` when dict-elements is not installed."""
    found = read("elements", root)
    if found is None:
        raise SourceUnavailable(f"elements: no {root}/elements.index (apt-get install dict-elements)")
    return found


SOURCE = Source(
    name="elements",
    licence="public domain (Jay F. Kominek's Elements database; Debian dict-elements)",
    install="apt-get install dict-elements",
    locate=locate,
    build=build,
    debian_packages=("dict-elements",),
)
