"""The INSTRUCTOR paper's bidirectional in-batch contrastive loss, optionally over all workers.

For a batch of ``B`` triples ``(q_i, p_i, n_i)`` and cosine similarity ``s`` over a temperature
``t``::

    L_qp = mean_i CE( [s(q_i, p_1..p_B), s(q_i, n_1..n_B)] / t , target p_i )   # query -> pos
    L_pq = mean_i CE(  s(p_i, q_1..q_B) / t ,                   target q_i )   # pos -> query
    L    = L_qp + L_pq

The query competes against its positive, every other in-batch positive and every in-batch hard
negative; the positive competes against its query and the other queries. The two directions are
summed, as the official training code does.

Default temperature 0.01: the value of the official INSTRUCTOR training commands (they used 0.1
and 0.01). With cosine in [-1, 1], 0.1 bounds the logits to +-10, so a batch with close hard
negatives cannot be separated sharply and the loss floor stays high; 0.01 (+-100) can, and is the
usual choice for finetuning already-contrastive encoders with hard negatives.

``cross_device=True`` gathers positives, negatives and queries from every worker *with gradients*
(``torch.distributed.nn.functional.all_gather``): each worker's rows see ``W * B`` candidates. Each
worker's loss is the mean over its own rows; DDP's gradient averaging then gives exactly the
gradient of the loss over the global batch.

``groups`` (from :func:`training.false_negatives.group_ids`) masks in-batch false negatives: a
candidate with the same text or label as the row's target, other than the target, leaves both
softmaxes (see :mod:`training.false_negatives`). Without shared groups the loss is unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.false_negatives import mask_same_group

__all__ = ["DEFAULT_TEMPERATURE", "contrastive_loss", "gather_with_grad", "world_info"]

DEFAULT_TEMPERATURE = 0.01


def world_info() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group; ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from all workers along dim 0, keeping gradients to every slice.

    The backward pass sums each slice's gradient over workers and sends it back to its owner, so
    a worker's embeddings get the gradient from the other workers' losses too. Without a process
    group (or with one worker) the tensor is returned unchanged.
    """
    _, world = world_info()
    if world == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor), dim=0)


def contrastive_loss(
    query: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor | None = None,
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    bidirectional: bool = True,
    cross_device: bool = False,
    groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bidirectional InfoNCE with in-batch and hard negatives over cosine similarity.

    Args:
        query: ``(B, d)`` query embeddings (normalised or not; cosine is taken here).
        pos: ``(B, d)`` positives; row ``i`` is the positive of query ``i``.
        neg: ``(B, d)`` hard negatives, or ``None`` for in-batch negatives only.
        temperature: similarity divisor, > 0.
        bidirectional: add the positive -> query direction.
        cross_device: take candidates from all workers (needs an initialised process group with
            the same ``B`` on every worker; a no-op on one worker).
        groups: ``(3, B)`` int64 group ids of this worker's queries, positives and negatives, or
            ``None`` for no masking; gathered from all workers with the candidates.

    Returns:
        The scalar loss of this worker's rows (float32).

    Raises:
        ValueError: a non-positive temperature or mismatched shapes.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if query.shape != pos.shape or (neg is not None and neg.shape != pos.shape) or query.ndim != 2:
        shapes = [tuple(t.shape) for t in (query, pos, neg) if t is not None]
        raise ValueError(f"query, pos and neg must be (B, d) tensors of one shape, got {shapes}")
    q, p = F.normalize(query.float(), dim=-1), F.normalize(pos.float(), dim=-1)
    n = F.normalize(neg.float(), dim=-1) if neg is not None else None
    if groups is not None and groups.shape != (3, q.shape[0]):
        raise ValueError(f"groups must be (3, B) = (3, {q.shape[0]}), got {tuple(groups.shape)}")
    groups = groups.to(q.device) if groups is not None else None  # NCCL gathers device tensors only
    offset = 0
    all_q, all_p, all_n, all_groups = q, p, n, groups
    if cross_device:
        rank, world = world_info()
        if world > 1:
            offset = rank * q.shape[0]
            all_p = gather_with_grad(p)
            all_n = gather_with_grad(n) if n is not None else None
            all_q = gather_with_grad(q) if bidirectional else q
            all_groups = _gather(groups) if groups is not None else None
    candidates = all_p if all_n is None else torch.cat([all_p, all_n], dim=0)
    labels = torch.arange(q.shape[0], device=q.device) + offset
    logits = q @ candidates.T / temperature
    if groups is not None and all_groups is not None:
        candidate_groups = all_groups[1] if all_n is None else torch.cat([all_groups[1], all_groups[2]])
        logits = logits.masked_fill(mask_same_group(groups[1], candidate_groups, labels), float("-inf"))
    loss = F.cross_entropy(logits, labels)
    if bidirectional:
        back = p @ all_q.T / temperature
        if groups is not None and all_groups is not None:
            back = back.masked_fill(mask_same_group(groups[0], all_groups[0], labels), float("-inf"))
        loss = loss + F.cross_entropy(back, labels)
    return loss


def _gather(tensor: torch.Tensor) -> torch.Tensor:
    """All workers' ``(3, B)`` group ids side by side, ``(3, W * B)`` (no gradients: they are ids)."""
    import torch.distributed as dist

    _, world = world_info()
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=1)
