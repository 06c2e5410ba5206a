"""Retrieval quality of a corpus split: nDCG@10 per task, with or without the task instructions.

For one task's evaluation rows the queries are the distinct query texts and the corpus is every
distinct positive and mined hard negative of those rows (so each query competes with the hard
negatives as well). A document is relevant to a query when it is one of the query's positives,
or, for same-label tasks (rows with a ``label``), when it is a positive with the query's label.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "RetrievalTask",
    "evaluate_per_query",
    "evaluate_rows",
    "ndcg_at_k",
    "ndcg_per_query",
    "retrieval_tasks",
    "task_means",
]


class RetrievalTask:
    """Queries, documents and relevance of one task, built from MEDI rows (see the module docstring)."""

    def __init__(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            raise ValueError(f"task {name!r} has no rows to evaluate")
        self.name = name
        self.query_instruction = rows[0]["query"][0]
        self.document_instruction = rows[0]["pos"][0]
        self.queries = list(dict.fromkeys(r["query"][1] for r in rows))
        docs = list(dict.fromkeys([r["pos"][1] for r in rows] + [r["neg"][1] for r in rows]))
        self.documents = docs
        index = {d: i for i, d in enumerate(docs)}
        label_of_query = {r["query"][1]: r.get("label") for r in rows}
        by_label: dict[str, set[int]] = defaultdict(set)
        for r in rows:
            if r.get("label"):
                by_label[r["label"]].add(index[r["pos"][1]])
        relevant: dict[str, set[int]] = defaultdict(set)
        for r in rows:
            q = r["query"][1]
            label = label_of_query.get(q)
            relevant[q].add(index[r["pos"][1]])
            if label:
                relevant[q] |= by_label[label]
            relevant[q].discard(index.get(q, -1))
        self.relevant = [relevant[q] for q in self.queries]


def retrieval_tasks(rows: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None) -> list[RetrievalTask]:
    """One :class:`RetrievalTask` per task name in ``rows`` (sorted), optionally only ``names``."""
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        grouped[r["task_name"]].append(r)
    wanted = sorted(grouped) if names is None else [n for n in names if n in grouped]
    return [RetrievalTask(n, grouped[n]) for n in wanted]


def ndcg_per_query(scores: np.ndarray, relevant: Sequence[set[int]], k: int = 10) -> np.ndarray:
    """Binary nDCG@k of each score row ``(queries, documents)`` against its relevant document set.

    >>> ndcg_per_query(np.array([[0.1, 0.9], [0.9, 0.1]]), [{1}, {1}], k=2).round(4).tolist()
    [1.0, 0.6309]
    """
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1)[:, :k]
    out = np.zeros(len(relevant))
    for i, (row, rel) in enumerate(zip(top, relevant, strict=True)):
        dcg = sum(1.0 / math.log2(rank + 2) for rank, doc in enumerate(row) if doc in rel)
        ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(rel), k)))
        out[i] = dcg / ideal if ideal else 0.0
    return out


def ndcg_at_k(scores: np.ndarray, relevant: Sequence[set[int]], k: int = 10) -> float:
    """Mean binary nDCG@k of score rows ``(queries, documents)`` against relevant document sets.

    >>> round(ndcg_at_k(np.array([[0.1, 0.9], [0.9, 0.1]]), [{1}, {1}], k=2), 4)
    0.8155
    """
    return float(ndcg_per_query(scores, relevant, k).sum() / len(relevant))


def evaluate_per_query(
    encoder: Any, tasks: Sequence[RetrievalTask], *, instructions: bool, batch_size: int = 64
) -> dict[str, np.ndarray]:
    """nDCG@10 (points, 0-100) of every query of every task; ``instructions=False`` embeds the bare texts."""
    out = {}
    for t in tasks:
        q_instr = t.query_instruction if instructions else ""
        d_instr = t.document_instruction if instructions else ""
        q = encoder.encode(t.queries, q_instr, batch_size=batch_size)
        d = encoder.encode(t.documents, d_instr, batch_size=batch_size)
        out[t.name] = 100.0 * ndcg_per_query(q @ d.T, t.relevant)
    return out


def evaluate_rows(
    encoder: Any, tasks: Sequence[RetrievalTask], *, instructions: bool, batch_size: int = 64
) -> dict[str, float]:
    """nDCG@10 (in points, 0-100) of every task: the mean of :func:`evaluate_per_query`."""
    return task_means(evaluate_per_query(encoder, tasks, instructions=instructions, batch_size=batch_size))


def task_means(per_query: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Each task's score: the mean of its per-query scores."""
    return {name: float(v.sum() / len(v)) for name, v in per_query.items()}
