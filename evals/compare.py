"""Compare evaluation runs side by side: ``instructor compare DIR_A DIR_B [DIR_C ...]``.

Prints a markdown table with one column per run (main score x 100) and, for every run after the
first, its difference to the first (the baseline). Tasks missing from a run show ``-``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evals.report import ScoreRow, Summary, load_summary
from instructor_plugins.flags import add_config_flags, command_parser, config_from_args

__all__ = ["CompareConfig", "compare_table", "comparison", "main"]


def _fmt(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def compare_table(runs: Sequence[tuple[str, Sequence[ScoreRow]]]) -> str:
    """Markdown table of the runs' scores with deltas against the first run.

    Args:
        runs: ``(column label, rows)`` per run; the first run is the baseline.

    >>> a = [ScoreRow("T", "STS", "cosine_spearman", 0.50)]
    >>> b = [ScoreRow("T", "STS", "cosine_spearman", 0.55)]
    >>> print(compare_table([("A", a), ("B", b)]))
    | Task | Type | Metric | A | B | Δ B |
    |---|---|---|---:|---:|---:|
    | T | STS | cosine_spearman | 50.00 | 55.00 | +5.00 |
    | **Average** | | | 50.00 | 55.00 | +5.00 |
    """
    if len(runs) < 2:
        raise ValueError(f"need at least two runs to compare, got {len(runs)}")
    tasks: dict[str, ScoreRow] = {}
    for _, rows in runs:
        for row in rows:
            tasks.setdefault(row.task, row)
    scores = [{r.task: r.score for r in rows} for _, rows in runs]
    labels = [label for label, _ in runs]
    header = ["Task", "Type", "Metric", *labels, *(f"Δ {label}" for label in labels[1:])]
    lines = ["| " + " | ".join(header) + " |", "|---|---|---|" + "---:|" * (len(header) - 3)]
    for name, first in tasks.items():
        values = [s.get(name) for s in scores]
        base = values[0]
        deltas = [None if v is None or base is None else v - base for v in values[1:]]
        cells = [
            name,
            first.task_type,
            first.metric,
            *(_fmt(v) for v in values),
            *(_fmt(d, signed=True) for d in deltas),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    common = [name for name in tasks if all(name in s for s in scores)]
    if common:
        means = [sum(s[n] for n in common) / len(common) for s in scores]
        cells = [*(_fmt(m) for m in means), *(_fmt(m - means[0], signed=True) for m in means[1:])]
        lines.append("| **Average** | | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _labels(summaries: Sequence[Summary], folders: Sequence[Path]) -> list[str]:
    same_model = len({s.model for s in summaries}) == 1
    labels = [f"instructions={s.instructions}" if same_model else s.label for s in summaries]
    if len(set(labels)) < len(labels):  # same model and mode twice: tell them apart by folder
        labels = [f"{label} [{folder.name}]" for label, folder in zip(labels, folders, strict=True)]
    return labels


@dataclass
class CompareConfig:
    """Arguments of ``instructor compare``."""

    runs: list[Path]
    """Output folders of instructor eval (the first is the baseline); at least two."""

    def __post_init__(self) -> None:
        if len(self.runs) < 2:
            raise ValueError(f"give at least two run folders, got {len(self.runs)}")


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m evals.compare") -> int:
    """CLI entry point (``instructor compare``): print the comparison; 2 for a missing run folder."""
    parser = command_parser(prog, __doc__)
    add_config_flags(parser, CompareConfig, positional=["runs"])
    config = config_from_args(parser, CompareConfig, parser.parse_args(argv))
    try:
        summaries = [load_summary(folder) for folder in config.runs]
    except FileNotFoundError as exc:
        parser.error(str(exc))
    print(comparison(summaries, config.runs))
    return 0


def comparison(summaries: Sequence[Summary], folders: Sequence[Path]) -> str:
    """The markdown comparison of loaded runs (with a "Model:" line when they share one model)."""
    table = compare_table([(label, s.rows) for label, s in zip(_labels(summaries, folders), summaries, strict=True)])
    if len({s.model for s in summaries}) == 1:
        table = f"Model: {summaries[0].model}\n\n{table}"
    return table


if __name__ == "__main__":
    sys.exit(main())
