"""Paired bootstrap intervals: is one setting's score really above another's on the same items?

The recipe's held-out tasks are small (200 queries per retrieval task, 50 Lee documents), so two
settings of one model can differ by a point by chance. A paired bootstrap resamples the evaluation
units (queries; for Lee STS, documents) with replacement, recomputes the *difference* of the two
settings on each resample, and reports the percentile interval of those differences.

A difference whose interval excludes 0 is called a win or a loss; otherwise it is within noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Interval", "paired_bootstrap", "paired_mean_difference", "paired_sts_difference", "sts_spearman"]

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

    def __str__(self) -> str:
        return f"{self.estimate:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


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
    if n_units < 2:
        raise ValueError(f"need at least 2 units to bootstrap, got {n_units}")
    if not 0 < level < 1 or resamples < 10:
        raise ValueError(f"level must be in (0, 1) and resamples >= 10, got {level}, {resamples}")
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(rng.integers(0, n_units, n_units)) for _ in range(resamples)])
    draws = draws[np.isfinite(draws)]  # e.g. an STS resample of very few documents has no defined rank correlation
    if len(draws) < resamples / 2:
        raise ValueError(f"the statistic is undefined on {resamples - len(draws)} of {resamples} resamples")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(float(statistic(np.arange(n_units))), float(low), float(high), level)


def paired_mean_difference(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """``mean(a) - mean(b)`` over paired per-item scores (e.g. per-query nDCG@10 of two settings).

    >>> str(paired_mean_difference([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]))
    '+1.00 [+1.00, +1.00]'
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-d and paired, got shapes {x.shape} and {y.shape}")
    diff = x - y
    return paired_bootstrap(lambda idx: float(diff[idx].mean()), len(diff), resamples=resamples, seed=seed)


def _pairs(docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(len(docs), k=1)
    a, b = docs[i], docs[j]
    keep = a != b  # a document drawn twice is not paired with itself
    return np.minimum(a, b)[keep], np.maximum(a, b)[keep]


def sts_spearman(similarity: np.ndarray, human: np.ndarray, docs: np.ndarray | None = None) -> float:
    """Spearman (points) of model vs human similarity over every pair of ``docs`` (all documents by default).

    ``similarity`` and ``human`` are ``(n, n)`` matrices; only their upper triangle is read.
    """
    from scipy.stats import spearmanr

    docs = np.arange(len(human)) if docs is None else docs
    i, j = _pairs(docs)
    return 100.0 * float(spearmanr(similarity[i, j], human[i, j]).statistic)


def paired_sts_difference(
    similarity_a: np.ndarray, similarity_b: np.ndarray, human: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """Spearman of setting a minus setting b on an all-pairs STS task, resampling documents (not pairs).

    Pairs that share a document are not independent, so the unit of the resample is the document.
    """
    n = len(human)
    if not similarity_a.shape == similarity_b.shape == human.shape == (n, n):
        raise ValueError(f"need three ({n}, {n}) matrices, got {similarity_a.shape}, {similarity_b.shape}")
    return paired_bootstrap(
        lambda docs: sts_spearman(similarity_a, human, docs) - sts_spearman(similarity_b, human, docs),
        n,
        resamples=resamples,
        seed=seed,
    )
