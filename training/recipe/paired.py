"""Two recipe runs compared item by item: ``instructor paired RUN_A SETTING_A RUN_B SETTING_B``.

A recipe run's ``report.md`` compares its own settings with paired intervals. Comparing *runs* (a change of the
recipe against the default, one corpus against another) by putting their intervals side by side throws the
pairing away: both runs score the same held-out items, and most of each interval is the items' own noise, which
a paired difference cancels. Each run writes ``DIR/per_item.json`` (every setting's per-item results, the STS
and clustering references, and a fingerprint of each task's items); this command takes setting A of one run
minus setting B of another, task by task on the items both scored, resampled by each task's evaluation units as
in the run's own targets (:func:`training.recipe.targets.task_part`), averaged over the tasks.

A task whose items differ between the runs (another seed draws other held-out queries; another corpus has other
in-domain test rows) is left out and named, never paired with other items. The settings are those of
``report.md``: ``base``, ``base + instructions``, ``finetuned``, ``finetuned + instructions``, ``ablation``.

Example (a change of the distillation against the default, the same corpus and seed)::

    instructor paired runs/anchor-plain "finetuned + instructions" runs/default "finetuned + instructions"
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from instructor_plugins.flags import add_config_flags, command_parser, config_from_args
from training.recipe.bootstrap import Interval, Resampled, average_difference
from training.recipe.targets import shape_scopes, task_part

__all__ = ["PER_ITEM_FILE", "CompareConfig", "Comparison", "compare", "load_per_item", "main"]

PER_ITEM_FILE = "per_item.json"
"""The file a recipe run writes beside ``results.json`` with every setting's per-item results."""

Scope = Literal["held_out", "in_domain"]


@dataclass
class CompareConfig:
    """``instructor paired``: setting A of one recipe run minus setting B of another, item by item."""

    run_a: str
    """Recipe output folder of the first run (holds results.json and per_item.json)."""
    setting_a: str
    """Its setting: base, base + instructions, finetuned, finetuned + instructions or ablation."""
    run_b: str
    """Recipe output folder of the second run."""
    setting_b: str
    """Its setting, subtracted from the first."""
    scope: Scope = "held_out"
    """The tasks averaged: held_out (the benchmark of whole sources) or in_domain (the trained tasks' test rows)."""
    per_task: bool = False
    """Also print each task's paired difference."""
    by_category: bool = False
    """Also print the average per held-out task category, and over the asymmetric (retrieval, reranking) and the
    symmetric (classification, clustering, pair classification, STS) tasks."""
    seed: int = 0
    """The bootstrap's seed."""


@dataclass
class Comparison:
    """Setting A of run A minus setting B of run B, over the tasks both scored on the same items."""

    interval: Interval
    """The mean over ``tasks`` of each task's paired difference (points), with its 95 % interval."""
    tasks: list[str]
    """The tasks compared."""
    left_out: dict[str, str] = field(default_factory=dict)
    """Task -> why it was not compared (other items, not evaluated in one run)."""
    per_task: dict[str, Interval] = field(default_factory=dict)
    """Each compared task's own paired difference."""
    by_category: dict[str, Interval] = field(default_factory=dict)
    """Held-out: the average per task category, then ``asymmetric`` and ``symmetric``
    (:func:`training.recipe.targets.shape_scopes`)."""
    groups: dict[str, list[str]] = field(default_factory=dict)
    """The tasks of each :attr:`by_category` group."""


def load_per_item(run: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's ``results.json`` and ``per_item.json``.

    Raises:
        FileNotFoundError: either file is missing (a run of a version that did not write per-item results:
            re-run the recipe on its folder, which reuses its corpus and models and evaluates again).
    """
    folder = Path(run)
    results_path, items_path = folder / "results.json", folder / PER_ITEM_FILE
    for path in (results_path, items_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: is {folder} a finished recipe run of this version?")
    results = json.loads(results_path.read_text(encoding="utf-8"))
    return results, json.loads(items_path.read_text(encoding="utf-8"))


def compare(
    run_a: str | Path,
    setting_a: str,
    run_b: str | Path,
    setting_b: str,
    *,
    scope: Scope = "held_out",
    seed: int = 0,
) -> Comparison:
    """Setting ``setting_a`` of ``run_a`` minus ``setting_b`` of ``run_b``, paired item by item (module doc).

    Raises:
        FileNotFoundError: a run lacks results.json or per_item.json.
        ValueError: a setting one run did not evaluate, an unknown scope, or no task scored on the same items.
    """
    if scope not in ("held_out", "in_domain"):
        raise ValueError(f"scope must be 'held_out' or 'in_domain', got {scope!r}")
    results_a, items_a = load_per_item(run_a)
    results_b, items_b = load_per_item(run_b)
    for run, items, setting in ((run_a, items_a, setting_a), (run_b, items_b, setting_b)):
        if setting not in items["settings"]:
            raise ValueError(f"{run} did not evaluate {setting!r}; it has {sorted(items['settings'])}")
    a, b = items_a["settings"][setting_a], items_b["settings"][setting_b]
    key = f"{scope}_tasks"
    names_b = set(results_b[key])
    left_out: dict[str, str] = {n: f"not a {scope} task of {run_b}" for n in results_a[key] if n not in names_b}
    left_out |= {n: f"not a {scope} task of {run_a}" for n in results_b[key] if n not in results_a[key]}
    parts: dict[str, Resampled] = {}
    for name in (n for n in results_a[key] if n in names_b):
        fa, fb = items_a["fingerprints"].get(name), items_b["fingerprints"].get(name)
        if fa is None or fa != fb:
            left_out[name] = "scored on other items in the two runs"
        elif name not in a or name not in b:
            left_out[name] = "no per-item results in one run"
        else:
            reference = items_a["references"].get(name)
            parts[name] = task_part(
                np.asarray(a[name]), np.asarray(b[name]), None if reference is None else np.asarray(reference)
            )
    if not parts:
        raise ValueError(f"no {scope} task was scored on the same items in both runs: {left_out}")
    interval = average_difference(list(parts.values()), seed=seed)
    per_task = {name: average_difference([part], seed=seed) for name, part in parts.items()}
    categories = results_a.get("held_out_categories") or {  # runs made before it: the benchmark's own tasks
        n: t["category"] for n, t in results_a.get("held_out_benchmark", {}).get("tasks", {}).items()
    }
    groups: dict[str, list[str]] = {}
    for name in (n for n in parts if n in categories):
        groups.setdefault(categories[name], []).append(name)
    for shape, names in shape_scopes(list(parts), categories).items():  # held_out_asymmetric -> asymmetric
        if names:
            groups[shape.removeprefix("held_out_")] = names
    by_category = {g: average_difference([parts[n] for n in names], seed=seed) for g, names in groups.items()}
    return Comparison(interval, list(parts), left_out, per_task, by_category, groups)


def _line(interval: Interval) -> str:
    return f"{interval} ({interval.verdict})"


def report(cfg: CompareConfig, result: Comparison) -> str:
    """The comparison as markdown: the average, then the tasks left out, then (``per_task``) each task."""
    lines = [
        f"{cfg.scope.replace('_', '-')}, {cfg.run_a} {cfg.setting_a!r} - {cfg.run_b} {cfg.setting_b!r}, "
        f"{len(result.tasks)} tasks paired item by item: **{_line(result.interval)}**"
    ]
    lines += [f"- left out: {name} ({why})" for name, why in result.left_out.items()]
    if cfg.by_category and result.by_category:
        lines += ["", "| category | tasks | difference [95 %] |", "|---|---|---|"]
        lines += [f"| {g} | {len(result.groups[g])} | {_line(i)} |" for g, i in result.by_category.items()]
    if cfg.per_task:
        lines += ["", "| task | difference [95 %] |", "|---|---|"]
        lines += [f"| {name} | {_line(i)} |" for name, i in result.per_task.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m training.recipe.paired") -> int:
    """CLI entry point (``instructor paired``): 0 done, 2 bad input (a missing file, setting or shared task)."""
    parser = command_parser(prog, __doc__)
    add_config_flags(parser, CompareConfig, positional=("run_a", "setting_a", "run_b", "setting_b"))
    cfg = config_from_args(parser, CompareConfig, parser.parse_args(argv))
    try:
        result = compare(cfg.run_a, cfg.setting_a, cfg.run_b, cfg.setting_b, scope=cfg.scope, seed=cfg.seed)
    except (FileNotFoundError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    print(report(cfg, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
