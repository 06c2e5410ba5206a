"""Where embeddings are computed: the seam between the plugin classes and the encoder.

The LangChain and LlamaIndex classes talk to one small protocol, :class:`EmbeddingBackend`.
:class:`LocalBackend` runs the encoder in this process (one shared encoder per model, device and
dtype); :class:`~instructor_plugins.serve_client.ServeBackend` (HTTP to the Ray Serve app) and
:class:`~instructor_plugins.serve_client.HandleBackend` (a Ray deployment handle) implement the
same protocol, selected by :func:`make_backend` when an ``endpoint`` is given.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from instructor_plugins.serve_client import HandleBackend, ServeBackend

__all__ = ["EmbeddingBackend", "HandleBackend", "LocalBackend", "ServeBackend", "make_backend", "shared_encoder"]

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
    endpoint: Any = None,
    device: str | None = None,
    batch_size: int = 32,
    normalize: bool = True,
    show_progress: bool = False,
    **remote_options: Any,
) -> EmbeddingBackend:
    """``endpoint=None`` gives a :class:`LocalBackend`; a URL the HTTP client, a deployment handle the handle client.

    Args:
        model: model for the in-process backend (the server decides its own model).
        endpoint: ``None``; ``"http://127.0.0.1:8000"`` (:class:`ServeBackend`); or a Ray Serve
            ``DeploymentHandle`` of the embedding deployment (:class:`HandleBackend`).
        device: in-process device (must stay ``None`` with an endpoint).
        batch_size: rows per forward pass in process; texts per HTTP request remotely.
        normalize: L2-normalise the vectors.
        show_progress: progress bar.
        **remote_options: :class:`ServeBackend` options (``timeout``, ``max_retries``, ``api_key``, ...).
    """
    if endpoint is None:
        if remote_options:
            raise TypeError(f"unexpected options for the in-process backend: {sorted(remote_options)}")
        return LocalBackend(
            model, device=device, batch_size=batch_size, normalize=normalize, show_progress=show_progress
        )
    if device is not None:
        raise ValueError(f"device={device!r} applies in process only; the server at {endpoint!r} picks its device")
    if isinstance(endpoint, str):
        return ServeBackend(
            endpoint, batch_size=batch_size, normalize=normalize, show_progress=show_progress, **remote_options
        )
    return HandleBackend(endpoint, normalize=normalize, **remote_options)
