"""Loss curve PNG from a run's step history (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_loss_curve"]


def plot_loss_curve(
    history: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    probe_loss: Mapping[str, float] | None = None,
    title: str = "INSTRUCTOR finetuning",
) -> Path:
    """Plot per-step training loss (and the probe loss at checkpoints, if given) to ``path``.

    Args:
        history: records with ``step`` and ``loss`` (and ``task``: points are coloured by task).
        path: output PNG path.
        probe_loss: ``{step: loss}`` on the fixed probe batches.
        title: the figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        raise ValueError("history is empty: nothing to plot")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    steps = [int(r["step"]) + 1 for r in history]
    ax.plot(steps, [float(r["loss"]) for r in history], color="0.75", lw=1, label="train loss (per step)")
    tasks = sorted({str(r.get("task", "")) for r in history})
    for task in tasks:
        pts = [(int(r["step"]) + 1, float(r["loss"])) for r in history if str(r.get("task", "")) == task]
        ax.scatter([s for s, _ in pts], [v for _, v in pts], s=10, label=f"task {task}")
    if probe_loss:
        pts = sorted((int(k), float(v)) for k, v in probe_loss.items())
        ax.plot([s for s, _ in pts], [v for _, v in pts], "k-o", lw=2, ms=4, label="probe loss (fixed batches)")
    ax.set_xlabel("step")
    ax.set_ylabel("contrastive loss")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
