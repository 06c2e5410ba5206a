"""Ray Serve app: INSTRUCTOR encoder replicas behind the FastAPI routes of :mod:`ray_backend.app`.

Run it any of these ways (the HTTP proxy listens on 127.0.0.1 unless told otherwise)::

    instructor serve --model hkunlp/instructor-large --num-replicas 2 --num-gpus 1 --port 8000
    python -m ray_backend.serve ...                  # the same command
    serve run ray_backend.serve:build_app model=hkunlp/instructor-large num_replicas=2
    serve run ray_backend/serve_config.yaml        # or: serve deploy ray_backend/serve_config.yaml

Each replica loads one :class:`~instructor_plugins.model.InstructorEncoder` (bf16 on GPU, fp32 on
CPU) and answers requests through ``@serve.batch``: requests queued within
``batch_wait_timeout_s`` are concatenated, bounded by rows *and* tokens (see
:mod:`ray_backend.batching`), embedded in one ``encode`` call with per-row instructions, and
split back. ``user_config`` (``max_batch_rows``, ``max_batch_tokens``, ``batch_wait_timeout_s``,
``encode_batch_size``) changes batching live through ``reconfigure``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application
from ray.serve.schema import ReplicaState

from instructor_plugins.flags import add_config_flags, command_parser, config_from_args
from ray_backend.api import ServerLimits, check_rows
from ray_backend.app import create_app
from ray_backend.batching import BatchPolicy, EmbedJob, batch_cost
from ray_backend.net import RayOptions
from ray_backend.service import EmbeddingService

__all__ = ["APP_NAME", "DEPLOYMENT_NAME", "InstructorDeployment", "ServeArgs", "build_app", "main"]

APP_NAME = "instructor"
DEPLOYMENT_NAME = "InstructorDeployment"
API_KEY_ENV = "INSTRUCTOR_API_KEY"
_DEFAULT_POLICY = BatchPolicy()
_POLICY_FIELDS = ("max_batch_rows", "max_batch_tokens", "batch_wait_timeout_s", "encode_batch_size")


class _ScaledBatchSizeWarningFilter(logging.Filter):
    """Drop Serve's "max_batch_size > max_ongoing_requests" warning.

    Our ``max_batch_size`` is the scaled rows-x-tokens budget (:attr:`BatchPolicy.scaled_limit`),
    not a request count, so that comparison does not apply.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "will never achieve the configured `max_batch_size`" not in record.getMessage()


class ServeArgs(BaseModel):
    """Arguments of :func:`build_app` (``serve run ray_backend.serve:build_app key=value ...``)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = None
    """Model name or path; None = the bundled all-MiniLM-L6-v2."""
    encoder_factory: str | None = None
    """Import path "module:callable" of a function (model, *, device, dtype) -> Encoder that builds each
    replica's encoder (Ray's own import-path idiom); None = InstructorEncoder.load."""
    num_replicas: int = Field(default=1, ge=1)
    """Fixed replica count (ignored when ``autoscaling_config`` is set)."""
    autoscaling_config: dict[str, Any] | None = None
    """Serve autoscaling config, e.g. ``{"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 8}``."""
    num_gpus: float = Field(default=0.0, ge=0)
    """GPUs per replica (fractions share a GPU); > 0 puts the encoder on CUDA in bf16."""
    num_cpus: float = Field(default=1.0, ge=0)
    """CPUs per replica."""
    torch_threads: int | None = Field(default=None, ge=1)
    """Intra-op threads per replica; default ``max(1, round(num_cpus))``."""
    omp_wait_policy: Literal["PASSIVE", "ACTIVE"] | None = "PASSIVE"
    """``OMP_WAIT_POLICY`` of the replica process. PASSIVE: idle OpenMP threads sleep instead of
    spinning, which keeps CPU replicas fast next to the proxy, other replicas or other work (measured
    here: ~5x req/s on 1-text requests from 8 clients on a busy 2-core machine). ``None`` leaves it unset."""
    device: str | None = None
    """Encoder device; default ``cuda`` when ``num_gpus > 0`` else ``cpu``."""
    dtype: str | None = None
    """Encoder dtype; default bf16 on CUDA, fp32 on CPU."""
    max_batch_rows: int = _DEFAULT_POLICY.max_batch_rows
    """Texts per replica batch (all requests together)."""
    max_batch_tokens: int = _DEFAULT_POLICY.max_batch_tokens
    """Tokens per replica batch."""
    batch_wait_timeout_s: float = _DEFAULT_POLICY.batch_wait_timeout_s
    """How long a batch waits to fill."""
    encode_batch_size: int = _DEFAULT_POLICY.encode_batch_size
    """Rows per forward pass inside a batch."""
    max_ongoing_requests: int = Field(default=64, ge=1)
    """Requests in flight per replica (must allow several requests per batch)."""
    max_queued_requests: int = -1
    """Requests queued in the proxy before 503 (``-1``: unbounded)."""
    max_inputs: int = ServerLimits.max_inputs
    """Texts per request (413 beyond)."""
    max_body_bytes: int = ServerLimits.max_body_bytes
    """Request body bytes (413 beyond)."""
    max_pending_rows: int = ServerLimits.max_pending_rows
    """Texts waiting on one replica before new requests get 429."""
    api_key: str | None = None
    """Bearer token required by the routes (default: env ``INSTRUCTOR_API_KEY``; unset = no auth)."""

    def policy(self) -> BatchPolicy:
        """The batch policy these arguments describe."""
        return BatchPolicy(
            self.max_batch_rows, self.max_batch_tokens, self.batch_wait_timeout_s, self.encode_batch_size
        )

    def limits(self) -> ServerLimits:
        """The request limits these arguments describe."""
        return ServerLimits(self.max_inputs, self.max_body_bytes, self.max_pending_rows)


@serve.deployment(name=DEPLOYMENT_NAME, max_ongoing_requests=64, health_check_period_s=5)
@serve.ingress()
class InstructorDeployment:
    """One encoder replica: HTTP routes via FastAPI, work via ``@serve.batch``."""

    def __init__(self, args: dict[str, Any]) -> None:
        """Start loading the model in the background (``/health`` says 503 until it is loaded)."""
        opts = ServeArgs.model_validate(args)
        logging.getLogger("ray.serve").addFilter(_ScaledBatchSizeWarningFilter())
        threads = opts.torch_threads or max(1, round(opts.num_cpus))
        import torch

        torch.set_num_threads(threads)
        device = opts.device or ("cuda" if opts.num_gpus > 0 else "cpu")
        self.service = EmbeddingService(
            opts.model,
            device=device,
            dtype=opts.dtype,
            encoder_factory=opts.encoder_factory,
            limits=opts.limits(),
            policy=opts.policy(),
            api_key=opts.api_key or os.environ.get(API_KEY_ENV) or None,
        )
        self.service.submit = self.embed_batch
        self._apply_policy(self.service.policy)
        try:
            self.service.replica = serve.get_replica_context().replica_id.unique_id
        except Exception:  # noqa: BLE001 - outside a replica (e.g. local testing mode)
            self.service.replica = "local"

    def __serve_build_asgi_app__(self) -> Any:
        """Serve calls this after ``__init__`` for the late-bound FastAPI app."""
        return create_app(self.service, replicas=_running_replicas)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Change batching live from ``user_config`` (keys of :class:`BatchPolicy`)."""
        self._apply_policy(BatchPolicy.from_config(user_config, base=self.service.policy))

    def _apply_policy(self, policy: BatchPolicy) -> None:
        self.service.policy = policy
        self.embed_batch.set_max_batch_size(policy.scaled_limit)  # type: ignore[attr-defined]
        self.embed_batch.set_batch_wait_timeout_s(policy.batch_wait_timeout_s)  # type: ignore[attr-defined]

    @serve.batch(
        max_batch_size=_DEFAULT_POLICY.scaled_limit,
        batch_wait_timeout_s=_DEFAULT_POLICY.batch_wait_timeout_s,
        batch_size_fn=batch_cost,
    )
    async def embed_batch(self, jobs: list[EmbedJob]) -> list[np.ndarray]:
        """One forward-pass sequence for every queued request; runs in a thread so the loop keeps serving."""
        self.service.encoder  # noqa: B018 - raises 503 while loading
        return await self.service.run_batch_async(jobs)

    async def embed_pairs(self, texts: list[str], instructions: list[str], normalize: bool = True) -> np.ndarray:
        """Deployment-handle entry point (no HTTP): ``(len(texts), dim)`` float32, under the same limits as HTTP."""
        if not self.service.ready:
            await asyncio.to_thread(self.service.wait_ready, 600)
        if not texts:
            return np.zeros((0, self.service.encoder.dim), dtype=np.float32)
        check_rows(len(texts), self.service.limits)
        vectors, _ = await self.service.embed(list(texts), list(instructions), normalize=normalize)
        return vectors

    async def instruction_defaults(self) -> dict[str, Any]:
        """Deployment-handle entry point: the model's :class:`~instructor_plugins.defaults.InstructionDefaults`."""
        if not self.service.ready:
            await asyncio.to_thread(self.service.wait_ready, 600)
        return self.service.encoder.defaults.to_dict()

    def check_health(self) -> None:
        """Serve restarts a replica whose model failed to load."""
        if self.service.load_error is not None:
            raise RuntimeError(f"model failed to load: {self.service.load_error}")


def _running_replicas() -> int | None:
    try:
        status = serve.status().applications
        for app in status.values():
            deployment = app.deployments.get(DEPLOYMENT_NAME)
            if deployment is not None:
                return int(deployment.replica_states.get(ReplicaState.RUNNING, 0))
    except Exception:  # noqa: BLE001 - /info still answers without the count
        return None
    return None


def build_app(args: dict[str, Any] | ServeArgs | None = None) -> Application:
    """The Serve application (``serve run ray_backend.serve:build_app model=... num_replicas=2``).

    Args:
        args: :class:`ServeArgs` fields; strings from the ``serve run`` command line are coerced.

    Raises:
        pydantic.ValidationError: an unknown or invalid argument.
    """
    opts = args if isinstance(args, ServeArgs) else ServeArgs.model_validate(args or {})
    policy = opts.policy()
    actor_options: dict[str, Any] = {"num_cpus": opts.num_cpus, "num_gpus": opts.num_gpus}
    if opts.omp_wait_policy is not None:
        actor_options["runtime_env"] = {"env_vars": {"OMP_WAIT_POLICY": opts.omp_wait_policy}}
    options: dict[str, Any] = {
        "ray_actor_options": actor_options,
        "max_ongoing_requests": opts.max_ongoing_requests,
        "max_queued_requests": opts.max_queued_requests,
        # Batching travels as user_config, not as constructor args, so changing it is a live
        # reconfigure of the running replicas instead of a redeploy.
        "user_config": {f: getattr(policy, f) for f in _POLICY_FIELDS},
    }
    if opts.autoscaling_config is not None:
        options["autoscaling_config"] = opts.autoscaling_config
    else:
        options["num_replicas"] = opts.num_replicas
    deployment: Any = InstructorDeployment
    return deployment.options(**options).bind(opts.model_dump(exclude=set(_POLICY_FIELDS)))


@dataclass
class HttpOptions:
    """Where the Serve HTTP proxy listens (flags of ``instructor serve``)."""

    host: str = "127.0.0.1"
    """HTTP host (default: loopback only)."""
    port: int = 8000
    """HTTP port."""


def _parse_cli(argv: Sequence[str] | None, prog: str) -> tuple[ServeArgs, HttpOptions, RayOptions]:
    parser = command_parser(prog, __doc__)
    add_config_flags(parser, ServeArgs, aliases={"num_replicas": ["--replicas"]})
    add_config_flags(parser, HttpOptions)
    add_config_flags(parser, RayOptions)
    args = parser.parse_args(argv)
    return (
        config_from_args(parser, ServeArgs, args),
        config_from_args(parser, HttpOptions, args),
        config_from_args(parser, RayOptions, args),
    )


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m ray_backend.serve") -> int:
    """CLI entry point (``instructor serve``): start (or join) Ray, serve until interrupted; exit status 0."""
    import ray

    args, http, cluster = _parse_cli(argv, prog)
    address = cluster.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:  # a local Ray just for serving: replicas at normal priority (Ray's default worker nice level is 15)
        ray.init(include_dashboard=False, _system_config={"worker_niceness": 0})
    stop = threading.Event()
    try:
        serve.start(http_options={"host": http.host, "port": http.port})
        serve.run(build_app(args), name=APP_NAME, route_prefix="/")
        print(f"serving {args.model or 'the bundled model'} at http://{http.host}:{http.port}", flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
