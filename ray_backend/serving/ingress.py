"""Where HTTP requests enter the Serve app: Ray Serve's proxy, or the replica itself (direct ingress).

Through the proxy, every request crosses two processes: the HTTP proxy parses it and forwards it
to a replica as a Ray actor call. With Ray's direct ingress (Ray >= 2.60,
``RAY_SERVE_ENABLE_DIRECT_INGRESS=1``) each ingress replica answers HTTP on a port of its own,
with no hop. On 2 CPU cores, 8 clients of 1-text requests, the same run: 136-143 req/s on the
replica's port against 69-71 through the proxy (README, "Where requests enter").

``instructor serve --ingress`` chooses (:func:`plan_ingress`, pure, so the CLI, the benchmarks and
the tests share it):

- ``auto`` (default): ``direct`` when this command starts its own Ray and serves a fixed single
  replica; otherwise ``proxy``. One replica is where the proxy is pure cost; with several, the
  proxy is what spreads requests over them.
- ``direct``: replica *i* answers on ``--port`` + *i*. The proxy still runs, on a free loopback
  port (or ``--proxy-port``), and spreads requests over all replicas.
- ``proxy``: the proxy answers on ``--port`` (Ray Serve's usual set-up).

Direct ingress is a setting of the Ray cluster (its controller allocates the replicas' ports from
a range read from the environment when the cluster starts), so it can only be chosen by a command
that starts Ray itself; on a cluster you join (``--address``), start the cluster with
``RAY_SERVE_ENABLE_DIRECT_INGRESS=1`` and the port-range variables of :func:`direct_ingress_env`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "IngressChoice",
    "IngressError",
    "IngressPlan",
    "THROUGHPUT_ENV",
    "direct_ingress_env",
    "plan_ingress",
    "ray_has_direct_ingress",
]

IngressChoice = Literal["auto", "proxy", "direct"]

# Seconds a stopping direct-ingress replica keeps answering so an external load balancer notices
# (Ray's default is 30, meant for HAProxy in front of many nodes). Nothing sits in front of our
# replica ports, so a short drain keeps `serve delete` / shutdown / redeploys fast.
DRAIN_S = 1.0


# Ray's own preset for serving throughput (its KubeRay "high throughput" guide), set with direct ingress: user code
# and router on the replica's main event loop instead of a thread of their own, gRPC from the proxy to replicas,
# Python's GC frozen after start-up. 8 clients of 1-text requests on one direct-ingress replica (2 CPU cores):
# 0.99x Ray's defaults on chatterbot answers, 1.08x on one short text (results/serving.md). Replica logs
# still go to stderr (the preset turns that off), so `instructor serve` keeps showing a replica's warnings.
THROUGHPUT_ENV = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_LOG_TO_STDERR": "1"}

DIRECT_MIN_RAY = (2, 60)  # the release whose direct ingress (and its port-range variables) this module drives


def ray_has_direct_ingress(version: str) -> bool:
    """Whether Ray ``version`` (e.g. ``"2.60.0"``, ``"3.0.0.dev0"``) has the direct ingress configured here."""
    major, minor = (version.split(".") + ["0"])[:2]
    return (int(major), int("".join(c for c in minor if c.isdigit()) or 0)) >= DIRECT_MIN_RAY


class IngressError(ValueError):
    """The requested ingress cannot be set up (bad ports, or direct ingress on a joined cluster)."""


@dataclass(frozen=True)
class IngressPlan:
    """Where requests enter: the proxy's port and, for direct ingress, each replica's port."""

    mode: Literal["proxy", "direct"]
    proxy_port: int
    replica_ports: tuple[int, ...] = ()

    @property
    def port(self) -> int:
        """The port clients should use: the first replica's (direct) or the proxy's."""
        return self.replica_ports[0] if self.replica_ports else self.proxy_port

    def env(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment variables Ray must start with (empty for ``proxy``).

        ``environ`` (the caller's environment): a variable of :data:`THROUGHPUT_ENV` already set there is left
        out, so a user's own ``RAY_SERVE_THROUGHPUT_OPTIMIZED=0`` wins.
        """
        if self.mode == "proxy":
            return {}
        env = direct_ingress_env(self.replica_ports[0], len(self.replica_ports))
        return {k: v for k, v in env.items() if not (k in THROUGHPUT_ENV and environ and k in environ)}


def direct_ingress_env(first_port: int, replicas: int) -> dict[str, str]:
    """The variables that make a Ray cluster give its ingress replicas ports ``first_port`` + 0..N-1.

    Ray's allocator hands out ``range(MIN, MAX)`` (MAX exclusive). A freed port is not quarantined
    (the quarantine protects HAProxy set-ups), so a replaced replica gets its port back at once.
    """
    return {
        **THROUGHPUT_ENV,
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(first_port),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(first_port + replicas),
        "RAY_SERVE_PORT_QUARANTINE_S": "0",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": str(DRAIN_S),
    }


def plan_ingress(
    choice: IngressChoice,
    *,
    port: int,
    replicas: int | None,
    starts_ray: bool,
    proxy_port: int | None = None,
    free_port: Callable[[], int],
    direct_supported: bool = True,
) -> IngressPlan:
    """Decide the ingress of ``instructor serve``.

    Args:
        choice: ``auto``, ``proxy`` or ``direct`` (see the module docstring).
        port: the port the user asked for (``--port``).
        replicas: the fixed replica count, or None under autoscaling (a varying count).
        starts_ray: whether this command starts its own Ray (False with ``--address``).
        proxy_port: the proxy's port under direct ingress; None = ``free_port()``.
        free_port: gives a free loopback port (injected so the planning stays pure).
        direct_supported: whether the installed Ray has direct ingress (:func:`ray_has_direct_ingress`);
            without it ``auto`` means ``proxy``.

    Raises:
        IngressError: ``direct`` on a joined cluster or under autoscaling, ports outside 1..65535,
            or a proxy port among the replicas' ports.
    """
    if choice not in ("auto", "proxy", "direct"):
        raise IngressError(f"ingress must be auto, proxy or direct, got {choice!r}")
    if choice == "direct" and not starts_ray:
        raise IngressError(
            "--ingress direct needs a Ray started by this command: on a cluster you join, direct ingress is the "
            "cluster's setting (start it with RAY_SERVE_ENABLE_DIRECT_INGRESS=1); use --ingress proxy or auto"
        )
    if choice == "direct" and not direct_supported:
        wanted = ".".join(map(str, DIRECT_MIN_RAY))
        raise IngressError(f"--ingress direct needs Ray >= {wanted}; use --ingress proxy or auto")
    if choice == "direct" and replicas is None:
        raise IngressError("--ingress direct needs a fixed replica count (each replica gets a port); not autoscaling")
    direct = choice == "direct" or (choice == "auto" and starts_ray and replicas == 1 and direct_supported)
    if not direct:
        return IngressPlan("proxy", _checked(port, "--port"))
    assert replicas is not None
    ports = tuple(_checked(port + i, "--port + replicas - 1") for i in range(replicas))
    proxy = _checked(proxy_port if proxy_port is not None else free_port(), "--proxy-port")
    if proxy in ports:
        raise IngressError(f"--proxy-port {proxy} is one of the replicas' ports {ports[0]}..{ports[-1]}")
    return IngressPlan("direct", proxy, ports)


def _checked(port: int, what: str) -> int:
    if not 1 <= port <= 65535:
        raise IngressError(f"{what} must be a TCP port in 1..65535, got {port}")
    return port
