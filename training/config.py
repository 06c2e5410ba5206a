"""Training configuration: one dataclass, validated on construction, shared by the CLI and the workers."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from training.loss import DEFAULT_TEMPERATURE

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Everything a training run needs; each field is a flag of ``instructor train`` (``--help`` lists them).

    ``batch_size`` is the *global* batch (all workers together, one task); each worker embeds
    ``batch_size / num_workers`` triples per step, so a run's batches do not depend on the number
    of workers. ``steps`` wins over ``epochs``; with neither, one epoch is run.
    """

    data: str
    """MEDI JSON/JSONL file or a datasets id."""
    output: str
    """Folder for the final model, loss curve and history."""
    model: str | None = None
    """Model folder or hub id; None = the bundled all-MiniLM-L6-v2."""
    num_workers: int = 2
    """Ray Train workers (DDP ranks)."""
    use_gpu: bool = False
    """One GPU per worker, bf16 autocast."""
    cpus_per_worker: int = 1
    """CPUs (and torch threads) per worker."""
    batch_size: int = 32
    """Global batch: triples per step over all workers, one task per batch."""
    steps: int | None = None
    """Optimizer steps (wins over epochs)."""
    epochs: float | None = None
    """Epochs over the task-homogeneous plan (one when neither steps nor epochs is given)."""
    lr: float = 2e-5
    """Peak learning rate (AdamW)."""
    warmup: float = 0.1
    """Linear warmup: a fraction of the steps (< 1) or a step count."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    temperature: float = DEFAULT_TEMPERATURE
    """Contrastive loss temperature."""
    bidirectional: bool = True
    """Add the positive->query loss term (--no-bidirectional drops it)."""
    mask_false_negatives: bool = False
    """Opt-in: leave in-batch candidates with the target's text, or its label in a same-label task (MEDI "label"),
    out of the loss's negatives (training.false_negatives); off = the paper's loss, every other row a negative."""
    max_seq_length: int = 128
    """Tokens per instruction + text while training."""
    cross_device_negatives: bool = False
    """Negatives from all workers (all-gather with gradients)."""
    grad_cache_chunk: int | None = None
    """GradCache: rows per forward chunk (None = plain step)."""
    length_buckets: int = 3
    """Forward each batch (or GradCache chunk) as up to N sub-batches of similar length, each padded to its own
    longest row: same gradients, less padding (1 = one block padded to the longest row)."""
    no_instructions: bool = False
    """Ablation: blank every instruction."""
    plain_batches: float = 0.0
    """Opt-in instruction dropout: the share of steps whose whole batch is embedded without instructions (which
    steps depends only on the seed and the step: training.batching.is_plain_batch); 0 = off, the paper's method."""
    # Opt-in regulariser, off by default: its logic and checks live in training.regularizers, which the
    # trainer imports only when distill_weight > 0.
    distill_weight: float = 0.0
    """Opt-in: weight of the similarity-distillation term (training.regularizers.distill) that keeps each batch's
    document neighbourhoods as the frozen base model sees them, at the contrastive temperature; 0 = off."""
    distill_texts: str | None = None
    """Opt-in: general texts (JSONL of {"text": ...} or one per line; a path or URI) on which the distillation also
    keeps the base model's neighbourhoods, a few each step (training.regularizers.general_text); None = the batch
    only."""
    distill_texts_per_step: int = 32
    """Opt-in: general texts per step over all workers (split evenly), when distill_texts is given."""
    distill_anchor: Literal["instructed", "plain"] = "instructed"
    """Opt-in: what the distillation holds to the base model: the texts embedded with the task's instruction
    ("instructed"), or embedded plain as the teacher sees them ("plain": only the model's no-instruction geometry
    is anchored, the instructions are free to move it; one more forward per step). Same in the ablation."""
    seed: int = 0
    """Seed of the batch plan, dropout and init."""
    checkpoint_every: int = 50
    """Steps between checkpoints."""
    keep_checkpoints: int = 2
    """Checkpoints kept in storage."""
    max_failures: int = 3
    """Worker failures recovered from the last checkpoint (-1 = forever); data errors are never retried."""
    run_name: str | None = None
    """Ray Train run name (default: the output folder's name)."""
    storage_path: str | None = None
    """Ray Train storage: a path or an s3://, gs://... URI (default ~/ray_results)."""
    shared_storage: bool = False
    """A local storage_path is mounted on every node (NFS): allow it on a multi-node cluster, where it is
    refused otherwise (Ray Train needs storage every worker sees)."""
    tracker: Literal["none", "mlflow", "tensorboard"] = "none"
    """Experiment tracker that rank 0 logs to."""
    tracker_uri: str | None = None
    """MLflow tracking URI or folder (default MLFLOW_TRACKING_URI, else ./mlruns); TensorBoard log folder."""

    def __post_init__(self) -> None:
        positive_ints = ("num_workers", "cpus_per_worker", "batch_size", "checkpoint_every", "keep_checkpoints")
        for name in positive_ints:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.num_workers:
            raise ValueError(
                f"batch_size {self.batch_size} must be a multiple of num_workers {self.num_workers} "
                "(the global batch is split evenly across workers)"
            )
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.warmup < 0:
            raise ValueError(
                f"warmup must be >= 0 (a fraction of the steps below 1, else a step count), got {self.warmup}"
            )
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.max_seq_length < 2:
            raise ValueError(f"max_seq_length must be >= 2, got {self.max_seq_length}")
        # an opt-in regulariser is on
        if self.distill_weight != 0 or self.distill_texts is not None or self.distill_anchor != "instructed":
            from training.regularizers import check_config

            check_config(self)
        if not 0 <= self.plain_batches <= 1:
            raise ValueError(f"plain_batches must be a share of the steps in [0, 1], got {self.plain_batches}")
        if self.length_buckets < 1:
            raise ValueError(f"length_buckets must be >= 1, got {self.length_buckets}")
        if self.grad_cache_chunk is not None and self.grad_cache_chunk < 1:
            raise ValueError(f"grad_cache_chunk must be >= 1 rows, got {self.grad_cache_chunk}")
        from training.tracking import TRACKERS

        if self.tracker not in TRACKERS:
            raise ValueError(f"unknown tracker {self.tracker!r}; valid: {list(TRACKERS)}")
        if self.max_failures < -1:
            raise ValueError(f"max_failures must be >= -1 (-1 = retry forever), got {self.max_failures}")

    # ------------------------------------------------------------------ derived values
    def resolved(self) -> TrainConfig:
        """A copy whose local paths are absolute: ``data``, ``output``, ``model``, ``distill_texts``, ``storage_path``.

        Ray Train workers run in another working directory (and a Ray job in its own copy of the
        working dir), so the driver resolves every path the user gave relative to where they typed it.
        A ``data`` or ``model`` that is not a local path (a hub or ``datasets`` id) is left as it is.
        """

        def local(value: str | None) -> str | None:
            if value is None:
                return None
            path = Path(value).expanduser()
            return str(path.resolve()) if path.exists() else value

        from instructor_plugins.storage import is_uri

        output = self.output if is_uri(self.output) else str(Path(self.output).expanduser().resolve())
        return replace(
            self,
            data=local(self.data) or self.data,
            output=output,
            model=local(self.model),
            distill_texts=local(self.distill_texts),
            storage_path=self.storage,
            run_name=self.name,
            tracker_uri=self.tracking,
        )

    @property
    def name(self) -> str:
        """The Ray Train run name: ``run_name``, else the output folder's name."""
        return self.run_name or self.output.rstrip("/").rsplit("/", 1)[-1] or "run"

    @property
    def storage(self) -> str:
        """Where Ray Train keeps the run's checkpoints: a URI as given, else an absolute path (``~/ray_results``)."""
        from instructor_plugins.storage import is_uri

        if self.storage_path and is_uri(self.storage_path) and not self.storage_path.startswith("file://"):
            return self.storage_path.rstrip("/")
        local = (self.storage_path or "").removeprefix("file://") or os.path.join(Path.home(), "ray_results")
        return str(Path(local).expanduser().resolve())

    @property
    def run_uri(self) -> str:
        """``storage/name``: checkpoints and the per-rank step logs live here (a path or a URI)."""
        return f"{self.storage}/{self.name}"

    @property
    def run_dir(self) -> Path:
        """:attr:`run_uri` as a local path (local storage only)."""
        from instructor_plugins.storage import is_uri

        if is_uri(self.storage):
            raise ValueError(f"run storage {self.storage!r} is not local; use run_uri")
        return Path(self.storage) / self.name

    @property
    def tracking(self) -> str | None:
        """``tracker_uri`` made absolute on the driver (workers run in another directory); ``None`` = default."""
        from instructor_plugins.storage import is_uri

        if self.tracker == "none":
            return None
        if self.tracker_uri is None:
            default = "mlruns" if self.tracker == "mlflow" else "tensorboard"
            if self.tracker == "mlflow" and os.environ.get("MLFLOW_TRACKING_URI"):
                return os.environ["MLFLOW_TRACKING_URI"]
            local = Path(default).resolve()
            return local.as_uri() if self.tracker == "mlflow" else str(local)
        if is_uri(self.tracker_uri):
            return self.tracker_uri
        local = Path(self.tracker_uri).expanduser().resolve()
        return local.as_uri() if self.tracker == "mlflow" else str(local)

    def total_steps(self, steps_per_epoch: int) -> int:
        """Planned optimizer steps: ``steps``, else ``ceil(epochs * steps_per_epoch)`` (one epoch by default)."""
        if self.steps is not None:
            return self.steps
        return max(1, math.ceil((self.epochs or 1.0) * steps_per_epoch))

    def warmup_steps(self, total: int) -> int:
        """Warmup length in steps: a fraction of ``total`` when ``warmup < 1``, else a step count."""
        return int(self.warmup * total) if self.warmup < 1 else min(int(self.warmup), total)

    # Fields that fix the batch plan: a resumed run must keep them, or steps would repeat or skip examples.
    PLAN_FIELDS: ClassVar[tuple[str, ...]] = ("data", "batch_size", "seed", "no_instructions", "plain_batches")

    def check_resumable_from(self, saved: dict[str, Any]) -> None:
        """Raise ``ValueError`` when a checkpoint's config differs from this one in a :attr:`PLAN_FIELDS` field."""
        changed = {
            k: (saved.get(k), getattr(self, k)) for k in self.PLAN_FIELDS if k in saved and saved[k] != getattr(self, k)
        }
        if changed:
            detail = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ValueError(
                f"run {self.name!r} in {self.storage} was started with a different batch plan ({detail}); "
                "resume with the same values or pick a new --run-name"
            )

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for Ray's ``train_loop_config`` and the checkpoint)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them and the valid ones."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; valid: {sorted(valid)}")
        return cls(**data)
