"""Result tables and plots: one row per task (main score), a markdown table, a bar chart, ``summary.json``.

An evaluation folder written by :mod:`evals.run` holds::

    results/<model>/<revision>/experiments/<instructions>/<Task>.json   mteb's own result files
    summary.json                                                         run settings + one row per task
    table.md                                                             the markdown table
    scores.png                                                           the bar chart
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ScoreRow",
    "Summary",
    "bar_chart",
    "load_summary",
    "markdown_table",
    "rows_from_results",
    "write_report",
]

SUMMARY_FILE = "summary.json"
TABLE_FILE = "table.md"
PLOT_FILE = "scores.png"


@dataclass(frozen=True)
class ScoreRow:
    """The main score of one task (``score`` as mteb reports it, usually in [0, 1])."""

    task: str
    task_type: str
    metric: str
    score: float


@dataclass
class Summary:
    """What a run evaluated and how, plus its rows."""

    model: str
    instructions: str
    rows: list[ScoreRow]
    settings: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``model (instructions=...)``: the column header in comparisons."""
        return f"{self.model} (instructions={self.instructions})"


def rows_from_results(task_results: Iterable[Any], tasks: Iterable[Any]) -> list[ScoreRow]:
    """Rows from mteb ``TaskResult`` objects, in the order of ``tasks`` (mteb ``AbsTask`` objects)."""
    by_name = {r.task_name: r for r in task_results}
    rows = []
    for task in tasks:
        meta = task.metadata
        result = by_name.get(meta.name)
        if result is not None:
            rows.append(ScoreRow(meta.name, str(meta.type), str(meta.main_score), float(result.get_score())))
    return rows


def _mean(rows: Sequence[ScoreRow]) -> float:
    return sum(r.score for r in rows) / len(rows)


def markdown_table(rows: Sequence[ScoreRow], *, title: str | None = None) -> str:
    """A markdown table (scores x 100, two decimals) with an average row.

    >>> print(markdown_table([ScoreRow("T", "STS", "cosine_spearman", 0.5)]))
    | Task | Type | Metric | Score |
    |---|---|---|---:|
    | T | STS | cosine_spearman | 50.00 |
    | **Average** | | | **50.00** |
    """
    lines = [f"### {title}", ""] if title else []
    lines += ["| Task | Type | Metric | Score |", "|---|---|---|---:|"]
    lines += [f"| {r.task} | {r.task_type} | {r.metric} | {100 * r.score:.2f} |" for r in rows]
    if rows:
        lines.append(f"| **Average** | | | **{100 * _mean(rows):.2f}** |")
    return "\n".join(lines)


def bar_chart(rows: Sequence[ScoreRow], path: str | Path, *, title: str = "") -> Path:
    """A horizontal bar chart of the main scores (x 100), written as PNG with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(8, 0.5 * max(len(rows), 1) + 1.2), layout="constrained")
    ax = fig.subplots()
    labels = [f"{r.task}\n({r.metric})" for r in rows]
    values = [100 * r.score for r in rows]
    bars = ax.barh(labels, values, color="#4c72b0")
    ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 112)
    ax.set_xlabel("main score x 100")
    ax.tick_params(axis="y", labelsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=120)
    return path


def write_report(output: str | Path, summary: Summary) -> dict[str, Path]:
    """Write ``summary.json``, ``table.md`` and ``scores.png`` into ``output``; returns their paths."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    data = asdict(summary)
    (out / SUMMARY_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    table = markdown_table(summary.rows, title=summary.label)
    if summary.failures:
        table += "\n\nFailed: " + ", ".join(f"{k} ({v})" for k, v in summary.failures.items())
    (out / TABLE_FILE).write_text(table + "\n", encoding="utf-8")
    plot = bar_chart(summary.rows, out / PLOT_FILE, title=summary.label)
    return {"summary": out / SUMMARY_FILE, "table": out / TABLE_FILE, "plot": plot}


def _rows_from_mteb_files(folder: Path) -> list[ScoreRow]:
    from mteb.results import TaskResult

    rows = []
    for path in sorted(folder.rglob("*.json")):
        if path.name in ("model_meta.json", SUMMARY_FILE):
            continue
        result = TaskResult.from_disk(path)
        rows.append(ScoreRow(result.task_name, "-", "main_score", float(result.get_score())))
    return rows


def load_summary(folder: str | Path) -> Summary:
    """Read a run folder: its ``summary.json``, or else any mteb result JSON files below it.

    Raises:
        FileNotFoundError: no summary and no mteb result file in ``folder``.
    """
    path = Path(folder)
    summary_path = path / SUMMARY_FILE
    if summary_path.is_file():
        data = json.loads(summary_path.read_text(encoding="utf-8"))
        data["rows"] = [ScoreRow(**r) for r in data["rows"]]
        return Summary(**data)
    rows = _rows_from_mteb_files(path) if path.is_dir() else []
    if not rows:
        raise FileNotFoundError(
            f"{path} has no {SUMMARY_FILE} and no mteb result files; run `python -m evals.run` first"
        )
    return Summary(model=path.name, instructions="?", rows=rows)
