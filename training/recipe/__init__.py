"""Our experiment, apart from the trainer: corpus building and the recipe with its statistics.

``python -m training.recipe --output DIR`` (also ``instructor recipe``, ``make finetune``) builds the
multi-task corpus, finetunes with the trainer (:mod:`training.train`), runs the ablation and writes the
before/after report. The trainer never imports this package; this package imports the trainer.

- :mod:`training.recipe.pipeline`: the one command (:class:`RecipeConfig`, :func:`run`, ``main``);
  its public names are re-exported here (imported on first use).
- :mod:`training.recipe.corpus` (``instructor corpus``) with :mod:`training.recipe.sources` and
  :mod:`training.recipe.instruction_variants`: the offline multi-task corpus.
- :mod:`training.recipe.evaluation`: WiSE-FT alpha on dev, then base / finetuned / ablation on test, the report;
  with :mod:`training.recipe.quality` (nDCG@10), :mod:`training.recipe.wise` (weight interpolation),
  :mod:`training.recipe.tasks` (the evaluation tasks).
- :mod:`training.recipe.bootstrap`, :mod:`training.recipe.targets`: paired bootstrap intervals and the targets.
- :mod:`training.recipe.seeds` (``instructor seeds``): several seeds' runs lined up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.recipe.pipeline import (
        HELDOUT_EVAL_TASKS,
        CorpusError,
        RecipeConfig,
        check_cluster,
        check_corpus,
        drop_resume_checkpoints,
        main,
        parse_args,
        run,
    )

__all__ = [
    "HELDOUT_EVAL_TASKS",
    "CorpusError",
    "RecipeConfig",
    "check_cluster",
    "check_corpus",
    "drop_resume_checkpoints",
    "main",
    "parse_args",
    "run",
]


def __getattr__(name: str) -> Any:
    """The pipeline's public names, imported on first use (so ``python -m training.recipe.corpus`` runs clean)."""
    if name not in __all__:
        raise AttributeError(f"module 'training.recipe' has no attribute {name!r}")
    value = getattr(importlib.import_module("training.recipe.pipeline"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
