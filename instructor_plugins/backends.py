"""Where embeddings are computed: the seam between the plugin classes and the encoder.

The LangChain and LlamaIndex classes talk to one small protocol, :class:`EmbeddingBackend`.
:class:`LocalBackend` runs the encoder in this process (one shared encoder per model and load
options); :class:`~instructor_plugins.serve_client.ServeBackend` (HTTP to the Ray Serve app) and
:class:`~instructor_plugins.serve_client.HandleBackend` (a Ray deployment handle) implement the
same protocol, selected by :func:`make_backend` when an ``endpoint`` is given.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from instructor_plugins.defaults import InstructionDefaults
from instructor_plugins.serve_client import HandleBackend, ServeBackend
from instructor_plugins.types import Encoder, Instruction

__all__ = [
    "EmbeddingBackend",
    "HandleBackend",
    "LoadOptions",
    "LocalBackend",
    "ServeBackend",
    "make_backend",
    "shared_encoder",
]


@runtime_checkable
class EmbeddingBackend(Protocol):
    """Embed texts with an instruction (one for all, or one per text), and say how the model was trained."""

    @property
    def defaults(self) -> InstructionDefaults:
        """The model's instruction defaults (see :mod:`instructor_plugins.defaults`)."""
        ...

    def embed(self, texts: Sequence[str], instruction: Instruction = None) -> np.ndarray:
        """Return float32 ``(len(texts), dim)`` vectors in input order."""
        ...

    async def aembed(self, texts: Sequence[str], instruction: Instruction = None) -> np.ndarray:
        """Async twin of :meth:`embed`; must not block the event loop."""
        ...


@dataclass(frozen=True)
class LoadOptions:
    """How an in-process encoder is loaded (the arguments of :meth:`InstructorEncoder.load`)."""

    model: str | None = None
    device: str | None = None
    dtype: str | None = None
    trust_remote_code: bool = False
    revision: str | None = None
    cache_folder: str | None = None
    backend: str | None = None

    def in_process_only(self) -> dict[str, Any]:
        """The options that were set and only mean something in process (all but ``model``)."""
        unset = LoadOptions()
        names = ("device", "dtype", "trust_remote_code", "revision", "cache_folder", "backend")
        return {n: getattr(self, n) for n in names if getattr(self, n) != getattr(unset, n)}


_ENCODERS: dict[LoadOptions, Encoder] = {}
_ENCODERS_LOCK = threading.Lock()


def shared_encoder(
    model: str | None = None, *, device: str | None = None, dtype: str | None = None, options: LoadOptions | None = None
) -> Encoder:
    """One :class:`~instructor_plugins.model.InstructorEncoder` per set of load options per process."""
    key = options or LoadOptions(model, device=device, dtype=dtype)
    with _ENCODERS_LOCK:
        encoder = _ENCODERS.get(key)
        if encoder is None:
            from instructor_plugins.model import InstructorEncoder

            encoder = InstructorEncoder.load(
                key.model,
                device=key.device,
                dtype=key.dtype,
                trust_remote_code=key.trust_remote_code,
                revision=key.revision,
                cache_folder=key.cache_folder,
                backend=key.backend,
            )
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
        encoder: Encoder | None = None,
        options: LoadOptions | None = None,
    ) -> None:
        """Use ``encoder`` if given, else the process-wide shared encoder for ``options`` (or ``model``)."""
        self.options = options or LoadOptions(model, device=device, dtype=dtype)
        self._encoder = encoder
        self.batch_size = batch_size
        self.normalize = normalize
        self.show_progress = show_progress

    @property
    def encoder(self) -> Encoder:
        """The encoder, loaded on first use."""
        if self._encoder is None:
            self._encoder = shared_encoder(options=self.options)
        return self._encoder

    @property
    def defaults(self) -> InstructionDefaults:
        """The encoder's instruction defaults."""
        return self.encoder.defaults

    def embed(self, texts: Sequence[str], instruction: Instruction = None) -> np.ndarray:
        """Embed in this thread."""
        return self.encoder.encode(
            list(texts),
            instruction,
            batch_size=self.batch_size,
            normalize=self.normalize,
            show_progress=self.show_progress,
        )

    async def aembed(self, texts: Sequence[str], instruction: Instruction = None) -> np.ndarray:
        """Embed in a worker thread so the event loop keeps running (torch releases the GIL)."""
        return await asyncio.to_thread(self.embed, texts, instruction)


def make_backend(
    model: str | None = None,
    *,
    endpoint: Any = None,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
    cache_folder: str | None = None,
    backend: str | None = None,
    batch_size: int = 32,
    normalize: bool = True,
    show_progress: bool = False,
    **remote_options: Any,
) -> EmbeddingBackend:
    """``endpoint=None`` gives a :class:`LocalBackend`; a URL the HTTP client, a deployment handle the handle client.

    Args:
        model: the model to load in process; with an endpoint, the model the server must be running
            (checked against its ``/info`` on first use), or ``None`` to accept the server's.
        endpoint: ``None``; ``"http://127.0.0.1:8000"`` (:class:`ServeBackend`); or a Ray Serve
            ``DeploymentHandle`` of the embedding deployment (:class:`HandleBackend`).
        device: in-process device.
        dtype: in-process dtype (``"float32"``, ``"bfloat16"``, ``"float16"``).
        trust_remote_code: in process: allow model code from the checkpoint.
        revision: in process: hub revision.
        cache_folder: in process: hub cache folder.
        backend: in process: ``"torch"`` (``None``), ``"onnx"`` (ONNX Runtime) or ``"openvino"`` (CPU; see
            :mod:`instructor_plugins.runtimes`).
        batch_size: rows per forward pass in process; texts per HTTP request remotely.
        normalize: L2-normalise the vectors.
        show_progress: progress bar.
        **remote_options: :class:`ServeBackend` options (``timeout``, ``max_retries``, ``api_key``, ...).

    Raises:
        ValueError: an in-process option together with an endpoint (the server decides those).
        TypeError: remote options without an endpoint.
    """
    options = LoadOptions(model, device, dtype, trust_remote_code, revision, cache_folder, backend)
    if endpoint is None:
        if remote_options:
            raise TypeError(f"unexpected options for the in-process backend: {sorted(remote_options)}")
        return LocalBackend(options=options, batch_size=batch_size, normalize=normalize, show_progress=show_progress)
    local_only = options.in_process_only()
    if local_only:
        raise ValueError(
            f"{local_only} apply in process only; the server at {endpoint!r} picks its own model settings "
            "(drop them, or start the server with them)"
        )
    if isinstance(endpoint, str):
        return ServeBackend(
            endpoint,
            model=model,
            batch_size=batch_size,
            normalize=normalize,
            show_progress=show_progress,
            **remote_options,
        )
    return HandleBackend(endpoint, normalize=normalize, **remote_options)
