"""General text for the distillation term: prose from outside every training and evaluation domain.

The similarity distillation of :mod:`training.regularizers.distill` keeps the base model's neighbourhoods on the
training batches' own documents. Those are Debian packages and dictionary entries: the same narrow
domains the contrastive loss pulls on. Forgetting shows on *other* text (news, reviews, forum
posts), so a run can also distil on a stream of general paragraphs, a few per step
(``TrainConfig.distill_texts``). Nothing is learned from these paragraphs but the base model's
own geometry on them.

The offline source is the English Wikipedia sample that the gensim wheel ships for its tests
(``enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2``: 106 articles, 4,337
paragraphs of 30 or more words after markup is stripped; Wikipedia text is CC BY-SA). No training or
evaluation task uses it.
On a cluster, any JSONL of ``{"text": ...}`` rows (or one text per line) works, from a path or an
object-storage URI.
"""

from __future__ import annotations

import bz2
import json
import random
import re
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

__all__ = [
    "WIKIPEDIA_SAMPLE",
    "GeneralTextUnavailable",
    "read_texts",
    "step_texts",
    "wikipedia_paragraphs",
    "write_texts",
]

WIKIPEDIA_SAMPLE = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
_HEADING = re.compile(r"^(?:=+[^=\n]+=+\s*)+")
_SKIP_START = ("*", "|", "!", "{", "#", ":", ";")


class GeneralTextUnavailable(RuntimeError):
    """The general-text source is not installed (gensim and its test data)."""


def _sample_path() -> Path:
    try:
        path = Path(str(metadata.distribution("gensim").locate_file(WIKIPEDIA_SAMPLE)))
    except metadata.PackageNotFoundError as exc:
        raise GeneralTextUnavailable("gensim is not installed (pip install 'instructor-plugins[evals]')") from exc
    if not path.is_file():
        raise GeneralTextUnavailable(f"gensim's Wikipedia sample is missing: {path}")
    return path


def wikipedia_paragraphs(path: str | Path | None = None, *, min_words: int = 30, max_words: int = 64) -> list[str]:
    """Paragraphs of at least ``min_words`` words from a Wikipedia XML dump (``.bz2``), cut to ``max_words``.

    A paragraph's opening carries its topic, and short rows keep the distillation term cheap.

    Markup is stripped with gensim's ``filter_wiki``; redirects, lists, tables and section headings
    are dropped. ``path`` defaults to gensim's bundled sample (:data:`WIKIPEDIA_SAMPLE`). Paragraphs
    come in dump order, each once.

    Raises:
        GeneralTextUnavailable: gensim or the sample is not installed.
    """
    try:
        from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    except ImportError as exc:
        raise GeneralTextUnavailable("gensim is not installed (pip install 'instructor-plugins[evals]')") from exc
    source = Path(path) if path is not None else _sample_path()
    out: list[str] = []
    seen: set[str] = set()
    with bz2.open(source, "rb") as f:
        for _title, text, _page_id in extract_pages(f):
            if text.lstrip().lower().startswith("#redirect"):
                continue
            for block in re.split(r"\n\s*\n", filter_wiki(text)):
                block = _HEADING.sub("", block.strip())
                if block.startswith(_SKIP_START):
                    continue
                words = block.replace("'''", "").replace("''", '"').split()
                paragraph = " ".join(words[:max_words])
                if len(words) >= min_words and paragraph not in seen:
                    seen.add(paragraph)
                    out.append(paragraph)
    return out


def write_texts(texts: Sequence[str], path: str | Path) -> Path:
    """Write ``texts`` as JSONL rows ``{"text": ...}``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for text in texts:
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def read_texts(uri: str) -> list[str]:
    """The texts of a JSONL file (``{"text": ...}`` rows) or a plain file (one text per line), local or a URI.

    Raises:
        ValueError: a row without a non-empty ``"text"`` string, or no text at all.
        FileNotFoundError: nothing at ``uri``.
    """
    from instructor_plugins.storage import resolve

    location = resolve(uri)
    if not location.exists():
        raise FileNotFoundError(f"general texts not found: {uri}")
    texts: list[str] = []
    for number, line in enumerate(location.read_bytes().decode("utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            row = json.loads(line)
            text = row.get("text") if isinstance(row, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{uri}:{number}: a JSONL row needs a non-empty 'text' string")
            line = text
        texts.append(line)
    if not texts:
        raise ValueError(f"{uri}: no texts")
    return texts


def step_texts(texts: Sequence[str], *, step: int, rank: int, per_worker: int, world: int, seed: int) -> list[str]:
    """The ``per_worker`` texts of worker ``rank`` at ``step``: a seeded shuffle, read in order, wrapping.

    A function of its arguments only, so a resumed run distils on the same texts; every worker gets
    its own slice, and the stream visits every text before it repeats one.
    """
    if not texts or per_worker < 1:
        raise ValueError(f"need texts and per_worker >= 1, got {len(texts)} texts, per_worker {per_worker}")
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    start = (step * world + rank) * per_worker
    return [texts[order[(start + i) % len(order)]] for i in range(per_worker)]
