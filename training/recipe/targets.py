"""The recipe's targets as differences with 95 % intervals: is a gain (or a shortfall) more than evaluation noise?

Each target compares two settings on the same evaluation items (see :mod:`training.recipe.evaluation` for the
settings). The difference of two averages over tasks is resampled per task (:func:`training.recipe.bootstrap.
average_difference`), each task by its own evaluation units (:func:`task_part`): a retrieval task by its
queries, the classification by its test texts, Lee STS by its documents, the clustering by its posts. A
task without per-item results enters at its fixed difference, which makes that interval a lower bound
on the true one. A target is ``above`` or ``below`` its threshold when the whole interval is, else
``within noise``.

Beside the targets, :data:`BREAKDOWNS` split the held-out instruction effect by the tasks' shape: asymmetric tasks
(retrieval, reranking: a query and a document, each with its own instruction) and symmetric ones (classification,
clustering, pair classification, STS: one kind of text, one instruction). Where the paper's claim shows on this
benchmark, it shows on one shape and not the other (``results/recipe.md``), so every run reports both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from training.recipe.bootstrap import Interval, Resampled, average_difference, clustering_part, mean_part, sts_part

__all__ = [
    "ASYMMETRIC",
    "BREAKDOWNS",
    "TARGETS",
    "instruction_wins",
    "shape_scopes",
    "interval_lines",
    "target_intervals",
    "task_part",
    "wins_needed",
]

# key -> (scope, setting a, setting b or "base's best", threshold, label)
TARGETS: dict[str, tuple[str, str, str, float, str]] = {
    "in_domain_vs_base": (
        "in_domain",
        "finetuned + instructions",
        "base's best",
        5.0,
        "in-domain: finetuned + instructions - base's best",
    ),
    "held_out_vs_base": (
        "held_out",
        "finetuned + instructions",
        "base's best",
        0.0,
        "held-out: finetuned + instructions - base's best",
    ),
    "held_out_vs_ablation": (
        "held_out",
        "finetuned + instructions",
        "ablation",
        0.0,
        "held-out: finetuned + instructions - ablation",
    ),
    "in_domain_instructions": (
        "in_domain",
        "finetuned + instructions",
        "finetuned",
        0.0,
        "in-domain: finetuned + instructions - finetuned",
    ),
    "held_out_instructions": (
        "held_out",
        "finetuned + instructions",
        "finetuned",
        0.0,
        "held-out: finetuned + instructions - finetuned",
    ),
}


ASYMMETRIC = ("retrieval", "reranking")
"""Held-out categories whose two sides are different kinds of text (and instructions); the others are symmetric."""

# key -> (scope, setting a, setting b, label): differences reported beside the targets, against 0, not targets
BREAKDOWNS: dict[str, tuple[str, str, str, str]] = {
    "held_out_instructions_asymmetric": (
        "held_out_asymmetric",
        "finetuned + instructions",
        "finetuned",
        "held-out, asymmetric tasks (retrieval, reranking): finetuned + instructions - finetuned",
    ),
    "held_out_instructions_symmetric": (
        "held_out_symmetric",
        "finetuned + instructions",
        "finetuned",
        "held-out, symmetric tasks (classification, clustering, pairs, STS): finetuned + instructions - finetuned",
    ),
}


def shape_scopes(names: Sequence[str], categories: Mapping[str, str]) -> dict[str, list[str]]:
    """The held-out tasks ``names`` split by shape (:data:`ASYMMETRIC`), as the scopes of :data:`BREAKDOWNS`.

    ``categories``: ``task -> category``; a task without one is left out of both.

    >>> shape_scopes(["a", "b", "c"], {"a": "retrieval", "b": "sts"})
    {'held_out_asymmetric': ['a'], 'held_out_symmetric': ['b']}
    """
    out: dict[str, list[str]] = {"held_out_asymmetric": [], "held_out_symmetric": []}
    for name in names:
        if name in categories:
            out["held_out_asymmetric" if categories[name] in ASYMMETRIC else "held_out_symmetric"].append(name)
    return out


def instruction_wins(results: Mapping[str, Any]) -> list[str]:
    """The held-out tasks where the finetuned model scores higher with instructions than without."""
    with_i, without = results["scores"]["finetuned + instructions"], results["scores"]["finetuned"]
    return [t for t in results["held_out_tasks"] if with_i[t] > without[t]]


def wins_needed(n_tasks: int) -> int:
    """The instruction-wins target for ``n_tasks`` held-out tasks: 4 of 5, i.e. 80 % rounded up.

    >>> wins_needed(5), wins_needed(3)
    (4, 3)
    """
    return -(-4 * n_tasks // 5)


def task_part(a: np.ndarray, b: np.ndarray, reference: np.ndarray | None = None) -> Resampled:
    """One task's difference between settings ``a`` and ``b``, resampled by its evaluation units.

    - no ``reference``: ``a`` and ``b`` are per-item scores (per-query nDCG@10, per-text accuracy);
    - a 2-d ``reference`` (human similarities): ``a`` and ``b`` are STS cosine matrices;
    - a 1-d ``reference`` (true labels): ``a`` and ``b`` are cluster ids.
    """
    if reference is None:
        return mean_part(a, b)
    if reference.ndim == 2:
        n = len(a)
        return sts_part(a, b, reference[:n, :n])
    return clustering_part(a, b, reference[: len(a)])


def _parts(
    names: Sequence[str],
    a: str,
    b: str,
    per_item: Mapping[str, Mapping[str, Any]],
    scores: Mapping[str, Mapping[str, float]],
    references: Mapping[str, np.ndarray],
) -> list[Resampled | float]:
    parts: list[Resampled | float] = []
    for name in names:
        x, y = per_item[a].get(name), per_item[b].get(name)
        if x is None or y is None or len(x) < 2:
            parts.append(scores[a][name] - scores[b][name])
        else:
            parts.append(task_part(x, y, references.get(name)))
    return parts


def target_intervals(
    per_item: Mapping[str, Mapping[str, Any]],
    scores: Mapping[str, Mapping[str, float]],
    summary: Mapping[str, Mapping[str, float]],
    tasks: Mapping[str, Sequence[str]],
    *,
    references: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Every target of :data:`TARGETS`, then :data:`BREAKDOWNS`, whose settings ran, as an interval and a verdict.

    Args:
        per_item: ``setting -> task -> per-item results`` (see :func:`task_part`).
        scores: ``setting -> task -> score``; used for tasks ``per_item`` lacks (fixed differences).
        summary: ``setting -> {"in_domain", "held_out"}`` averages; "base's best" is the base setting
            with the higher average in the target's scope.
        tasks: ``{"in_domain": [...], "held_out": [...]}``, the task names each average is over; with
            ``held_out_asymmetric`` and ``held_out_symmetric`` (:func:`shape_scopes`) the :data:`BREAKDOWNS` too.
        references: ``task -> reference`` for the STS and clustering tasks (see :func:`task_part`).
        seed: the bootstrap's seed.
    """
    rows = [(key, *spec, False) for key, spec in TARGETS.items()]
    rows += [(key, scope, a, b, 0.0, label, True) for key, (scope, a, b, label) in BREAKDOWNS.items()]
    out: dict[str, dict[str, Any]] = {}
    for key, scope, a, b, threshold, label, breakdown in rows:
        if b == "base's best":
            b = max(("base", "base + instructions"), key=lambda s: summary.get(s, {}).get(scope, float("-inf")))
        if a not in per_item or b not in per_item or not tasks.get(scope):
            continue
        parts = _parts(tasks[scope], a, b, per_item, scores, references or {})
        if breakdown and not any(isinstance(part, Resampled) for part in parts):
            continue  # only fixed differences: no interval to give
        interval = average_difference(parts, seed=seed)
        fixed = [n for n, part in zip(tasks[scope], parts, strict=True) if not isinstance(part, Resampled)]
        out[key] = {
            **dataclasses.asdict(interval),
            "label": label,
            "versus": b,
            "target": threshold,
            "verdict": interval.relative_to(threshold),
            "fixed_tasks": fixed,
            "breakdown": breakdown,
            "tasks": list(tasks[scope]),
        }
    return out


def interval_lines(intervals: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The report's section: one row per target."""
    if not intervals:
        return []
    lines = [
        "## Targets with 95 % intervals",
        "",
        "Differences of averages in points, with the 95 % percentile interval of 2,000 paired resamples, each task "
        "resampled on its own units (retrieval: queries; Lee STS: documents; polarity: test texts; newsgroups: "
        "posts). 'above' or 'below' when the whole interval is on one side of the target, else 'within noise'.",
        "",
        "| comparison | difference [95 % interval] | target | verdict |",
        "|---|---|---|---|",
    ]
    fixed: set[str] = set()
    for v in intervals.values():
        interval = Interval(v["estimate"], v["low"], v["high"], v["level"])
        label = str(v["label"]).replace("base's best", f"base's best ({v['versus']})")
        star = "*" if v["fixed_tasks"] and v["verdict"] != "within noise" else ""
        target = "(breakdown, vs 0)" if v.get("breakdown") else f"{v['target']:+g}"
        lines.append(f"| {label} | {interval} | {target} | {v['verdict']}{star} |")
        fixed |= set(v["fixed_tasks"])
    if fixed:
        lines += [
            "",
            f"Not resampled: {', '.join(sorted(fixed))}. They enter at their fixed differences, so the intervals that "
            "include them are narrower than the truth: a 'within noise' there holds, an 'above' or 'below' (marked *) "
            "may not.",
        ]
    return [*lines, ""]
