"""Similarity distillation: keep the base model's geometry while finetuning (a guard against forgetting).

A narrow finetune of an encoder trained on ~1B diverse pairs erodes what it knew elsewhere. This
term keeps, for each training batch, the *neighbourhoods* of its documents (the positives and hard
negatives) as the frozen base model sees them: for every document ``i`` the distribution over the
other documents ``j`` given by a softmax of cosine similarities at temperature ``t``::

    P_base(j | i)    = softmax_j( cos(base(x_i),    base(x_j))    / t ),  j != i
    P_student(j | i) = softmax_j( cos(student(x_i), student(x_j)) / t ),  j != i
    L_distill        = mean_i KL( P_base(. | i) || P_student(. | i) )

The teacher embeds the plain texts (no instruction): the base model's general geometry. The
student embeds them as trained (with the task's instruction, or blank in the no-instruction
ablation). Only relative similarities are matched, so the student may rotate or move its space as
the task needs, but not reorder a document's nearest neighbours without paying for it. With the
contrastive loss's temperature both terms speak in the same units (logits of cosine / ``t``).

With several workers each computes the term over its own rows (no all-gather); DDP averages.

**General text.** The batch's documents come from the training domains. A run can also keep the
base geometry on general prose (:mod:`training.regularizers.general_text`): each step, :func:`general_step`
embeds a few such paragraphs with the step's document instruction (blank in the ablation) and adds
the same term on them, at the same weight. It runs its own forward and backward before the main
step, inside DDP's ``no_sync``, so gradients are still all-reduced once per step.

**The anchor** (``distill_anchor``). By default the student side is the texts as trained, with their
instruction, so the term also holds the *instructed* geometry to the base's plain one. With
``"plain"`` the student embeds the texts without instruction, as the teacher does: the term anchors the
model's no-instruction behaviour only, and what an instruction changes is left to the contrastive loss.
The batch's documents then take a forward of their own (about a third more compute a step).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from instructor_plugins.model import Features, InstructorEncoder
from training.medi import MediExample
from training.step import LossFn

if TYPE_CHECKING:
    from training.config import TrainConfig

__all__ = [
    "DistilledLoss",
    "Distillation",
    "document_texts",
    "general_step",
    "load_teacher",
    "similarity_distillation",
    "teacher_embeddings",
]


def document_texts(examples: Sequence[MediExample]) -> list[str]:
    """The batch's document texts in the order the step's embeddings hold them: positives, then negatives."""
    return [e.pos[1] for e in examples] + [e.neg[1] for e in examples]


@torch.no_grad()
def teacher_embeddings(teacher: InstructorEncoder, texts: Sequence[str]) -> torch.Tensor:
    """The frozen base model's float32 ``(N, d)`` embeddings of ``texts`` without instructions (eval mode)."""
    module = teacher.module
    was_training = module.training
    module.eval()
    try:
        features = teacher.tokenize(list(texts), [""] * len(texts)).to(teacher.device)
        return module(features).float()
    finally:
        module.train(was_training)


def similarity_distillation(student: torch.Tensor, teacher: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """Mean over rows of ``KL(P_teacher || P_student)`` of the in-batch neighbour distributions (module doc).

    Args:
        student: ``(N, d)`` embeddings being trained (gradients flow into them).
        teacher: ``(N, d)`` the base model's embeddings of the same texts (treated as constants).
        temperature: softmax temperature over cosine similarities, > 0.

    Returns:
        A float32 scalar, 0 when the two geometries agree on every row's neighbour distribution.

    Raises:
        ValueError: mismatched shapes, fewer than 3 rows (a row needs two neighbours to rank) or a
            non-positive temperature.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student.shape != teacher.shape or student.ndim != 2:
        raise ValueError(
            f"student and teacher must be (N, d) of one shape, got {tuple(student.shape)}, {tuple(teacher.shape)}"
        )
    if student.shape[0] < 3:
        raise ValueError(f"similarity distillation needs at least 3 rows, got {student.shape[0]}")
    s = F.normalize(student.float(), dim=-1)
    t = F.normalize(teacher.detach().float(), dim=-1)
    eye = torch.eye(s.shape[0], dtype=torch.bool, device=s.device)
    # The diagonal (a text with itself) is no neighbour: dropped from both distributions.
    s_logits = (s @ s.T / temperature).masked_fill(eye, float("-inf"))
    t_logits = (t @ t.T / temperature).masked_fill(eye, float("-inf"))
    log_p_student = F.log_softmax(s_logits, dim=-1).masked_fill(eye, 0.0)
    log_p_teacher = F.log_softmax(t_logits, dim=-1).masked_fill(eye, 0.0)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)
    return kl.mean()


class DistilledLoss:
    """``loss_fn(q, p, n) + weight * similarity_distillation([p; n], targets)``: one step's loss.

    A step function (:mod:`training.step`) calls it once on the step's embeddings; the two parts of
    the last call are kept in :attr:`last_parts` for the step log.
    """

    def __init__(
        self,
        loss_fn: LossFn,
        targets: torch.Tensor,
        *,
        weight: float,
        temperature: float,
    ) -> None:
        if not weight >= 0:
            raise ValueError(f"distillation weight must be >= 0, got {weight}")
        self.loss_fn, self.targets, self.weight, self.temperature = loss_fn, targets, weight, temperature
        self.last_parts: dict[str, float] = {}

    def __call__(self, query: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """The step's loss from its ``(B, d)`` query, positive and negative embeddings."""
        contrastive = self.loss_fn(query, pos, neg)
        distill = similarity_distillation(torch.cat([pos, neg]), self.targets, temperature=self.temperature)
        self.last_parts = {"contrastive": float(contrastive.detach()), "distill": float(distill.detach())}
        return contrastive + self.weight * distill


def general_step(
    model: nn.Module,
    features: Features,
    targets: torch.Tensor,
    *,
    weight: float,
    temperature: float,
    autocast: Callable[[], Any] = contextlib.nullcontext,
) -> torch.Tensor:
    """Distil on texts forwarded apart from the step's batch: forward, ``weight * similarity_distillation``, backward.

    Gradients add to those already in the parameters; under DDP the backward runs in ``no_sync``,
    so the step's main backward all-reduces both at once. Returns the detached, unweighted term.
    """
    no_sync: Callable[[], Any] = getattr(model, "no_sync", contextlib.nullcontext)
    with no_sync():
        with autocast():
            embeddings = model(features)
        distill = similarity_distillation(embeddings.float(), targets, temperature=temperature)
        (weight * distill).backward()
    return distill.detach()


def load_teacher(cfg: TrainConfig, device: torch.device, max_seq_length: int) -> InstructorEncoder:
    """The frozen base model (``cfg.model``, also on a resumed run) for the distillation targets."""
    teacher = InstructorEncoder.load(cfg.model, device=device, dtype=torch.float32)
    teacher.without_instruction_pooling()  # the same pooling as the student it guides
    teacher.max_seq_length = max_seq_length
    teacher.module.max_buckets = cfg.length_buckets
    teacher.module.eval().requires_grad_(False)
    return teacher


class Distillation:
    """One worker's distillation (``TrainConfig.distill_weight > 0``): teacher, general texts, each step's terms.

    The worker builds one only when the term is switched on; without it the step is the plain contrastive loss.
    Each step it calls :meth:`side_terms` (the terms that need a forward of their own, backpropagated at once),
    then :meth:`batch_loss` (the step's loss), then :meth:`record`.

    ``cfg.distill_anchor`` says what the student side is. ``"instructed"``: the texts embedded with the
    step's task instruction, the batch's documents taken from the step's own forward. ``"plain"``: the
    texts embedded without instruction, exactly as the teacher embeds them, so the term holds only the
    model's no-instruction geometry to the base and leaves the instructions free to move it; the batch's
    documents then need a forward of their own (:meth:`side_terms`). In the no-instruction ablation both
    are the same inputs, and the ablation runs the ``"instructed"`` way (the same run whatever the anchor).

    Args:
        cfg: the run's config (``distill_weight``, ``distill_texts_per_step``, ``distill_anchor``,
            ``temperature``, ``seed``, ``no_instructions``).
        teacher: the frozen base model (:func:`load_teacher`).
        general: the general texts (:func:`training.regularizers.general_text.read_texts`); empty = the batch only.
    """

    def __init__(self, cfg: TrainConfig, teacher: InstructorEncoder, general: Sequence[str]) -> None:
        self.cfg, self.teacher, self.general = cfg, teacher, list(general)
        self.plain = cfg.distill_anchor == "plain" and not cfg.no_instructions
        self.last_loss: DistilledLoss | None = None
        self.last_parts: dict[str, float] = {}

    def _term(
        self,
        model: nn.Module,
        encoder: InstructorEncoder,
        texts: list[str],
        instruction: str,
        autocast: Callable[[], Any],
    ) -> float:
        features = encoder.tokenize(texts, [instruction] * len(texts)).to(encoder.device)
        targets = teacher_embeddings(self.teacher, texts)
        term = general_step(
            model,
            features,
            targets,
            weight=self.cfg.distill_weight,
            temperature=self.cfg.temperature,
            autocast=autocast,
        )
        return float(term)

    def side_terms(
        self,
        model: nn.Module,
        encoder: InstructorEncoder,
        batch: Sequence[MediExample],
        step: int,
        rank: int,
        world: int,
        autocast: Callable[[], Any],
    ) -> float:
        """Run the terms that take a forward of their own; their weighted sum, for the step's loss.

        The step's general texts (embedded with the batch's document instruction, or none with the ``"plain"``
        anchor) and, with the ``"plain"`` anchor, the batch's documents without instruction; the gradients are
        added to the parameters.
        """
        self.last_parts = {}
        total = 0.0
        instruction = "" if self.plain else batch[0].pos[0]  # one task per batch: its document side
        if self.general:
            from training.regularizers.general_text import step_texts

            cfg = self.cfg
            per_worker = cfg.distill_texts_per_step // world
            texts = step_texts(self.general, step=step, rank=rank, per_worker=per_worker, world=world, seed=cfg.seed)
            total = self.last_parts["general_distill"] = self._term(model, encoder, texts, instruction, autocast)
        if self.plain:
            plain = self._term(model, encoder, document_texts(batch), "", autocast)
            self.last_parts["distill"] = plain
            total += plain
        return self.cfg.distill_weight * total

    def batch_loss(self, loss_fn: LossFn, batch: Sequence[MediExample]) -> LossFn:
        """The step's loss: ``loss_fn`` plus the distillation term on the batch's documents.

        With the ``"plain"`` anchor ``loss_fn`` itself: :meth:`side_terms` ran the batch's term.
        """
        if self.plain:
            self.last_loss = None
            return loss_fn
        targets = teacher_embeddings(self.teacher, document_texts(batch))
        self.last_loss = DistilledLoss(
            loss_fn, targets, weight=self.cfg.distill_weight, temperature=self.cfg.temperature
        )
        return self.last_loss

    def record(self) -> dict[str, float]:
        """The step log's extra fields: this worker's parts of the last step's loss."""
        parts = dict(self.last_loss.last_parts) if self.last_loss is not None else {}
        parts.update(self.last_parts)
        return {f"{k}_loss": v for k, v in parts.items()}
