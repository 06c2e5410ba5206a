"""Across seeds: does the recipe meet a target, or did one seed? ``instructor seeds DIR DIR [DIR ...]``.

Each recipe output (``python -m training.recipe --output DIR --seed N``) holds in ``DIR/results.json``
its targets as differences with 95 % intervals over the evaluation's items (:mod:`training.recipe.targets`).
Those intervals say how much one run's figures would move on other queries and texts; they say nothing
about the training seed. This command lines the runs up, one row per run, and adds:

- **the mean over runs** with a 95 % Student-t interval across them (n - 1 degrees of freedom): where the
  recipe's figure lands for a new seed on average. It covers the training seed and the per-seed draw of
  held-out queries; the items every seed shares (Lee's documents, the polarity and newsgroups texts) are
  not redrawn, so their noise is in each run's own interval, not in this one;
- **how many runs** have the point estimate on the target's side, and how many are significantly above or
  below it;
- the held-out **instruction wins** (tasks where the finetuned model scores higher with instructions than
  without) per run, and their mean.

A target a run did not evaluate (``--no-ablation``) shows ``not run`` and its mean is over the other runs.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from instructor_plugins.flags import add_config_flags, command_parser, config_from_args
from training.recipe.bootstrap import Interval
from training.recipe.targets import TARGETS, instruction_wins, wins_needed

__all__ = ["SeedRun", "SeedsConfig", "across_seeds", "load_run", "main", "seeds_table"]

SHORT_LABELS = {
    "in_domain_vs_base": "in-domain vs base's best",
    "held_out_vs_base": "held-out vs base's best",
    "held_out_vs_ablation": "held-out vs ablation",
    "in_domain_instructions": "instructions, in-domain",
    "held_out_instructions": "instructions, held-out",
}


def across_seeds(values: Sequence[float], level: float = 0.95) -> Interval:
    """The mean of per-seed figures with its Student-t interval (``n - 1`` degrees of freedom).

    >>> print(across_seeds([1.0, 2.0, 3.0]))
    +2.00 [-0.48, +4.48]
    """
    from scipy import stats

    n = len(values)
    if n < 2:
        raise ValueError(f"an interval across seeds needs at least 2 values, got {n}")
    if any(not math.isfinite(v) for v in values):
        raise ValueError(f"per-seed values must be finite, got {list(values)}")
    mean = float(np.mean(values))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * stats.sem(values))  # sem: sd with n - 1, over sqrt(n)
    return Interval(mean, mean - half, mean + half, level)


@dataclass(frozen=True)
class SeedRun:
    """One recipe run as this command reads it."""

    label: str
    targets: Mapping[str, Mapping[str, Any]]
    wins: int
    held_out: int

    @classmethod
    def from_results(cls, results: Mapping[str, Any], label: str) -> SeedRun:
        """From a recipe's ``results.json`` (:func:`training.recipe.run`)."""
        if "target_intervals" not in results:
            raise ValueError(
                f"{label}: results.json has no target intervals (written by an older recipe); rerun "
                "`python -m training.recipe --output DIR` with the same flags: it reuses the corpus and the trained "
                "models and adds them"
            )
        return cls(
            label=label,
            targets=results["target_intervals"],
            wins=len(instruction_wins(results)),
            held_out=len(results["held_out_tasks"]),
        )


def load_run(folder: str | Path) -> SeedRun:
    """Read ``folder/results.json``, labelled by its seed and folder name."""
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results.json (is {folder} the --output of python -m training.recipe?)")
    results = json.loads(path.read_text(encoding="utf-8"))
    return SeedRun.from_results(results, f"{results.get('config', {}).get('seed', '?')} ({Path(folder).name})")


def _cell(target: Mapping[str, Any]) -> str:
    interval = Interval(target["estimate"], target["low"], target["high"], target["level"])
    verdict = target["verdict"]  # the run's own, against its target (training.recipe.targets)
    return f"{interval}" if verdict == "within noise" else f"**{interval} {verdict}**"


def seeds_table(runs: Sequence[SeedRun]) -> str:
    """The markdown table: a row per run, then the mean across runs and the counts against each target."""
    if len(runs) < 2:
        raise ValueError(f"need at least two runs, got {len(runs)}")
    keys = [k for k in TARGETS if any(k in r.targets for r in runs)]
    header = [f"{SHORT_LABELS[k]} (target {TARGETS[k][3]:+g})" for k in keys]
    need = wins_needed(runs[0].held_out)
    lines = [
        "| seed | " + " | ".join(header) + f" | instruction wins, held-out (target >= {need}) |",
        "|---|" + "---|" * (len(keys) + 1),
    ]
    for run in runs:
        cells = [_cell(run.targets[k]) if k in run.targets else "not run" for k in keys]
        lines.append(f"| {run.label} | " + " | ".join(cells) + f" | {run.wins} of {run.held_out} |")
    means, counts = [], []
    for k in keys:
        present = [r.targets[k] for r in runs if k in r.targets]
        threshold = TARGETS[k][3]
        if len(present) < 2:
            means.append("-")
        else:
            mean = across_seeds([t["estimate"] for t in present])
            verdict = mean.relative_to(threshold)
            means.append(f"{mean}" + ("" if verdict == "within noise" else f" {verdict}"))
        on_side = sum(t["estimate"] >= threshold for t in present)
        above = sum(t["verdict"] == "above" for t in present)
        below = sum(t["verdict"] == "below" for t in present)
        counts.append(f"{on_side} of {len(present)} (above {above}, below {below})")
    wins = [r.wins for r in runs]
    lines.append("| **mean, 95 % t-interval across runs** | " + " | ".join(means) + f" | {sum(wins) / len(wins):.1f} |")
    met = sum(w >= wins_needed(r.held_out) for w, r in zip(wins, runs, strict=True))
    lines.append("| runs at or past the target | " + " | ".join(counts) + f" | {met} of {len(runs)} |")
    return "\n".join(lines)


@dataclass
class SeedsConfig:
    """Arguments of ``instructor seeds``."""

    runs: list[Path]
    """Output folders of python -m training.recipe (one per seed); at least two."""

    def __post_init__(self) -> None:
        if len(self.runs) < 2:
            raise ValueError(f"give at least two recipe output folders, got {len(self.runs)}")


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m training.recipe.seeds") -> int:
    """CLI entry point (``instructor seeds``): print the table; 2 for a missing or too old run folder."""
    parser = command_parser(prog, __doc__)
    add_config_flags(parser, SeedsConfig, positional=["runs"])
    config = config_from_args(parser, SeedsConfig, parser.parse_args(argv))
    try:
        runs = [load_run(folder) for folder in config.runs]
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    print(seeds_table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
