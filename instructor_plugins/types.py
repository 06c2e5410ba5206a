"""The core interface every encoder path shares: :data:`Instruction`, :func:`instruction_rows`, :class:`Encoder`.

- :data:`Instruction` is what an ``instruction`` argument may be: ``None`` or ``""`` (no
  instruction), one string for every text, or one instruction per text.
- :func:`instruction_rows` is the one place that turns ``(texts, instruction)`` into two equally
  long lists of strings, with the checks every caller wants (the encoder, the HTTP and handle
  clients, the test fake).
- :class:`Encoder` is the protocol that :class:`~instructor_plugins.model.InstructorEncoder`, the
  test fake :class:`~instructor_plugins.testing.HashEncoder`, the Serve service, the replica
  batching and the Ray Data batch job rely on. Code that takes an encoder types it as
  :class:`Encoder`, never ``Any``.

Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from instructor_plugins.defaults import InstructionDefaults

__all__ = ["Encoder", "Instruction", "instruction_rows"]

Instruction: TypeAlias = "str | Sequence[str | None] | None"
"""``None``/``""`` for none, one string for all texts, or one (possibly ``None``) per text."""


def instruction_rows(texts: str | Sequence[str], instruction: Instruction = None) -> tuple[list[str], list[str]]:
    """``(texts, instructions)`` as two lists of equal length; ``None`` instructions become ``""``.

    Args:
        texts: one string or a sequence of strings.
        instruction: see :data:`Instruction`.

    Raises:
        TypeError: a text or an instruction is not a string (names its index).
        ValueError: a per-text instruction list whose length differs from ``texts``.

    >>> instruction_rows(["a", "b"], "Represent the question: ")
    (['a', 'b'], ['Represent the question: ', 'Represent the question: '])
    >>> instruction_rows("a", [None])
    (['a'], [''])
    """
    rows = [texts] if isinstance(texts, str) else list(texts)
    for i, text in enumerate(rows):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
    if instruction is None or isinstance(instruction, str):
        return rows, [instruction or ""] * len(rows)
    instructions = list(instruction)
    if len(instructions) != len(rows):
        raise ValueError(
            f"got {len(instructions)} instructions for {len(rows)} texts; "
            "pass one string for all texts or one instruction per text"
        )
    for i, item in enumerate(instructions):
        if item is not None and not isinstance(item, str):
            raise TypeError(f"instruction[{i}] must be a str or None, got {type(item).__name__}")
    return rows, [item or "" for item in instructions]


@runtime_checkable
class Encoder(Protocol):
    """An instruction-conditioned text encoder.

    ``encode(texts, instruction)`` equals ``encode_token_ids(token_ids(texts, instructions),
    instructions)``: a server tokenizes once (to count tokens and to batch by them) and encodes
    those ids, and the two paths must agree.
    """

    @property
    def name(self) -> str:
        """What servers and reports call the model."""
        ...

    @property
    def dim(self) -> int:
        """Output vector dimension."""
        ...

    @property
    def max_seq_length(self) -> int:
        """Tokens per ``instruction + text`` after truncation."""
        ...

    defaults: InstructionDefaults
    """Whether the model was instruction-trained, and its query/document instructions (settable: a server
    started with ``--query-instruction`` overrides them)."""

    def encode(
        self,
        texts: str | Sequence[str],
        instruction: Instruction = None,
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Float32 ``(len(texts), dim)`` vectors in input order."""
        ...

    def token_ids(self, texts: Sequence[str], instructions: Sequence[str]) -> list[list[int]]:
        """Token ids of each ``instruction + text`` (truncated, with special tokens, unpadded)."""
        ...

    def encode_token_ids(
        self,
        ids: Sequence[Sequence[int]],
        instructions: Sequence[str],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Vectors of rows tokenized by :meth:`token_ids`; ``instructions`` give each row's mask."""
        ...
