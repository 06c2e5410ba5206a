"""Batch embedding on a multi-node Ray cluster we did not start, to S3, losing a node part-way.

The cluster is the ``cluster`` fixture of ``tests/integration/conftest.py`` (Ray's ``ray.cluster_utils.Cluster``:
a head with no CPUs and three 1-CPU worker raylets on this machine). It is started BEFORE the S3 server and its
AWS environment exist, so its nodes have no AWS environment of their own, as on a cluster someone else started;
the job is submitted from a separate driver with ``--address``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from instructor_plugins.model import InstructorEncoder
from ray_backend.batch.plan import MANIFEST_NAME, OutputDir
from tests.batch_data import INSTRUCTION, cosines, offline_rows, vectors, write_rows
from tests.medi_data import write_medi_sample
from tests.s3 import s3_server, upload

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
IN = "s3://cluster-bucket/in"
OUT = "s3://cluster-bucket/out"


def batch(args: list[str], log: Path, cluster: Any) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "ray_backend.batch", *args, "--no-progress", "--address", cluster.address]
    env = os.environ | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    with log.open("ab") as fh:
        return subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def test_node_lost_part_way_every_id_once_and_local_output_refused(
    cluster: Any, tmp_path: Path, bundled_encoder: InstructorEncoder
) -> None:
    rows = offline_rows(480)
    with s3_server("cluster-bucket"):
        upload(write_rows(rows, tmp_path / "a.parquet"), f"{IN}/a.parquet")
        log = tmp_path / "driver.log"

        # a local output on a cluster of several nodes is refused before any work
        local = batch(["--input", f"{IN}/", "--output", str(tmp_path / "out")], log, cluster)
        assert local.wait(timeout=300) == 2, log.read_text()[-3000:]
        assert "is a local path, and this Ray cluster has 4 nodes" in log.read_text()
        assert not (tmp_path / "out").exists()

        args = ["--input", f"{IN}/", "--output", OUT, "--instruction", INSTRUCTION, "--rows-per-shard", "40"]
        args += ["--replicas", "2", "--batch-size", "20"]
        proc = batch(args, log, cluster)
        out = OutputDir(OUT)
        deadline = time.monotonic() + 300
        while not out.shards():
            assert proc.poll() is None, f"driver exited early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no shard written in time"
            time.sleep(0.2)
        first = next(iter(out.shards().values()))
        victim_id = out.shard_node(first)
        victims = [n for n in cluster.worker_nodes if n.node_id == victim_id]
        assert victims, f"the first shard names node {victim_id}, not one of the worker nodes"
        cluster.remove_node(victims[0])  # the node of a working actor, mid-run
        rc = proc.wait(timeout=600)
        resumed = None
        if rc != 0:  # the job may fail over by itself; if it does not, it says so and --resume finishes it
            assert "error" in log.read_text().lower() or "Error" in log.read_text(), log.read_text()[-3000:]
            resumed = batch([*args, "--resume"], log, cluster)
            assert resumed.wait(timeout=600) == 0, log.read_text()[-3000:]
        assert out.file(MANIFEST_NAME).exists(), log.read_text()[-3000:]
        table = out.read()
        ids = table["id"].to_pylist()
        assert ids == [r["id"] for r in rows] and len(set(ids)) == len(ids)
        expected = bundled_encoder.encode([r["text"] for r in rows], INSTRUCTION, batch_size=64)
        assert cosines(vectors(table), expected).min() >= 0.99999
        nodes = {out.shard_node(loc) for loc in out.shards().values()}
        alive = {n.node_id for n in cluster.worker_nodes}
        print(f"\ndriver rc {rc}, resumed: {resumed is not None}; shards by {len(nodes)} nodes; lost {victim_id[:8]}")
        assert len(nodes) >= 2 and victim_id in nodes and nodes - {victim_id} <= alive


def test_training_with_local_storage_on_several_nodes_is_refused(cluster: Any, tmp_path: Path) -> None:
    """Ray Train needs storage every worker sees: a local --storage-path exits 2 before any worker starts."""
    data = write_medi_sample(tmp_path / "sample.json", per_task=8, tasks=2)
    cmd = [sys.executable, "-m", "training.train", "--data", str(data), "--output", str(tmp_path / "model")]
    cmd += ["--num-workers", "2", "--batch-size", "8", "--steps", "2", "--storage-path", str(tmp_path / "store")]
    env = os.environ | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": cluster.address}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    alive = 1 + len(cluster.worker_nodes)  # the first test removed one node
    assert f"--storage-path is a local path, and this Ray cluster has {alive} nodes" in done.stderr
    assert not (tmp_path / "model").exists()
