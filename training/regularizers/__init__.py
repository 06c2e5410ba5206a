"""Opt-in regularisers of the trainer: off by default, imported by the core only when switched on.

One today, the **similarity distillation** toward the frozen base model, a guard against forgetting
(:mod:`training.regularizers.distill`), optionally also on a stream of general text
(:mod:`training.regularizers.general_text`). Its settings are four flat fields of
:class:`~training.config.TrainConfig` (so they are flags of ``instructor train``, and a run's saved config
keeps its shape):

========================== ================ ============================================================
field / flag               default          meaning
========================== ================ ============================================================
``distill_weight``         ``0.0``          weight of the term on each batch's documents; ``0`` = off
``distill_texts``          ``None``         general texts (JSONL ``{"text": ...}`` or one per line, path or
                                            URI) that the term also covers, a few each step; needs a
                                            weight > 0
``distill_texts_per_step`` ``32``           general texts per step over all workers (split evenly)
``distill_anchor``         ``"instructed"`` the student embeds the distilled texts with the task's
                                            instruction; ``"plain"``: without it, as the teacher does,
                                            so only the no-instruction geometry is held to the base
========================== ================ ============================================================

:func:`check_config` holds their checks (``TrainConfig`` calls it when one is set); the worker builds a
:class:`~training.regularizers.distill.Distillation` only when ``distill_weight > 0``. The recipe
(:mod:`training.recipe`) switches it on; a plain ``instructor train`` run never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.config import TrainConfig

__all__ = ["FIELDS", "check_config"]

FIELDS = ("distill_weight", "distill_texts", "distill_texts_per_step", "distill_anchor")
"""The :class:`~training.config.TrainConfig` fields of the opt-in regularisers."""


def check_config(cfg: TrainConfig) -> None:
    """Check the regularisers' fields of ``cfg`` against each other and the batch.

    Raises:
        ValueError: a negative weight, too few triples or general texts per worker to rank neighbours,
            ``distill_texts`` or a ``"plain"`` anchor without a weight, an unknown anchor.
    """
    if cfg.distill_anchor not in ("instructed", "plain"):
        raise ValueError(f"distill_anchor must be 'instructed' or 'plain', got {cfg.distill_anchor!r}")
    if cfg.distill_anchor != "instructed" and not cfg.distill_weight > 0:
        raise ValueError(f"distill_anchor {cfg.distill_anchor!r} needs distill_weight > 0 (the term's weight)")
    if not cfg.distill_weight >= 0:
        raise ValueError(f"distill_weight must be >= 0 (0 = off), got {cfg.distill_weight}")
    if cfg.distill_weight > 0 and cfg.batch_size // cfg.num_workers < 2:
        raise ValueError(
            f"distill_weight > 0 needs at least 2 triples per worker (batch_size {cfg.batch_size} over "
            f"{cfg.num_workers} workers): a document needs neighbours to distil"
        )
    if cfg.distill_texts is not None:
        if cfg.distill_weight <= 0:
            raise ValueError("distill_texts needs distill_weight > 0 (the term's weight)")
        if cfg.distill_texts_per_step % cfg.num_workers or cfg.distill_texts_per_step // cfg.num_workers < 3:
            raise ValueError(
                f"distill_texts_per_step must be a multiple of num_workers {cfg.num_workers} with at least 3 "
                f"per worker (a text needs two neighbours to rank), got {cfg.distill_texts_per_step}"
            )
