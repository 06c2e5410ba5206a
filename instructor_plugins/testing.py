"""A deterministic stand-in encoder for plumbing tests (servers, plugins, batch jobs).

:class:`HashEncoder` implements the :class:`~instructor_plugins.types.Encoder` protocol without
weights: its "tokenizer" maps each whitespace-separated word of ``instruction + text`` to a hashed
id (plus a trailing end id), truncated to ``max_seq_length``, and each vector is a unit vector
seeded by a hash of ``(instruction, token ids)``. The same pair always gives the same vector and a
different instruction gives a different one. It computes nothing meaningful; numerics are tested
with the real model.

For the Serve app, pass ``encoder_factory="instructor_plugins.testing:hash_encoder"``.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence

import numpy as np

from instructor_plugins.defaults import InstructionDefaults
from instructor_plugins.types import Instruction, instruction_rows

__all__ = ["HashEncoder", "hash_encoder"]

_END_ID = 1
_VOCAB = 30_000


class HashEncoder:
    """Hash-seeded fake :class:`~instructor_plugins.types.Encoder`; records every call in :attr:`calls`."""

    def __init__(self, dim: int = 16, max_seq_length: int = 512, defaults: InstructionDefaults | None = None) -> None:
        """A fake with output dimension ``dim`` (not instruction-trained unless ``defaults`` says so)."""
        self.dim = dim
        self.max_seq_length = max_seq_length
        self.name = f"hash-{dim}"
        self.defaults = defaults or InstructionDefaults(instruction_trained=False)
        self.calls: list[tuple[list[str], list[str]]] = []

    def token_ids(self, texts: Sequence[str], instructions: Sequence[str]) -> list[list[int]]:
        """One hashed id per word of ``instruction + text``, then an end id; truncated like a real tokenizer."""
        out = []
        for instruction, text in zip(instructions, texts, strict=True):
            words = f"{instruction}{text}".split()[: self.max_seq_length - 1]
            out.append([2 + zlib.crc32(w.encode()) % _VOCAB for w in words] + [_END_ID])
        return out

    def vector_of_ids(self, ids: Sequence[int], instruction: str = "") -> np.ndarray:
        """The vector of one tokenized row."""
        digest = hashlib.sha256(f"{instruction}\x00{list(ids)}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        v = rng.standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def vector(self, text: str, instruction: str = "") -> np.ndarray:
        """The vector for one (instruction, text) pair."""
        return self.vector_of_ids(self.token_ids([text], [instruction])[0], instruction)

    def encode(
        self,
        texts: str | Sequence[str],
        instruction: Instruction = None,
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Same contract and validation as :meth:`InstructorEncoder.encode`."""
        rows, instructions = instruction_rows(texts, instruction)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.calls.append((rows, instructions))
        return self.encode_token_ids(
            self.token_ids(rows, instructions), instructions, batch_size=batch_size, normalize=normalize
        )

    def encode_token_ids(
        self,
        ids: Sequence[Sequence[int]],
        instructions: Sequence[str],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Vectors of rows from :meth:`token_ids` (always unit length: ``normalize`` changes nothing)."""
        del normalize, show_progress
        if len(ids) != len(instructions):
            raise ValueError(f"got {len(instructions)} instructions for {len(ids)} token rows")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.vector_of_ids(row, i) for row, i in zip(ids, instructions, strict=True)])


def hash_encoder(model: str | None = None, *, device: str | None = None, dtype: str | None = None) -> HashEncoder:
    """Encoder factory for the Serve app (``encoder_factory="instructor_plugins.testing:hash_encoder"``).

    ``model`` may be ``"hash:DIM"`` to choose the dimension; device and dtype are ignored.
    """
    del device, dtype
    dim = int(model.partition(":")[2]) if model and model.startswith("hash:") else 16
    return HashEncoder(dim=dim)
