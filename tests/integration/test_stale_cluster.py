"""A stale ``ray_current_cluster`` record (a cluster that died uncleanly) does not hang a run without --address."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ray_backend.batch.plan import OutputDir

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_batch_without_address_starts_a_local_ray_and_says_it_ignored_the_record(ray_home: str, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    system_tmp = tempfile.mkdtemp(prefix="st-", dir="/tmp")  # Ray's default temp folder is $TMPDIR/ray
    record = Path(system_tmp) / "ray" / "ray_current_cluster"
    record.parent.mkdir()
    record.write_text("127.0.0.1:6399\n")  # what `ray start` leaves behind when its cluster dies uncleanly
    rows = tmp_path / "in.jsonl"
    rows.write_text("".join(json.dumps({"id": i, "text": f"gloss number {i}"}) + "\n" for i in range(12)))
    cmd = [sys.executable, "-m", "ray_backend.batch", "--input", str(rows), "--output", str(tmp_path / "out")]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= {"PYTHONPATH": str(ROOT), "TMPDIR": system_tmp, "HOME": ray_home, "HF_HUB_OFFLINE": "1"}
    # before the fix Ray joined the dead address and retried GCS for minutes; the timeout only guards the suite
    try:
        done = subprocess.run(cmd + ["--no-progress"], env=env, capture_output=True, text=True, timeout=240)
    finally:
        shutil.rmtree(system_tmp, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ignoring the Ray cluster recorded at 127.0.0.1:6399" in done.stderr
    assert "Connecting to existing Ray cluster" not in done.stderr
    assert OutputDir(tmp_path / "out").read().num_rows == 12
