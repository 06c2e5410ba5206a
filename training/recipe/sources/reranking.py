"""Model-independent hard candidates for reranking evaluation: the positive plus the lexically nearest documents.

A pure helper, no source: :func:`lexical_candidates` ranks the documents of a retrieval task by a
small hand-written TF-IDF cosine (numpy; ``rank_bm25`` is not a dependency of this project) and
gives each query its positive and the k-1 best other documents, shuffled with a seeded generator.
Ties (documents sharing no word with the query, most of all) are broken by the same seeded
generator, so the candidates never depend on the documents' order alone.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

import numpy as np

__all__ = ["lexical_candidates", "tokens"]

_WORD = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """Lower-cased alphanumeric words of a text.

    >>> tokens("Set 'tabstop' to 8, CTRL-W s")
    ['set', 'tabstop', 'to', '8', 'ctrl', 'w', 's']
    """
    return _WORD.findall(text.lower())


def _weights(counts: Counter[str], idf: dict[str, float]) -> dict[str, float]:
    """L2-normalised sublinear TF-IDF weights of one text (terms unknown to ``idf`` dropped)."""
    raw = {t: (1.0 + math.log(c)) * idf[t] for t, c in counts.items() if t in idf}
    norm = math.sqrt(sum(w * w for w in raw.values())) or 1.0
    return {t: w / norm for t, w in raw.items()}


def lexical_candidates(
    queries: list[str], docs: list[str], positives: list[int], k: int = 10, seed: int = 0
) -> list[list[int]]:
    """For each query, k candidate document indices: its positive and the k-1 lexically closest other documents.

    Similarity is the cosine of sublinear TF-IDF vectors (idf ``log((1 + n) / (1 + df)) + 1`` over the
    documents). Documents whose text equals the positive's are never candidates (they would be false
    negatives). Each list is shuffled with ``numpy.random.default_rng(seed)``, which also breaks ties.

    Args:
        queries: the query texts.
        docs: the document texts.
        positives: for each query, the index of its positive document in ``docs``.
        k: candidates per query (at most the number of usable documents).
        seed: seed of the tie-breaking and shuffling generator.

    Returns:
        One list of document indices per query, containing its positive once.

    Raises:
        ValueError: ``queries`` and ``positives`` differ in length, a positive is out of range, or k < 1.
    """
    if len(queries) != len(positives):
        raise ValueError(f"{len(queries)} queries but {len(positives)} positives")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = len(docs)
    if any(not 0 <= p < n for p in positives):
        raise ValueError(f"a positive index is outside 0..{n - 1}")
    doc_counts = [Counter(tokens(d)) for d in docs]
    df: Counter[str] = Counter(t for c in doc_counts for t in c)
    idf = {t: math.log((1 + n) / (1 + f)) + 1.0 for t, f in df.items()}
    postings: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for i, counts in enumerate(doc_counts):
        for t, w in _weights(counts, idf).items():
            postings[t][0].append(i)
            postings[t][1].append(w)
    index = {t: (np.asarray(ids), np.asarray(ws)) for t, (ids, ws) in postings.items()}
    by_text: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(docs):
        by_text[d].append(i)
    rng = np.random.default_rng(seed)
    out: list[list[int]] = []
    for query, positive in zip(queries, positives, strict=True):
        scores = np.zeros(n)
        for t, w in _weights(Counter(tokens(query)), idf).items():
            ids, ws = index[t]
            scores[ids] += w * ws
        scores[by_text[docs[positive]]] = -np.inf
        order = np.lexsort((rng.random(n), -scores))
        others = order[np.isfinite(scores[order])][: k - 1]
        candidates = np.concatenate(([positive], others))
        out.append([int(i) for i in rng.permutation(candidates)])
    return out
