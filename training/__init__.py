"""Distributed MEDI instruction finetuning with Ray Train: the trainer, as a library.

``python -m training.train --data medi.json --output out/`` (or ``instructor train``) runs it from the shell;
the same from Python::

    from training import TrainConfig, load_medi, run

    load_medi("medi.json")  # checks every row; MediError names the first bad one
    result = run(TrainConfig(data="medi.json", output="out/", num_workers=2, steps=100))
    print(result.output)    # the finetuned model, loadable by InstructorEncoder.load

The public names, imported on first use (so ``import training`` loads neither torch nor Ray):

- :class:`TrainConfig` (every field is a flag), :func:`run` (train or resume, then finalize) and its
  :class:`TrainResult`, :class:`DataError` (data the workers refused);
- the MEDI format: :func:`load_medi` (reader and validator), :func:`save_medi`, :class:`MediExample`,
  :class:`MediError`;
- the loss and batches: :func:`contrastive_loss`, :class:`TaskBatchSampler`.

>>> import training
>>> training.TrainConfig(data="medi.json", output="out/").batch_size
32

Our own experiment (corpus building, the recipe and its statistics) lives in :mod:`training.recipe`, which
the trainer never imports; opt-in regularisers in :mod:`training.regularizers`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.batching import TaskBatchSampler
    from training.config import TrainConfig
    from training.errors import DataError
    from training.loss import contrastive_loss
    from training.medi import MediError, MediExample, load_medi, save_medi
    from training.train import TrainResult, run

__all__ = [
    "DataError",
    "MediError",
    "MediExample",
    "TaskBatchSampler",
    "TrainConfig",
    "TrainResult",
    "contrastive_loss",
    "load_medi",
    "run",
    "save_medi",
]

_HOMES = {
    "DataError": "training.errors",
    "MediError": "training.medi",
    "MediExample": "training.medi",
    "TaskBatchSampler": "training.batching",
    "TrainConfig": "training.config",
    "TrainResult": "training.train",
    "contrastive_loss": "training.loss",
    "load_medi": "training.medi",
    "run": "training.train",
    "save_medi": "training.medi",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'training' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
