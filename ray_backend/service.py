"""The embedding service behind the HTTP routes: model loading, token counting, load shedding.

:class:`EmbeddingService` is plain Python. Run alone it embeds each request in a worker thread
(that is how the unit tests drive the HTTP app without Ray); the Serve deployment swaps
:attr:`EmbeddingService.submit` for its ``@serve.batch`` method so requests share forward passes.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from instructor_plugins.types import Encoder
from ray_backend.api import ApiError, ServerLimits
from ray_backend.batching import BatchPolicy, EmbedJob, run_jobs

__all__ = ["BatchStats", "EmbeddingService", "import_object", "load_encoder"]

logger = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """Counters of one replica since start: batches, requests, rows and tokens embedded, encode seconds."""

    batches: int = 0
    requests: int = 0
    rows: int = 0
    tokens: int = 0
    encode_s: float = 0.0


Submit = Callable[[EmbedJob], Awaitable[np.ndarray]]


def import_object(path: str) -> Any:
    """The object named by ``"package.module:attribute"`` (Ray's import-path idiom).

    Raises:
        ValueError: ``path`` is not ``module:attribute`` or names nothing importable.
    """
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"encoder factory must be an import path 'module:callable', got {path!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import encoder factory {path!r}: {exc}") from None
    return obj


def load_encoder(
    model: str | None, *, device: str | None = None, dtype: str | None = None, factory: str | None = None
) -> Encoder:
    """Load ``model`` (``None`` = the bundled model) with ``InstructorEncoder.load``, or with ``factory``.

    Args:
        model: model name or path.
        device: encoder device.
        dtype: encoder dtype.
        factory: import path ``"module:callable"`` of ``callable(model, *, device, dtype) -> Encoder``
            (e.g. ``"instructor_plugins.testing:hash_encoder"`` for plumbing tests).
    """
    if factory is not None:
        encoder: Encoder = import_object(factory)(model, device=device, dtype=dtype)
        return encoder
    from instructor_plugins.model import InstructorEncoder

    return InstructorEncoder.load(model, device=device, dtype=dtype)


class EmbeddingService:
    """Loads the encoder (in the background by default) and answers embedding jobs.

    Args:
        model: model name or path; ``None`` = bundled.
        device: encoder device (default: CUDA when visible, else CPU).
        dtype: encoder dtype (default: bf16 on CUDA, fp32 on CPU).
        limits: request limits.
        policy: batch policy (rows and tokens per batch, wait time, rows per forward pass).
        api_key: when set, requests other than ``/health`` need ``Authorization: Bearer <api_key>``.
        encoder: an already loaded encoder (skips loading).
        encoder_factory: import path of the function that loads the encoder (see :func:`load_encoder`).
        background: load in a thread so ``/health`` answers 503 while loading.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        limits: ServerLimits | None = None,
        policy: BatchPolicy | None = None,
        api_key: str | None = None,
        encoder: Encoder | None = None,
        encoder_factory: str | None = None,
        background: bool = True,
    ) -> None:
        self.model = model
        self.encoder_factory = encoder_factory
        self.limits = limits or ServerLimits()
        self.policy = policy or BatchPolicy()
        self.api_key = api_key or None
        self.submit: Submit = self._submit_direct
        self.replica: str = "local"
        self.load_error: BaseException | None = None
        self._encoder = encoder
        self._pending_rows = 0
        self.stats = BatchStats()
        self._encode_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")
        self._stats_lock = threading.Lock()
        self._loaded = threading.Event()
        if encoder is not None:
            self._loaded.set()
        elif background:
            threading.Thread(target=self._load, args=(device, dtype), name="load-encoder", daemon=True).start()
        else:
            self._load(device, dtype)
            if self.load_error is not None:
                raise self.load_error

    def _load(self, device: str | None, dtype: str | None) -> None:
        try:
            self._encoder = load_encoder(self.model, device=device, dtype=dtype, factory=self.encoder_factory)
        except BaseException as exc:  # noqa: BLE001 - reported by /health and check_health
            logger.exception("loading model %r failed", self.model)
            self.load_error = exc
        finally:
            self._loaded.set()

    @property
    def ready(self) -> bool:
        """The encoder is loaded."""
        return self._loaded.is_set() and self._encoder is not None

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until loading finished (or ``timeout``); True when the encoder is usable."""
        self._loaded.wait(timeout)
        return self.ready

    @property
    def encoder(self) -> Encoder:
        """The loaded encoder; 503 while loading (or if loading failed)."""
        if not self.ready:
            reason = f"model failed to load: {self.load_error}" if self.load_error else "model is loading"
            raise ApiError(503, reason, retry_after=1.0)
        assert self._encoder is not None  # ready means loaded
        return self._encoder

    @property
    def model_name(self) -> str:
        """What ``/info`` and responses call the model."""
        if self._encoder is not None:
            return self._encoder.name
        return self.model or "bundled"

    def info(self) -> dict[str, Any]:
        """``/info`` body (without the replica count, which only Serve knows)."""
        encoder = self.encoder
        defaults = encoder.defaults
        return {
            "model": self.model_name,
            "dim": int(encoder.dim),
            "max_seq_length": int(encoder.max_seq_length),
            "instruction_trained": defaults.instruction_trained,
            "query_instruction": defaults.query,
            "document_instruction": defaults.document,
            "device": str(getattr(encoder, "device", "cpu")),
            "dtype": str(getattr(encoder, "dtype", "float32")).removeprefix("torch."),
            "replica": self.replica,
            "batch": {
                "max_batch_rows": self.policy.max_batch_rows,
                "max_batch_tokens": self.policy.max_batch_tokens,
                "batch_wait_timeout_s": self.policy.batch_wait_timeout_s,
                "encode_batch_size": self.policy.encode_batch_size,
            },
            "limits": {
                "max_inputs": self.limits.max_inputs,
                "max_body_bytes": self.limits.max_body_bytes,
                "max_pending_rows": self.limits.max_pending_rows,
            },
            "auth": self.api_key is not None,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "stats": asdict(self.stats),
        }

    def count_tokens(self, texts: Sequence[str], instructions: Sequence[str]) -> tuple[int, list[list[int]]]:
        """Real tokens the encoder reads for these rows (instruction + text, truncated, with specials).

        Returns the count and the token ids, which the batch encodes instead of tokenizing again.
        """
        ids = self.encoder.token_ids(texts, instructions)
        return sum(len(row) for row in ids), ids

    async def embed(
        self, texts: list[str], instructions: list[str], *, normalize: bool = True
    ) -> tuple[np.ndarray, int]:
        """Embed rows; returns ``(vectors, tokens)``.

        Raises:
            ApiError: 503 while the model loads; 429 when this replica already holds
                ``limits.max_pending_rows`` rows.
        """
        self.encoder  # noqa: B018 - raises 503 while loading
        rows = len(texts)
        if self._pending_rows and self._pending_rows + rows > self.limits.max_pending_rows:
            raise ApiError(
                429,
                f"server busy: {self._pending_rows} texts pending (limit {self.limits.max_pending_rows}); retry later",
                retry_after=1.0,
            )
        self._pending_rows += rows
        try:
            tokens, ids = self.count_tokens(texts, instructions)
            job = EmbedJob(texts, instructions, tokens, normalize=normalize, policy=self.policy, token_ids=ids)
            vectors = await self.submit(job)
        finally:
            self._pending_rows -= rows
        return vectors, tokens

    def run_batch(self, jobs: list[EmbedJob]) -> list[np.ndarray]:
        """Embed a batch of jobs (blocking; call it in a worker thread) and count it in :attr:`stats`."""
        start = time.perf_counter()
        result = run_jobs(self.encoder, jobs, self.policy.encode_batch_size)
        elapsed = time.perf_counter() - start
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.requests += len(jobs)
            self.stats.rows += sum(job.rows for job in jobs)
            self.stats.tokens += sum(job.tokens for job in jobs)
            self.stats.encode_s += elapsed
        return result

    async def run_batch_async(self, jobs: list[EmbedJob]) -> list[np.ndarray]:
        """:meth:`run_batch` on the service's one encode thread; the event loop keeps serving meanwhile.

        One long-lived thread (not a pool) runs every batch, so torch reuses one OpenMP thread team
        instead of starting one per pool thread.
        """
        return await asyncio.get_running_loop().run_in_executor(self._encode_thread, self.run_batch, jobs)

    async def _submit_direct(self, job: EmbedJob) -> np.ndarray:
        result = await self.run_batch_async([job])
        return result[0]
