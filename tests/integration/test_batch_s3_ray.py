"""S3 -> S3 batch embedding on a local Ray against a real S3 server on 127.0.0.1 (moto): kill, resume, exactly once.

The S3 server starts before Ray so that Ray's workers inherit the AWS environment (endpoint, credentials),
as they would on a cluster configured through the standard AWS variables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from instructor_plugins.model import InstructorEncoder
from ray_backend.batch import BatchConfig, run_batch
from ray_backend.batch.plan import MANIFEST_NAME, OutputDir
from tests.batch_data import INSTRUCTION, cosines, offline_rows, vectors, write_rows
from tests.s3 import SECRET_KEY, upload

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
IN = "s3://test-bucket/job/in"
OUT = "s3://test-bucket/job/out"


@pytest.fixture(scope="module")
def s3_ray(s3_endpoint: str, ray_local: str) -> str:
    """The S3 server first, then Ray (whose workers inherit the AWS environment)."""
    return s3_endpoint


def test_s3_to_s3_killed_and_resumed_gives_every_id_once(
    s3_ray: str, tmp_path: Path, bundled_encoder: InstructorEncoder
) -> None:
    import ray

    rows = offline_rows(900)
    upload(write_rows(rows[:500], tmp_path / "a.parquet"), f"{IN}/a.parquet")
    upload(write_rows(rows[500:], tmp_path / "b.jsonl"), f"{IN}/part/b.jsonl")
    args = ["--input", f"{IN}/", "--output", OUT, "--instruction", INSTRUCTION, "--rows-per-shard", "100"]
    cmd = [sys.executable, "-m", "ray_backend.batch", *args, "--replicas", "2", "--no-progress", "--batch-size", "50"]
    cmd += ["--address", ray.get_runtime_context().gcs_address]
    out = OutputDir(OUT)
    log = tmp_path / "driver.log"
    with log.open("wb") as fh:
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 300
        while not out.shards():
            assert proc.poll() is None, f"driver exited early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no shard written in time"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not out.file(MANIFEST_NAME).exists()
    done_before = sorted(out.shards())
    assert 0 < len(done_before) < 9, "the kill must land part-way"
    assert SECRET_KEY not in log.read_text()

    config = BatchConfig(
        input=f"{IN}/",
        output=OUT,
        instruction=INSTRUCTION,
        rows_per_shard=100,
        replicas=2,
        batch_size=50,
        progress=False,
        resume=True,
    )
    manifest = run_batch(config)
    assert manifest.units == 9 and manifest.units_skipped >= len(done_before) and manifest.rows_out == 900
    table = out.read()
    ids = table["id"].to_pylist()
    assert ids == [r["id"] for r in rows] and len(set(ids)) == len(ids)
    expected = bundled_encoder.encode([r["text"] for r in rows], INSTRUCTION, batch_size=64)
    assert cosines(vectors(table), expected).min() >= 0.99999
    assert not out.file("_lock.json").exists()
