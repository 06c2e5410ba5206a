"""Joining a cluster: an address that does not answer fails fast; what fits on a cluster's nodes; waiting for
/health (no Ray started)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ray_backend.net import ClusterUnreachable, check_address, free_port, units_that_fit, wait_healthy


def node(alive: bool = True, **resources: float) -> dict[str, Any]:
    """A ``ray.nodes()`` record with ``resources``."""
    return {"Alive": alive, "NodeManagerAddress": "10.0.0.1", "Resources": resources}


@pytest.mark.parametrize(
    ("nodes", "per_unit", "fits"),
    [
        ([node(CPU=0), node(CPU=1), node(CPU=1)], {"CPU": 1}, 2),  # a 0-CPU head holds none
        ([node(CPU=0), node(CPU=1), node(CPU=1)], {"CPU": 2}, 0),  # 2 CPUs in total, but never on one node
        ([node(CPU=4), node(CPU=3)], {"CPU": 2}, 3),  # 2 + 1, per node
        ([node(CPU=8, GPU=1), node(CPU=8)], {"CPU": 1, "GPU": 1}, 1),  # the GPU decides
        ([node(CPU=8, GPU=2), node(False, CPU=8, GPU=2)], {"CPU": 1, "GPU": 1}, 2),  # a dead node holds none
        ([node(CPU=2)], {"CPU": 1, "GPU": 0}, 2),  # a zero need is no need
        ([node(CPU=1.5)], {"CPU": 0.5}, 3),  # fractions
        ([node(CPU=0.3)], {"CPU": 0.1}, 3),  # float rounding does not lose a unit
        ([], {"CPU": 1}, 0),
    ],
)
def test_units_that_fit_count_per_node(nodes: list[dict[str, Any]], per_unit: dict[str, float], fits: int) -> None:
    assert units_that_fit(nodes, per_unit) == fits


@pytest.mark.parametrize("form", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_an_address_nothing_listens_on_fails_fast_and_names_it(form: str) -> None:
    address = form.format(port=free_port())
    start = time.monotonic()
    with pytest.raises(ClusterUnreachable, match=f"Ray cluster at {address} does not answer"):
        check_address(address)
    assert time.monotonic() - start < 5  # refused at once, not after Ray's minutes of GCS retries


def test_an_answering_address_and_forms_left_to_ray_pass() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_address(f"127.0.0.1:{server.getsockname()[1]}")  # something answers: Ray takes it from here
    check_address("local")  # not an address to probe
    check_address("http://head:8265/")  # no port of a GCS: left to Ray (and its own error)


def test_auto_probes_the_recorded_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray_backend.net as net

    dead = f"127.0.0.1:{free_port()}"
    monkeypatch.setattr(net, "_recorded_cluster", lambda temp_dir: dead)
    with pytest.raises(ClusterUnreachable, match=f"the recorded cluster {dead} does not answer"):
        check_address("auto")
    monkeypatch.setattr(net, "_recorded_cluster", lambda temp_dir: None)
    check_address("auto")  # nothing recorded: Ray says so itself


@pytest.fixture
def health_server() -> Iterator[tuple[str, list[int]]]:
    """A loopback server whose ``/health`` answers the statuses queued in the list, then 200; and its URL."""
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(statuses.pop(0) if statuses else 200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", statuses
    finally:
        server.shutdown()
        server.server_close()


def test_wait_healthy_retries_until_200(health_server: tuple[str, list[int]]) -> None:
    url, statuses = health_server
    statuses.extend([503, 503, 500])
    wait_healthy(url, timeout=10)
    assert statuses == []  # asked until the 200


def test_wait_healthy_times_out_with_a_timeout_error(health_server: tuple[str, list[int]]) -> None:
    url, statuses = health_server
    statuses.extend([503] * 1000)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=f"the Serve app at {url} did not become healthy in 1s"):
        wait_healthy(url, timeout=1.0)
    assert 1.0 <= time.monotonic() - start < 5
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection errors are retried too
    with pytest.raises(TimeoutError, match="did not become healthy"):
        wait_healthy(dead, timeout=0.5)
