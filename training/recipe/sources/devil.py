"""Ambrose Bierce's *The Devil's Dictionary* (1911): word -> satirical definition, and back.

Raw files: ``/usr/share/dictd/devil.index`` + ``devil.dict.dz`` (dictd format, read with
:func:`training.recipe.sources.dictd.read`), from Debian ``dict-devil``: 999 entries. Licence:
public domain (``/usr/share/doc/dict-devil/copyright``).

An entry is ``HEADWORD, pos.  definition...`` then, often, an indented verse and its author. The
definition is the first paragraph without the headline (``ABASEMENT, n.``), ``[Latin]``-style
labels and ``_italic_`` underscores, whitespace squashed and cut to 400 characters at a sentence
end; the word is the headline's headword lowercased (``BABE or BABY`` -> ``babe or baby``). Entries
with no ``HEADWORD, pos.`` or ``HEADWORD.`` headline (the letters I, J, K, T, W, X and the
verse-only ABRACADABRA) are skipped, and so are definitions under 10 characters (``ACCORD, n.
Harmony.``), entries whose definition is only a verse, and the two definitions that use a racial
slur (AFRICAN, MINSTREL). The split key is ``devil:<headword>``.

Tasks (about 990 pairs each): ``devil_word_to_definition`` (retrieval) and
``devil_definition_to_word`` (reverse dictionary, retrieval).
"""

from __future__ import annotations

import re
from pathlib import Path

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.dictd import read

__all__ = ["SOURCE", "build", "locate", "parse_entry"]

ROOT = Path("/usr/share/dictd")
_MAX_CHARS = 400
# "ABASEMENT, n.  A decent..." / "BABE or BABY, n." / "IMPOSTOR n." / "INFERIAE,n." / "TZETZE (or TSETSE) FLY, n."
_HEADLINE_POS = re.compile(
    r"^(?P<head>[A-Z][A-Za-z0-9'\-. ()]*?(?:,\s*[A-Z][A-Z'\-. ]*)*),?\s*"
    r"(?:[a-z]+\.)+(?:\s+(?:and|or)\s+(?:[a-z]+\.)+)?\s+"  # "n." / "v.t." / "adj. and n."
)
# "HABEAS CORPUS.  A writ..." / "CUI BONO?  [Latin]  What..." / "R.I.P.  A careless..."
_SLUR = re.compile(r"\bniggers?\b", re.IGNORECASE)
_HEADLINE_BARE = re.compile(r"^(?P<head>[A-Z][A-Z'\-. ]*[A-Z.][.?])\s+(?=\S)")


def _first_sentences(text: str) -> str:
    if len(text) <= _MAX_CHARS:
        return text
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s)", text[:_MAX_CHARS])]
    return text[: ends[-1]] if ends and ends[-1] > 40 else text[:_MAX_CHARS]


def parse_entry(entry: str) -> tuple[str, str] | None:
    """``(headword, definition)`` of a Devil's Dictionary entry, or ``None`` when its headline is not recognised."""
    paragraph = re.split(r"\n\s*\n|\n {2,}", entry.strip(), maxsplit=1)[0]
    paragraph = re.sub(r"\s+", " ", paragraph).strip()
    match = _HEADLINE_POS.match(paragraph) or _HEADLINE_BARE.match(paragraph)
    if match is None:
        return None
    head = re.sub(r"\s+", " ", match.group("head")).strip(" ,").lower()
    if head.endswith((".", "?")) and head.count(".") + head.count("?") == 1:
        head = head[:-1]  # the headline's own full stop, not an abbreviation's (R.I.P.)
    body = paragraph[match.end() :]
    body = re.sub(r"\[[^\]]*\]", " ", body).replace("_", "").replace("{", "").replace("}", "")
    body = re.sub(r"\s+", " ", body).strip()
    if len(body) < 10 or not head or _SLUR.search(body):
        return None
    return head, _first_sentences(body)


def build(raw: list[tuple[str, str]]) -> list[TaskPairs]:
    """The two Devil's Dictionary tasks from its ``(index headword, entry)`` list (pure)."""
    word_to_def = TaskPairs(
        task(
            "devil_word_to_definition",
            "devil",
            "definition",
            ("English word", "retrieving its satirical definition"),
            ("satirical definition", "retrieval"),
            domain="satirical dictionary",
            category="retrieval",
        )
    )
    def_to_word = TaskPairs(
        task(
            "devil_definition_to_word",
            "devil",
            "reverse dictionary",
            ("satirical definition", "retrieving the word it defines"),
            ("English word", "retrieval"),
            domain="satirical dictionary",
            category="retrieval",
        )
    )
    seen: set[str] = set()
    for _, entry in raw:
        parsed = parse_entry(entry)
        if parsed is None or parsed[0] in seen:
            continue
        seen.add(parsed[0])
        head, definition = parsed
        key = "devil:" + head
        word_to_def.pairs.append(Pair(head, definition, key))
        def_to_word.pairs.append(Pair(definition, head, key))
    return [word_to_def, def_to_word]


def locate(root: Path = ROOT) -> list[tuple[str, str]]:
    """The dictionary's ``(headword, entry)`` list; :class:`SourceUnavailable` when dict-devil is not installed."""
    found = read("devil", root)
    if found is None:
        raise SourceUnavailable(f"devil: no {root}/devil.index (apt-get install dict-devil)")
    return found


SOURCE = Source(
    name="devil",
    licence="public domain (Ambrose Bierce, The Devil's Dictionary, 1911; Debian dict-devil)",
    install="apt-get install dict-devil",
    locate=locate,
    build=build,
    debian_packages=("dict-devil",),
)
