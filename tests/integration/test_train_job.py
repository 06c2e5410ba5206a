"""``ray job submit`` of the trainer against a local head node bound to 127.0.0.1.

The head node runs in its own PID namespace (``unshare --pid --mount-proc``), so the final
``ray stop --force`` sees, and stops, only this test's Ray processes, never another cluster on the
machine. Run inside a loopback-only network namespace like the other integration tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from instructor_plugins.model import InstructorEncoder
from ray_backend.net import free_port
from tests.medi_data import write_medi_sample

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
set -u
trap 'ray stop --force >/dev/null 2>&1' EXIT
ray start --head --node-ip-address 127.0.0.1 --port {port} --dashboard-host 127.0.0.1 --dashboard-port {dash} \
    --num-cpus 2 --temp-dir {ray_tmp} --disable-usage-stats >{tmp}/ray_start.log 2>&1 \
    || {{ cat {tmp}/ray_start.log; exit 3; }}
ray job submit --address http://127.0.0.1:{dash} --working-dir {repo} \
    --runtime-env-json '{{"env_vars": {{"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}}}}' \
    -- python -m training.train --data {data} --output {tmp}/out --num-workers 2 --batch-size 8 --steps 2 \
    --max-seq-length 32 --checkpoint-every 2 --storage-path {tmp}/storage
"""


def test_trainer_runs_as_a_ray_job(tmp_path: Path):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--pid", "--fork", "true"]).returncode != 0:
        pytest.skip("needs `unshare --pid` (root) to keep `ray stop` away from other Ray clusters")
    data = write_medi_sample(tmp_path / "sample.json", per_task=8, tasks=2)
    ray_tmp = tempfile.mkdtemp(prefix="rj-", dir="/tmp")  # Ray's socket paths must stay under 108 bytes
    script = SCRIPT.format(port=free_port(), dash=free_port(), tmp=tmp_path, ray_tmp=ray_tmp, repo=REPO, data=data)
    bin_dir = str(Path(sys.executable).parent)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        proc = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", "bash", "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=480,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "succeeded" in out, out[-4000:]
    assert (tmp_path / "out" / "loss_curve.png").is_file()
    history = json.loads((tmp_path / "out" / "train_history.json").read_text())["history"]
    assert [r["step"] for r in history] == [0, 1]
    encoder = InstructorEncoder.load(tmp_path / "out", device="cpu")
    assert encoder.encode(["a word"], "Represent the word: ").shape == (1, encoder.dim)
