"""Loopback helpers shared by the CLI, demo, batch job, training driver, benchmarks and tests.

- :func:`init_local_ray` starts a Ray of our own that listens on 127.0.0.1 only. Every place in
  this project that starts Ray itself goes through it (``python -m ray_backend.serve``, the demo,
  ``python -m ray_backend.batch``, ``python -m training.train``); joining an existing cluster
  (``address=...``) is left to that cluster's own settings.
- :func:`free_port` and :func:`wait_healthy` for starting and waiting on a local Serve app;
  :class:`RayOptions`, the ``--address`` flag of ``instructor serve`` and ``instructor batch``.

How Ray is kept on loopback (Ray 2.60, checked with ``ss -ltn`` in a namespace that also has a
routed non-loopback interface, see ``tests/integration/test_loopback.py``):

- ``_node_ip_address="127.0.0.1"`` alone is not enough: ``ray.init`` "resolves" a loopback node
  address to the machine's routable address, and GCS, raylet, workers and actors then bind ``*``.
- Ray's single-machine mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the default on macOS and
  Windows) makes the node address 127.0.0.1 and every gRPC server bind it. The variable is set in
  the driver's environment, which the GCS, raylet and every worker inherit.
- A Serve replica still opens its inter-deployment gRPC server on a hard-coded ``[::]:0``.
  :func:`loopback_replica_grpc` rebinds it to 127.0.0.1 inside replicas of a loopback Ray; the
  Serve deployment's constructor calls it, which Serve runs before it starts that server.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "LOOPBACK_ENV",
    "ClusterUnreachable",
    "InsufficientResources",
    "RayOptions",
    "alive_node_count",
    "check_address",
    "free_port",
    "init_local_ray",
    "is_loopback_host",
    "join_cluster",
    "loopback_replica_grpc",
    "units_that_fit",
    "wait_for_resources",
    "wait_healthy",
]

LOOPBACK = "127.0.0.1"
# Ray's single-machine switch: when "0", Ray uses 127.0.0.1 as the node address and binds it.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@dataclass
class RayOptions:
    """Which Ray cluster a driver joins (the ``--address`` flag of ``instructor serve`` and ``batch``)."""

    address: str | None = None
    """Ray address to join (default: env RAY_ADDRESS, else start a local Ray on loopback only)."""


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ``::1`` and ``localhost``."""
    return host == "localhost" or host == "::1" or host.startswith("127.")


def init_local_ray(**kwargs: Any) -> Any:
    """Start a local Ray whose components all listen on 127.0.0.1; returns ``ray.init``'s context.

    ``kwargs`` go to ``ray.init`` (``num_cpus``, ``_temp_dir``, ``_system_config``...). The
    dashboard is off unless asked for. Do not use this to join a cluster: pass ``address`` to
    ``ray.init`` for that.

    Raises:
        ValueError: ``kwargs`` names an ``address`` (this helper only starts Ray).
    """
    if kwargs.get("address"):
        raise ValueError(f"init_local_ray starts a local Ray; got address={kwargs['address']!r} (use ray.init)")
    os.environ[LOOPBACK_ENV] = "0"  # inherited by GCS, raylet and every worker
    import ray
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # this process imported Ray before the variable was set
    kwargs.setdefault("include_dashboard", False)
    kwargs.setdefault("_node_ip_address", LOOPBACK)
    recorded = _recorded_cluster(kwargs.get("_temp_dir"))
    if recorded:  # ray.init() would join it, and hang for minutes on GCS timeouts if it is gone
        logger.warning(
            "ignoring the Ray cluster recorded at %s (ray_current_cluster, maybe stale): starting a local Ray for "
            "this run; pass --address %s to join that cluster instead",
            recorded,
            recorded,
        )
    return ray.init(address="local", **kwargs)


class ClusterUnreachable(ConnectionError):
    """A Ray address that does not answer; the message names it and what to check."""


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``host:port`` or ``ray://host:port`` address; None for anything else."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        rest = address
    elif scheme != "ray":
        return None
    host, sep, port = rest.rstrip("/").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fail fast when the Ray cluster at ``address`` does not answer (``ray.init`` would wait for minutes).

    ``host:port`` (the GCS) and ``ray://host:port`` (Ray Client) are probed with one TCP connection; ``auto``
    probes the address Ray's temp folder records. ``local`` and unknown forms are left to Ray.

    Raises:
        ClusterUnreachable: nothing accepts a connection there within ``timeout`` seconds.
    """
    target = _recorded_cluster(None) if address == "auto" else address
    where = _host_port(target) if target else None
    if where is None:
        return
    try:
        socket.create_connection(where, timeout=timeout).close()
    except OSError as exc:
        what = f"the recorded cluster {target}" if address == "auto" else target
        raise ClusterUnreachable(
            f"Ray cluster at {what} does not answer ({exc.strerror or exc}): is the head node up, and is this its "
            "GCS address (host:6379 by default; `ray status` on the head prints it)?"
        ) from exc


def join_cluster(address: str, **kwargs: Any) -> Any:
    """``ray.init(address=address, **kwargs)`` after :func:`check_address`; returns Ray's context."""
    check_address(address)
    import ray

    return ray.init(address=address, **kwargs)


def alive_node_count() -> int:
    """Alive nodes of the connected Ray cluster."""
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive"))


class InsufficientResources(RuntimeError):
    """No alive nodes of the cluster can hold the work asked for; the message says what is missing."""


#: Seconds :func:`wait_for_resources` gives an autoscaler to add nodes (env ``INSTRUCTOR_RESOURCE_WAIT_S``).
RESOURCE_WAIT_S = 60.0


def units_that_fit(nodes: list[dict[str, Any]], per_unit: dict[str, float]) -> int:
    """How many units of ``per_unit`` resources (``{"CPU": 1, "GPU": 1}``) the alive ``nodes`` hold in total.

    ``nodes`` as ``ray.nodes()`` returns them; a unit must fit on one node, as a Ray actor or Train worker does.
    """
    needed = {k: v for k, v in per_unit.items() if v > 0}
    total = 0
    for node in nodes:
        if not node.get("Alive"):
            continue
        have = node.get("Resources", {})
        total += min((int(have.get(k, 0.0) / v + 1e-9) for k, v in needed.items()), default=0)
    return total


def wait_for_resources(per_unit: dict[str, float], units: int, what: str, timeout: float | None = None) -> None:
    """Return once the connected cluster's alive nodes can hold ``units`` units of ``per_unit``, else raise.

    A cluster that cannot hold them yet is asked to scale up (``ray.autoscaler.sdk.request_resources``; nothing
    happens without an autoscaler) and given ``timeout`` seconds (default :data:`RESOURCE_WAIT_S`, or the env var
    ``INSTRUCTOR_RESOURCE_WAIT_S``). Without this, Ray would wait for them forever.

    Raises:
        InsufficientResources: they do not fit in time; the message names the need and what each node has.
    """
    import ray

    if timeout is None:
        timeout = float(os.environ.get("INSTRUCTOR_RESOURCE_WAIT_S", RESOURCE_WAIT_S))
    nodes = ray.nodes()
    if units_that_fit(nodes, per_unit) >= units:
        return
    requested = _request_resources([per_unit] * units)
    try:  # a plain loop: tenacity is in the serve extra only, not the train and data extras that call this
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(1.0)
            nodes = ray.nodes()
            if units_that_fit(nodes, per_unit) >= units:
                return
    finally:
        if requested:
            _request_resources([])
    need = ", ".join(f"{k} {v:g}" for k, v in per_unit.items() if v > 0)
    have = "; ".join(
        f"{n.get('NodeManagerAddress', '?')} "
        + ", ".join(f"{k} {n.get('Resources', {}).get(k, 0.0):g}" for k, v in per_unit.items() if v > 0)
        for n in nodes
        if n.get("Alive")
    )
    raise InsufficientResources(
        f"{what} needs {units} x ({need}) on single nodes; after {timeout:.0f} s the cluster's alive nodes hold "
        f"{units_that_fit(nodes, per_unit)} ({have or 'no alive nodes'}). Add nodes with these resources, or ask "
        "for less (fewer workers/replicas, fewer CPUs or GPUs each)"
    )


def _request_resources(bundles: list[dict[str, float]]) -> bool:
    """Ask the cluster's autoscaler for ``bundles`` (``[]`` withdraws the request); False when that fails."""
    try:
        from ray.autoscaler.sdk import request_resources

        request_resources(bundles=bundles)
    except Exception:  # noqa: BLE001 - best effort: no autoscaler, or an older API
        logger.debug("request_resources(%s) failed", bundles, exc_info=True)
        return False
    return True


def _recorded_cluster(temp_dir: str | None) -> str | None:
    """The cluster address ``ray start`` last recorded in Ray's temp folder, if any (it may be long dead)."""
    try:
        from ray._private.utils import read_ray_address

        address = read_ray_address(temp_dir)
    except Exception:  # noqa: BLE001 - a private helper: any failure means "nothing to report"
        return None
    return str(address) if address else None


def loopback_replica_grpc() -> bool:
    """In a Serve replica of a loopback Ray, bind its inter-deployment gRPC server to 127.0.0.1.

    Ray 2.60 binds that server to ``[::]:0`` whatever the node address; callers reach it at the
    node address, which is 127.0.0.1 in a Ray started by :func:`init_local_ray`. Does nothing (and
    returns False) outside such a Ray, or when Ray's code no longer has the expected hook.
    """
    if os.environ.get(LOOPBACK_ENV) != "0":
        return False
    try:
        from ray.serve._private import replica
    except ImportError:  # pragma: no cover - Serve not installed
        return False
    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None or getattr(original, "_instructor_loopback", False):
        return original is not None

    def add_port(server: Any, address: str) -> int:
        if address.startswith("[::]:") or address.startswith("0.0.0.0:"):
            address = f"{LOOPBACK}:{address.rsplit(':', 1)[1]}"
        port: int = original(server, address)
        return port

    add_port._instructor_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port
    return True


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, timeout: float = 180.0, headers: dict[str, str] | None = None) -> None:
    """Poll ``{url}/health`` every 0.3 s until it answers 200; ``TimeoutError`` after ``timeout`` seconds.

    A connection error or another status is retried; any other error is raised as it is.
    """
    import httpx
    from tenacity import RetryError, Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

    poll = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(0.3),
        retry=retry_if_exception_type(httpx.TransportError) | retry_if_result(lambda status: status != 200),
    )
    try:
        poll(lambda: httpx.get(f"{url}/health", timeout=5, headers=headers).status_code)
    except RetryError:
        raise TimeoutError(f"the Serve app at {url} did not become healthy in {timeout:.0f}s") from None
