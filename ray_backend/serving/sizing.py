"""How many CPUs a Serve replica reserves and how many torch threads it runs (pure; no Ray, no torch).

With no ``num_cpus`` given, CPU replicas share the node: each one reserves ``node CPUs / replicas``
and runs ``max(1, floor(node CPUs / replicas))`` torch intra-op threads. Why the reservation is the
share and not a token fraction:

- Ray's CPU accounting stays honest: a batch job or another app on the same cluster is not
  scheduled onto cores the encoder replicas already keep busy.
- N replicas fit on the node exactly. The share is rounded *down* to Ray's resource granularity
  (:data:`RAY_RESOURCE_UNIT`): 3 replicas on 2 CPUs reserve 0.6666 each (3 x 0.6667 would be 2.0001,
  and the third replica would never be placed). More replicas than CPUs still fit (fractional
  reservations), each with one thread.
- The threads are a whole number not above the share, so the replicas' threads together never
  oversubscribe the node's cores.

With autoscaling the share is taken over ``max_replicas`` (every replica Serve may start fits). An
explicit ``num_cpus`` keeps its meaning: that reservation, and ``max(1, round(num_cpus))`` threads;
an explicit ``torch_threads`` always wins. GPU replicas (``num_gpus > 0``) keep one CPU and one
thread unless told otherwise: the GPU does the work, the CPU share belongs to other replicas.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["RAY_RESOURCE_UNIT", "ReplicaSizing", "local_cpus", "node_cpus", "replica_count", "size_replica"]

RAY_RESOURCE_UNIT = 1e-4
"""Ray stores fractional resources in units of 1/10,000."""


@dataclass(frozen=True)
class ReplicaSizing:
    """CPUs reserved and torch threads of one replica, and where the numbers came from.

    Attributes:
        num_cpus: the Ray actor's CPU reservation.
        torch_threads: torch intra-op threads (``torch.set_num_threads``).
        source: ``"share"`` (node CPUs / replicas), ``"num_cpus"`` (given), or ``"gpu"`` (GPU replica default).
        node_cpus: CPUs of the node the share was taken of (``None`` unless ``source == "share"``).
        replicas: replicas sharing the node (``None`` unless ``source == "share"``).
    """

    num_cpus: float
    torch_threads: int
    source: Literal["share", "num_cpus", "gpu"]
    node_cpus: float | None = None
    replicas: int | None = None


def size_replica(
    *,
    num_cpus: float | None,
    torch_threads: int | None,
    num_gpus: float,
    replicas: int,
    node_cpus: float,
) -> ReplicaSizing:
    """The reservation and thread count of one replica (see the module docstring for the rules).

    Args:
        num_cpus: explicit CPUs per replica, or ``None`` for the default.
        torch_threads: explicit threads, or ``None`` to derive them.
        num_gpus: GPUs per replica.
        replicas: replicas that share the node (``num_replicas``, or autoscaling's ``max_replicas``).
        node_cpus: the node's CPUs (Ray's ``CPU`` resource).

    Raises:
        ValueError: ``replicas < 1``, or a negative ``node_cpus``, ``num_cpus`` or ``torch_threads < 1``.
    """
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas!r}")
    if node_cpus < 0 or (num_cpus is not None and num_cpus < 0):
        raise ValueError(f"CPU counts must be >= 0, got node_cpus={node_cpus!r}, num_cpus={num_cpus!r}")
    if torch_threads is not None and torch_threads < 1:
        raise ValueError(f"torch_threads must be >= 1, got {torch_threads!r}")
    if num_cpus is not None:
        return ReplicaSizing(num_cpus, torch_threads or max(1, round(num_cpus)), "num_cpus")
    if num_gpus > 0:
        return ReplicaSizing(1.0, torch_threads or 1, "gpu")
    share = node_cpus / replicas
    units = math.floor(share / RAY_RESOURCE_UNIT + 1e-9)  # + epsilon: 4/2 must not become 1.9999
    reserved = round(units * RAY_RESOURCE_UNIT, 4)
    threads = torch_threads or max(1, math.floor(share + 1e-9))
    return ReplicaSizing(reserved, threads, "share", node_cpus, replicas)


def replica_count(num_replicas: int, autoscaling_config: Mapping[str, Any] | None) -> int:
    """Replicas to size for: ``num_replicas``, or ``max_replicas`` under autoscaling (Serve's default 1)."""
    if autoscaling_config is None:
        return num_replicas
    return max(1, int(autoscaling_config.get("max_replicas", 1)))


def local_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def node_cpus() -> float:
    """CPUs of the node the replicas land on.

    The largest alive node's ``CPU`` resource when Ray is connected (the CLI, ``serve run`` and
    ``serve deploy`` build the app with Ray connected), else this machine's CPUs (:func:`local_cpus`).
    """
    try:
        import ray
    except ImportError:  # pragma: no cover - the serve extra brings Ray
        return float(local_cpus())
    if not ray.is_initialized():
        return float(local_cpus())
    cpus = [float(n.get("Resources", {}).get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")]
    return max(cpus, default=float(local_cpus()))
