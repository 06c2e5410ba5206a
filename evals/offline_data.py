"""Evaluation data built from real third-party text that installs offline (no mteb import here).

Each builder returns plain Python lists and dicts; :mod:`evals.tasks` wraps them in mteb tasks.

- :func:`lee_sts`: the Lee et al. (2005) news corpus (50 documents) with the mean human similarity
  rating of every pair (1,225 pairs), shipped in gensim's test data.
- :func:`polarity`: Pang & Lee sentence polarity snippets (200, balanced), gensim's test data.
- :func:`newsgroups`: 200 posts from two 20 Newsgroups groups (``alt.atheism``, ``sci.space``),
  gensim's ``mini_newsgroup`` pickle, read without scikit-learn; headers are stripped so the group
  name does not leak into the text (the subject line is kept).
- :func:`chatterbot_qa`: chatterbot-corpus question -> answer retrieval.
- :func:`wordnet_definitions`: WordNet word -> definition retrieval.

``max_items`` arguments subsample deterministically (label-balanced where there are labels) for
quick runs and tests; ``None`` gives the full data.
"""

from __future__ import annotations

import io
import pickle
import zlib
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from instructor_plugins.corpora import chatterbot_pairs, gensim_test_file, wordnet_synsets

__all__ = [
    "LabeledTexts",
    "RetrievalData",
    "STSPairs",
    "balanced_order",
    "chatterbot_qa",
    "lee_ratings",
    "lee_sts",
    "newsgroups",
    "polarity",
    "train_test_split",
    "wordnet_definitions",
]

T = TypeVar("T")


@dataclass(frozen=True)
class STSPairs:
    """Sentence pairs with a similarity score in [0, 1]."""

    sentence1: list[str]
    sentence2: list[str]
    score: list[float]


@dataclass(frozen=True)
class LabeledTexts:
    """Texts with integer labels and the label names."""

    texts: list[str]
    labels: list[int]
    label_names: list[str]


@dataclass(frozen=True)
class RetrievalData:
    """Queries and corpus (id -> text) with binary relevance judgements (query id -> doc ids)."""

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]


def _check_max(max_items: int | None) -> None:
    if max_items is not None and max_items < 2:
        raise ValueError(f"max_items must be >= 2 or None, got {max_items}")


def balanced_order(labels: Sequence[Hashable]) -> list[int]:
    """Indices that interleave the labels (first of each label, then second of each...).

    Taking a prefix of this order gives a label-balanced subsample in original order per label.

    >>> balanced_order(["a", "a", "b", "b", "b"])
    [0, 2, 1, 3, 4]
    """
    seen: dict[Hashable, int] = defaultdict(int)
    ranked = []
    first_seen: dict[Hashable, int] = {}
    for i, label in enumerate(labels):
        first_seen.setdefault(label, len(first_seen))
        ranked.append((seen[label], first_seen[label], i))
        seen[label] += 1
    return [i for _, _, i in sorted(ranked)]


def lee_ratings() -> tuple[list[str], list[list[float]]]:
    """The 50 Lee documents and their 50 x 50 mean human similarity ratings (0-1; upper triangle used)."""
    docs = [d.strip() for d in gensim_test_file("lee.cor").read_text(encoding="latin-1").splitlines() if d.strip()]
    rows = gensim_test_file("similarities0-1.txt").read_text(encoding="ascii").splitlines()
    matrix = [[float(x) for x in row.split()] for row in rows if row.strip()]
    if len(docs) != len(matrix) or any(len(r) != len(docs) for r in matrix):
        raise ValueError(f"lee.cor has {len(docs)} documents but the rating matrix is not {len(docs)}x{len(docs)}")
    return docs, matrix


def lee_sts(max_docs: int | None = None) -> STSPairs:
    """Every pair of the first ``max_docs`` Lee documents with its mean human rating (0-1).

    The ratings (``similarities0-1.txt``) are an upper-triangular 50 x 50 matrix; the diagonal
    (a document with itself) is left out.
    """
    _check_max(max_docs)
    docs, matrix = lee_ratings()
    n = len(docs) if max_docs is None else min(max_docs, len(docs))
    s1, s2, score = [], [], []
    for i in range(n):
        for j in range(i + 1, n):
            s1.append(docs[i])
            s2.append(docs[j])
            score.append(matrix[i][j])
    return STSPairs(s1, s2, score)


def polarity(max_items: int | None = None) -> LabeledTexts:
    """Pang & Lee movie-review snippets, label 0 = negative, 1 = positive (label-balanced subsample)."""
    _check_max(max_items)
    names = ["negative", "positive"]
    texts, labels = [], []
    for line in gensim_test_file("pang_lee_polarity.cor").read_text(encoding="cp1252").splitlines():
        tag, _, text = line.strip().partition(" ")
        if not text:
            continue
        if tag not in ("__label__neg", "__label__pos"):
            raise ValueError(f"unexpected polarity label {tag!r}; valid: ['__label__neg', '__label__pos']")
        texts.append(text.strip())
        labels.append(int(tag == "__label__pos"))
    return _subsample(LabeledTexts(texts, labels, names), max_items)


class _Bunch(dict):  # type: ignore[type-arg]
    """Stand-in for scikit-learn's ``Bunch`` (a dict subclass) when unpickling."""


class _NewsgroupUnpickler(pickle.Unpickler):
    """Unpickles gensim's Python 2 ``mini_newsgroup``: only numpy, dict and the ``Bunch`` class."""

    _ALLOWED = {
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("__builtin__", "dict"),
        ("builtins", "dict"),
        ("__builtin__", "object"),
        ("builtins", "object"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if name == "Bunch" and module.startswith("sklearn"):
            return _Bunch
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from mini_newsgroup")
        if module.startswith("numpy"):
            import numpy as np

            return {"_reconstruct": _np_reconstruct(), "ndarray": np.ndarray, "dtype": np.dtype}[name]
        return super().find_class(module, name)


def _np_reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


def _strip_headers(post: str) -> str:
    """Drop the header block of a news post, keeping the subject as the first line."""
    head, _, body = post.partition("\n\n")
    subject = next((line[len("Subject:") :].strip() for line in head.splitlines() if line.startswith("Subject:")), "")
    return f"{subject}\n{body.strip()}".strip()


def newsgroups(max_items: int | None = None, *, max_chars: int = 2000) -> LabeledTexts:
    """20 Newsgroups posts of gensim's ``mini_newsgroup`` (headers stripped, cut to ``max_chars``)."""
    _check_max(max_items)
    raw = zlib.decompress(gensim_test_file("mini_newsgroup").read_bytes())
    bunch = _NewsgroupUnpickler(io.BytesIO(raw), encoding="latin1").load()
    names = [str(n) for n in bunch["target_names"]]
    texts = [_strip_headers(str(p))[:max_chars] for p in bunch["data"]]
    labels = [int(t) for t in bunch["target"]]
    return _subsample(LabeledTexts(texts, labels, names), max_items)


def _subsample(data: LabeledTexts, max_items: int | None) -> LabeledTexts:
    if max_items is None or max_items >= len(data.texts):
        return data
    keep = sorted(balanced_order(data.labels)[:max_items])
    return LabeledTexts([data.texts[i] for i in keep], [data.labels[i] for i in keep], data.label_names)


def train_test_split(data: LabeledTexts) -> tuple[LabeledTexts, LabeledTexts]:
    """Deterministic split: even positions of each label to train, odd ones to test."""
    rank: dict[int, int] = defaultdict(int)
    train_idx: list[int] = []
    test_idx: list[int] = []
    for i, label in enumerate(data.labels):
        (train_idx if rank[label] % 2 == 0 else test_idx).append(i)
        rank[label] += 1

    def pick(idx: list[int]) -> LabeledTexts:
        return LabeledTexts([data.texts[i] for i in idx], [data.labels[i] for i in idx], data.label_names)

    return pick(train_idx), pick(test_idx)


def _retrieval(pairs: Sequence[tuple[str, str]], max_queries: int | None) -> RetrievalData:
    """Unique queries and unique documents from (query, relevant document) pairs."""
    doc_ids: dict[str, str] = {}
    query_ids: dict[str, str] = {}
    relevant: dict[str, set[str]] = defaultdict(set)
    for query, doc in pairs:
        if query not in query_ids:
            if max_queries is not None and len(query_ids) >= max_queries:
                continue
            query_ids[query] = f"q{len(query_ids)}"
        did = doc_ids.setdefault(doc, f"d{len(doc_ids)}")
        relevant[query_ids[query]].add(did)
    return RetrievalData(
        queries={qid: q for q, qid in query_ids.items()},
        corpus={did: d for d, did in doc_ids.items()},
        relevant=dict(relevant),
    )


def chatterbot_qa(max_queries: int | None = None) -> RetrievalData:
    """Chatterbot questions as queries, every answer in the corpus as a document.

    A question asked in several conversations has all their answers as relevant documents. With
    ``max_queries``, only the first questions (corpus order) and their answers are kept.
    """
    _check_max(max_queries)
    return _retrieval([(p.question, p.answer) for p in chatterbot_pairs()], max_queries)


def wordnet_definitions(n_docs: int = 2000, n_queries: int = 500) -> RetrievalData:
    """WordNet noun definitions as the corpus, words as queries.

    ``n_docs`` synsets are taken evenly spaced through ``data.noun`` (so every part of the
    hierarchy appears); every ``n_docs // n_queries``-th of them gives a query, its first lemma.
    Every corpus synset having that lemma (case-insensitive) is relevant, so polysemous words have
    several relevant definitions.
    """
    if n_docs < 2 or not 1 <= n_queries <= n_docs:
        raise ValueError(f"need n_docs >= 2 and 1 <= n_queries <= n_docs, got n_docs={n_docs}, n_queries={n_queries}")
    synsets = wordnet_synsets("noun")
    step = max(1, len(synsets) // n_docs)
    chosen = synsets[::step][:n_docs]
    corpus = {s.id: s.definition for s in chosen}
    by_lemma: dict[str, set[str]] = defaultdict(set)
    for s in chosen:
        for lemma in s.lemmas:
            by_lemma[lemma.lower()].add(s.id)
    queries: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    seen: set[str] = set()
    q_step = max(1, n_docs // n_queries)
    for s in chosen[::q_step]:
        word = s.lemmas[0]
        if word.lower() in seen:
            continue
        seen.add(word.lower())
        qid = f"q-{s.id}"
        queries[qid] = word
        relevant[qid] = set(by_lemma[word.lower()])
        if len(queries) >= n_queries:
            break
    return RetrievalData(queries=queries, corpus=corpus, relevant=relevant)
