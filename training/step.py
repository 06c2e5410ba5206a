"""One optimisation step's forward/backward: plain, or GradCache (chunked, cached embedding gradients).

A step embeds the ``3B`` rows of a batch of triples (queries, then positives, then negatives) in one
forward pass, so DDP sees exactly one forward per backward.

GradCache (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited
Setup") decouples the batch of the loss from the batch of the encoder:

1. embed the rows chunk by chunk without building a graph, recording each chunk's RNG state;
2. compute the loss on those embeddings (as leaves) and backpropagate to them only;
3. re-embed each chunk with the recorded RNG state (same dropout masks) and backpropagate the
   cached embedding gradient through the encoder.

Peak activation memory is one chunk's, whatever the batch; loss and gradients equal the plain
step's (the unit tests check both). Under DDP every chunk but the last runs in ``no_sync`` so
gradients are all-reduced once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from instructor_plugins.model import Features, InstructorEncoder
from training.medi import MediExample

__all__ = ["LossFn", "grad_cache_step", "plain_step", "slice_features", "split_triples", "triple_features"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def triple_features(encoder: InstructorEncoder, examples: Sequence[MediExample]) -> Features:
    """Tokenize a batch as one block of ``3B`` rows: all queries, then positives, then negatives."""
    rows = [e.query for e in examples] + [e.pos for e in examples] + [e.neg for e in examples]
    return encoder.tokenize([text for _, text in rows], [instruction for instruction, _ in rows])


def split_triples(embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split ``(3B, d)`` embeddings into query, positive and negative ``(B, d)`` blocks."""
    if embeddings.shape[0] % 3:
        raise ValueError(f"expected 3B rows (query, pos, neg), got {embeddings.shape[0]}")
    q, p, n = embeddings.chunk(3, dim=0)
    return q, p, n


def slice_features(features: Features, start: int, stop: int) -> Features:
    """Rows ``[start, stop)`` of a tokenized batch."""
    return Features(
        features.input_ids[start:stop],
        features.attention_mask[start:stop],
        features.instruction_lengths[start:stop],
    )


def plain_step(
    model: nn.Module, features: Features, loss_fn: LossFn, autocast: Callable[[], Any] = contextlib.nullcontext
) -> torch.Tensor:
    """Forward all rows, compute the loss, backpropagate; returns the detached loss."""
    with autocast():
        embeddings = model(features)
    loss = loss_fn(*split_triples(embeddings.float()))
    loss.backward()
    return loss.detach()


class _RngState:
    """CPU and CUDA RNG states, to replay a chunk's dropout masks in GradCache's second pass."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


def grad_cache_step(
    model: nn.Module,
    features: Features,
    loss_fn: LossFn,
    chunk_size: int,
    autocast: Callable[[], Any] = contextlib.nullcontext,
) -> torch.Tensor:
    """GradCache forward/backward in chunks of ``chunk_size`` rows; returns the detached loss.

    Gives the same loss and parameter gradients as :func:`plain_step` (dropout included, thanks to
    RNG replay), with activation memory bounded by one chunk.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    n_rows = features.input_ids.shape[0]
    bounds = [(s, min(s + chunk_size, n_rows)) for s in range(0, n_rows, chunk_size)]
    device = features.input_ids.device
    states: list[_RngState] = []
    chunks: list[torch.Tensor] = []
    with torch.no_grad():
        for start, stop in bounds:
            states.append(_RngState(device))
            with autocast():
                chunks.append(model(slice_features(features, start, stop)).float())
    cached = torch.cat(chunks).requires_grad_(True)
    loss = loss_fn(*split_triples(cached))
    loss.backward()
    grads = cached.grad
    assert grads is not None
    no_sync: Callable[[], Any] = getattr(model, "no_sync", contextlib.nullcontext)
    for i, ((start, stop), state) in enumerate(zip(bounds, states, strict=True)):
        sync = contextlib.nullcontext() if i == len(bounds) - 1 else no_sync()
        with sync, state.replay():
            with autocast():
                embeddings = model(slice_features(features, start, stop)).float()
            embeddings.backward(grads[start:stop])
    return loss.detach()
