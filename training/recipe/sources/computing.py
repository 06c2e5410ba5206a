"""The computing dictionaries (held out): FOLDOC and the Jargon File, from Debian's dictd packages.

Raw files: ``/usr/share/dictd/{foldoc,jargon}.{index,dict.dz}`` (Debian ``dict-foldoc``, ``dict-jargon``),
read with :func:`training.recipe.sources.dictd.read`. An entry's first paragraph after its headword is
its definition, with FOLDOC's ``<category>`` tags and ``/pronunciation/`` dropped. A term defined in
both (Jargon File entries are also in FOLDOC) is kept once, FOLDOC's first. Each term is a split key.

This is a **held-out** source (:data:`training.recipe.heldout.HELDOUT_SOURCES`): the corpus never reads
it; the held-out benchmark builds its retrieval and reranking tasks from :func:`definitions`.
"""

from __future__ import annotations

import re

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.dictd import ROOT, first_sentences, read, squash

__all__ = ["DICTIONARIES", "SOURCE", "build", "computing_definition", "definitions", "locate"]

DICTIONARIES = ("foldoc", "jargon")


def computing_definition(entry: str) -> tuple[str, str] | None:
    """``(term, first paragraph)`` of a FOLDOC or Jargon File entry (``None`` when under 20 characters)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", entry.strip()) if p.strip()]
    if len(paragraphs) < 2:
        return None
    term = paragraphs[0].splitlines()[0].strip()
    text = squash(re.sub(r"<[^>]*>|/[^/\s]+/|^\s*(n\.|adj\.|vt\.|vi\.|v\.)\s*,?", " ", paragraphs[1]))
    text = re.sub(r"^(n|adj|vt|vi|v)\.\s*", "", text)
    if len(text) < 20:
        return None
    return term, first_sentences(text)


def definitions(raw: dict[str, list[tuple[str, str]]]) -> list[Pair]:
    """One ``Pair(term, definition, key)`` per distinct term (case-insensitive), FOLDOC first (pure)."""
    out: list[Pair] = []
    seen: set[str] = set()
    for name in DICTIONARIES:
        for _, entry in raw.get(name, []):
            parsed = computing_definition(entry)
            if parsed is None or parsed[0].lower() in seen:
                continue
            seen.add(parsed[0].lower())
            out.append(Pair(parsed[0], parsed[1], "computing:" + parsed[0].lower()))
    return out


def build(raw: dict[str, list[tuple[str, str]]]) -> list[TaskPairs]:
    """The computing term -> definition task (pure)."""
    spec = task(
        "computing_term_to_definition",
        "computing",
        "definition",
        ("computing term", "retrieving its dictionary definition"),
        ("computing dictionary definition", "retrieval"),
    )
    return [TaskPairs(spec, definitions(raw))]


def locate() -> dict[str, list[tuple[str, str]]]:
    """Entries of the installed computing dictionaries; :class:`SourceUnavailable` when neither is."""
    raw = {name: found for name in DICTIONARIES if (found := read(name, ROOT)) is not None}
    if not raw:
        raise SourceUnavailable(
            f"computing: no FOLDOC or Jargon File in {ROOT} (apt-get install dict-foldoc dict-jargon)"
        )
    return raw


SOURCE = Source(
    name="computing",
    licence="FOLDOC: GFDL-1.1+; Jargon File: GPL-2+ (Debian dict-foldoc, dict-jargon)",
    install="apt-get install dict-foldoc dict-jargon",
    locate=locate,
    build=build,
    debian_packages=("dict-foldoc", "dict-jargon"),
)
