"""Experiment tracking for training runs: MLflow, TensorBoard or none (``--tracker``), logged by rank 0 only.

Rank 0 logs the run's parameters once, then per step ``loss``, ``lr`` and ``texts_per_s`` (all workers
together), the probe loss at every checkpoint as the eval metric, and at the end the final model
(MLflow: as run artifacts under ``model/``; TensorBoard: its location as a text summary). The JSONL
step logs and the loss-curve PNG are written whatever the tracker.

Where: ``tracker_uri`` is the MLflow tracking URI (default ``MLFLOW_TRACKING_URI``, else a local file
store ``./mlruns``) or the TensorBoard log folder (default ``./tensorboard``); the run is named after the
Ray Train run. A restarted or resumed run continues the same MLflow run (its id is kept in the
checkpoint) and appends to the same TensorBoard folder.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol

__all__ = ["TRACKERS", "MlflowTracker", "NullTracker", "TensorBoardTracker", "Tracker", "make_tracker"]

TRACKERS = ("none", "mlflow", "tensorboard")
logger = logging.getLogger(__name__)


class Tracker(Protocol):
    """What the training loop logs to."""

    run_id: str | None

    def log_params(self, params: dict[str, Any]) -> None:
        """Log the run's settings once."""
        ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Log numeric metrics at ``step``."""
        ...

    def log_model(self, directory: str | os.PathLike[str], destination: str) -> None:
        """Log the final model folder (``destination``: where the run publishes it, ``--output``)."""
        ...

    def close(self) -> None:
        """Flush and end the run."""
        ...


class NullTracker:
    """``--tracker none``: logs nothing."""

    run_id: str | None = None

    def log_params(self, params: dict[str, Any]) -> None:
        """Do nothing."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Do nothing."""

    def log_model(self, directory: str | os.PathLike[str], destination: str) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


def _flat(params: dict[str, Any]) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in params.items()}


class MlflowTracker:
    """An MLflow run (local file store or tracking server); resumes ``run_id`` when given."""

    def __init__(self, uri: str | None, run_name: str, run_id: str | None = None) -> None:
        try:
            import mlflow
        except ImportError as exc:
            raise ImportError("--tracker mlflow needs MLflow: pip install 'instructor-plugins[tracking]'") from exc
        self._mlflow = mlflow
        uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()
        if uri.startswith("file:"):
            # MLflow 3 keeps the local file store working but asks for an explicit opt-in; a file store
            # needs no database packages, which is why it is our default (a server or sqlite:// URI also works).
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("instructor-plugins")
        self._run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name)
        self.run_id: str | None = self._run.info.run_id
        self.uri = uri

    def log_params(self, params: dict[str, Any]) -> None:
        """Log the settings (skipped on a resumed run: MLflow params are write-once)."""
        existing = self._mlflow.get_run(self._run.info.run_id).data.params
        fresh = {k: v for k, v in _flat(params).items() if k not in existing}
        if fresh:
            self._mlflow.log_params(fresh)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Log metrics at ``step``."""
        self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_model(self, directory: str | os.PathLike[str], destination: str) -> None:
        """Upload the model folder as the run's ``model/`` artifacts and tag where it is published."""
        self._mlflow.log_artifacts(str(directory), artifact_path="model")
        self._mlflow.set_tag("final_model", destination)

    def close(self) -> None:
        """End the run."""
        self._mlflow.end_run()


class TensorBoardTracker:
    """TensorBoard event files in ``logdir/<run_name>`` (via tensorboardX, or torch's writer)."""

    def __init__(self, logdir: str | None, run_name: str) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            try:
                from torch.utils.tensorboard import SummaryWriter  # type: ignore[no-redef]
            except ImportError as exc:
                raise ImportError(
                    "--tracker tensorboard needs tensorboardX: pip install 'instructor-plugins[tracking]'"
                ) from exc
        self.logdir = str(Path(logdir or "tensorboard").resolve() / run_name)
        self._writer = SummaryWriter(self.logdir)
        self.run_id: str | None = None

    def log_params(self, params: dict[str, Any]) -> None:
        """Log the settings as a text summary (a markdown table)."""
        table = "\n".join(f"| {k} | {v} |" for k, v in _flat(params).items())
        self._writer.add_text("params", "| param | value |\n|---|---|\n" + table, 0)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Log scalars at ``step``."""
        for key, value in metrics.items():
            self._writer.add_scalar(key, float(value), step)
        self._writer.flush()

    def log_model(self, directory: str | os.PathLike[str], destination: str) -> None:
        """Record where the final model is published (TensorBoard stores no artifacts)."""
        self._writer.add_text("final_model", destination, 0)

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()


def make_tracker(kind: str, uri: str | None, run_name: str, run_id: str | None = None) -> Tracker:
    """The tracker for ``--tracker kind`` (one of :data:`TRACKERS`)."""
    if kind == "mlflow":
        return MlflowTracker(uri, run_name, run_id)
    if kind == "tensorboard":
        return TensorBoardTracker(uri, run_name)
    if kind == "none":
        return NullTracker()
    raise ValueError(f"unknown tracker {kind!r}; valid: {list(TRACKERS)}")
