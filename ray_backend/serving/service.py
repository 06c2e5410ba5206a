"""The embedding service behind the HTTP routes: loading, warm-up, tokenizing, sub-batches, load shedding.

:class:`EmbeddingService` is plain Python. Run alone it embeds each request in a worker thread
(that is how the unit tests drive the HTTP app without Ray); the Serve deployment swaps
:attr:`EmbeddingService.submit` for its ``@serve.batch`` method so requests share forward passes.

What keeps one replica responsive (see ``README``, "Serving"):

- **Nothing heavy on the event loop.** Tokenizing and encoding both run on the service's one
  encode thread; the loop only parses JSON, routes, and tokenizes requests of at most
  :data:`INLINE_TOKENIZE_CHARS` characters, so ``/health`` answers during any load.
  Rows are tokenized once: the ids counted for usage and token budgets are the ids encoded.
- **Sub-batches.** A request is tokenized and queued in pieces of at most
  ``policy.sub_batch_rows`` rows and ``policy.sub_batch_tokens`` tokens, one piece after the
  other, so a small request that arrives meanwhile runs after at most one piece of a big one.
- **Cancellation.** When Serve cancels a request (client disconnected or timed out) its pieces not
  yet started are dropped: the pending executor call or ``@serve.batch`` slot is cancelled.
- **Admission by expected wait** (:mod:`ray_backend.serving.admission`): 429 + ``Retry-After`` when a
  request is expected to finish later than ``limits.max_queue_wait_s``.
- **Readiness**: :attr:`EmbeddingService.ready` only after the model loaded *and* a warm-up batch ran.
- **Metrics** (:mod:`ray_backend.serving.metrics`): batch rows and tokens, queue depth and load time go to
  :attr:`EmbeddingService.metrics`; the HTTP app adds requests and latency.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np

from instructor_plugins.defaults import override_defaults
from instructor_plugins.types import Encoder
from ray_backend.loading import import_object, load_encoder
from ray_backend.serving.admission import Admission, estimate_tokens
from ray_backend.serving.api import ApiError, ServerLimits
from ray_backend.serving.batching import BatchPolicy, EmbedJob, run_jobs
from ray_backend.serving.metrics import ServiceMetrics

__all__ = ["BatchStats", "EmbeddingService", "import_object", "load_encoder", "pieces"]

logger = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """Counters of one replica since start.

    Attributes:
        batches: batches encoded (the warm-up batch included).
        requests: sub-batch jobs encoded (a big request counts once per piece).
        rows: rows encoded.
        tokens: tokens encoded.
        encode_s: seconds spent encoding.
        cancelled: requests cancelled before all their rows ran (client gone or timed out).
        refused: requests refused with 429 by admission control.
    """

    batches: int = 0
    requests: int = 0
    rows: int = 0
    tokens: int = 0
    encode_s: float = 0.0
    cancelled: int = 0
    refused: int = 0


Submit = Callable[[EmbedJob], Awaitable[np.ndarray]]
INLINE_TOKENIZE_CHARS = 2048
"""Requests up to this many characters are tokenized on the event loop; bigger ones on the encode thread."""


class EmbeddingService:
    """Loads the encoder (in the background by default) and answers embedding jobs.

    Args:
        model: model name or path; ``None`` = bundled.
        device: encoder device (default: CUDA when visible, else CPU).
        dtype: encoder dtype (default: bf16 on CUDA, fp32 on CPU).
        quantize: ``"int8"``: int8 Linear layers on CPU (see :mod:`instructor_plugins.quantization`).
        backend: ``"onnx"``: the transformer run by ONNX Runtime on CPU (see :mod:`instructor_plugins.runtimes`).
        query_instruction: overrides the model's default query instruction (``/info``, clients that ask for it).
        document_instruction: overrides the model's default document instruction.
        limits: request limits.
        policy: batch policy (rows and tokens per batch, wait time, rows per forward pass).
        api_key: when set, requests other than ``/health`` need ``Authorization: Bearer <api_key>``.
        encoder: an already loaded encoder (skips loading).
        encoder_factory: import path of the function that loads the encoder (see :func:`load_encoder`).
        metrics: where observations go (default: a fresh :class:`~ray_backend.serving.metrics.ServiceMetrics`).
        sizing: the replica's CPU sizing (:class:`~ray_backend.serving.sizing.ReplicaSizing` as a dict),
            shown by ``/info``.
        background: load (and warm up) in a thread so ``/health`` answers 503 meanwhile; with
            ``False`` the constructor returns only when the service is ready (what a Serve replica
            wants: Serve routes no traffic to it before then).
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
        metrics: ServiceMetrics | None = None,
        sizing: dict[str, Any] | None = None,
        background: bool = True,
        quantize: str | None = None,
        query_instruction: str | None = None,
        document_instruction: str | None = None,
        backend: str | None = None,
    ) -> None:
        self.model = model
        self.quantize = quantize
        self.backend = backend
        self._instruction_overrides = {"query": query_instruction, "document": document_instruction}
        self.encoder_factory = encoder_factory
        self.limits = limits or ServerLimits()
        self.policy = policy or BatchPolicy()
        self.api_key = api_key or None
        self.submit: Submit = self._submit_direct
        self.replica: str = "local"
        self.node: str = socket.gethostname()  # the Ray node id in a replica
        self.load_error: BaseException | None = None
        self._encoder = encoder
        self.admission = Admission(self.limits.max_pending_rows, self.limits.max_queue_wait_s)
        self.stats = BatchStats()
        self.metrics = metrics or ServiceMetrics()
        self.sizing = sizing
        self._load_started = time.perf_counter()
        self._encode_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")
        self._stats_lock = threading.Lock()
        self._loaded = threading.Event()
        self.warm = False
        if encoder is not None:
            self._override_defaults(encoder)
            self._warm_up()
            self.metrics.model_loaded(time.perf_counter() - self._load_started)
            self._loaded.set()
        elif background:
            threading.Thread(target=self._load, args=(device, dtype), name="load-encoder", daemon=True).start()
        else:
            self._load(device, dtype)
            if self.load_error is not None:
                raise self.load_error

    def _override_defaults(self, encoder: Encoder) -> None:
        if any(v is not None for v in self._instruction_overrides.values()):
            encoder.defaults = override_defaults(encoder.defaults, **self._instruction_overrides)
            if hasattr(encoder, "defaults_source"):
                encoder.defaults_source = "given"
            logger.info("default instructions given at start: %s", encoder.defaults)

    def _load(self, device: str | None, dtype: str | None) -> None:
        try:
            self._encoder = load_encoder(
                self.model,
                device=device,
                dtype=dtype,
                factory=self.encoder_factory,
                quantize=self.quantize,
                backend=self.backend,
            )
            self._override_defaults(self._encoder)
            self._warm_up()
            self.metrics.model_loaded(time.perf_counter() - self._load_started)
        except BaseException as exc:  # noqa: BLE001 - reported by /health and check_health
            logger.exception("loading model %r failed", self.model)
            self.load_error = exc
        finally:
            self._loaded.set()

    def _warm_up(self) -> None:
        """Run one batch of ~600 tokens (first-call costs, and the admission's first cost per token)."""
        texts = [f"warm-up sentence number {i}, a little longer than most queries are" for i in range(32)]
        instructions = ["", "Represent the sentence for retrieval: "] * 16
        tokens, ids = self._tokenize(texts, instructions)
        self.run_batch([EmbedJob(texts, instructions, tokens, policy=self.policy, token_ids=ids)])
        self.warm = True

    @property
    def ready(self) -> bool:
        """The encoder is loaded and has run its warm-up batch."""
        return self._loaded.is_set() and self._encoder is not None and self.warm

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
            "quantize": getattr(encoder, "quantize", None),
            # where the transformer runs: torch, or ONNX Runtime with its version, export and load-time probe
            "runtime": r.to_dict() if (r := getattr(encoder, "runtime", None)) is not None else None,
            # the CPU class, int8 method and load-time probe, or why quantize="auto" kept float32
            "quantization": q.to_dict() if (q := getattr(encoder, "quantization", None)) is not None else None,
            # How the checkpoint pools and where its defaults came from (InstructorEncoder.describe).
            "model_info": encoder.describe() if hasattr(encoder, "describe") else None,
            "replica": self.replica,
            "node": self.node,
            "batch": {
                "max_batch_rows": self.policy.max_batch_rows,
                "max_batch_tokens": self.policy.max_batch_tokens,
                "batch_wait_timeout_s": self.policy.batch_wait_timeout_s,
                "encode_batch_size": self.policy.encode_batch_size,
            },
            "sub_batch": {"rows": self.policy.sub_batch_rows, "tokens": self.policy.sub_batch_tokens},
            "limits": asdict(self.limits),
            "queue": {
                "pending_rows": self.admission.pending_rows,
                "pending_tokens": self.admission.pending_tokens,
                "seconds_per_token": self.admission.seconds_per_token,
                "expected_wait_s": round(self.admission.expected_wait_s(), 3),
            },
            "auth": self.api_key is not None,
            "torch_threads": _torch_threads(),
            "sizing": self.sizing,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
            "pid": os.getpid(),
            "rss_bytes": _rss_bytes(),
            "stats": asdict(self.stats) | {"refused": self.admission.refused},
        }

    def _tokenize(self, texts: Sequence[str], instructions: Sequence[str]) -> tuple[int, list[list[int]]]:
        """Real tokens the encoder reads for these rows (instruction + text, truncated, with specials).

        Returns the count and the token ids, which the batch encodes instead of tokenizing again.
        Blocking: big requests run it on the encode thread (:meth:`tokenize`).
        """
        ids = cast(Encoder, self._encoder).token_ids(texts, instructions)  # loaded: callers checked
        return sum(len(row) for row in ids), ids

    async def tokenize(self, texts: Sequence[str], instructions: Sequence[str]) -> tuple[int, list[list[int]]]:
        """:meth:`_tokenize` on the encode thread (cancelled with the caller if not yet started).

        Rows of at most :data:`INLINE_TOKENIZE_CHARS` characters in all are tokenized right here
        (well under a millisecond), so a small request does not queue behind a running batch twice.
        """
        if sum(len(t) + len(i) for t, i in zip(texts, instructions, strict=True)) <= INLINE_TOKENIZE_CHARS:
            return self._tokenize(texts, instructions)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._encode_thread, self._tokenize, texts, instructions)

    async def embed(
        self, texts: list[str], instructions: list[str], *, normalize: bool = True
    ) -> tuple[np.ndarray, int]:
        """Embed rows; returns ``(vectors, tokens)``.

        The rows go through tokenizing and ``submit`` in pieces (:func:`pieces`), one piece at a
        time, so other requests interleave; cancelling the caller drops the pieces not yet run.

        Raises:
            ApiError: 503 while the model loads; 429 when admission control refuses the request
                (see :class:`~ray_backend.serving.admission.Admission`).
        """
        encoder = self.encoder  # raises 503 while loading
        policy = self.policy
        max_seq = int(getattr(encoder, "max_seq_length", 512))
        estimate = estimate_tokens(texts, instructions, max_seq)
        ticket = self.admission.admit(len(texts), estimate, quantum=policy.sub_batch_tokens)
        self.metrics.queue_depth(self.admission.pending_rows)
        parts: list[np.ndarray] = []
        total = 0
        done_rows = 0
        try:
            for start in range(0, len(texts), policy.sub_batch_rows):
                chunk = slice(start, start + policy.sub_batch_rows)
                chunk_texts, chunk_instructions = texts[chunk], instructions[chunk]
                tokens, ids = await self.tokenize(chunk_texts, chunk_instructions)
                rest = estimate_tokens(texts[chunk.stop :], instructions[chunk.stop :], max_seq)
                self.admission.update(ticket, tokens=tokens + rest)
                chunk_pieces = pieces(ids, tokens, len(chunk_texts), policy.sub_batch_tokens)
                split = len(texts) > policy.sub_batch_rows or len(chunk_pieces) > 1
                for lo, hi, piece_tokens in chunk_pieces:
                    job = EmbedJob(
                        chunk_texts[lo:hi],
                        chunk_instructions[lo:hi],
                        piece_tokens,
                        normalize=normalize,
                        policy=policy,
                        token_ids=None if ids is None else ids[lo:hi],
                        solo=split,
                    )
                    parts.append(await self.submit(job))
                    done_rows += hi - lo
                    self.admission.update(
                        ticket, rows=len(texts) - done_rows, tokens=max(0, ticket.tokens - piece_tokens)
                    )
                    self.metrics.queue_depth(self.admission.pending_rows)
                total += tokens
        except asyncio.CancelledError:
            with self._stats_lock:
                self.stats.cancelled += 1
            logger.info("request cancelled after %d of %d rows", done_rows, len(texts))
            raise
        finally:
            self.admission.release(ticket)
            self.metrics.queue_depth(self.admission.pending_rows)
        return np.concatenate(parts), total

    def run_batch(self, jobs: list[EmbedJob]) -> list[np.ndarray]:
        """Embed a batch of jobs (blocking; call it in a worker thread) and count it in :attr:`stats`."""
        start = time.perf_counter()
        result = run_jobs(cast(Encoder, self._encoder), jobs, self.policy.encode_batch_size)
        elapsed = time.perf_counter() - start
        tokens = sum(job.tokens for job in jobs)
        rows = sum(job.rows for job in jobs)
        self.admission.record(tokens, elapsed)
        self.metrics.batch(rows, tokens)
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.requests += len(jobs)
            self.stats.rows += rows
            self.stats.tokens += tokens
            self.stats.encode_s += elapsed
        return result

    async def run_batch_async(self, jobs: list[EmbedJob]) -> list[np.ndarray]:
        """:meth:`run_batch` on the service's one encode thread; the event loop keeps serving meanwhile.

        One long-lived thread (not a pool) runs every batch and every tokenization, so torch reuses
        one OpenMP thread team and tokenizing never competes with encoding for the cores.
        """
        return await asyncio.get_running_loop().run_in_executor(self._encode_thread, self.run_batch, jobs)

    async def _submit_direct(self, job: EmbedJob) -> np.ndarray:
        result = await self.run_batch_async([job])
        return result[0]


def pieces(ids: list[list[int]] | None, tokens: int, rows: int, max_tokens: int) -> list[tuple[int, int, int]]:
    """Split ``rows`` tokenized rows into consecutive ``(start, stop, tokens)`` pieces of at most ``max_tokens``.

    A single row over ``max_tokens`` forms a piece alone. Without ids (an encoder without a
    tokenizer) the rows stay one piece of ``tokens``.
    """
    if ids is None:
        return [(0, rows, tokens)]
    out: list[tuple[int, int, int]] = []
    start, acc = 0, 0
    for r, row in enumerate(ids):
        if r > start and acc + len(row) > max_tokens:
            out.append((start, r, acc))
            start, acc = r, 0
        acc += len(row)
    if rows > start:
        out.append((start, rows, acc))
    return out


def _rss_bytes() -> int | None:
    """Resident memory of this process (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _torch_threads() -> int | None:
    """The intra-op threads of torch in this process, read live (``None`` when torch is not imported)."""
    torch = sys.modules.get("torch")
    return None if torch is None else int(torch.get_num_threads())
