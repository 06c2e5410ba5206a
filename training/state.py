"""Training checkpoints: the model in the sentence-transformers/INSTRUCTOR layout plus resume state.

A checkpoint directory is a loadable model (``InstructorEncoder.load(dir)`` and
``SentenceTransformer(dir)`` both read it) with two extra files:

- ``trainer_state.json``: the next step to run, the per-step history (loss, lr, task, a checksum
  of the global batch's example indices) and the run's config;
- ``optimizer.pt``: the AdamW state (the learning rate is a pure function of the step).

Resuming reads both, so a restarted run continues at exactly the step after the checkpoint.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from instructor_plugins.model import InstructorEncoder

__all__ = ["OPTIMIZER_FILE", "STATE_FILE", "TrainState", "export_model", "read_optimizer_state", "save_checkpoint"]

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"


@dataclass
class TrainState:
    """What a resumed run needs besides weights and optimizer.

    Attributes:
        next_step: the first step not yet done (= steps completed).
        history: one record per completed step, in order.
        probe_loss: ``{step: loss}`` on a fixed probe set of training batches, at the start and at
            every checkpoint.
        config: the run's :class:`~training.config.TrainConfig` as a dict.
        tracker_run_id: the experiment tracker's run (MLflow), continued when the run resumes.
    """

    next_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    probe_loss: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    tracker_run_id: str | None = None

    def to_json(self) -> str:
        """Serialise to JSON."""
        return json.dumps(self.__dict__, indent=1)

    @classmethod
    def read(cls, directory: str | Path) -> TrainState:
        """Read ``trainer_state.json`` from a checkpoint directory."""
        return cls(**json.loads((Path(directory) / STATE_FILE).read_text(encoding="utf-8")))


def save_checkpoint(
    directory: str | Path,
    encoder: InstructorEncoder,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
) -> Path:
    """Write model (sentence-transformers layout), optimizer state and train state into ``directory``."""
    root = encoder.save(directory)
    torch.save(optimizer.state_dict(), root / OPTIMIZER_FILE)
    (root / STATE_FILE).write_text(state.to_json(), encoding="utf-8")
    return root


def read_optimizer_state(directory: str | Path) -> dict[str, Any] | None:
    """The optimizer ``state_dict`` saved by :func:`save_checkpoint`, or ``None``."""
    path = Path(directory) / OPTIMIZER_FILE
    if not path.is_file():
        return None
    saved: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return saved


def export_model(checkpoint_dir: str | Path, output: str | Path) -> Path:
    """Copy a checkpoint's model files (not the optimizer) to ``output``; returns ``output``."""
    src, dst = Path(checkpoint_dir), Path(output)
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.name == OPTIMIZER_FILE:
            continue
        if item.is_dir():
            shutil.copytree(item, dst / item.name, dirs_exist_ok=True)
        else:
            shutil.copy2(item, dst / item.name)
    return dst
