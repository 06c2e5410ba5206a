"""The held-out benchmark: tasks from whole sources the training corpus never reads.

The paper's claim is that instructions help on tasks a model never trained on. To see a one-point
effect, the benchmark has many tasks of several kinds, each with enough items to resample:

- ``computing`` (FOLDOC + Jargon File): term -> definition (retrieval); term -> its definition among 10
  lexical look-alikes (reranking);
- ``manpages`` (Linux man pages): NAME line -> DESCRIPTION (retrieval); page summary -> manual section
  (classification); the same summaries clustered by section (clustering);
- ``vimhelp`` (Vim's help files): help tag -> help text (retrieval); two help texts from one help file or
  not (pair classification); help texts clustered by file (clustering);
- ``gensim`` (gensim's test data, through the evals suite): Lee news similarity (STS), Pang & Lee polarity
  (classification), mini newsgroups (clustering).

:data:`HELDOUT_SOURCES` is fixed here, in code: :func:`check_sources` (called by the corpus before it
reads anything) refuses a corpus that names one of them, so training never sees their text. The three
gensim tasks run through the offline evals suite (:mod:`evals`); the others are built here by pure
functions from each source's raw input (:func:`build_benchmark`) and scored per item
(:func:`evaluate_benchmark`), so every figure gets a paired bootstrap interval
(:mod:`training.recipe.bootstrap`):

- retrieval: nDCG@10 per query, against the task's positives and as many distractors;
- reranking: reciprocal rank of the positive among its 10 candidates (MRR@10, = MAP with one positive),
  per query; candidates are the most word-overlapping definitions (model-independent);
- classification: nearest class centroid of the training texts' vectors, correct or not per test text;
- clustering: k-means (k = the number of labels) cluster ids, scored by V-measure and resampled by text;
- pair classification: per positive pair, the share of negative pairs it scores above (their mean is
  the ROC AUC).

Every task has :data:`ITEMS` scored items where the source has them (retrieval and reranking queries,
classification test texts, clustered texts, positive pairs). Instructions follow the paper's unified
format and name the domain, the text type and the objective.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from instructor_plugins.instructions import make_instruction
from training.recipe.sources import Category, Pair, SourceUnavailable
from training.recipe.tasks import HELDOUT_EVAL_TASKS

__all__ = [
    "HELDOUT_EVAL_TASKS",
    "HELDOUT_SOURCES",
    "ITEMS",
    "BenchmarkTask",
    "HeldOutSourceError",
    "build_benchmark",
    "check_sources",
    "evaluate_benchmark",
    "score_task",
]

logger = logging.getLogger(__name__)

HELDOUT_SOURCES: tuple[str, ...] = ("computing", "manpages", "vimhelp", "gensim")
"""Sources the corpus never reads (fixed before any result was seen); the benchmark's tasks come from them."""
ITEMS = 300
"""Scored items per task where the source has them."""
CANDIDATES = 10
"""Candidates per reranking query."""


class HeldOutSourceError(ValueError):
    """A corpus names a held-out source: training would see the benchmark's text."""


def check_sources(sources: Sequence[str]) -> None:
    """Raise :class:`HeldOutSourceError` when ``sources`` names any of :data:`HELDOUT_SOURCES`."""
    bad = [s for s in sources if s in HELDOUT_SOURCES]
    if bad:
        raise HeldOutSourceError(
            f"sources {bad} are held out: the held-out benchmark (training.recipe.heldout) evaluates on them, so the "
            f"corpus never reads them; held-out sources: {list(HELDOUT_SOURCES)}"
        )


@dataclass
class BenchmarkTask:
    """One held-out task: its texts, what is relevant to what, and the instructions of both sides.

    Which fields are used depends on ``category``: ``queries``/``documents``/``relevant`` (retrieval),
    plus ``candidates`` (reranking: per query, document indices, the first relevant); ``texts``/``labels``
    with ``train`` flags (classification) or without (clustering); ``texts`` and ``pairs``
    (pair classification: ``(i, j, same)``).
    """

    name: str
    source: str
    category: Category
    query_instruction: str
    document_instruction: str
    queries: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    relevant: list[set[int]] = field(default_factory=list)
    candidates: list[list[int]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    train: list[bool] = field(default_factory=list)
    pairs: list[tuple[int, int, bool]] = field(default_factory=list)

    @property
    def items(self) -> int:
        """The number of scored items (the bootstrap's units)."""
        if self.category in ("retrieval", "reranking"):
            return len(self.queries)
        if self.category == "classification":
            return self.train.count(False)
        if self.category == "pair_classification":
            return sum(1 for *_, same in self.pairs if same)
        return len(self.texts)

    def reference(self) -> np.ndarray | None:
        """What a clustering task's cluster ids are scored against (label ids); ``None`` for the others."""
        if self.category != "clustering":
            return None
        names = sorted(set(self.labels))
        return np.array([names.index(label) for label in self.labels])


def _order(pairs: Sequence[Pair]) -> list[Pair]:
    """Pairs in a fixed pseudo-random order (by a hash of their key), one pair per key."""
    first: dict[str, Pair] = {}
    for p in pairs:
        first.setdefault(p.key, p)
    return sorted(first.values(), key=lambda p: hashlib.sha1(p.key.encode()).hexdigest())


def retrieval_task(
    name: str, source: str, pairs: Sequence[Pair], instructions: tuple[str, str], *, items: int = ITEMS
) -> BenchmarkTask:
    """``items`` queries, their positives and as many distractor positives of other keys (pure)."""
    ordered = [p for p in _order(pairs) if p.query != p.pos]
    chosen, distractors = ordered[:items], ordered[items : 2 * items]
    documents = list(dict.fromkeys([p.pos for p in chosen] + [p.pos for p in distractors]))
    index = {d: i for i, d in enumerate(documents)}
    queries = list(dict.fromkeys(p.query for p in chosen))
    relevant: dict[str, set[int]] = defaultdict(set)
    for p in chosen:
        relevant[p.query].add(index[p.pos])
    return BenchmarkTask(
        name, source, "retrieval", *instructions, queries=queries, documents=documents,
        relevant=[relevant[q] for q in queries],
    )  # fmt: skip


def reranking_task(
    name: str, source: str, pairs: Sequence[Pair], instructions: tuple[str, str], *, items: int = ITEMS, skip: int = 0
) -> BenchmarkTask:
    """``items`` queries (after the first ``skip`` pairs), each with its positive among lexical look-alikes (pure).

    The candidate pool is the positives of ``3 * items`` pairs; each query's candidates are its positive
    and the :data:`CANDIDATES` - 1 pool documents sharing most words with the query and positive.
    """
    from training.recipe.sources.reranking import lexical_candidates

    ordered = [p for p in _order(pairs) if p.query != p.pos][skip:]
    chosen, pool_pairs = ordered[:items], ordered[: 3 * items]
    documents = list(dict.fromkeys(p.pos for p in pool_pairs))
    index = {d: i for i, d in enumerate(documents)}
    queries = [p.query for p in chosen]
    positives = [index[p.pos] for p in chosen]
    probes = [f"{p.query} {p.pos}" for p in chosen]
    candidates = lexical_candidates(probes, documents, positives, k=CANDIDATES, seed=0)
    return BenchmarkTask(
        name, source, "reranking", *instructions, queries=queries, documents=documents,
        relevant=[{i} for i in positives], candidates=candidates,
    )  # fmt: skip


def _balanced(rows: Sequence[tuple[str, str, str]], labels: Sequence[str], n: int, seed: int) -> list[int]:
    """Indices of up to ``n`` rows, round-robin over ``labels`` (each label's rows in a seeded order)."""
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, (_, _, label) in enumerate(rows):
        if label in labels:
            by_label[label].append(i)
    for members in by_label.values():
        rng.shuffle(members)
    out: list[int] = []
    depth = 0
    while len(out) < n and any(depth < len(m) for m in by_label.values()):
        for label in labels:
            if depth < len(by_label[label]) and len(out) < n:
                out.append(by_label[label][depth])
        depth += 1
    return out


def top_labels(rows: Sequence[tuple[str, str, str]], k: int, minimum: int) -> list[str]:
    """The ``k`` most frequent labels with at least ``minimum`` rows (ties by name)."""
    counts = Counter(label for *_, label in rows)
    ranked = sorted((label for label, c in counts.items() if c >= minimum), key=lambda lb: (-counts[lb], lb))
    return ranked[:k]


def classification_task(
    name: str, source: str, rows: Sequence[tuple[str, str, str]], instruction: str, *, labels: Sequence[str],
    items: int = ITEMS, seed: int = 0,
) -> BenchmarkTask:  # fmt: skip
    """``items`` test texts and ``items`` training texts, balanced over ``labels`` (pure)."""
    picked = _balanced(rows, labels, 2 * items, seed)
    train = [k % 2 == 0 for k in range(len(picked))]  # alternate so both sides stay balanced
    return BenchmarkTask(
        name, source, "classification", instruction, instruction, texts=[rows[i][1] for i in picked],
        labels=[rows[i][2] for i in picked], train=train,
    )  # fmt: skip


def clustering_task(
    name: str, source: str, rows: Sequence[tuple[str, str, str]], instruction: str, *, labels: Sequence[str],
    items: int = ITEMS, seed: int = 0,
) -> BenchmarkTask:  # fmt: skip
    """``items`` texts balanced over ``labels`` (pure; with the same seed, a prefix of a classification task's)."""
    picked = _balanced(rows, labels, items, seed)
    return BenchmarkTask(
        name, source, "clustering", instruction, instruction, texts=[rows[i][1] for i in picked],
        labels=[rows[i][2] for i in picked],
    )  # fmt: skip


def pair_task(
    name: str, source: str, rows: Sequence[tuple[str, str, str]], instruction: str, *, items: int = ITEMS,
    seed: int = 2,
) -> BenchmarkTask:  # fmt: skip
    """``items`` same-label pairs over distinct texts, and up to as many different-label pairs of those texts (pure)."""
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, (_, _, label) in enumerate(rows):
        by_label[label].append(i)
    shared = [lb for lb in sorted(by_label) if len(by_label[lb]) >= 2]
    positives: list[tuple[int, int]] = []
    used: set[int] = set()
    for _ in range(20 * items):
        if len(positives) == items or not shared:
            break
        label = rng.choice(shared)
        free = [i for i in by_label[label] if i not in used]
        if len(free) < 2:
            shared.remove(label)
            continue
        a, b = rng.sample(free, 2)
        used |= {a, b}
        positives.append((a, b))
    # negatives re-pair the positives' texts (each text in one positive and at most one negative pair)
    seconds = [b for _, b in positives]
    rng.shuffle(seconds)
    negatives: list[tuple[int, int]] = []
    for a, _ in positives:
        j = next((k for k, b in enumerate(seconds) if rows[b][2] != rows[a][2]), None)
        if j is not None:
            negatives.append((a, seconds.pop(j)))
    indices = sorted({i for pair in positives + negatives for i in pair})
    local = {i: k for k, i in enumerate(indices)}
    pairs = [(local[a], local[b], True) for a, b in positives] + [(local[a], local[b], False) for a, b in negatives]
    return BenchmarkTask(
        name, source, "pair_classification", instruction, instruction, texts=[rows[i][1] for i in indices],
        labels=[rows[i][2] for i in indices], pairs=pairs,
    )  # fmt: skip


def computing_tasks(raw: Any, *, items: int = ITEMS) -> list[BenchmarkTask]:
    """Retrieval and reranking on FOLDOC + Jargon File definitions (pure)."""
    from training.recipe.sources import computing

    pairs = computing.definitions(raw)
    retrieval = (
        make_instruction("computing term", "retrieving its dictionary definition"),
        make_instruction("computing dictionary definition", "retrieval"),
    )
    rerank = (
        make_instruction("computing term", "reranking candidate definitions by how well they define it"),
        make_instruction("computing dictionary definition", "reranking"),
    )
    return [
        retrieval_task("computing_term_to_definition", "computing", pairs, retrieval, items=items),
        reranking_task("computing_definition_reranking", "computing", pairs, rerank, items=items, skip=2 * items),
    ]


def manpage_tasks(raw: Any, *, items: int = ITEMS) -> list[BenchmarkTask]:
    """Retrieval, section classification and section clustering on the Linux man pages (pure)."""
    from training.recipe.sources import manpage_sections, manpages

    (name_to_description,) = [t for t in manpages.build(raw) if t.spec.name == "manpage_name_to_description"]
    rows = manpage_sections.labelled_pages(raw)
    sections = top_labels(rows, k=5, minimum=25)
    domain = "Linux"
    return [
        retrieval_task(
            "manpage_name_to_description", "manpages", name_to_description.pairs,
            (make_instruction("man page name line", "retrieving the page's description", domain),
             make_instruction("man page description", "retrieval", domain)),
            items=items,
        ),
        classification_task(
            "manpage_section_classification", "manpages", rows,
            make_instruction("manual page summary", "classifying which manual section it belongs to", domain),
            labels=sections, items=items,
        ),
        clustering_task(
            "manpage_section_clustering", "manpages", rows,
            make_instruction("manual page summary", "clustering pages by manual section", domain),
            labels=sections, items=items,
        ),
    ]  # fmt: skip


def vimhelp_tasks(raw: Any, *, items: int = ITEMS) -> list[BenchmarkTask]:
    """Retrieval, same-file pair classification and clustering by help file on Vim's help (pure)."""
    from training.recipe.sources import vimhelp

    (tag_to_text,) = [t for t in vimhelp.build(raw) if t.spec.name == "vimhelp_tag_to_text"]
    rows = vimhelp.labelled_entries(raw)
    files = top_labels(rows, k=6, minimum=50)
    domain = "Vim editor"
    return [
        retrieval_task(
            "vimhelp_tag_to_text", "vimhelp", tag_to_text.pairs,
            (make_instruction("help tag", "retrieving its documentation", domain),
             make_instruction("help text", "retrieval", domain)),
            items=items,
        ),
        pair_task(
            "vimhelp_same_file", "vimhelp", [r for r in rows if r[2] in files],
            make_instruction("help text", "deciding whether two help texts come from the same help file", domain),
            items=items,
        ),
        clustering_task(
            "vimhelp_file_clustering", "vimhelp", rows,
            make_instruction("help text", "clustering help texts by the help file they come from", domain),
            labels=files, items=items,
        ),
    ]  # fmt: skip


BUILDERS: dict[str, Callable[..., list[BenchmarkTask]]] = {
    "computing": computing_tasks,
    "manpages": manpage_tasks,
    "vimhelp": vimhelp_tasks,
}
"""The held-out sources whose tasks are built here (gensim's run through the evals suite)."""


def build_benchmark(*, items: int = ITEMS) -> tuple[list[BenchmarkTask], dict[str, str]]:
    """Every held-out task whose source is installed, and ``{source: why}`` for each skipped source."""
    from training.recipe.sources import get_source

    tasks: list[BenchmarkTask] = []
    skipped: dict[str, str] = {}
    for name, builder in BUILDERS.items():
        try:
            raw = get_source(name).locate()
        except SourceUnavailable as exc:
            logger.warning("held-out benchmark: skipping %s: %s", name, exc)
            skipped[name] = str(exc)
            continue
        built = [t for t in builder(raw, items=items) if t.items >= 2]
        tasks += built
        logger.info("held-out benchmark: %s", ", ".join(f"{t.name} ({t.items} items)" for t in built))
    return tasks, skipped


def _vectors(encode: Callable[[list[str], str], np.ndarray], texts: Sequence[str], instruction: str) -> np.ndarray:
    return np.asarray(encode(list(texts), instruction), dtype=np.float32)


def _kmeans(vectors: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(vectors)


def score_task(
    task: BenchmarkTask, encode: Callable[[list[str], str], np.ndarray], *, instructions: bool
) -> tuple[np.ndarray, float]:
    """A task's per-item results and its score in points (x 100).

    ``encode(texts, instruction)`` returns L2-normalised rows. Per-item results: per-query nDCG@10
    (retrieval) or reciprocal rank (reranking), 0/100 correctness per test text (classification), the
    share of negative pairs below each positive pair (pair classification), cluster ids (clustering: the
    score is their V-measure against the labels, in points).
    """
    from training.recipe.quality import ndcg_per_query

    q_instr = task.query_instruction if instructions else ""
    d_instr = task.document_instruction if instructions else ""
    if task.category in ("retrieval", "reranking"):
        q = _vectors(encode, task.queries, q_instr)
        d = _vectors(encode, task.documents, d_instr)
        sims = q @ d.T
        if task.category == "retrieval":
            items = 100.0 * ndcg_per_query(sims, task.relevant)
        else:
            items = np.array(
                [
                    100.0 / (1 + sum(sims[i, c] > sims[i, next(iter(task.relevant[i]))] for c in cands))
                    for i, cands in enumerate(task.candidates)
                ]
            )
        return items, float(items.mean())
    vectors = _vectors(encode, task.texts, q_instr)
    if task.category == "classification":
        train = np.array(task.train)
        labels = np.array(task.labels)
        names = sorted(set(labels[train]))
        centroids = np.stack([vectors[train & (labels == n)].mean(0) for n in names])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        predicted = np.array(names)[np.argmax(vectors[~train] @ centroids.T, axis=1)]
        items = 100.0 * (predicted == labels[~train])
        return items, float(items.mean())
    if task.category == "pair_classification":
        sims = np.array([float(vectors[a] @ vectors[b]) for a, b, _ in task.pairs])
        same = np.array([s for *_, s in task.pairs])
        neg = np.sort(sims[~same])
        below = np.searchsorted(neg, sims[same], side="left")
        ties = np.searchsorted(neg, sims[same], side="right") - below
        items = 100.0 * (below + 0.5 * ties) / len(neg)
        return items, float(items.mean())
    if task.category == "clustering":
        from sklearn.metrics import v_measure_score

        reference = task.reference()
        assert reference is not None
        clusters = _kmeans(vectors, len(set(task.labels)))
        return clusters, 100.0 * float(v_measure_score(reference, clusters))
    raise ValueError(f"task {task.name}: no scorer for category {task.category!r}")


def evaluate_benchmark(
    encoder: Any, tasks: Sequence[BenchmarkTask], *, instructions: bool, batch_size: int = 64
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-item results and scores (points) of every task for one encoder, with or without the instructions."""
    cache: dict[tuple[str, str], np.ndarray] = {}

    def encode(texts: list[str], instruction: str) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if (instruction, t) not in cache]
        if missing:
            vecs = encoder.encode(missing, instruction, batch_size=batch_size)
            cache.update({(instruction, t): v for t, v in zip(missing, vecs, strict=True)})
        return np.stack([cache[(instruction, t)] for t in texts])

    per_item: dict[str, np.ndarray] = {}
    scores: dict[str, float] = {}
    for task in tasks:
        per_item[task.name], scores[task.name] = score_task(task, encode, instructions=instructions)
    return per_item, scores


def references(tasks: Sequence[BenchmarkTask]) -> dict[str, np.ndarray]:
    """The clustering tasks' label ids (what :func:`training.recipe.targets.task_part` scores cluster ids against)."""
    return {t.name: ref for t in tasks if (ref := t.reference()) is not None}
