"""Debian's dictd dictionaries for training: GCIDE (general English) and VERA (computing acronyms).

Raw files: ``/usr/share/dictd/<name>.index`` (headword, base64 offset, base64 length) and
``<name>.dict.dz`` (gzip-compatible dictzip), from Debian ``dict-gcide`` and ``dict-vera``. Entries are
read by offset, so a headword listed under several spellings is one entry. Each headword is a split key.

Tasks: GCIDE term -> definition and definition -> term; VERA acronym -> expansion. A dictionary that
is not installed is left out of the result; the whole source is unavailable only when none is. The
readers (:func:`read`, :func:`entries`) serve the other dictd sources too (the held-out computing
dictionaries, FreeDict, the Devil's Dictionary).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task

__all__ = ["DICTIONARIES", "SOURCE", "build", "decode_number", "entries", "first_sentences", "locate", "read", "squash"]

ROOT = Path("/usr/share/dictd")
DICTIONARIES = ("gcide", "vera")
"""The dictionaries this training source reads; FOLDOC and the Jargon File are the held-out source
:mod:`training.recipe.sources.computing`."""
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_MAX_DEFINITION = 400


def decode_number(text: str) -> int:
    """Dictd's base64 number encoding.

    >>> decode_number("BA")
    64
    """
    n = 0
    for ch in text:
        n = n * 64 + _B64.index(ch)
    return n


def entries(index: str, data: bytes) -> list[tuple[str, str]]:
    """``(headword, entry text)`` per distinct entry, in index order (database info entries skipped)."""
    seen: set[int] = set()
    out = []
    for line in index.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0].startswith("00"):
            continue
        offset, length = decode_number(parts[1]), decode_number(parts[2])
        if offset in seen:
            continue
        seen.add(offset)
        out.append((parts[0], data[offset : offset + length].decode("utf-8", errors="replace")))
    return out


def squash(text: str) -> str:
    r"""Braces dropped and whitespace squashed.

    >>> squash("a {cross}\n  reference")
    'a cross reference'
    """
    text = text.replace("{", "").replace("}", "")
    return re.sub(r"\s+", " ", text).strip()


def first_sentences(text: str) -> str:
    """``text`` cut at its last sentence end before the definition limit (400 characters)."""
    if len(text) <= _MAX_DEFINITION:
        return text
    cut = text.rfind(". ", 0, _MAX_DEFINITION)
    return text[: cut + 1] if cut > 40 else text[:_MAX_DEFINITION]


def gcide_definition(entry: str) -> tuple[str, str] | None:
    """``(headword, first sense)`` of a GCIDE entry, or ``None`` when it has no usable sense."""
    first, _, rest = entry.partition("\n")
    head = first.split("\\", 1)[0].strip().rstrip(",")
    body = re.sub(r"\[[^\]]*\]", " ", rest)  # etymology, [1913 Webster], [Obs.]
    body = re.sub(r"--\s*[A-Z][\w.' ]{0,40}\.", " ", body)  # citations
    body = re.sub(r"\([A-Z][a-z]+\.\)", " ", body)  # (Zool.)
    body = squash(body)
    body = re.sub(r"^\d+\.\s*", "", body)
    sense = re.split(r"\s\d+\.\s|\sSyn\.", body, maxsplit=1)[0].strip()
    sense = sense.split('"', 1)[0].strip()  # quoted usage examples
    if not head or len(sense) < 15 or not re.match(r"[A-Za-z]", sense):
        return None
    return head, first_sentences(sense)


def vera_expansion(entry: str) -> tuple[str, str] | None:
    """``(acronym, expansion)`` of a VERA entry."""
    lines = [line.strip() for line in entry.strip().splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    expansion = squash(" ".join(lines[1:]))
    return (lines[0], expansion) if len(expansion) > 5 else None


def build(raw: dict[str, list[tuple[str, str]]]) -> list[TaskPairs]:
    """Tasks from ``{dictionary: entries}`` (pure); dictionaries absent from ``raw`` give no task."""
    out: list[TaskPairs] = []
    if "gcide" in raw:
        t2d = TaskPairs(
            task(
                "gcide_term_to_definition",
                "dictd",
                "definition",
                ("English word", "retrieving its dictionary definition"),
                ("dictionary definition", "retrieval"),
                category="retrieval",
            )
        )
        d2t = TaskPairs(
            task(
                "gcide_definition_to_term",
                "dictd",
                "reverse dictionary",
                ("dictionary definition", "retrieving the word it defines"),
                ("English word", "retrieval"),
                category="retrieval",
            )
        )
        seen: set[str] = set()
        for _, entry in raw["gcide"]:
            parsed = gcide_definition(entry)
            if parsed is None or parsed[1] in seen:
                continue
            seen.add(parsed[1])
            head, definition = parsed
            key = "gcide:" + head.lower()
            t2d.pairs.append(Pair(head, definition, key))
            d2t.pairs.append(Pair(definition, head, key))
        out += [t2d, d2t]
    if "vera" in raw:
        acronyms = TaskPairs(
            task(
                "vera_acronym_to_expansion",
                "dictd",
                "acronym expansion",
                ("computing acronym", "retrieving its expansion"),
                ("acronym expansion", "retrieval"),
                category="retrieval",
            )
        )
        for _, entry in raw["vera"]:
            parsed = vera_expansion(entry)
            if parsed is not None:
                acronyms.pairs.append(Pair(parsed[0], parsed[1], "vera:" + parsed[0].lower()))
        out.append(acronyms)
    return out


def read(name: str, root: Path = ROOT) -> list[tuple[str, str]] | None:
    """The ``(headword, entry)`` list of one installed dictionary, or ``None`` when it is not installed."""
    index, data = root / f"{name}.index", root / f"{name}.dict.dz"
    if not (index.is_file() and data.is_file()):
        return None
    return entries(index.read_text(encoding="utf-8", errors="replace"), gzip.decompress(data.read_bytes()))


def locate(root: Path = ROOT) -> dict[str, list[tuple[str, str]]]:
    """Entries of every installed dictionary; :class:`SourceUnavailable` when none is installed."""
    raw = {}
    for name in DICTIONARIES:
        found = read(name, root)
        if found is not None:
            raw[name] = found
    if not raw:
        raise SourceUnavailable(f"dictd: no dictionaries in {root} (apt-get install dict-gcide dict-vera)")
    return raw


SOURCE = Source(
    name="dictd",
    licence="GCIDE: GPL-3+; VERA: GFDL-1.1+ (Debian dict-* packages)",
    install="apt-get install dict-gcide dict-vera",
    locate=locate,
    build=build,
    debian_packages=("dict-gcide", "dict-vera"),
)
