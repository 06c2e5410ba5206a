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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
    offset = 0
    all_q, all_p, all_n = q, p, n
    if cross_device:
        rank, world = world_info()
        if world > 1:
            offset = rank * q.shape[0]
            all_p = gather_with_grad(p)
            all_n = gather_with_grad(n) if n is not None else None
            all_q = gather_with_grad(q) if bidirectional else q
    candidates = all_p if all_n is None else torch.cat([all_p, all_n], dim=0)
    labels = torch.arange(q.shape[0], device=q.device) + offset
    loss = F.cross_entropy(q @ candidates.T / temperature, labels)
    if bidirectional:
        loss = loss + F.cross_entropy(p @ all_q.T / temperature, labels)
    return loss
