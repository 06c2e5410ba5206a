"""Paired bootstrap intervals: is one setting's score really above another's on the same items?

The recipe's held-out tasks are small (200 queries per retrieval task, 50 Lee documents), so two
settings of one model can differ by a point by chance. A paired bootstrap resamples the evaluation
units with replacement (queries; for Lee STS, documents; for a classification, test texts; for a
clustering, the clustered texts), recomputes the *difference* of the two settings on each resample,
and reports the percentile interval of those differences.

A difference whose interval excludes 0 is called a win or a loss; otherwise it is within noise.
An average over tasks (the recipe's in-domain and held-out averages) is resampled per task: each
task's units are drawn on their own, since queries of different tasks are independent, and a task
that cannot be resampled enters at its fixed difference (so that interval is narrower than the truth).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "Interval",
    "Resampled",
    "average_difference",
    "clustering_part",
    "mean_part",
    "paired_bootstrap",
    "paired_mean_difference",
    "paired_sts_difference",
    "sts_part",
    "sts_spearman",
    "v_measure",
]

RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A difference (points) with its bootstrap percentile interval."""

    estimate: float
    low: float
    high: float
    level: float

    @property
    def verdict(self) -> Literal["win", "loss", "within noise"]:
        """``win`` when the interval lies above 0, ``loss`` below, else ``within noise``."""
        if self.low > 0:
            return "win"
        if self.high < 0:
            return "loss"
        return "within noise"

    def relative_to(self, target: float) -> Literal["above", "below", "within noise"]:
        """``above`` when the whole interval lies above ``target``, ``below`` when below, else ``within noise``.

        >>> Interval(5.2, 4.6, 5.8, 0.95).relative_to(5.0)
        'within noise'
        """
        if self.low > target:
            return "above"
        if self.high < target:
            return "below"
        return "within noise"

    def __str__(self) -> str:
        return f"{self.estimate:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


@dataclass(frozen=True)
class Resampled:
    """One task's difference between two settings: ``statistic(indices)`` of resampled units ``range(n_units)``."""

    statistic: Callable[[np.ndarray], float]
    n_units: int

    def __post_init__(self) -> None:
        if self.n_units < 2:
            raise ValueError(f"need at least 2 units to bootstrap, got {self.n_units}")


def paired_bootstrap(
    statistic: Callable[[np.ndarray], float],
    n_units: int,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile interval of ``statistic(indices)`` over resamples of ``range(n_units)`` with replacement.

    ``statistic`` gets an index array (the full ``arange(n_units)`` for the estimate) and returns the
    difference between the two settings on those units. Resamples where it is not finite are left out;
    more than half of them is an error.
    """
    return average_difference([Resampled(statistic, n_units)], resamples=resamples, seed=seed, level=level)


def average_difference(
    parts: Sequence[Resampled | float],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """The mean over tasks of each task's difference, with a percentile interval; tasks resampled independently.

    A :class:`Resampled` part is redrawn on every resample; a number is a task's fixed difference (a
    task that is not resampled adds no noise, so the interval is then a lower bound on the true one).
    Resamples where the mean is not finite are left out; more than half of them is an error.

    >>> str(average_difference([mean_part([2.0, 2.0], [1.0, 1.0]), 3.0]))
    '+2.00 [+2.00, +2.00]'
    """
    if not any(isinstance(p, Resampled) for p in parts):
        raise ValueError("need at least one resampled part")
    if not 0 < level < 1 or resamples < 10:
        raise ValueError(f"level must be in (0, 1) and resamples >= 10, got {level}, {resamples}")
    rng = np.random.default_rng(seed)
    total = np.zeros(resamples)
    estimate = 0.0
    for part in parts:
        if isinstance(part, Resampled):
            n = part.n_units
            total += np.array([part.statistic(rng.integers(0, n, n)) for _ in range(resamples)])
            estimate += part.statistic(np.arange(n))
        else:
            total += float(part)
            estimate += float(part)
    draws = total[np.isfinite(total)] / len(parts)  # e.g. an STS resample of very few documents has no rank correlation
    if len(draws) < resamples / 2:
        raise ValueError(f"the statistic is undefined on {resamples - len(draws)} of {resamples} resamples")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(estimate / len(parts), float(low), float(high), level)


def mean_part(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> Resampled:
    """``mean(a) - mean(b)`` over paired per-item scores, as a part of :func:`average_difference`."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-d and paired, got shapes {x.shape} and {y.shape}")
    diff = x - y
    return Resampled(lambda idx: float(diff[idx].mean()), len(diff))


def paired_mean_difference(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """``mean(a) - mean(b)`` over paired per-item scores (e.g. per-query nDCG@10 of two settings).

    >>> str(paired_mean_difference([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]))
    '+1.00 [+1.00, +1.00]'
    """
    return average_difference([mean_part(a, b)], resamples=resamples, seed=seed)


def _pairs(docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(len(docs), k=1)
    a, b = docs[i], docs[j]
    keep = a != b  # a document drawn twice is not paired with itself
    return np.minimum(a, b)[keep], np.maximum(a, b)[keep]


def sts_spearman(similarity: np.ndarray, human: np.ndarray, docs: np.ndarray | None = None) -> float:
    """Spearman (points) of model vs human similarity over every pair of ``docs`` (all documents by default).

    ``similarity`` and ``human`` are ``(n, n)`` matrices; only their upper triangle is read.
    """
    from scipy.stats import rankdata

    docs = np.arange(len(human)) if docs is None else docs
    i, j = _pairs(docs)
    # scipy's spearmanr is Pearson's r of the average ranks; computed here without its per-call checks (the
    # bootstrap calls this thousands of times)
    x, y = rankdata(similarity[i, j]), rankdata(human[i, j])
    x, y = x - x.mean(), y - y.mean()
    scale = float(np.sqrt((x * x).sum() * (y * y).sum()))
    if not scale:  # a resample of very few documents: undefined, left out by the bootstrap
        return float("nan")
    return 100.0 * float((x * y).sum()) / scale


def paired_sts_difference(
    similarity_a: np.ndarray, similarity_b: np.ndarray, human: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """Spearman of setting a minus setting b on an all-pairs STS task, resampling documents (not pairs).

    Pairs that share a document are not independent, so the unit of the resample is the document.
    """
    return average_difference([sts_part(similarity_a, similarity_b, human)], resamples=resamples, seed=seed)


def sts_part(similarity_a: np.ndarray, similarity_b: np.ndarray, human: np.ndarray) -> Resampled:
    """Spearman of setting a minus setting b on an all-pairs STS task, a part of :func:`average_difference`."""
    n = len(human)
    if not similarity_a.shape == similarity_b.shape == human.shape == (n, n):
        raise ValueError(f"need three ({n}, {n}) matrices, got {similarity_a.shape}, {similarity_b.shape}")
    return Resampled(lambda docs: sts_spearman(similarity_a, human, docs) - sts_spearman(similarity_b, human, docs), n)


def clustering_part(clusters_a: np.ndarray, clusters_b: np.ndarray, labels: np.ndarray) -> Resampled:
    """V-measure (points) of setting a's cluster ids minus setting b's against the true ``labels``, by text.

    The cluster ids are fixed (k-means is not rerun): the resample measures how the score depends on
    which texts were evaluated, as the other parts do.
    """
    a, b, y = np.asarray(clusters_a), np.asarray(clusters_b), np.asarray(labels)
    if not a.shape == b.shape == y.shape or y.ndim != 1:
        raise ValueError(f"need three 1-d arrays of one length, got {a.shape}, {b.shape}, {y.shape}")
    # small integer codes once, so each resample is two bincounts (sklearn's v_measure_score validates its input on
    # every call: ~2.5 ms, which was most of a toy recipe's evaluation)
    y, a, b = (np.unique(v, return_inverse=True)[1] for v in (y, a, b))
    return Resampled(lambda idx: 100.0 * (v_measure(y[idx], a[idx]) - v_measure(y[idx], b[idx])), len(y))


def _entropy(counts: np.ndarray, total: int) -> float:
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum())


def v_measure(labels: np.ndarray, clusters: np.ndarray) -> float:
    """The V-measure of sklearn's ``v_measure_score(labels, clusters)`` (beta 1) for integer codes, no checks.

    >>> v_measure(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0]))
    1.0
    """
    n = len(labels)
    if n == 0:
        return 1.0
    width = int(clusters.max()) + 1
    joint = np.bincount(labels * width + clusters, minlength=(int(labels.max()) + 1) * width).reshape(-1, width)
    rows, cols = joint.sum(axis=1), joint.sum(axis=0)
    h_labels, h_clusters = _entropy(rows, n), _entropy(cols, n)
    i, j = np.nonzero(joint)
    nij = joint[i, j].astype(float)
    mutual = max(0.0, float((nij / n * np.log(nij * n / (rows[i] * cols[j].astype(float)))).sum()))
    homogeneity = mutual / h_labels if h_labels else 1.0
    completeness = mutual / h_clusters if h_clusters else 1.0
    if homogeneity + completeness == 0.0:
        return 0.0
    return 2.0 * homogeneity * completeness / (homogeneity + completeness)
