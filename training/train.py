"""Finetune a model on MEDI-format data (instruction, text triples) with Ray Train.

Examples::

    instructor train --data medi.json --output out/tuned --num-workers 2 --steps 200
    instructor train --data s3://bucket/medi.jsonl --output s3://models/tuned --num-workers 4 --use-gpu
    ray job submit --working-dir . -- instructor train --data s3://bucket/medi.jsonl --output s3://models/tuned

``--data`` is a JSON list (or JSONL) of ``{"query": [instruction, text], "pos": [...], "neg": [...],
"task_id": 7}`` rows (``task_name`` works too), a folder saved by ``datasets``, or a ``datasets`` id. Every row
is checked before Ray starts; a bad one exits 2 naming the file, row and field. ``--output`` gets the
finetuned model (loadable by ``InstructorEncoder.load``), ``loss_curve.png`` and ``train_history.json``.
Running the same command again resumes from the last checkpoint. Without ``RAY_ADDRESS`` it starts a local
Ray. ``python -m training.train`` is the same command. Docs: docs/training.md.

How it works:

Runs :func:`training.worker.train_loop_per_worker` on ``--num-workers`` Ray Train workers
(``TorchTrainer``, DDP). Rerunning with the same run name (``--run-name``, default the output
folder's name) and ``--storage-path`` resumes from the latest checkpoint; a worker that dies is
restarted from the last checkpoint (``--max-failures``). At the end the final checkpoint's model
is copied to ``--output`` (sentence-transformers/INSTRUCTOR layout, loadable by
``InstructorEncoder.load``) with ``loss_curve.png`` and ``train_history.json``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructor_plugins.flags import add_config_flags, command_parser, config_from_args
from training.batching import TaskBatchSampler
from training.config import TrainConfig
from training.errors import DataError, clear_data_error, raise_data_error
from training.medi import MediError, load_medi
from training.plots import plot_loss_curve
from training.state import TrainState, export_model

__all__ = [
    "TrainResult",
    "build_trainer",
    "check_resources",
    "check_shared_storage",
    "main",
    "parse_args",
    "run",
    "validate_data",
]


@dataclass(frozen=True)
class TrainResult:
    """Where a finished run put its outputs, and its history.

    ``output`` is a local copy of the final model (``--output`` itself when that is local), ``uri`` where
    it was published (``--output``, a path or a URI).
    """

    output: Path
    checkpoint: Path
    loss_curve: Path
    state: TrainState
    uri: str = ""


def build_trainer(cfg: TrainConfig) -> Any:
    """The Ray Train ``TorchTrainer`` for ``cfg`` (Ray Train V2 API)."""
    try:
        from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as exc:  # pragma: no cover - ray is in the train extra
        raise ImportError("training needs Ray Train: pip install 'instructor-plugins[train]'") from exc

    from instructor_plugins.storage import check_reachable, resolve, storage_environment
    from training.worker import STORAGE_ENV_KEY, train_loop_per_worker

    # Resolved on the driver, so every worker (and a later rerun) agrees on where the run and its data live.
    cfg = cfg.resolved()
    storage = resolve(cfg.storage)
    check_reachable(storage)  # an unreachable endpoint or a missing bucket fails here, before any worker starts
    check_shared_storage(storage.is_local, cfg.shared_storage)
    check_resources(cfg)
    resources = {"CPU": cfg.cpus_per_worker}
    return TorchTrainer(
        train_loop_per_worker,
        # workers on nodes we did not start resolve the run's URIs (step logs, data errors) as the driver does
        train_loop_config={**cfg.to_dict(), STORAGE_ENV_KEY: storage_environment()},
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu, resources_per_worker=resources),
        run_config=RunConfig(
            name=cfg.name,
            storage_path=storage.path,
            storage_filesystem=storage.fs,
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
        ),
    )


def check_shared_storage(local: bool, shared: bool) -> None:
    """Refuse a local storage path on a connected multi-node cluster unless it is marked as shared.

    Raises:
        StorageError: several alive nodes, local storage, and ``shared`` not set.
    """
    import ray

    from instructor_plugins.storage import StorageError
    from ray_backend.net import alive_node_count

    if not local or shared or not ray.is_initialized():
        return
    nodes = alive_node_count()
    if nodes > 1:
        raise StorageError(
            f"--storage-path is a local path, and this Ray cluster has {nodes} nodes: each worker would keep its "
            "checkpoints on its own disk and a restarted worker could not find them. Use object storage "
            "(s3://, gs://...) or, for a path every node mounts (NFS), pass --shared-storage"
        )


def check_resources(cfg: TrainConfig) -> None:
    """The connected cluster holds every worker at once (Ray Train places them together or waits forever).

    Raises:
        InsufficientResources: too few nodes with ``cpus_per_worker`` CPUs (and a GPU), even after an autoscaler's
            wait (:func:`ray_backend.net.wait_for_resources`).
    """
    import ray

    from ray_backend.net import wait_for_resources

    if ray.is_initialized():
        per_worker = {"CPU": float(cfg.cpus_per_worker), "GPU": 1.0 if cfg.use_gpu else 0.0}
        wait_for_resources(per_worker, cfg.num_workers, "training (--num-workers, --cpus-per-worker, --use-gpu)")


def finalize(checkpoint_dir: str | Path, cfg: TrainConfig) -> TrainResult:
    """Export the final model with ``train_history.json`` and ``loss_curve.png``; publish it to ``cfg.output``.

    ``checkpoint_dir`` is a local folder. A local ``--output`` receives the files directly; for a URI
    they are written to a local staging folder first and then uploaded.
    """
    from instructor_plugins.storage import is_uri
    from training.storage import publish_dir

    remote = is_uri(cfg.output) and not cfg.output.startswith("file://")
    staging = Path(tempfile.mkdtemp(prefix="instructor-model-")) if remote else Path(cfg.output.removeprefix("file://"))
    output = export_model(checkpoint_dir, staging)
    state = TrainState.read(checkpoint_dir)
    (output / "train_history.json").write_text(
        json.dumps({"history": state.history, "probe_loss": state.probe_loss}, indent=1), encoding="utf-8"
    )
    curve = plot_loss_curve(state.history, output / "loss_curve.png", probe_loss=state.probe_loss, title=cfg.name)
    uri = publish_dir(output, cfg.output) if remote else str(output.resolve())
    return TrainResult(output=output, checkpoint=Path(checkpoint_dir), loss_curve=curve, state=state, uri=uri)


def run(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) and finalize; connects to a running Ray cluster or starts a local one.

    Raises:
        DataError: the workers found the data or the resumed run unusable (not retried).
    """
    cfg = cfg.resolved()
    trainer = build_trainer(cfg)  # checks that the storage is reachable first
    clear_data_error(cfg.run_uri)
    result = trainer.fit()
    raise_data_error(cfg.run_uri)
    if result.checkpoint is None:
        raise RuntimeError(f"run {cfg.name!r} finished without a checkpoint (storage {cfg.storage})")
    with result.checkpoint.as_directory() as checkpoint_dir:  # a download when the storage is remote
        return finalize(checkpoint_dir, cfg)


def parse_args(argv: Sequence[str] | None = None, *, prog: str = "python -m training.train") -> TrainConfig:
    """Parse the command line into a validated :class:`TrainConfig` (exit 2 on a usage error)."""
    parser = command_parser(prog, __doc__)
    add_config_flags(parser, TrainConfig)
    return config_from_args(parser, TrainConfig, parser.parse_args(argv))


def validate_data(cfg: TrainConfig) -> int:
    """Load and check the MEDI data and the batch plan on the driver; return the number of examples.

    Runs before Ray starts so that a bad file fails in seconds with one line, not after the
    cluster and the workers came up (and not once per retry). A ``datasets`` id is left to the
    workers (reading it needs the hub).

    Raises:
        FileNotFoundError: ``cfg.data`` looks like a path that does not exist.
        MediError: a malformed row (the message names the row and the field).
        ValueError: the data cannot fill one batch of ``cfg.batch_size`` for any task.
    """
    path = Path(cfg.data)
    if not path.is_file() and not path.suffix and not path.is_absolute() and not cfg.data.startswith("."):
        return 0  # a datasets id
    examples = load_medi(cfg.data, blank_instructions=cfg.no_instructions)
    TaskBatchSampler([e.task for e in examples], cfg.batch_size, cfg.num_workers, cfg.seed)
    return len(examples)


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m training.train") -> int:
    """CLI entry point (``instructor train``): 0 done, 1 training failed, 2 bad flags or bad data."""
    cfg = parse_args(argv, prog=prog).resolved()
    try:
        validate_data(cfg)
    except (MediError, FileNotFoundError, ValueError) as exc:
        print(f"{prog}: error: {cfg.data}: {exc}", file=sys.stderr)
        return 2
    if cfg.distill_texts is not None:
        from training.regularizers.general_text import read_texts

        try:
            read_texts(cfg.distill_texts)
        except (FileNotFoundError, ValueError) as exc:
            print(f"{prog}: error: --distill-texts: {exc}", file=sys.stderr)
            return 2
    from ray_backend.net import ClusterUnreachable, init_local_ray, join_cluster

    if not os.environ.get("RAY_ADDRESS"):  # no cluster named: a local Ray on loopback only
        init_local_ray()
    else:
        try:  # join it now: the storage check below asks how many nodes
            join_cluster(os.environ["RAY_ADDRESS"])
        except ClusterUnreachable as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return 2
    from instructor_plugins.storage import StorageError
    from ray_backend.net import InsufficientResources

    try:
        result = run(cfg)
    except (DataError, StorageError, InsufficientResources) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    last = result.state.history[-1] if result.state.history else {}
    speeds = [r["texts_per_s_worker"] for r in result.state.history[1:]] or [0.0]
    print(f"model: {result.uri or result.output}")
    print(f"loss curve: {result.loss_curve}")
    print(f"steps: {result.state.next_step}  final loss: {last.get('loss', float('nan')):.4f}")
    print(f"probe loss: {json.dumps(result.state.probe_loss)}")
    print(f"texts/s per worker (median): {sorted(speeds)[len(speeds) // 2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
