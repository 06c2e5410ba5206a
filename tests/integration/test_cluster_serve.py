"""Serve across nodes: two replicas on two worker nodes behind the head's proxy; one node removed under load.

The cluster is the ``cluster`` fixture (``tests/integration/conftest.py``): a 0-CPU head (Serve's controller
and HTTP proxy) and three 1-CPU worker raylets, so two 1-CPU replicas land on two different worker nodes and a
replacement has a third node to go to. The test process joins it as a driver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from instructor_plugins.model import InstructorEncoder
from instructor_plugins.serve_client import ServeBackend
from ray_backend.net import free_port, wait_healthy
from tests.integration.test_serve import Load, running_replicas

pytestmark = [pytest.mark.integration, pytest.mark.slow]
APP = "spread"
TEXTS = ["what is the boiling point of water", "a domesticated carnivorous mammal"]


@pytest.fixture(scope="module")
def served(cluster: Any) -> Iterator[str]:
    import ray
    from ray import serve

    from ray_backend.serve import build_app

    ray.init(address=cluster.address, log_to_driver=False)
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port, "location": "HeadOnly"})
        serve.run(build_app({"num_replicas": 2, "num_cpus": 1}), name=APP, route_prefix="/")
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        yield url
    finally:
        serve.shutdown()
        ray.shutdown()


def replica_nodes(url: str, tries: int = 40) -> set[str]:
    """The nodes that answered ``/info`` (each replica reports its Ray node id)."""
    with httpx.Client(timeout=30) as http:
        return {http.get(f"{url}/info").json()["node"] for _ in range(tries)}


class BackendLoad:
    """One ServeBackend client (retries, backoff) embedding back to back; counts what it could not embed."""

    def __init__(self, url: str) -> None:
        self.backend = ServeBackend(url, max_retries=8, timeout=60)
        self.stop = threading.Event()
        self.done, self.lost, self.vectors = 0, [], []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.vectors.append(self.backend.embed(TEXTS))
                self.done += 1
            except Exception as exc:  # noqa: BLE001 - every loss is recorded and asserted on
                self.lost.append(repr(exc))

    def __enter__(self) -> BackendLoad:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(120)


def test_a_node_removed_under_load_loses_nothing_for_serve_backend(
    cluster: Any, served: str, bundled_encoder: InstructorEncoder
) -> None:
    workers = {n.node_id: n for n in cluster.worker_nodes}
    before = replica_nodes(served)
    assert len(before) == 2 and before <= set(workers), f"replicas on {before}, workers {set(workers)}"
    victim = sorted(before)[0]
    with BackendLoad(served) as backend, Load(served, clients=2) as raw:
        time.sleep(3)
        removed_at = time.monotonic()
        cluster.remove_node(workers[victim])
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if running_replicas(APP) == 2:
                nodes = replica_nodes(served, tries=20)
                if len(nodes) == 2 and victim not in nodes:
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"Serve did not get back to 2 replicas off the lost node: {running_replicas(APP)}")
        back_at = time.monotonic()
        time.sleep(3)  # both replicas take traffic
    after = replica_nodes(served)
    failures = raw.failures()
    late = [f for f in failures if f[0] > removed_at]
    print(
        f"\nnode removed under load: ServeBackend {backend.done} calls, {len(backend.lost)} lost; raw clients "
        f"{len(raw.outcomes)} requests, {len(failures)} failed ({len(late)} started after the removal); "
        f"2 replicas again after {back_at - removed_at:.1f} s, on {sorted(n[:8] for n in after)}"
    )
    assert not backend.lost, backend.lost  # a proxy's 500 for the lost replica is retried once (ServeBackend)
    assert len(failures) <= 2, failures  # raw clients: at most the requests in flight (2 clients, one each)
    assert backend.done > 0 and sum(1 for o in raw.outcomes if o[0] > back_at) > 0
    want = bundled_encoder.encode(TEXTS)
    for got in backend.vectors[-3:]:
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert victim not in after and after <= set(workers) - {victim}
