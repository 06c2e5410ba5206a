"""A deterministic stand-in encoder for plumbing tests (servers, plugins, batch jobs).

:class:`HashEncoder` has the :class:`~instructor_plugins.model.InstructorEncoder` ``encode``
signature and returns unit vectors seeded by a hash of ``(instruction, text)``: the same pair
always gives the same vector and a different instruction gives a different one. It computes
nothing meaningful; numerics are tested with the real model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from instructor_plugins.model import InstructorEncoder


class HashEncoder:
    """Hash-seeded fake encoder; ``dim`` and ``max_seq_length`` as a real one has."""

    def __init__(self, dim: int = 16, max_seq_length: int = 512) -> None:
        """A fake with output dimension ``dim``."""
        self.dim = dim
        self.max_seq_length = max_seq_length
        self.name = f"hash-{dim}"
        self.calls: list[tuple[list[str], list[str]]] = []

    def vector(self, text: str, instruction: str = "") -> np.ndarray:
        """The vector for one (instruction, text) pair."""
        digest = hashlib.sha256(f"{instruction}\x00{text}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        v = rng.standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def encode(
        self,
        texts: str | Sequence[str],
        instruction: str | Sequence[str] | None = None,
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Same contract and validation as :meth:`InstructorEncoder.encode`."""
        del normalize, show_progress
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        instructions = InstructorEncoder._instructions_for(texts, instruction)
        self.calls.append((texts, instructions))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.vector(t, i) for t, i in zip(texts, instructions, strict=True)])
