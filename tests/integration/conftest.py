"""Local Ray for integration tests: loopback only, files under a temp dir, shut down after."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ray_home() -> Iterator[str]:
    """One temporary HOME for every Ray start of the session.

    Ray keeps its auth token in ``$HOME/.ray/auth_token`` and the driver process remembers that
    token authentication is on; a second ``ray.init`` in the same process with another (or a deleted)
    HOME finds no token and its GCS dies. One HOME for the whole session keeps the token in place,
    and keeps Ray's files out of the user's real home.
    """
    home = tempfile.mkdtemp(prefix="rayhome-", dir="/tmp")
    saved_env = dict(os.environ)
    os.environ.update({"HOME": home, "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1"})
    try:
        yield home
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        _kill_leftovers(home)
        shutil.rmtree(home, ignore_errors=True)


def _kill_leftovers(home: str) -> None:
    """SIGKILL processes that still run with ``HOME=home`` after every module shut its Ray down.

    ``ray.shutdown()`` usually takes every worker with it, but a Ray Train controller actor was once
    seen outliving its raylet (orphaned, still running after the suite). Everything the session
    started inherits this HOME, so nothing of the session outlives it.
    """
    marker = f"HOME={home}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    os.kill(int(entry), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


@pytest.fixture(scope="module")
def ray_local(ray_home: str) -> Iterator[str]:
    """Start a local Ray (2 CPUs, no dashboard) for one test module; yields its temp dir.

    Run these tests inside a loopback-only network namespace (``make test`` does that as root):
    Ray binds external interfaces otherwise. The temp dir is short because Ray's socket paths
    must stay under 108 bytes.
    """
    ray = pytest.importorskip("ray")
    tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    ray.init(
        num_cpus=int(os.environ.get("TEST_RAY_CPUS", "2")),
        include_dashboard=False,
        _temp_dir=tmp,
        log_to_driver=False,
        runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}},
    )
    try:
        yield tmp
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


CLUSTER_WORKERS = 3


@contextmanager
def _test_cluster(dashboard_port: int | None = None) -> Iterator[Any]:
    """Ray's test cluster: a head with 0 CPUs and three 1-CPU worker raylets, on loopback.

    Several raylets on one machine, as Ray's own test suite runs multi-node tests; each worker node has a
    custom resource ``worker<i>`` and a Ray folder of its own. Started with no AWS environment (checked), like a
    cluster we did not start.
    With ``dashboard_port`` the head runs the dashboard (the job server of ``ray job submit``) on 127.0.0.1.
    Run inside the loopback-only namespace (``make test``).
    """
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    from ray._private.utils import get_ray_address_file

    aws = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")
    assert not any(k in os.environ for k in aws), "the cluster must start without an AWS environment"
    tmp = tempfile.mkdtemp(prefix="rayc-", dir="/tmp")
    # Cluster records its address in Ray's default temp folder (/tmp/ray/ray_current_cluster) whatever
    # temp_dir says; on a fresh machine that folder does not exist yet. The record is put back afterwards.
    record = Path(get_ray_address_file(None))
    record.parent.mkdir(parents=True, exist_ok=True)
    saved = record.read_bytes() if record.exists() else None
    args: dict[str, Any] = {"node_ip_address": "127.0.0.1", "include_dashboard": False, "temp_dir": tmp}
    head = {"num_cpus": 0, **args}
    if dashboard_port is not None:
        head |= {"include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": dashboard_port}
    try:
        cluster = cluster_utils.Cluster(initialize_head=True, head_node_args=head)
        for i in range(CLUSTER_WORKERS):
            # each node its own Ray folder, as on separate machines: nodes that share one would share the runtime
            # env cache, and a worker node's agent then replaces a job's working_dir under the running driver
            own = os.path.join(tmp, f"w{i}")
            os.mkdir(own)
            cluster.add_node(num_cpus=1, resources={f"worker{i}": 1}, node_ip_address="127.0.0.1", temp_dir=own)
        cluster.wait_for_nodes()
        try:
            yield cluster
        finally:
            cluster.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if saved is None:
            record.unlink(missing_ok=True)
        else:
            record.write_bytes(saved)


@pytest.fixture(scope="module")
def cluster(ray_home: str) -> Iterator[Any]:
    """Ray's test cluster (:func:`_test_cluster`) for one module, without a dashboard."""
    with _test_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def job_cluster(ray_home: str) -> Iterator[tuple[Any, str]]:
    """Ray's test cluster with the job server on the head; yields it and the ``ray job submit`` address."""
    from ray_backend.net import free_port

    port = free_port()
    with _test_cluster(dashboard_port=port) as c:
        yield c, f"http://127.0.0.1:{port}"
