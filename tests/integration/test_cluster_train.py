"""Ray Train across nodes: 2 workers on 2 worker nodes, checkpoints on S3, one worker's node removed mid-run.

The cluster is the ``cluster`` fixture (``tests/integration/conftest.py``: a 0-CPU head and three 1-CPU worker
raylets), started before the S3 server (moto on 127.0.0.1) exists, so no node has an AWS environment of its own;
the data, the checkpoints and the model are all on S3.
``instructor train`` runs as a separate driver with ``RAY_ADDRESS``. Every step's record carries the Ray node of
the worker that ran it, and the checkpoint its attempt started from (``resumed_from``). On object storage a rank
publishes its steps at each checkpoint it writes; steps that the lost attempt ran after the last checkpoint Ray
Train registered stay in the log under that attempt and are run again by the next one. The model's own history
(``train_history.json``) has each planned step once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest

from instructor_plugins.model import InstructorEncoder
from instructor_plugins.storage import resolve
from tests.medi_data import write_medi_sample
from tests.s3 import s3_server, upload
from training.batching import TaskBatchSampler
from training.medi import load_medi
from training.storage import read_step_log
from training.worker import batch_checksum

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
RUN = "s3://train-bucket/storage/run"
STEPS = 10


def checkpoints(location: Any) -> list[str]:
    infos = location.fs.get_file_info(pafs.FileSelector(location.path, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.base_name.startswith("checkpoint_"))


def test_a_worker_node_removed_mid_run_resumes_from_s3_each_step_once(cluster: Any, tmp_path: Path) -> None:
    data = write_medi_sample(tmp_path / "sample.json", per_task=16, tasks=2)
    cmd = [sys.executable, "-m", "training.train", "--data", "s3://train-bucket/data/sample.json"]
    cmd += ["--output", "s3://train-bucket/model"]
    cmd += ["--storage-path", "s3://train-bucket/storage", "--run-name", "run", "--num-workers", "2"]
    cmd += ["--batch-size", "8", "--steps", str(STEPS), "--checkpoint-every", "2", "--max-seq-length", "32"]
    cmd += ["--max-failures", "3", "--lr", "1e-4", "--warmup", "0"]
    log = tmp_path / "driver.log"
    with s3_server("train-bucket"):
        upload(data, "s3://train-bucket/data/sample.json")  # the data on S3 too: no worker reads a local path
        env = os.environ | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": cluster.address}
        with log.open("wb") as fh:
            proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        run = resolve(RUN)
        deadline = time.monotonic() + 400
        while True:  # wait for a checkpoint and steps beyond it, then take a worker's node away
            assert proc.poll() is None, f"driver exited early:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"no checkpoint in time:\n{log.read_text()[-4000:]}"
            steps = read_step_log(run, 1) if checkpoints(run) else []
            if steps and steps[-1]["step"] >= 3:
                break
            time.sleep(0.5)
        victim_id = steps[-1]["node"]  # rank 1's node
        victims = [n for n in cluster.worker_nodes if n.node_id == victim_id]
        assert victims, f"rank 1 ran on {victim_id}, not a worker node"
        cluster.remove_node(victims[0])
        rc = proc.wait(timeout=600)
        text = log.read_text()
        assert rc == 0, text[-4000:]
        logs = {rank: read_step_log(run, rank) for rank in (0, 1)}
        model = tmp_path / "model"
        pafs.copy_files("train-bucket/model", str(model), source_filesystem=resolve("s3://train-bucket").fs)
    history = json.loads((model / "train_history.json").read_text())["history"]
    attempts = {rank: sorted({r["resumed_from"] for r in records}) for rank, records in logs.items()}
    brief = {rank: [(r["step"], r["resumed_from"], r["node"][:6]) for r in v] for rank, v in logs.items()}
    print(f"\nstep logs (step, resumed_from, node): {brief}")
    # the trained model's history: each planned step exactly once, whatever was run twice
    assert [r["step"] for r in history] == list(range(STEPS))
    resume = max(attempts[1])
    assert resume > 0 and attempts[0] == attempts[1] == [0, resume], attempts  # one restart, from a checkpoint
    for rank, records in logs.items():  # each attempt logs consecutive steps; the last one finishes the run
        first = [r["step"] for r in records if r["resumed_from"] == 0]
        last = [r["step"] for r in records if r["resumed_from"] == resume]
        assert first == list(range(len(first))) and len(first) >= resume, (rank, first)
        assert last == list(range(resume, STEPS)), (rank, last)
    # The run resumed from a checkpoint equals one that was not interrupted from that checkpoint: the steps run in
    # both attempts (after the checkpoint, before the node was lost) give the same loss on each rank, so weights,
    # optimizer state and dropout seeds all came back. (Not compared bitwise: a restarted gloo group may sum the
    # two ranks' gradients in another order.)
    redone = 0
    for records in logs.values():
        before = {r["step"]: r["loss"] for r in records if r["resumed_from"] == 0 and r["step"] >= resume}
        for r in records:
            if r["resumed_from"] == resume and r["step"] in before:
                assert r["loss"] == pytest.approx(before[r["step"]], rel=1e-4, abs=1e-5), (r, before)
                redone += 1
    assert redone, "no step was run both before the node was lost and after the restart"
    resumed = [r for r in logs[1] if r["resumed_from"] == resume]
    assert victim_id not in {r["node"] for r in resumed} and victim_id in {r["node"] for r in logs[1]}
    examples = load_medi(str(data))
    sampler = TaskBatchSampler([e.task for e in examples], 8, 2, 0)
    assert [r["batch"] for r in history] == [batch_checksum(sampler.global_batch(s)) for s in range(STEPS)]
    encoder = InstructorEncoder.load(model, device="cpu")
    assert encoder.encode(["a word"], "Represent the word: ").shape == (1, encoder.dim)
    print(
        f"\nrank 1 lost its node at step {resumed[0]['step']}; resumed from the step-{resumed[0]['resumed_from']} "
        f"checkpoint on {resumed[0]['node'][:8]}; steps 0..{STEPS - 1} each once in the model's history"
    )
