"""Serve text embeddings over HTTP: INSTRUCTOR encoder replicas on Ray Serve, with instructions.

Examples::

    instructor serve                                            # the bundled model on 127.0.0.1:8000
    instructor serve --model hkunlp/instructor-large --num-gpus 1 --port 8000
    instructor serve --num-replicas 2 --quantize auto --api-key-file /etc/instructor/key
    serve run ray_backend.serve:build_app model=hkunlp/instructor-large num_replicas=2
    serve run ray_backend/serve_config.yaml                     # or serve deploy, to a running cluster

Routes: ``POST /v1/embeddings`` (OpenAI's request plus ``"instruction"`` for all inputs), ``POST /embed``
(``{"texts": [...], "instruction": "..."}`` or ``{"pairs": [[instruction, text], ...]}``), ``GET /health``,
``GET /info``, ``GET /metrics``. Bad requests get a JSON error (400, 401, 408, 413, 422), a full replica 429
with ``Retry-After``. It listens on 127.0.0.1 unless ``--host`` says otherwise; set a key for any other host.
Without ``--address`` (or ``RAY_ADDRESS``) it starts a local Ray; ``python -m ray_backend.serve`` is the
same command. Docs: docs/serving.md.

How it works:

Each replica loads one :class:`~instructor_plugins.model.InstructorEncoder` (bf16 on GPU, fp32 on
CPU) and answers requests through ``@serve.batch``: requests queued within
``batch_wait_timeout_s`` are concatenated, bounded by rows *and* tokens (see
:mod:`ray_backend.serving.batching`), embedded in one ``encode`` call with per-row instructions, and
split back. ``user_config`` (``max_batch_rows``, ``max_batch_tokens``, ``batch_wait_timeout_s``,
``encode_batch_size``, ``sub_batch_rows``, ``sub_batch_tokens``) changes batching live through
``reconfigure``.

Readiness: a replica loads its model and runs a warm-up batch in its constructor, and
``check_health`` fails until both are done, so Serve routes no request to a replica that cannot
answer it (a replacement for a killed replica, or one added by scaling up).

Sizing (:mod:`ray_backend.serving.sizing`): with no ``num_cpus``, CPU replicas share the node's CPUs
(``torch_threads`` = CPUs / replicas, at least 1; each reserves its share); :func:`build_app`
decides it, so the CLI, ``serve run ... key=value`` and the YAML config behave the same.

Metrics (:mod:`ray_backend.serving.metrics`): each replica records into ``ray.serve.metrics`` (exported by
Ray's metrics agent; the CLI pins its port, ``--metrics-export-port``) and serves the same series
as Prometheus text at ``GET /metrics`` on the app's port.

Ingress (:mod:`ray_backend.serving.ingress`): ``instructor serve`` with one replica (the default) lets the
replica answer HTTP itself on ``--port`` (Ray's direct ingress; no proxy hop); with several
replicas, or on a cluster it joins, Ray Serve's HTTP proxy answers on ``--port``. ``--ingress``
chooses explicitly.

Auth: the key (``api_key``, ``api_key_file`` or the deployer's ``INSTRUCTOR_API_KEY``) is resolved
where :func:`build_app` runs and travels to the replicas in their runtime environment, so a
deployment to an existing cluster (``--address``) carries it too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import ray
from pydantic import BaseModel, ConfigDict, Field, model_validator
from ray import serve
from ray.serve import Application
from ray.serve.schema import ReplicaState

from instructor_plugins.flags import add_config_flags, command_parser, config_from_args
from ray_backend.net import (
    ClusterUnreachable,
    RayOptions,
    free_port,
    init_local_ray,
    is_loopback_host,
    join_cluster,
    loopback_replica_grpc,
)
from ray_backend.serving.api import ServerLimits, check_input
from ray_backend.serving.app import create_app
from ray_backend.serving.batching import BatchPolicy, EmbedJob, batch_cost
from ray_backend.serving.ingress import IngressChoice, IngressPlan, plan_ingress, ray_has_direct_ingress
from ray_backend.serving.metrics import ServiceMetrics
from ray_backend.serving.service import EmbeddingService
from ray_backend.serving.sizing import ReplicaSizing, node_cpus, replica_count, size_replica

__all__ = [
    "APP_NAME",
    "DEPLOYMENT_NAME",
    "HttpOptions",
    "InstructorDeployment",
    "MetricsOptions",
    "ServeArgs",
    "build_app",
    "main",
    "plan_cli_ingress",
]

APP_NAME = "instructor"
DEPLOYMENT_NAME = "InstructorDeployment"
API_KEY_ENV = "INSTRUCTOR_API_KEY"
_DEFAULT_POLICY = BatchPolicy()
_POLICY_FIELDS = (
    "max_batch_rows",
    "max_batch_tokens",
    "batch_wait_timeout_s",
    "encode_batch_size",
    "sub_batch_rows",
    "sub_batch_tokens",
)
_SECRET_FIELDS = {"api_key", "api_key_file"}
logger = logging.getLogger(__name__)


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
    num_cpus: float | None = Field(default=None, ge=0)
    """CPUs reserved per replica; default: CPU replicas share the node (CPUs / replicas each), GPU replicas 1."""
    torch_threads: int | None = Field(default=None, ge=1)
    """Intra-op threads per replica; default ``max(1, floor(CPUs / replicas))``, or ``max(1, round(num_cpus))``."""
    omp_wait_policy: Literal["PASSIVE", "ACTIVE"] | None = "PASSIVE"
    """``OMP_WAIT_POLICY`` of the replica process. PASSIVE: idle OpenMP threads sleep instead of
    spinning, which keeps CPU replicas fast next to the proxy, other replicas or other work (measured
    here: ~5x req/s on 1-text requests from 8 clients on a busy 2-core machine). ``None`` leaves it unset."""
    malloc_mmap_threshold: int | None = Field(default=None, ge=0)
    """glibc ``MALLOC_MMAP_THRESHOLD_`` of the replica process, e.g. 65536 to bound RSS: allocations of this
    many bytes or more (activations, batches) are mmapped and go back to the OS when freed. glibc's default
    threshold adapts upwards, after which such buffers come from the heap and fragment it: measured here, a
    replica's RSS doubled in 10 minutes of steady load (786 -> 1,627 MB) and stayed flat with 65536, which
    costs throughput (page faults on fresh buffers; see README, "Memory"). ``None`` (default): glibc's own."""
    access_log: bool = False
    """Ray Serve's per-request access log lines (replicas; the HTTP proxy too when ``instructor serve``
    starts Serve). Off by default: on 2 CPU cores they cost a fifth of the 1-text request rate (56 -> 70
    req/s with them off, 8 clients); errors and warnings are logged either way, and ``/metrics`` counts
    every request."""
    device: str | None = None
    """Encoder device; default ``cuda`` when ``num_gpus > 0`` else ``cpu``."""
    dtype: str | None = None
    """Encoder dtype; default bf16 on CUDA, fp32 on CPU."""
    quantize: Literal["int8", "auto"] | None = None
    """``int8``: the transformer's Linear layers run as int8 (CPU only, fp32 model; faster, cos >= 0.99 to fp32;
    OpenVINO's int8 where it is installed, else torch's; refused on CPUs where int8 cannot keep that, see
    ``instructor_plugins.quantization``). ``auto``: int8 where it can, else fp32."""
    backend: Literal["torch", "onnx", "openvino"] | None = None
    """Where the transformer runs: ``torch`` (default), ``onnx`` (ONNX Runtime) or ``openvino``: exported once and
    run on CPU at fp32, faster than torch at cos >= 0.99999 to it (checked at load; ``pip install
    "instructor-plugins[onnx]"`` / ``[openvino]``; see ``instructor_plugins.runtimes``). ``openvino`` also runs
    ``quantize``."""
    query_instruction: str | None = None
    """Default query instruction, overriding what the model's files say (shown by ``/info``; clients such as
    ``InstructorEmbeddings(endpoint=...)`` use it when they set none). None: the model's own."""
    document_instruction: str | None = None
    """Default document instruction, overriding what the model's files say. None: the model's own."""
    max_batch_rows: int = _DEFAULT_POLICY.max_batch_rows
    """Texts per replica batch (all requests together)."""
    max_batch_tokens: int = _DEFAULT_POLICY.max_batch_tokens
    """Tokens per replica batch."""
    batch_wait_timeout_s: float = _DEFAULT_POLICY.batch_wait_timeout_s
    """How long a batch waits to fill."""
    encode_batch_size: int = _DEFAULT_POLICY.encode_batch_size
    """Rows per forward pass inside a batch."""
    sub_batch_rows: int = _DEFAULT_POLICY.sub_batch_rows
    """A request is tokenized and queued in pieces of at most this many rows (small requests interleave)."""
    sub_batch_tokens: int = _DEFAULT_POLICY.sub_batch_tokens
    """... and at most this many tokens per piece (about a quarter second on 2 CPU cores for the bundled model)."""
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
    max_queue_wait_s: float = ServerLimits.max_queue_wait_s
    """429 when a replica's admitted work is expected to take longer (keep below the clients' timeout)."""
    body_timeout_s: float = ServerLimits.body_timeout_s
    """Seconds to receive a request body before 408."""
    api_key: str | None = None
    """Bearer token required by the routes (prefer ``api_key_file`` or env ``INSTRUCTOR_API_KEY``)."""
    api_key_file: str | None = None
    """File holding the bearer token (read where the app is built; surrounding whitespace stripped)."""

    @model_validator(mode="after")
    def _quantize_on_cpu(self) -> ServeArgs:
        if self.quantize is not None:
            import torch

            from instructor_plugins.model import resolve_dtype
            from instructor_plugins.quantization import check_quantize

            device = torch.device(self.device or ("cuda" if self.num_gpus > 0 else "cpu"))
            if self.num_gpus > 0 and device.type == "cpu":
                raise ValueError(
                    f"quantize={self.quantize!r} runs on CPU only; got num_gpus={self.num_gpus} (valid: 0)"
                )
            check_quantize(self.quantize, device, resolve_dtype(self.dtype, device))
        if self.backend in ("onnx", "openvino"):
            if self.num_gpus > 0 or (self.device or "cpu") != "cpu":
                raise ValueError(
                    f"backend={self.backend!r} runs on CPU only; got num_gpus={self.num_gpus}, device={self.device!r} "
                    "(valid: num_gpus 0, device cpu)"
                )
            if (self.dtype or "float32") not in ("float32", "fp32"):
                raise ValueError(
                    f"backend={self.backend!r} runs the float32 export; got dtype={self.dtype!r} "
                    "(valid: dtype unset or float32, or backend='torch')"
                )
        return self

    def policy(self) -> BatchPolicy:
        """The batch policy these arguments describe."""
        return BatchPolicy(**{f: getattr(self, f) for f in _POLICY_FIELDS})

    def limits(self) -> ServerLimits:
        """The request limits these arguments describe."""
        return ServerLimits(
            self.max_inputs, self.max_body_bytes, self.max_pending_rows, self.max_queue_wait_s, self.body_timeout_s
        )

    def resolve_api_key(self) -> str | None:
        """The key: ``api_key``, else the contents of ``api_key_file``, else env ``INSTRUCTOR_API_KEY``.

        Raises:
            ValueError: ``api_key_file`` cannot be read or is empty.
        """
        if self.api_key:
            return self.api_key
        if self.api_key_file:
            try:
                key = Path(self.api_key_file).expanduser().read_text().strip()
            except OSError as exc:
                raise ValueError(f"cannot read api_key_file {self.api_key_file!r}: {exc.strerror}") from None
            if not key:
                raise ValueError(f"api_key_file {self.api_key_file!r} is empty")
            return key
        return os.environ.get(API_KEY_ENV) or None


@serve.deployment(name=DEPLOYMENT_NAME, max_ongoing_requests=64, health_check_period_s=5)
@serve.ingress()
class InstructorDeployment:
    """One encoder replica: HTTP routes via FastAPI, work via ``@serve.batch``."""

    def __init__(self, args: dict[str, Any], sizing: dict[str, Any] | None = None) -> None:
        """Load the model and run a warm-up batch; Serve sends no traffic before this returns.

        Args:
            args: :class:`ServeArgs` fields.
            sizing: the :class:`~ray_backend.serving.sizing.ReplicaSizing` :func:`build_app` chose (as a dict).
        """
        loopback_replica_grpc()  # before Serve starts this replica's gRPC server (after the constructor)
        opts = ServeArgs.model_validate(args)
        logging.getLogger("ray.serve").addFilter(_ScaledBatchSizeWarningFilter())
        if sizing is None:  # constructed directly, not through build_app
            sizing = asdict(_sizing(opts))
        import torch

        torch.set_num_threads(int(sizing["torch_threads"]))
        try:
            replica = serve.get_replica_context().replica_id.unique_id
            in_replica = True
        except Exception:  # noqa: BLE001 - outside a replica (e.g. local testing mode)
            replica, in_replica = "local", False
        metrics = ServiceMetrics(replica)
        if in_replica:
            metrics.enable_ray()
        device = opts.device or ("cuda" if opts.num_gpus > 0 else "cpu")
        self.service = EmbeddingService(
            opts.model,
            device=device,
            dtype=opts.dtype,
            quantize=opts.quantize,
            backend=opts.backend,
            query_instruction=opts.query_instruction,
            document_instruction=opts.document_instruction,
            encoder_factory=opts.encoder_factory,
            limits=opts.limits(),
            policy=opts.policy(),
            api_key=opts.resolve_api_key(),  # build_app moved it into this replica's environment
            metrics=metrics,
            sizing=sizing,
            background=False,
        )
        self.service.submit = self.embed_batch
        self._apply_policy(self.service.policy)
        self.service.replica = replica
        if in_replica:
            import ray

            self.service.node = ray.get_runtime_context().get_node_id()

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
        """Deployment-handle entry point (no HTTP): ``(len(texts), dim)`` float32, under the same checks as HTTP."""
        if not self.service.ready:
            await asyncio.to_thread(self.service.wait_ready, 600)
        if not texts:
            return np.zeros((0, self.service.encoder.dim), dtype=np.float32)
        check_input(texts, instructions, self.service.limits)
        vectors, _ = await self.service.embed(list(texts), list(instructions), normalize=normalize)
        return vectors

    async def instruction_defaults(self) -> dict[str, Any]:
        """Deployment-handle entry point: the model's :class:`~instructor_plugins.defaults.InstructionDefaults`."""
        if not self.service.ready:
            await asyncio.to_thread(self.service.wait_ready, 600)
        return self.service.encoder.defaults.to_dict()

    def check_health(self) -> None:
        """Healthy once the model is loaded and warmed up (Serve also calls this before routing)."""
        if self.service.load_error is not None:
            raise RuntimeError(f"model failed to load: {self.service.load_error}")
        if not self.service.ready:
            raise RuntimeError("model not loaded and warmed up yet")


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

    Replicas are sized here (:mod:`ray_backend.serving.sizing`), from the CPUs of the Ray cluster this process
    is connected to, so every way of building the app sizes them alike.

    Args:
        args: :class:`ServeArgs` fields; strings from the ``serve run`` command line are coerced.

    Raises:
        pydantic.ValidationError: an unknown or invalid argument.
        ValueError: ``api_key_file`` cannot be read.
    """
    opts = args if isinstance(args, ServeArgs) else ServeArgs.model_validate(args or {})
    policy = opts.policy()
    sizing = _sizing(opts)
    actor_options: dict[str, Any] = {"num_cpus": sizing.num_cpus, "num_gpus": opts.num_gpus}
    env_vars: dict[str, str] = {}
    if opts.omp_wait_policy is not None:
        env_vars["OMP_WAIT_POLICY"] = opts.omp_wait_policy
    if opts.malloc_mmap_threshold is not None:
        env_vars["MALLOC_MMAP_THRESHOLD_"] = str(opts.malloc_mmap_threshold)
    # The key is resolved here, where the deployer's environment and files are, and travels in the
    # replicas' environment rather than in the (logged, displayed) deployment arguments.
    key = opts.resolve_api_key()
    if key:
        env_vars[API_KEY_ENV] = key
    if env_vars:
        actor_options["runtime_env"] = {"env_vars": env_vars}
    options: dict[str, Any] = {
        "ray_actor_options": actor_options,
        "max_ongoing_requests": opts.max_ongoing_requests,
        "max_queued_requests": opts.max_queued_requests,
        # Batching travels as user_config, not as constructor args, so changing it is a live
        # reconfigure of the running replicas instead of a redeploy.
        "user_config": {f: getattr(policy, f) for f in _POLICY_FIELDS},
        "logging_config": {"enable_access_log": opts.access_log},
    }
    if opts.autoscaling_config is not None:
        options["autoscaling_config"] = opts.autoscaling_config
    else:
        options["num_replicas"] = opts.num_replicas
    deployment: Any = InstructorDeployment
    replica_args = opts.model_dump(exclude=set(_POLICY_FIELDS) | _SECRET_FIELDS)
    return deployment.options(**options).bind(replica_args, asdict(sizing))


def _sizing(opts: ServeArgs) -> ReplicaSizing:
    """The replicas' CPU reservation and threads (node CPUs from Ray when connected, else this machine)."""
    return size_replica(
        num_cpus=opts.num_cpus,
        torch_threads=opts.torch_threads,
        num_gpus=opts.num_gpus,
        replicas=replica_count(opts.num_replicas, opts.autoscaling_config),
        node_cpus=node_cpus(),
    )


def warn_if_exposed(host: str, has_key: bool) -> bool:
    """Log a warning (and return True) when ``host`` is not loopback and no API key is set."""
    if is_loopback_host(host) or has_key:
        return False
    logger.warning(
        "serving on %s without an API key: anyone who can reach this host can use it (set %s or --api-key-file)",
        host,
        API_KEY_ENV,
    )
    return True


@dataclass
class HttpOptions:
    """Where HTTP requests enter (flags of ``instructor serve``; see :mod:`ray_backend.serving.ingress`)."""

    host: str = "127.0.0.1"
    """HTTP host (default: loopback only)."""
    port: int = 8000
    """HTTP port clients use (under direct ingress, replica i answers on port + i)."""
    ingress: IngressChoice = "auto"
    """auto: "direct" when this command starts Ray and serves one fixed replica, else "proxy". direct: each
    replica answers HTTP itself (no proxy hop: about 2x the 1-text request rate on 2 CPU cores); proxy: Ray
    Serve's HTTP proxy answers on --port and spreads requests over the replicas."""
    proxy_port: int | None = None
    """Port of Ray Serve's HTTP proxy under direct ingress (it spreads requests over all replicas); default: a
    free port, printed at start-up."""


@dataclass
class MetricsOptions:
    """Where Ray's metrics agent serves Prometheus text, when this command starts Ray itself."""

    metrics_export_port: int = 8080
    """Port of Ray's metrics agent (loopback, like the rest of a Ray this command starts; every replica's series)."""

    def __post_init__(self) -> None:
        if not 1 <= self.metrics_export_port <= 65535:
            raise ValueError(f"metrics_export_port must be a TCP port in 1..65535, got {self.metrics_export_port!r}")


def _parse_cli(argv: Sequence[str] | None, prog: str) -> tuple[ServeArgs, HttpOptions, RayOptions, MetricsOptions]:
    parser = command_parser(prog, __doc__)
    # No --api-key: a key on the command line is visible in `ps`; --api-key-file or the env var instead.
    add_config_flags(parser, ServeArgs, exclude={"api_key"}, aliases={"num_replicas": ["--replicas"]})
    add_config_flags(parser, HttpOptions)
    add_config_flags(parser, RayOptions)
    add_config_flags(parser, MetricsOptions)
    args = parser.parse_args(argv)
    return (
        config_from_args(parser, ServeArgs, args),
        config_from_args(parser, HttpOptions, args),
        config_from_args(parser, RayOptions, args),
        config_from_args(parser, MetricsOptions, args),
    )


def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def plan_cli_ingress(args: ServeArgs, http: HttpOptions, *, starts_ray: bool) -> IngressPlan:
    """The ingress ``instructor serve`` sets up for these flags (:func:`ray_backend.serving.ingress.plan_ingress`)."""
    return plan_ingress(
        http.ingress,
        port=http.port,
        replicas=None if args.autoscaling_config else args.num_replicas,
        starts_ray=starts_ray,
        proxy_port=http.proxy_port,
        free_port=lambda: free_port(http.host),
        direct_supported=ray_has_direct_ingress(ray.__version__),
    )


def _print_endpoints(args: ServeArgs, http: HttpOptions, plan: IngressPlan, metrics_port: int | None) -> None:
    model = args.model or "the bundled model"
    base = f"http://{http.host}"
    if plan.mode == "proxy":
        print(f"serving {model} at {base}:{plan.port}", flush=True)
    elif len(plan.replica_ports) == 1:
        print(f"serving {model} at {base}:{plan.port} (direct ingress: the replica answers itself)", flush=True)
    else:
        urls = ", ".join(f"{base}:{p}" for p in plan.replica_ports)
        print(f"serving {model}: each replica answers on its own port (spread clients over them): {urls}", flush=True)
    if plan.mode == "direct":
        print(f"Ray Serve proxy (spreads requests over every replica): {base}:{plan.proxy_port}", flush=True)
    targets = ", ".join(f"{base}:{p}/metrics" for p in plan.replica_ports) or f"{base}:{plan.port}/metrics"
    which = "each replica's own series" if plan.mode == "direct" else "the replica the proxy picks"
    print(f"Prometheus: {targets} ({which})", flush=True)
    if metrics_port is not None:
        print(
            f"Prometheus: http://127.0.0.1:{metrics_port}/metrics "
            "(Ray's metrics agent: every replica, names prefixed ray_)",
            flush=True,
        )


def local_backend_problem(backend: str | None, quantize: str | None) -> str:
    """Why ``--backend``/``--quantize`` cannot run on this machine, or ``""``.

    A missing package, or int8 on a CPU class where no int8 method runs (torch's refused, OpenVINO's without VNNI,
    ONNX Runtime's per-token int8 not measured there). The replicas check each method's load-time probe.
    """
    import torch

    from instructor_plugins.quantization import INT8_ISAS, cpu_isa, ort_int8_runs, unsupported_reason
    from instructor_plugins.runtimes import BackendUnavailable, backend_available, check_backend, ov_int8_supported

    if backend in ("onnx", "openvino"):
        try:
            check_backend(backend, torch.device("cpu"), torch.float32, int8=quantize is not None)
        except BackendUnavailable as exc:
            return f"--backend {backend}: {exc}"
    if quantize != "int8" or backend == "onnx":
        return ""
    ov_reason = ov_int8_supported() if backend_available("openvino", int8=True) else "OpenVINO is not installed"
    if backend == "openvino" and ov_reason:
        return f"--quantize int8: {ov_reason}; use --quantize auto"
    if backend is None and (not ov_reason or (ort_int8_runs() and backend_available("onnx"))):
        return ""  # OpenVINO's int8, or ONNX Runtime's per-token int8 on this CPU class
    if backend != "openvino" and cpu_isa() not in INT8_ISAS:
        hint = "" if backend == "torch" else f"; OpenVINO's int8: {ov_reason}"
        return f"--quantize int8: {unsupported_reason(cpu_isa())}{hint}; use --quantize auto"
    return ""


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m ray_backend.serve") -> int:
    """CLI entry point (``instructor serve``): start (or join) Ray, serve until interrupted; exit status 0."""
    args, http, cluster, metrics = _parse_cli(argv, prog)
    address = cluster.address or os.environ.get("RAY_ADDRESS")
    try:
        key = args.resolve_api_key()
        plan = plan_cli_ingress(args, http, starts_ray=not address)
    except ValueError as exc:  # IngressError is a ValueError
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    warn_if_exposed(http.host, key is not None)
    if not address:  # the replicas run on this machine: refuse now, not in each one
        problem = local_backend_problem(args.backend, args.quantize)
        if problem:
            print(f"{prog}: error: {problem}", file=sys.stderr)
            return 2
    if address:
        try:
            join_cluster(address)
        except ClusterUnreachable as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return 2
    else:  # a local Ray on loopback; replicas at normal priority (Ray's default worker nice level is 15)
        checks = [("--metrics-export-port", metrics.metrics_export_port, "127.0.0.1")]
        checks += [("--port" + (f" + {i}" if i else ""), p, http.host) for i, p in enumerate(plan.replica_ports)]
        checks.append(("--port" if plan.mode == "proxy" else "--proxy-port", plan.proxy_port, http.host))
        busy = [f"{flag} {port}" for flag, port, host in checks if _port_in_use(port, host)]
        if busy:
            print(f"{prog}: error: in use: {', '.join(busy)}; pass free ports", file=sys.stderr)
            return 2
        os.environ.update(plan.env(os.environ))  # Ray's controller and replicas read them when they start
        init_local_ray(_system_config={"worker_niceness": 0}, _metrics_export_port=metrics.metrics_export_port)
    stop = threading.Event()
    # Handlers first: a replica answers on its own port (direct ingress) before serve.run returns, and a
    # SIGTERM that came before them would hit Ray's handler, which aborts the process (exit 134).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(
            http_options={"host": http.host, "port": plan.proxy_port},
            logging_config={"enable_access_log": args.access_log},
        )
        serve.run(build_app(args), name=APP_NAME, route_prefix="/")
        _print_endpoints(args, http, plan, None if address else metrics.metrics_export_port)
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
