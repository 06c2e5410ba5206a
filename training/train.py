"""Distributed MEDI instruction finetuning with Ray Train: ``python -m training.train --data ... --output ...``.

Runs :func:`training.worker.train_loop_per_worker` on ``--num-workers`` Ray Train workers
(``TorchTrainer``, DDP). Rerunning with the same run name (``--run-name``, default the output
folder's name) and ``--storage-path`` resumes from the latest checkpoint; a worker that dies is
restarted from the last checkpoint (``--max-failures``). At the end the final checkpoint's model
is copied to ``--output`` (sentence-transformers/INSTRUCTOR layout, loadable by
``InstructorEncoder.load``) with ``loss_curve.png`` and ``train_history.json``.

Also works as a Ray job::

    ray job submit --working-dir . -- python -m training.train --data sample.json --output out/ --num-workers 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config import TrainConfig
from training.plots import plot_loss_curve
from training.state import TrainState, export_model

__all__ = ["TrainResult", "build_trainer", "main", "parse_args", "run"]


@dataclass(frozen=True)
class TrainResult:
    """Where a finished run put its outputs, and its history."""

    output: Path
    checkpoint: Path
    loss_curve: Path
    state: TrainState


def build_trainer(cfg: TrainConfig) -> Any:
    """The Ray Train ``TorchTrainer`` for ``cfg`` (Ray Train V2 API)."""
    try:
        from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as exc:  # pragma: no cover - ray is in the train extra
        raise ImportError("training needs Ray Train: pip install 'instructor-plugins[train]'") from exc

    from training.worker import train_loop_per_worker

    # Resolved on the driver, so every worker (and a later rerun) agrees on where the run lives.
    cfg = dataclasses.replace(cfg, storage_path=cfg.storage, run_name=cfg.name)
    resources = {"CPU": cfg.cpus_per_worker}
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=cfg.to_dict(),
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu, resources_per_worker=resources),
        run_config=RunConfig(
            name=cfg.name,
            storage_path=cfg.storage,
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
        ),
    )


def finalize(checkpoint_dir: str | Path, cfg: TrainConfig) -> TrainResult:
    """Copy the final model to ``cfg.output``; write the history JSON and the loss curve PNG."""
    output = export_model(checkpoint_dir, cfg.output)
    state = TrainState.read(checkpoint_dir)
    (output / "train_history.json").write_text(
        json.dumps({"history": state.history, "probe_loss": state.probe_loss}, indent=1), encoding="utf-8"
    )
    curve = plot_loss_curve(state.history, output / "loss_curve.png", probe_loss=state.probe_loss, title=cfg.name)
    return TrainResult(output=output, checkpoint=Path(checkpoint_dir), loss_curve=curve, state=state)


def run(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) and finalize; connects to a running Ray cluster or starts a local one."""
    result = build_trainer(cfg).fit()
    if result.checkpoint is None:
        raise RuntimeError(f"run {cfg.name!r} finished without a checkpoint (storage {cfg.storage})")
    return finalize(result.checkpoint.path, cfg)


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    """Parse the command line into a validated :class:`TrainConfig`."""
    d = TrainConfig.__dataclass_fields__
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="MEDI JSON/JSONL file or a datasets id")
    p.add_argument("--output", required=True, help="folder for the final model, loss curve and history")
    p.add_argument("--model", default=None, help="model dir or hub id (default: the bundled all-MiniLM-L6-v2)")
    p.add_argument("--num-workers", type=int, default=d["num_workers"].default)
    p.add_argument("--use-gpu", action="store_true", help="one GPU per worker, bf16 autocast")
    p.add_argument("--cpus-per-worker", type=int, default=d["cpus_per_worker"].default)
    p.add_argument("--batch-size", type=int, default=d["batch_size"].default, help="global batch (all workers)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (wins over --epochs)")
    p.add_argument("--epochs", type=float, default=None, help="epochs over the task-homogeneous plan (default 1)")
    p.add_argument("--lr", type=float, default=d["lr"].default)
    p.add_argument("--warmup", type=float, default=d["warmup"].default, help="fraction of steps (<1) or steps")
    p.add_argument("--weight-decay", type=float, default=d["weight_decay"].default)
    p.add_argument("--max-grad-norm", type=float, default=d["max_grad_norm"].default)
    p.add_argument("--temperature", type=float, default=d["temperature"].default)
    p.add_argument("--one-direction", action="store_true", help="drop the positive->query loss term")
    p.add_argument("--max-seq-length", type=int, default=d["max_seq_length"].default)
    p.add_argument("--cross-device-negatives", action="store_true", help="negatives from all workers")
    p.add_argument("--grad-cache-chunk", type=int, default=None, help="GradCache: rows per forward chunk")
    p.add_argument("--no-instructions", action="store_true", help="ablation: blank every instruction")
    p.add_argument("--seed", type=int, default=d["seed"].default)
    p.add_argument("--checkpoint-every", type=int, default=d["checkpoint_every"].default)
    p.add_argument("--keep-checkpoints", type=int, default=d["keep_checkpoints"].default)
    p.add_argument("--max-failures", type=int, default=d["max_failures"].default)
    p.add_argument("--run-name", default=None, help="Ray Train run name (default: the output folder's name)")
    p.add_argument("--storage-path", default=None, help="Ray Train storage (default ~/ray_results)")
    args = vars(p.parse_args(argv))
    args["bidirectional"] = not args.pop("one_direction")
    try:
        return TrainConfig(**args)
    except ValueError as exc:
        p.error(str(exc))
        raise  # unreachable: p.error exits


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    cfg = parse_args(argv)
    if not os.environ.get("RAY_ADDRESS"):  # no cluster named: a local Ray on loopback only
        from ray_backend.net import init_local_ray

        init_local_ray()
    result = run(cfg)
    last = result.state.history[-1] if result.state.history else {}
    speeds = [r["texts_per_s_worker"] for r in result.state.history[1:]] or [0.0]
    print(f"model: {result.output}")
    print(f"loss curve: {result.loss_curve}")
    print(f"steps: {result.state.next_step}  final loss: {last.get('loss', float('nan')):.4f}")
    print(f"probe loss: {json.dumps(result.state.probe_loss)}")
    print(f"texts/s per worker (median): {sorted(speeds)[len(speeds) // 2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
