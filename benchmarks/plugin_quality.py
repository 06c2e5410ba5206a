"""Chatterbot question -> answer retrieval through the LangChain plugin, with and without instructions.

Corpus: every distinct answer of the chatterbot corpus; queries: every distinct question; a
question's relevant set is every answer it has in the corpus. Reports recall@1 (share of a
question's answers found at rank 1, as MTEB / pytrec_eval define it), hit@1 (top hit is relevant)
and nDCG@10 (binary relevance) for: (a) no instructions, (b) the default query/document
instructions, (c) ``InstructorEmbeddings.for_task`` presets. Ratios are against (a), measured in
the same run. About 8,100 texts to encode; it took 488 s wall (149 s CPU) on the shared, overloaded 2-core box.

    PYTHONPATH=. python benchmarks/plugin_quality.py
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from instructor_plugins.corpora import chatterbot_pairs  # noqa: E402
from instructor_plugins.langchain import InstructorEmbeddings  # noqa: E402


@dataclass(frozen=True)
class QATask:
    queries: list[str]
    docs: list[str]
    relevant: list[set[int]]


def chatterbot_qa_task() -> QATask:
    """Distinct questions and distinct answers; relevant = the answers paired with the question."""
    pairs = chatterbot_pairs()
    doc_index: dict[str, int] = {}
    answers: dict[str, set[int]] = defaultdict(set)
    for pair in pairs:
        doc_id = doc_index.setdefault(pair.answer, len(doc_index))
        answers[pair.question].add(doc_id)
    queries = list(answers)
    return QATask(queries=queries, docs=list(doc_index), relevant=[answers[q] for q in queries])


def retrieval_metrics(scores: np.ndarray, relevant: list[set[int]], k: int = 10) -> dict[str, float]:
    """recall@1, hit@1 and nDCG@k (binary gains) from a (queries, docs) score matrix."""
    ranks = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recall1, hit1, ndcg = [], [], []
    for row, rel in zip(ranks, relevant, strict=True):
        gains = np.array([doc in rel for doc in row], dtype=float)
        recall1.append(gains[0] / len(rel))
        hit1.append(gains[0])
        ideal = discounts[: min(len(rel), k)].sum()
        ndcg.append(float(gains @ discounts) / ideal)
    return {"recall@1": float(np.mean(recall1)), "hit@1": float(np.mean(hit1)), f"ndcg@{k}": float(np.mean(ndcg))}


def evaluate(embeddings: InstructorEmbeddings, task: QATask) -> dict[str, float]:
    """Documents through ``embed_documents``; queries in one batch through the same backend and query instruction.

    (``embed_query`` embeds one text per call; the unit tests prove it equals the batched encode.)
    """
    docs = np.asarray(embeddings.embed_documents(task.docs), dtype=np.float32)
    queries = embeddings.embedding_backend.embed(task.queries, embeddings.instructions().query)
    return retrieval_metrics(queries @ docs.T, task.relevant)


def configurations() -> dict[str, InstructorEmbeddings]:
    # The bundled model is not instruction-trained, so its defaults are no instructions (row a);
    # row (b) is the retrieval preset an INSTRUCTOR checkpoint gets by default.
    return {
        "(a) no instructions (the model's default)": InstructorEmbeddings(),
        "(b) retrieval instructions": InstructorEmbeddings.for_task("retrieval"),
        "(c) for_task('qa')": InstructorEmbeddings.for_task("qa"),
        "(c) for_task('reranking')": InstructorEmbeddings.for_task("reranking"),
        "(c) for_task('sts')": InstructorEmbeddings.for_task("sts"),
    }


def main() -> dict[str, dict[str, float]]:
    task = chatterbot_qa_task()
    print(f"chatterbot QA retrieval: {len(task.queries)} questions, {len(task.docs)} distinct answers")
    results: dict[str, dict[str, float]] = {}
    start = time.perf_counter()
    for name, embeddings in configurations().items():
        results[name] = evaluate(embeddings, task)
    baseline = results["(a) no instructions (the model's default)"]
    print(f"{'configuration':<42} {'recall@1':>9} {'hit@1':>7} {'nDCG@10':>8} {'nDCG@10 / (a)':>14}")
    for name, m in results.items():
        print(
            f"{name:<42} {m['recall@1']:>9.4f} {m['hit@1']:>7.4f} {m['ndcg@10']:>8.4f} "
            f"{m['ndcg@10'] / baseline['ndcg@10']:>14.3f}"
        )
    print(f"({time.perf_counter() - start:.0f} s, model: bundled all-MiniLM-L6-v2, CPU)")
    for m in results.values():
        assert 0.0 <= m["recall@1"] <= m["hit@1"] <= 1.0 and 0.0 < m["ndcg@10"] <= 1.0
    return results


if __name__ == "__main__":
    main()
