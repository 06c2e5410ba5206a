"""Clients of the Ray Serve embedding app, behind the :class:`~instructor_plugins.backends.EmbeddingBackend` protocol.

- :class:`ServeBackend` speaks HTTP (``POST /embed``) with httpx, sync and async, with timeouts and
  bounded retries with exponential backoff and jitter (tenacity) on exactly these: 429, 502, 503,
  504 (honouring ``Retry-After``) and connection errors (refused, connect timeout, connection
  dropped before an answer). A 500 that is not the app's own JSON error is Ray Serve's proxy saying
  the replica died before it answered (its node was lost, the process was killed): that one is
  retried **once**, as first failure of a request, so the request goes to a surviving replica.
  Not retried: the app's own 500 and any other status (a 500 is an answer; unbounded retries of
  them are what kept an overloaded replica crashing), and read timeouts (the server is still
  working; a retry would queue the same work again). A :class:`RetryBudget` shared by one client's
  requests caps retries at a fraction of requests, so a struggling server is not hit with a
  retry storm. Other errors raise :class:`ServeError` with the server's message.
- :class:`HandleBackend` calls the deployment through a Ray ``DeploymentHandle`` (inside a cluster,
  no HTTP hop).

Neither imports Ray Serve or :mod:`ray_backend`; httpx and tenacity come with the ``serve`` extra.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from instructor_plugins.defaults import InstructionDefaults
from instructor_plugins.types import Instruction, instruction_rows

__all__ = ["API_KEY_ENV", "HandleBackend", "ModelMismatchError", "RetryBudget", "ServeBackend", "ServeError"]

API_KEY_ENV = "INSTRUCTOR_API_KEY"
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class ServeError(RuntimeError):
    """The server refused a request (or kept failing after the retries)."""

    def __init__(self, status: int, message: str) -> None:
        """An error with the HTTP ``status`` and the server's ``message``."""
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class RetryBudget:
    """A token bucket of retries: each request adds ``ratio`` tokens (up to ``capacity``), each retry costs one.

    Sustained retries stay under ``ratio`` of requests, with bursts of up to ``capacity`` (it
    starts full). Thread-safe; one per client, shared by its sync and async calls.
    """

    def __init__(self, ratio: float = 0.2, capacity: float = 10.0) -> None:
        if ratio < 0 or capacity < 0:
            raise ValueError(f"ratio and capacity must be >= 0, got ratio={ratio}, capacity={capacity}")
        self.ratio = ratio
        self.capacity = capacity
        self.tokens = capacity
        self._lock = threading.Lock()

    def deposit(self) -> None:
        """A new request (not a retry) started."""
        with self._lock:
            self.tokens = min(self.capacity, self.tokens + self.ratio)

    def withdraw(self) -> bool:
        """Take one retry; False when the budget is spent."""
        with self._lock:
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class ModelMismatchError(ValueError):
    """The server runs another model than the one the client asked for."""


class _Retryable(Exception):
    """A 429/5xx answer worth retrying (after ``retry_after`` seconds when the server said so).

    ``first_only``: retried only when it is the request's first failure (a replica lost mid-request).
    """

    def __init__(self, error: ServeError, retry_after: float | None, *, first_only: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.first_only = first_only


def _check_response(response: Any) -> np.ndarray:
    """Vectors of a 200 answer; :class:`_Retryable` (429, 502-504, a proxy's 500) or :class:`ServeError` otherwise."""
    if response.status_code == 200:
        body = response.json()
        rows = [np.frombuffer(base64.b64decode(item), dtype="<f4") for item in body["embeddings"]]
        return np.stack(rows).astype(np.float32)
    from_app = True
    try:
        message = response.json()["error"]["message"]
    except Exception:  # noqa: BLE001 - a proxy error page, not the app's JSON
        message, from_app = response.text[:500], False
    error = ServeError(response.status_code, message)
    if response.status_code == 500 and not from_app:  # the replica died before answering: another one will
        raise _Retryable(error, None, first_only=True)
    if response.status_code in RETRY_STATUSES:
        header = response.headers.get("retry-after")
        retry_after = float(header) if header and header.replace(".", "", 1).isdigit() else None
        raise _Retryable(error, retry_after)
    raise error


class ServeBackend:
    """HTTP client of the Serve app's ``/embed`` route.

    Args:
        endpoint: base URL, e.g. ``"http://127.0.0.1:8000"``.
        model: the model the server must run (compared with its ``/info`` before the first
            request; :class:`ModelMismatchError` otherwise); ``None`` accepts the server's model.
        batch_size: texts per HTTP request (the server batches requests together again).
        normalize: L2-normalise the vectors.
        show_progress: tqdm bar over requests.
        timeout: seconds per request attempt (connect, read, write). The server's admission bound
            (``max_queue_wait_s``, 30 s by default) should stay below it.
        max_retries: retries after the first attempt, on connection errors, 429 and 502-504.
        backoff_s: first backoff; doubles per retry with jitter, capped at ``max_backoff_s``.
        max_backoff_s: longest wait between attempts.
        max_concurrency: requests in flight at once in :meth:`aembed`.
        api_key: bearer token (default: env ``INSTRUCTOR_API_KEY``).
        transport: an httpx transport (tests); default: a real connection pool.
        retry_budget: shared cap on retries (default: :class:`RetryBudget` (20 % of requests, bursts of 10)).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        model: str | None = None,
        batch_size: int = 64,
        normalize: bool = True,
        show_progress: bool = False,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        max_concurrency: int = 4,
        api_key: str | None = None,
        transport: Any = None,
        retry_budget: RetryBudget | None = None,
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        for name, value in (("batch_size", batch_size), ("max_concurrency", max_concurrency)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        import httpx

        self.endpoint = endpoint.rstrip("/")
        self.model = model
        self._info: dict[str, Any] | None = None
        self.batch_size = batch_size
        self.normalize = normalize
        self.show_progress = show_progress
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_concurrency = max_concurrency
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._timeout = httpx.Timeout(timeout)
        self._transport = transport
        self._client: httpx.Client | None = None
        self.retry_budget = retry_budget or RetryBudget()

    # ------------------------------------------------------------------ plumbing
    def _retrying(self, asynchronous: bool) -> Any:
        import httpx
        import tenacity

        def wait(state: tenacity.RetryCallState) -> float:
            backoff = tenacity.wait_exponential_jitter(self.backoff_s, self.max_backoff_s)(state)
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.retry_after is not None:
                return min(max(backoff, exc.retry_after), self.max_backoff_s)
            return backoff

        retryable = tenacity.retry_if_exception_type(
            (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, _Retryable)
        )

        def retry(state: tenacity.RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.first_only and state.attempt_number > 1:
                return False
            return bool(retryable(state)) and self.retry_budget.withdraw()

        self.retry_budget.deposit()
        cls = tenacity.AsyncRetrying if asynchronous else tenacity.Retrying
        return cls(stop=tenacity.stop_after_attempt(self.max_retries + 1), wait=wait, retry=retry, reraise=True)

    def _payload(self, texts: list[str], instructions: list[str]) -> dict[str, Any]:
        payload: dict[str, Any] = {"normalize": self.normalize, "encoding_format": "base64"}
        if len(set(instructions)) == 1:
            payload.update(texts=texts, instruction=instructions[0])
        else:
            payload["pairs"] = [[i, t] for i, t in zip(instructions, texts, strict=True)]
        return payload

    def _chunks(self, n: int) -> list[slice]:
        return [slice(i, min(i + self.batch_size, n)) for i in range(0, n, self.batch_size)]

    @property
    def client(self) -> Any:
        """The pooled sync httpx client (created on first use)."""
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=self._timeout, headers=self._headers, transport=self._transport)
        return self._client

    def close(self) -> None:
        """Close the sync connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def info(self) -> dict[str, Any]:
        """The server's ``GET /info`` (fetched once, with the same retries as embedding requests).

        Raises:
            ModelMismatchError: :attr:`model` is set and the server runs another model.
        """
        if self._info is None:
            try:
                for attempt in self._retrying(asynchronous=False):
                    with attempt:
                        response = self.client.get(f"{self.endpoint}/info")
                        if response.status_code != 200:
                            _check_response(response)  # raises ServeError or _Retryable
                        info: dict[str, Any] = response.json()
            except _Retryable as exc:
                raise exc.error from None
            if self.model is not None and info.get("model") != self.model:
                raise ModelMismatchError(
                    f"the server at {self.endpoint} runs model {info.get('model')!r}, not model={self.model!r}; "
                    "drop model= to use the server's model, or point endpoint= at a server running it"
                )
            self._info = info
        return self._info

    @property
    def defaults(self) -> InstructionDefaults:
        """The served model's instruction defaults (from ``/info``)."""
        info = self.info()
        return InstructionDefaults(
            bool(info.get("instruction_trained", False)),
            str(info.get("query_instruction") or ""),
            str(info.get("document_instruction") or ""),
        )

    # ------------------------------------------------------------------ protocol
    def embed(self, texts: Sequence[str], instruction: Instruction = None) -> np.ndarray:
        """Embed ``texts`` (one request per ``batch_size`` texts, sent one after another)."""
        texts, instructions = instruction_rows(texts, instruction)
        if not texts or self.model is not None:  # the dim, and the model check before the first request
            dim = int(self.info()["dim"])
            if not texts:
                return np.zeros((0, dim), dtype=np.float32)
        chunks = self._chunks(len(texts))
        if self.show_progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="embed", unit="request")
        parts = [self._post_sync(texts[c], instructions[c]) for c in chunks]
        return np.concatenate(parts)

    async def aembed(self, texts: Sequence[str], instruction: Instruction = None) -> np.ndarray:
        """Embed with up to ``max_concurrency`` requests in flight; never blocks the event loop."""
        import httpx

        texts, instructions = instruction_rows(texts, instruction)
        if not texts or self.model is not None:  # the dim, and the model check before the first request
            info = self._info if self._info is not None else await asyncio.to_thread(self.info)
            dim = int(info["dim"])
            if not texts:
                return np.zeros((0, dim), dtype=np.float32)
        gate = asyncio.Semaphore(self.max_concurrency)
        transport = self._transport
        async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers, transport=transport) as client:

            async def one(chunk: slice) -> np.ndarray:
                async with gate:
                    return await self._post_async(client, texts[chunk], instructions[chunk])

            parts = await asyncio.gather(*(one(c) for c in self._chunks(len(texts))))
        return np.concatenate(parts)

    def _post_sync(self, texts: list[str], instructions: list[str]) -> np.ndarray:
        payload = self._payload(texts, instructions)
        try:
            for attempt in self._retrying(asynchronous=False):
                with attempt:
                    return _check_response(self.client.post(f"{self.endpoint}/embed", json=payload))
        except _Retryable as exc:
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post_async(self, client: Any, texts: list[str], instructions: list[str]) -> np.ndarray:
        payload = self._payload(texts, instructions)
        try:
            async for attempt in self._retrying(asynchronous=True):
                with attempt:
                    return _check_response(await client.post(f"{self.endpoint}/embed", json=payload))
        except _Retryable as exc:
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def __repr__(self) -> str:
        return f"ServeBackend(endpoint={self.endpoint!r}, batch_size={self.batch_size})"


class HandleBackend:
    """Calls the Serve deployment's ``embed_pairs`` through a ``DeploymentHandle`` (inside a Ray cluster).

    Args:
        handle: a ``ray.serve.handle.DeploymentHandle`` of the embedding deployment, e.g.
            ``serve.get_deployment_handle("InstructorDeployment", app_name="instructor")``.
        normalize: L2-normalise the vectors.

    Use :meth:`aembed` from inside another deployment (``embed`` blocks on the result).
    """

    def __init__(self, handle: Any, *, normalize: bool = True) -> None:
        if not hasattr(handle, "options") or not hasattr(handle, "remote"):
            raise TypeError(f"handle must be a Ray Serve DeploymentHandle, got {type(handle).__name__}")
        self.handle = handle
        self.normalize = normalize
        self._defaults: InstructionDefaults | None = None

    @property
    def defaults(self) -> InstructionDefaults:
        """The deployment's instruction defaults (asked once; blocks, so read it outside an event loop first)."""
        if self._defaults is None:
            self._defaults = InstructionDefaults.from_dict(self.handle.instruction_defaults.remote().result())
        return self._defaults

    def embed(self, texts: Sequence[str], instruction: Instruction = None) -> np.ndarray:
        """Embed and wait for the result."""
        texts, instructions = instruction_rows(texts, instruction)
        result: np.ndarray = self.handle.embed_pairs.remote(texts, instructions, self.normalize).result()
        return result

    async def aembed(self, texts: Sequence[str], instruction: Instruction = None) -> np.ndarray:
        """Embed without blocking the event loop."""
        texts, instructions = instruction_rows(texts, instruction)
        result: np.ndarray = await self.handle.embed_pairs.remote(texts, instructions, self.normalize)
        return result
