"""Dynamic-batching policy for the Serve replicas: bounded by rows *and* tokens.

A request becomes one :class:`EmbedJob` (its texts, one instruction per text, and its real token
count). ``@serve.batch`` collects jobs while the batch stays within :class:`BatchPolicy`: at most
``max_batch_rows`` texts and at most ``max_batch_tokens`` tokens. A single job bigger than either
limit still runs, alone. :func:`run_jobs` concatenates every job's rows into one
``encoder.encode`` call (instructions mixed per row in one forward pass) and splits the result
back per job.

``@serve.batch`` compares one number, ``batch_size_fn(items) <= max_batch_size``; two limits fit
in it exactly by scaling: with ``R = max_batch_rows`` and ``T = max_batch_tokens``,
``max(tokens * R, rows * T) <= R * T`` holds iff ``tokens <= T`` and ``rows <= R``
(see :meth:`BatchPolicy.cost` and :attr:`BatchPolicy.scaled_limit`).

Nothing here imports Ray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from instructor_plugins.types import Encoder

__all__ = ["BatchPolicy", "EmbedJob", "run_jobs"]


@dataclass(frozen=True)
class BatchPolicy:
    """How big one replica batch may grow and how long it waits to fill.

    Attributes:
        max_batch_rows: texts per batch (all requests together).
        max_batch_tokens: real tokens (instruction + text, after truncation) per batch.
        batch_wait_timeout_s: how long the first request of a batch waits for company.
        encode_batch_size: rows per forward pass inside one batch's ``encode`` call.
        sub_batch_rows: a request is tokenized and queued in pieces of at most this many rows...
        sub_batch_tokens: ...and at most this many tokens (a longer single row is a piece alone),
            one piece after the other, so small requests interleave with a big one. A request that
            fits in one piece is not split and shares its batch with other requests; a piece of a
            split request runs in a batch of its own. On 2 CPU cores a 4,096-token piece of the
            bundled model takes about half a second. Smaller pieces bound a small request's wait
            more tightly but cost bulk throughput (512 tokens / 64 rows served 150 texts/s where
            4,096 / 256 served 180-216, same run: see README, "Sub-batches").
    """

    max_batch_rows: int = 256
    max_batch_tokens: int = 16384
    batch_wait_timeout_s: float = 0.005
    encode_batch_size: int = 16
    sub_batch_rows: int = 256
    sub_batch_tokens: int = 4096

    def __post_init__(self) -> None:
        for name in ("max_batch_rows", "max_batch_tokens", "encode_batch_size", "sub_batch_rows", "sub_batch_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        wait = self.batch_wait_timeout_s
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= 60:
            raise ValueError(f"batch_wait_timeout_s must be a number in [0, 60], got {wait!r}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, base: BatchPolicy | None = None) -> BatchPolicy:
        """Overlay ``config`` (e.g. a Serve ``user_config``) on ``base``; unknown keys raise ``ValueError``."""
        base = base or cls()
        config = dict(config or {})
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - valid)
        if unknown:
            raise ValueError(f"unknown batch option(s) {unknown}; valid: {sorted(valid)}")
        values = {name: config.get(name, getattr(base, name)) for name in valid}
        return cls(**values)

    @property
    def scaled_limit(self) -> int:
        """The ``max_batch_size`` to give ``@serve.batch`` together with :meth:`cost`."""
        return self.max_batch_rows * self.max_batch_tokens

    def cost(self, jobs: Sequence[EmbedJob]) -> int:
        """Scaled size of a batch of jobs; ``<= scaled_limit`` iff both limits hold.

        Each job counts at most one full budget, so a single oversized job still forms a batch.
        A ``solo`` job (a piece of a split request) shares its batch with no other job, so a small
        request queued behind it runs in the next batch instead of riding along with the next piece.
        """
        if len(jobs) > 1 and any(job.solo for job in jobs):
            return self.scaled_limit + 1
        rows = sum(min(job.rows, self.max_batch_rows) for job in jobs)
        tokens = sum(min(job.tokens, self.max_batch_tokens) for job in jobs)
        return max(rows * self.max_batch_tokens, tokens * self.max_batch_rows)


def batch_cost(jobs: list[EmbedJob]) -> int:
    """``batch_size_fn`` for ``@serve.batch``: each job carries the policy it was queued under."""
    return jobs[0].policy.cost(jobs) if jobs else 0


@dataclass
class EmbedJob:
    """One request's rows, queued for a batch.

    Attributes:
        texts: the texts.
        instructions: one instruction per text (``""`` for none).
        tokens: real tokens of all rows (counted by the replica before queueing).
        normalize: L2-normalise the vectors.
        policy: the batch policy in force when the job was queued.
        token_ids: the rows' token ids when the replica already tokenized them to count tokens;
            the batch then encodes these instead of tokenizing the texts again.
        solo: run in a batch of its own (see :meth:`BatchPolicy.cost`).
    """

    texts: list[str]
    instructions: list[str]
    tokens: int
    normalize: bool = True
    policy: BatchPolicy = field(default_factory=BatchPolicy)
    token_ids: list[list[int]] | None = None
    solo: bool = False

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.instructions):
            raise ValueError(f"got {len(self.instructions)} instructions for {len(self.texts)} texts")

    @property
    def rows(self) -> int:
        """Number of texts."""
        return len(self.texts)


def run_jobs(encoder: Encoder, jobs: Sequence[EmbedJob], batch_size: int = 32) -> list[np.ndarray]:
    """Embed all jobs with one ``encode`` call per normalize setting; one array per job, in order.

    Rows of every job are concatenated with their own instructions, so a batch that mixes
    instructions still runs as one sorted, padded sequence of forward passes.
    """
    results: list[np.ndarray | None] = [None] * len(jobs)
    for normalize in (True, False):
        chosen = [i for i, job in enumerate(jobs) if job.normalize is normalize]
        if not chosen:
            continue
        instructions = [s for i in chosen for s in jobs[i].instructions]
        pre_tokenized = [jobs[i].token_ids for i in chosen]
        if all(ids is not None for ids in pre_tokenized):
            ids = [row for job_ids in pre_tokenized for row in job_ids or []]
            vectors = encoder.encode_token_ids(ids, instructions, batch_size=batch_size, normalize=normalize)
        else:
            texts = [t for i in chosen for t in jobs[i].texts]
            vectors = encoder.encode(texts, instructions, batch_size=batch_size, normalize=normalize)
        offset = 0
        for i in chosen:
            results[i] = vectors[offset : offset + jobs[i].rows]
            offset += jobs[i].rows
    return [r if r is not None else np.zeros((0, encoder.dim), dtype=np.float32) for r in results]
