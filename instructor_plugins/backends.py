"""Where embeddings are computed: the seam between the plugin classes and the encoder.

The LangChain and LlamaIndex classes talk to one small protocol, :class:`EmbeddingBackend`.
:class:`LocalBackend` runs the encoder in this process (one shared encoder per model, device and
dtype); the Ray Serve issue adds ``ServeBackend`` (HTTP, or a Ray deployment handle) behind the
same protocol, selected by :func:`make_backend` when an ``endpoint`` is given.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["EmbeddingBackend", "LocalBackend", "make_backend", "shared_encoder"]

Instruction = str | Sequence[str] | None


@runtime_checkable
class EmbeddingBackend(Protocol):
    """Embed texts with an instruction (one for all, or one per text)."""

    def embed(self, texts: Sequence[str], instruction: Instruction = None) -> np.ndarray:
        """Return float32 ``(len(texts), dim)`` vectors in input order."""
        ...

    async def aembed(self, texts: Sequence[str], instruction: Instruction = None) -> np.ndarray:
        """Async twin of :meth:`embed`; must not block the event loop."""
        ...


_ENCODERS: dict[tuple[str | None, str | None, str | None], Any] = {}
_ENCODERS_LOCK = threading.Lock()


def shared_encoder(model: str | None = None, *, device: str | None = None, dtype: str | None = None) -> Any:
    """One :class:`~instructor_plugins.model.InstructorEncoder` per (model, device, dtype) per process."""
    key = (model, device, dtype)
    with _ENCODERS_LOCK:
        encoder = _ENCODERS.get(key)
        if encoder is None:
            from instructor_plugins.model import InstructorEncoder

            encoder = InstructorEncoder.load(model, device=device, dtype=dtype)
            _ENCODERS[key] = encoder
        return encoder


class LocalBackend:
    """Runs the encoder in this process; async calls run in a worker thread."""

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        encoder: Any = None,
    ) -> None:
        """Use ``encoder`` if given, else the process-wide shared encoder for ``model``."""
        self._model, self._device, self._dtype = model, device, dtype
        self._encoder = encoder
        self.batch_size = batch_size
        self.normalize = normalize
        self.show_progress = show_progress

    @property
    def encoder(self) -> Any:
        """The encoder, loaded on first use."""
        if self._encoder is None:
            self._encoder = shared_encoder(self._model, device=self._device, dtype=self._dtype)
        return self._encoder

    def embed(self, texts: Sequence[str], instruction: Instruction = None) -> np.ndarray:
        """Embed in this thread."""
        result: np.ndarray = self.encoder.encode(
            list(texts),
            instruction,
            batch_size=self.batch_size,
            normalize=self.normalize,
            show_progress=self.show_progress,
        )
        return result

    async def aembed(self, texts: Sequence[str], instruction: Instruction = None) -> np.ndarray:
        """Embed in a worker thread so the event loop keeps running (torch releases the GIL)."""
        return await asyncio.to_thread(self.embed, texts, instruction)


def make_backend(
    model: str | None = None,
    *,
    endpoint: str | None = None,
    device: str | None = None,
    batch_size: int = 32,
    normalize: bool = True,
    show_progress: bool = False,
    **remote_options: Any,
) -> EmbeddingBackend:
    """``endpoint=None`` gives a :class:`LocalBackend`; a URL gives the Ray Serve client."""
    if endpoint is None:
        if remote_options:
            raise TypeError(f"unexpected options for the in-process backend: {sorted(remote_options)}")
        return LocalBackend(
            model, device=device, batch_size=batch_size, normalize=normalize, show_progress=show_progress
        )
    raise NotImplementedError(
        "remote endpoints arrive with the Ray Serve backend (ServeBackend); pass endpoint=None for in-process"
    )
