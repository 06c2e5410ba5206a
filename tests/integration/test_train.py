"""Ray Train end to end on 2 CPU workers with the bundled MiniLM and a real-text MEDI sample (:mod:`tests.medi_data`).

Run in a loopback-only namespace: ``unshare -n sh -c 'ip link set lo up && exec "$@"' sh env PYTHONPATH=$PWD
python -m pytest tests/integration/test_train.py``
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from instructor_plugins.model import InstructorEncoder
from tests.medi_data import write_medi_sample
from training.batching import TaskBatchSampler, is_plain_batch
from training.config import TrainConfig
from training.medi import load_medi
from training.state import TrainState
from training.train import TrainResult
from training.worker import batch_checksum

pytestmark = pytest.mark.integration
STEPS, EVERY = 8, 4  # the killed run: its steps, and a checkpoint every EVERY steps


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_medi_sample(tmp_path_factory.mktemp("medi") / "sample.json", per_task=16)


def _config(sample: Path, root: Path, **overrides) -> TrainConfig:
    base = {
        "data": str(sample),
        "output": str(root / "out"),
        "num_workers": 2,
        "batch_size": 8,
        "steps": 4,
        "lr": 1e-4,
        "warmup": 0.0,
        "max_seq_length": 32,
        "checkpoint_every": 2,
        "storage_path": str(root / "storage"),
        "run_name": "run",
    }
    return TrainConfig(**(base | overrides))


def _log(cfg: TrainConfig, rank: int) -> list[dict]:
    path = cfg.run_dir / "logs" / f"steps.rank{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _assert_history_matches_plan(state: TrainState, cfg: TrainConfig, total: int) -> None:
    """Each planned step exactly once, in order, with the sampler's batch and task."""
    examples = load_medi(cfg.data)
    sampler = TaskBatchSampler([e.task for e in examples], cfg.batch_size, cfg.num_workers, cfg.seed)
    assert [r["step"] for r in state.history] == list(range(total))
    assert [r["batch"] for r in state.history] == [batch_checksum(sampler.global_batch(s)) for s in range(total)]
    assert [r["task"] for r in state.history] == [sampler.task_of_step(s) for s in range(total)]
    plain = [bool(cfg.plain_batches) and is_plain_batch(cfg.seed, s, cfg.plain_batches) for s in range(total)]
    assert [r.get("plain", False) for r in state.history] == plain  # instruction dropout's steps, resumed alike


def _latest_checkpoint_step(cfg: TrainConfig) -> int | None:
    """The step a restart would resume from: the latest checkpoint Ray Train has registered (None: none yet)."""
    try:
        snapshot = json.loads((cfg.run_dir / "checkpoint_manager_snapshot.json").read_text())
        return int(snapshot["latest_checkpoint_result"]["metrics"]["next_step"])
    except (OSError, ValueError, KeyError, TypeError):  # not written yet, or caught mid-write
        return None


@dataclass
class KilledRun:
    cfg: TrainConfig
    result: TrainResult
    killed: list[dict]


@pytest.fixture(scope="module")
def killed_run(ray_local, sample, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KilledRun]:
    """One 8-step run on 2 workers; rank 1 is SIGKILLed after the step-4 checkpoint is registered.

    Shared by the tests below: one Ray Train run (~20 s startup here) serves three checks.
    """
    from training.regularizers.general_text import wikipedia_paragraphs, write_texts
    from training.train import run

    root = tmp_path_factory.mktemp("killed")
    general = write_texts(wikipedia_paragraphs()[:40], root / "general.jsonl")
    cfg = _config(  # with both distillation terms: under DDP, general text in no_sync, resumed on the same texts
        sample,
        root,
        steps=STEPS,
        checkpoint_every=EVERY,
        max_failures=1,
        distill_weight=1.0,
        distill_texts=str(general),
        distill_texts_per_step=6,
        plain_batches=0.5,  # instruction dropout: steps 0, 1, 5, 7 and 8 of seed 0 train without instructions
    )
    killed: list[dict] = []

    def killer() -> None:
        # Rank 1 dies once the step-4 checkpoint is registered and *both* ranks have logged a step after it. The
        # next checkpoint is the last one, so the restart resumes from step 4 and runs a logged step again.
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed:
            try:
                resume = _latest_checkpoint_step(cfg)
                done = [[r for r in _log(cfg, rank) if r["resumed_from"] == 0] for rank in (0, 1)]
            except ValueError:  # a log line caught mid-write
                resume = None
            if resume == EVERY and all(d and d[-1]["step"] >= resume for d in done):
                os.kill(done[1][-1]["pid"], signal.SIGKILL)
                killed.append(done[1][-1])
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = run(cfg)
    thread.join(timeout=5)
    yield KilledRun(cfg, result, killed)
    shutil.rmtree(root, ignore_errors=True)  # checkpoints with optimizer state: ~0.6 GB


def test_two_workers_learn_and_save_a_loadable_model(killed_run, bundled_encoder):
    result, cfg = killed_run.result, killed_run.cfg
    probe = {int(k): v for k, v in result.state.probe_loss.items()}
    assert {0, STEPS} <= set(probe)
    assert probe[STEPS] < probe[0], probe  # loss on fixed training batches goes down
    assert result.loss_curve.stat().st_size > 5_000
    assert {r["rank"] for r in _log(cfg, 0) + _log(cfg, 1)} == {0, 1}
    assert all(r["general_distill_loss"] > 0 and r["distill_loss"] > 0 for r in _log(cfg, 0) + _log(cfg, 1))

    tuned = InstructorEncoder.load(result.output, device="cpu")
    assert tuned.max_seq_length == bundled_encoder.max_seq_length  # training's 32 is not baked into the model
    texts = ["a river bank", "What is AI?"]
    vectors = tuned.encode(texts, "Represent the sentence: ")
    assert vectors.shape == (2, bundled_encoder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors, bundled_encoder.encode(texts, "Represent the sentence: "), atol=1e-4)
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(result.output), device="cpu")
    assert st.encode(texts).shape == (2, bundled_encoder.dim)


def test_killed_worker_restarts_from_last_checkpoint_without_repeat_or_skip(killed_run):
    cfg, result = killed_run.cfg, killed_run.result
    assert killed_run.killed, "the worker was never killed"
    log = _log(cfg, 0)
    first = [r for r in log if r["resumed_from"] == 0]
    second = [r for r in log if r["resumed_from"] > 0]
    assert second, "no restarted attempt in the log"
    restart = second[0]["resumed_from"]
    assert restart == EVERY  # the last checkpoint, not step 0
    assert restart <= first[-1]["step"] + 1  # it did not skip ahead of the work that was done
    assert [r["step"] for r in second] == list(range(restart, STEPS))
    assert {r["pid"] for r in second}.isdisjoint({r["pid"] for r in first})  # new worker processes
    # Weights, optimizer state and dropout seeds all come back: a step run twice gives the same loss.
    redone = {r["step"]: r["loss"] for r in first if r["step"] >= restart}
    assert redone, "the kill came before any step after the checkpoint was logged"
    for r in second:
        if r["step"] in redone:
            assert r["loss"] == pytest.approx(redone[r["step"]], rel=1e-4, abs=1e-5), r
    _assert_history_matches_plan(result.state, cfg, STEPS)


def test_rerun_with_the_same_run_name_resumes(killed_run):
    from training.train import run

    more = dataclasses.replace(killed_run.cfg, steps=STEPS + 1)
    resumed = run(more)
    assert [r["step"] for r in _log(more, 0) if r["resumed_from"] == STEPS] == [STEPS]
    _assert_history_matches_plan(resumed.state, more, STEPS + 1)
