"""The diversity ablation: does task diversity, instructions, or both move the held-out instruction effect?

``instructor diversity --output DIR --seeds 0 1 2 --recipe-flags "--steps 120"`` runs the recipe
(:mod:`training.recipe.pipeline`) on two corpora with the same steps, batch and settings:

- ``narrow``: :data:`training.recipe.sources.NARROW_SOURCES`, the 16 tasks of 4 sources the recipe had;
- ``wide``: :data:`training.recipe.sources.WIDE_SOURCES`, every training source (40+ tasks, 15+ sources);

each once per seed, into ``DIR/<arm>-seed<N>``. Every recipe run trains both the instructed model and the
no-instruction ablation, and evaluates both on the held-out benchmark (:mod:`training.recipe.heldout`),
so each arm has all four cells: {narrow, wide} x {trained with, without instructions}. A finished run
(its ``results.json``) is reused. ``DIR/diversity.md`` then gives, per arm:

- the held-out averages of the finetuned model without and with instructions and of the ablation;
- the held-out **instruction effect** (finetuned + instructions - finetuned) and finetuned + instructions
  - ablation, each the mean over seeds with a 95 % Student-t interval across seeds (one seed: that run's
  paired bootstrap interval over items);
- in-domain gain over the base's best;

and **what diversity moved**: wide minus narrow for each of those, with an interval from the two arms'
intervals (half-widths combined in quadrature: a normal approximation for two independent estimates).
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructor_plugins.flags import add_config_flags, command_parser, config_from_args
from training.recipe.bootstrap import Interval
from training.recipe.seeds import across_seeds
from training.recipe.sources import NARROW_SOURCES, WIDE_SOURCES

__all__ = ["ARMS", "DiversityConfig", "arm_summary", "diversity_table", "main", "run_study"]

logger = logging.getLogger(__name__)

ARMS: dict[str, tuple[str, ...]] = {"narrow": NARROW_SOURCES, "wide": WIDE_SOURCES}
"""The corpora compared: their training sources."""
FIGURES: dict[str, str] = {
    "held_out_instructions": "instruction effect, held-out (finetuned + instructions - finetuned)",
    "held_out_vs_ablation": "finetuned + instructions - ablation, held-out",
    "held_out_vs_base": "finetuned + instructions - base's best, held-out",
    "in_domain_vs_base": "finetuned + instructions - base's best, in-domain",
    "in_domain_instructions": "instruction effect, in-domain",
    "held_out_instructions_asymmetric": "instruction effect, held-out asymmetric tasks (retrieval, reranking)",
    "held_out_instructions_symmetric": "instruction effect, held-out symmetric tasks (classification, clustering, STS)",
}
"""The targets (``results.json`` ``target_intervals`` keys) the table compares, with their labels; then the held-out
instruction effect by task shape (:data:`training.recipe.targets.BREAKDOWNS`; runs made before it lack them: '-')."""


@dataclass
class DiversityConfig:
    """Arguments of ``instructor diversity``."""

    output: str
    """Folder of the study: one recipe run per arm and seed in <arm>-seed<N>, and diversity.md."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Seeds of each arm."""
    arms: list[str] = field(default_factory=lambda: ["narrow", "wide"])
    """Arms to run (narrow, wide), in this order for each seed."""
    recipe_flags: str = ""
    """More flags for every recipe run, one string (e.g. "--steps 120 --distill-general 0"); the same for all."""
    report_only: bool = False
    """Run nothing: write diversity.md from the runs already finished."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.arms) - set(ARMS))
        if unknown:
            raise ValueError(f"unknown arms {unknown}; valid: {list(ARMS)}")
        if not self.seeds:
            raise ValueError("give at least one seed")
        banned = {"--output", "--seed", "--sources"} & {f.split("=")[0] for f in shlex.split(self.recipe_flags)}
        if banned:
            raise ValueError(f"recipe_flags must not set {sorted(banned)}: the study sets them per run")


def run_dir(cfg: DiversityConfig, arm: str, seed: int) -> Path:
    """Where one arm's run of one seed goes."""
    return Path(cfg.output) / f"{arm}-seed{seed}"


def run_study(cfg: DiversityConfig) -> dict[str, list[dict[str, Any]]]:
    """Run every missing (seed, arm) recipe run in turn; returns each arm's results, by seed order."""
    from training.recipe.pipeline import parse_args, run

    done: dict[str, list[dict[str, Any]]] = {arm: [] for arm in cfg.arms}
    for seed in cfg.seeds:
        for arm in cfg.arms:
            folder = run_dir(cfg, arm, seed)
            path = folder / "results.json"
            if not path.is_file() and not cfg.report_only:
                argv = ["--output", str(folder), "--seed", str(seed), "--sources", *ARMS[arm]]
                logger.info("diversity: %s seed %d -> %s", arm, seed, folder)
                run(parse_args([*argv, *shlex.split(cfg.recipe_flags)]))
            if path.is_file():
                done[arm].append(json.loads(path.read_text(encoding="utf-8")))
    return done


def _interval(values: Sequence[Mapping[str, Any]]) -> Interval:
    """Mean over runs with a t-interval across them; one run: its own bootstrap interval."""
    if len(values) == 1:
        v = values[0]
        return Interval(v["estimate"], v["low"], v["high"], v["level"])
    return across_seeds([v["estimate"] for v in values])


def arm_summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One arm: trained tasks and sources, held-out averages per setting (mean over runs), and each figure."""
    summary = {
        setting: sum(r["summary"][setting]["held_out"] for r in runs) / len(runs)
        for setting in ("finetuned", "finetuned + instructions", "ablation")
        if all(setting in r["summary"] for r in runs)
    }
    figures = {
        key: _interval([r["target_intervals"][key] for r in runs])
        for key in FIGURES
        if all(key in r.get("target_intervals", {}) for r in runs)
    }
    first = runs[0]
    return {
        "runs": len(runs),
        "tasks": len(first["in_domain_tasks"]),
        "sources": list(first["config"]["sources"]),
        "held_out_tasks": len(first["held_out_tasks"]),
        "held_out": summary,
        "figures": figures,
    }


def _difference(a: Interval, b: Interval) -> Interval:
    half = math.hypot((a.high - a.low) / 2, (b.high - b.low) / 2)
    estimate = a.estimate - b.estimate
    return Interval(estimate, estimate - half, estimate + half, a.level)


def diversity_table(arms: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """The markdown report: one column per arm, then what diversity moved (wide - narrow)."""
    summaries = {arm: arm_summary(runs) for arm, runs in arms.items() if runs}
    if not summaries:
        return "No finished runs yet.\n"
    names = sorted(summaries, key=list(ARMS).index)  # narrow before wide whatever order they ran in: wide - narrow
    lines = [
        "| | " + " | ".join(names) + (" | wide - narrow |" if len(names) == 2 else " |"),
        "|---|" + "---|" * (len(names) + (1 if len(names) == 2 else 0)),
    ]

    def row(label: str, cells: list[str], diff: str = "") -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + (f" | {diff} |" if len(names) == 2 else " |"))

    row("runs (seeds)", [str(summaries[n]["runs"]) for n in names])
    row(
        "in-domain tasks scored / training sources",
        [f"{summaries[n]['tasks']} / {len(summaries[n]['sources'])}" for n in names],
    )
    row("held-out tasks", [str(summaries[n]["held_out_tasks"]) for n in names])
    for setting in ("finetuned", "finetuned + instructions", "ablation"):
        values = [summaries[n]["held_out"].get(setting) for n in names]
        diff = f"{values[1] - values[0]:+.2f}" if len(values) == 2 and None not in values else ""
        row(f"held-out avg, {setting}", [f"{v:.2f}" if v is not None else "-" for v in values], diff)
    for key, label in FIGURES.items():
        found = [summaries[n]["figures"].get(key) for n in names]
        cells = [str(i) if i is not None else "-" for i in found]
        diff = ""
        if len(found) == 2 and found[0] is not None and found[1] is not None:
            moved = _difference(found[1], found[0])
            diff = f"{moved} ({moved.verdict})"
        row(label, cells, diff)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m training.recipe.diversity") -> int:
    """CLI entry point (``instructor diversity``): run the study and write ``DIR/diversity.md``."""
    logging.basicConfig(level=logging.INFO, format="[diversity] %(message)s")
    parser = command_parser(prog, __doc__)
    add_config_flags(parser, DiversityConfig)
    cfg = config_from_args(parser, DiversityConfig, parser.parse_args(argv))
    arms = run_study(cfg)
    text = "# Diversity ablation\n\n" + diversity_table(arms)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diversity.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
