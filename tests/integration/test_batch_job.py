"""``ray job submit`` of the batch CLI to a local head node bound to 127.0.0.1 (loopback-only namespace).

The head node runs as ``ray start --head --block`` in its own process group; teardown signals that
group and then kills, by pid, only the processes descended from the head (``ray stop`` would kill every
Ray process of the machine, including other users' clusters).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from instructor_plugins.model import InstructorEncoder
from ray_backend.batch.plan import OutputDir
from ray_backend.net import free_port
from tests.batch_data import INSTRUCTION, cosines, offline_rows, vectors, write_rows

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))


def _descendants(pid: int) -> list[int]:
    """Pids of every live descendant of ``pid`` (from /proc; no psutil here)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    pids = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # our head's own process group (start_new_session=True)
    except ProcessLookupError:
        pass  # the head already exited (e.g. `ray start` failed)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pid in pids + _descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def head_node() -> Iterator[tuple[str, dict[str, str]]]:
    """A local head node with the job server (dashboard) on 127.0.0.1; yields its address and env."""
    tmp = tempfile.mkdtemp(prefix="rayjob-", dir="/tmp")
    # ray.init() in an earlier module leaves RAY_AUTH_MODE=token in os.environ, which makes `ray start`
    # demand an existing token: start from the environment without Ray's leftovers.
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")} | {
        "HOME": tmp,
        "RAY_USAGE_STATS_ENABLED": "0",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    dashboard = free_port()
    cmd = [RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(free_port())]
    cmd += ["--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard)]
    cmd += ["--num-cpus", "2", "--temp-dir", tmp, "--disable-usage-stats"]
    log = Path(tmp) / "head.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"ray start failed:\n{log.read_text()[-3000:]}"
            try:
                urllib.request.urlopen(f"{address}/api/version", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # the server answers (maybe 401 without a token): it is up
            except OSError:
                assert time.monotonic() < deadline, f"dashboard not up:\n{log.read_text()[-3000:]}"
                time.sleep(0.5)
        yield address, env
    finally:
        try:
            _kill_tree(proc)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def test_ray_job_submit_runs_the_batch_cli(
    head_node: tuple[str, dict[str, str]], tmp_path: Path, bundled_encoder: InstructorEncoder
) -> None:
    address, env = head_node
    rows = offline_rows(200)
    inp = write_rows(rows, tmp_path / "in.parquet")
    out_dir = tmp_path / "out"
    entry = [sys.executable, "-m", "ray_backend.batch", "--input", str(inp), "--output", str(out_dir)]
    entry += ["--instruction", INSTRUCTION, "--rows-per-shard", "100", "--replicas", "2", "--no-progress"]
    submit = [RAY, "job", "submit", "--address", address, "--working-dir", str(ROOT), "--", *entry]
    done = subprocess.run(submit, env=env, cwd=ROOT, capture_output=True, text=True, timeout=400)
    logs = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, logs
    assert "succeeded" in done.stdout, logs
    assert '"rows_out": 200' in done.stdout  # the CLI prints its manifest
    out = OutputDir(out_dir).read()
    assert out["id"].to_pylist() == [r["id"] for r in rows]
    expected = bundled_encoder.encode([r["text"] for r in rows], INSTRUCTION)
    assert cosines(vectors(out), expected).min() >= 0.99999
    assert np.isfinite(vectors(out)).all()
