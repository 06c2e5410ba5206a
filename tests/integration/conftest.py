"""Local Ray for integration tests: loopback only, files under a temp dir, shut down after."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest


def _ray_env(tmp: str) -> dict[str, str]:
    return {"HOME": tmp, "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1"}


@pytest.fixture(scope="module")
def ray_local() -> Iterator[str]:
    """Start a local Ray (2 CPUs, no dashboard) for one test module; yields its temp dir.

    Run these tests inside a loopback-only network namespace (``make test`` does that as root):
    Ray binds external interfaces otherwise.
    """
    ray = pytest.importorskip("ray")
    tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    # ray.init() also sets variables of its own (e.g. RAY_AUTH_MODE); restore the whole environment after.
    saved_env = dict(os.environ)
    os.environ.update(_ray_env(tmp))
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
        os.environ.clear()
        os.environ.update(saved_env)
        shutil.rmtree(tmp, ignore_errors=True)
