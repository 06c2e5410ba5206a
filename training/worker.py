"""The per-worker training loop that Ray Train runs on every worker (a thin shell over plain torch).

Each worker loads the model (from the latest checkpoint when Ray Train restores one), builds the
same :class:`~training.batching.TaskBatchSampler` plan, and from the checkpoint's ``next_step``
on embeds its slice of each single-task global batch. DDP averages gradients; AdamW with linear
warmup and decay; gradient clipping; bf16 autocast on CUDA. Every ``checkpoint_every`` steps (and
at the end) all workers call ``ray.train.report`` and rank 0 alone attaches a checkpoint.

Every rank logs one JSON line per step under ``<run>/logs/`` (step, task, loss, texts/s, pid; see
:class:`training.storage.StepLog`, which also works when the run lives in object storage); the
fault-tolerance test reads it to check that no step is repeated or skipped after a restart. Rank 0
also logs to the experiment tracker (:mod:`training.tracking`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from instructor_plugins.model import InstructorEncoder
from training.batching import TaskBatchSampler, is_plain_batch
from training.config import TrainConfig
from training.errors import record_data_error
from training.false_negatives import group_ids
from training.loss import contrastive_loss
from training.medi import MediError, MediExample, load_medi
from training.state import TrainState, read_optimizer_state, save_checkpoint
from training.step import LossFn, grad_cache_step, plain_step, triple_features
from training.storage import StepLog
from training.tracking import NullTracker, Tracker, make_tracker

if TYPE_CHECKING:
    from training.regularizers.distill import Distillation

#: Key of ``train_loop_config`` with the driver's S3 variables (``storage.storage_environment``).
STORAGE_ENV_KEY = "_storage_env"

__all__ = [
    "STORAGE_ENV_KEY",
    "batch_checksum",
    "build_optimizer",
    "lr_factor",
    "probe_loss",
    "step_batch",
    "step_seed",
    "train_loop_per_worker",
]


def batch_checksum(indices: Sequence[int]) -> int:
    """CRC32 of a batch's example indices: identifies the batch in logs and checkpoints."""
    return zlib.crc32(",".join(map(str, indices)).encode())


def step_batch(
    examples: Sequence[MediExample], indices: Sequence[int], cfg: TrainConfig, step: int
) -> tuple[list[MediExample], bool]:
    """The triples step ``step`` trains on, and whether they lost their instructions.

    Under the opt-in instruction dropout (``cfg.plain_batches``) a drawn step trains its whole batch without
    instructions, as the no-instruction ablation does; the draw depends only on the seed and the step, so
    every worker and a resumed run agree.
    """
    batch = [examples[i] for i in indices]
    plain = bool(cfg.plain_batches) and is_plain_batch(cfg.seed, step, cfg.plain_batches)
    return ([e.without_instructions() for e in batch] if plain else batch), plain


def step_seed(seed: int, step: int, rank: int) -> int:
    """The torch seed of one worker's step: a restarted run draws the same dropout masks again."""
    return zlib.crc32(f"{seed}:{step}:{rank}".encode())


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warmup up to 1 at step ``warmup_steps``, then linear decay toward 0 at ``total_steps``.

    No step gets a zero learning rate. A pure function of the step, so a resumed (or extended) run
    needs no scheduler state.

    >>> [round(lr_factor(s, 2, 6), 3) for s in range(6)]
    [0.333, 0.667, 1.0, 0.75, 0.5, 0.25]
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def build_optimizer(module: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, without weight decay on biases and LayerNorm weights."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in module.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def probe_loss(
    encoder: InstructorEncoder, examples: Sequence[MediExample], sampler: TaskBatchSampler, cfg: TrainConfig
) -> float:
    """Mean loss (no gradients, eval mode) over one fixed batch per task: the first examples of each task."""
    module = encoder.module
    was_training = module.training
    module.eval()
    losses = []
    with torch.no_grad():
        for task in sampler.task_names:
            batch = [e for e in examples if e.task == task][: sampler.local_batch_size]
            features = triple_features(encoder, batch).to(encoder.device)
            emb = module(features)
            q, p, n = emb.chunk(3)
            groups = group_ids(batch) if cfg.mask_false_negatives else None
            losses.append(
                float(
                    contrastive_loss(
                        q, p, n, temperature=cfg.temperature, bidirectional=cfg.bidirectional, groups=groups
                    )
                )
            )
    module.train(was_training)
    return sum(losses) / len(losses)


def _autocast(device: torch.device) -> Callable[[], Any]:
    if device.type == "cuda":
        return functools.partial(torch.autocast, device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def _mean_over_workers(value: torch.Tensor, world: int) -> float:
    if world > 1:
        import torch.distributed as dist

        value = value.clone()
        dist.all_reduce(value)
        value /= world
    return float(value)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point: ``TorchTrainer(train_loop_per_worker, train_loop_config=cfg.to_dict())``."""
    import ray.train
    import ray.train.torch
    from tqdm.auto import tqdm

    from instructor_plugins.storage import adopt_storage_environment

    config = dict(config)
    adopt_storage_environment(config.pop(STORAGE_ENV_KEY, None))
    cfg = TrainConfig.from_dict(config)
    ctx = ray.train.get_context()
    node = ray.get_runtime_context().get_node_id()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    if not cfg.use_gpu:
        torch.set_num_threads(cfg.cpus_per_worker)
    device = ray.train.torch.get_device()

    state = TrainState(config=cfg.to_dict())
    checkpoint = ray.train.get_checkpoint()
    # Deterministic errors (bad data, a resume with another batch plan) go to the driver once
    # instead of being retried by FailureConfig (see training.errors).
    try:
        if checkpoint is not None:
            with checkpoint.as_directory() as ckpt_dir:
                cfg.check_resumable_from(TrainState.read(ckpt_dir).config)
        examples = load_medi(cfg.data, blank_instructions=cfg.no_instructions)
        sampler = TaskBatchSampler([e.task for e in examples], cfg.batch_size, world, cfg.seed)
        general: list[str] = []
        if cfg.distill_texts is not None:  # opt-in regulariser (training.regularizers)
            from training.regularizers.general_text import read_texts

            general = read_texts(cfg.distill_texts)
    except (MediError, FileNotFoundError, ValueError) as exc:
        if rank == 0:
            record_data_error(cfg.run_uri, exc)
        return
    saved_optimizer: dict[str, Any] | None = None
    if checkpoint is not None:
        with checkpoint.as_directory() as ckpt_dir:
            state = TrainState.read(ckpt_dir)
            encoder = InstructorEncoder.load(ckpt_dir, device=device, dtype=torch.float32)
            saved_optimizer = read_optimizer_state(ckpt_dir)
    else:
        encoder = InstructorEncoder.load(cfg.model, device=device, dtype=torch.float32)
    # The INSTRUCTOR method: instructions condition the encoder but are left out of pooling, whatever the base
    # model's own pooling says; the saved checkpoints record include_prompt=false.
    encoder.without_instruction_pooling()
    model_max_length = encoder.max_seq_length  # saved checkpoints keep the model's own limit
    encoder.max_seq_length = min(cfg.max_seq_length, model_max_length)
    distill: Distillation | None = None
    if cfg.distill_weight > 0:  # opt-in regulariser (training.regularizers)
        from training.regularizers.distill import Distillation, load_teacher

        distill = Distillation(cfg, load_teacher(cfg, device, encoder.max_seq_length), general)

    total = cfg.total_steps(sampler.steps_per_epoch)
    encoder.module.train()
    encoder.module.max_buckets = cfg.length_buckets
    model = ray.train.torch.prepare_model(encoder.module)
    optimizer = build_optimizer(encoder.module, cfg)
    if saved_optimizer is not None:
        optimizer.load_state_dict(saved_optimizer)
    warmup = cfg.warmup_steps(total)
    if rank == 0 and state.next_step == 0:
        state.probe_loss["0"] = probe_loss(encoder, examples, sampler, cfg)

    from instructor_plugins.storage import resolve

    step_log = StepLog(resolve(cfg.run_uri), rank)
    tracker: Tracker = NullTracker()
    if rank == 0:
        tracker = make_tracker(cfg.tracker, cfg.tracker_uri, cfg.name, run_id=state.tracker_run_id)
        state.tracker_run_id = tracker.run_id
        tracker.log_params(cfg.to_dict() | {"total_steps": total, "world_size": world})
        if state.next_step == 0:
            tracker.log_metrics({"probe_loss": state.probe_loss["0"]}, step=0)
    loss_fn = functools.partial(
        contrastive_loss,
        temperature=cfg.temperature,
        bidirectional=cfg.bidirectional,
        cross_device=cfg.cross_device_negatives,
    )
    autocast = _autocast(device)
    bar = tqdm(total=total, initial=state.next_step, desc=f"train {cfg.name}", disable=rank != 0, unit="step")
    start = state.next_step
    for step, indices in sampler.iter_worker(rank, start, total):
        t0 = time.perf_counter()
        batch, plain = step_batch(examples, indices, cfg, step)
        features = triple_features(encoder, batch).to(device)
        torch.manual_seed(step_seed(cfg.seed, step, rank))  # dropout masks replay exactly after a resume
        lr = cfg.lr * lr_factor(step, warmup, total)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        step_loss: LossFn = loss_fn
        if cfg.mask_false_negatives:
            step_loss = functools.partial(loss_fn, groups=group_ids(batch))
        side_loss = 0.0  # weighted terms with their own forward, already backpropagated
        if distill is not None:
            side_loss = distill.side_terms(model, encoder, batch, step, rank, world, autocast)
            step_loss = distill.batch_loss(step_loss, batch)
        if cfg.grad_cache_chunk:
            loss = grad_cache_step(model, features, step_loss, cfg.grad_cache_chunk, autocast)
        else:
            loss = plain_step(model, features, step_loss, autocast)
        loss = loss + side_loss
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        mean_loss = _mean_over_workers(loss, world)
        seconds = time.perf_counter() - t0
        record = {
            "step": step,
            "task": sampler.task_of_step(step),
            "batch": batch_checksum(sampler.global_batch(step)),
            "loss": mean_loss,
            "lr": lr,
            "texts_per_s_worker": 3 * len(indices) / seconds,
        }
        if cfg.plain_batches:
            record["plain"] = plain
        if distill is not None:  # this worker's parts (the loss is the workers' mean)
            record.update(distill.record())
        state.history.append(record)
        state.next_step = step + 1
        step_log.append({**record, "rank": rank, "pid": os.getpid(), "node": node, "resumed_from": start})
        texts_per_s = 3 * len(indices) * world / seconds
        tracker.log_metrics({"loss": mean_loss, "lr": lr, "texts_per_s": texts_per_s}, step=step)
        bar.update(1)
        bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{lr:.2e}", texts_s=f"{record['texts_per_s_worker']:.1f}")
        if state.next_step % cfg.checkpoint_every == 0 or state.next_step == total:
            step_log.flush()
            _report(encoder, optimizer, state, record, rank, examples, sampler, cfg, model_max_length)
            if rank == 0:
                tracker.log_metrics({"probe_loss": state.probe_loss[str(state.next_step)]}, step=state.next_step)
    bar.close()
    step_log.flush()
    if rank == 0:
        _log_final_model(tracker, encoder, model_max_length, cfg.output)
        tracker.close()


def _log_final_model(tracker: Tracker, encoder: InstructorEncoder, model_max_length: int, output: str) -> None:
    """Hand the final model to the tracker (saved with the model's own ``max_seq_length``)."""
    if isinstance(tracker, NullTracker):
        return
    train_max_length, encoder.max_seq_length = encoder.max_seq_length, model_max_length
    try:
        with tempfile.TemporaryDirectory(prefix="instructor-final-") as tmp:
            tracker.log_model(encoder.save(tmp), output)
    finally:
        encoder.max_seq_length = train_max_length


def _report(
    encoder: InstructorEncoder,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    record: dict[str, Any],
    rank: int,
    examples: Sequence[MediExample],
    sampler: TaskBatchSampler,
    cfg: TrainConfig,
    model_max_length: int,
) -> None:
    """All workers report (a barrier); rank 0 attaches the checkpoint."""
    import ray.train

    metrics = {**record, "next_step": state.next_step}
    with tempfile.TemporaryDirectory(prefix="instructor-ckpt-") as tmp:
        checkpoint = None
        if rank == 0:
            state.probe_loss[str(state.next_step)] = probe_loss(encoder, examples, sampler, cfg)
            metrics["probe_loss"] = state.probe_loss[str(state.next_step)]
            train_max_length, encoder.max_seq_length = encoder.max_seq_length, model_max_length
            try:
                save_checkpoint(tmp, encoder, optimizer, state)
            finally:
                encoder.max_seq_length = train_max_length
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint)
