"""Batch-embed a large corpus with Ray Data: exactly once, resumable, the same on a laptop and a cluster.

Usage::

    python -m ray_backend.batch --input docs/ --output out/ --instruction "Represent the document: "
    ray job submit --working-dir . -- python -m ray_backend.batch --input ... --output ... --replicas 8 --num-gpus 1

The driver reads and validates every input row (:mod:`ray_backend.batch_io`), cuts the valid rows
into numbered work units and writes the plan (:mod:`ray_backend.batch_plan`). Ray Data then maps
the pending units over a pool of actors (``map_batches`` with a callable class holding one
``InstructorEncoder`` per actor); each actor embeds a unit and writes its shard atomically. The
driver writes the manifest last. This module is only that thin Ray shell and the CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from instructor_plugins.flags import add_config_flags, command_parser
from instructor_plugins.flags import config_from_args as config_from_args_of
from ray_backend.batch_io import BAD_ROW_POLICIES, EMBEDDING_COLUMN, BadRowsError, Corpus, find_inputs, load_corpus
from ray_backend.batch_plan import (
    PLAN_NAME,
    REJECTS_NAME,
    Encoder,
    Manifest,
    OutputDir,
    UnitEmbedder,
    WorkUnit,
    fingerprint,
    plan_units,
    table_from_ipc,
    table_to_ipc,
)
from ray_backend.net import RayOptions

__all__ = ["BatchConfig", "Prepared", "execute", "finish", "main", "prepare", "run_batch", "run_in_process"]


@dataclass
class BatchConfig:
    """Settings of one batch-embedding run (the CLI flags)."""

    input: str
    """A file, a folder or a glob of JSONL / Parquet / CSV files."""
    output: str
    """Output folder (shared storage on a multi-node cluster)."""
    text_column: str = "text"
    """Column with the text to embed."""
    id_column: str = "id"
    """Column with each row's unique id."""
    columns: tuple[str, ...] = ()
    """Pass-through columns copied to the output shards."""
    instruction: str = ""
    """INSTRUCTOR instruction prepended to every text ("" for none)."""
    model: str | None = None
    """Model path or hub id; ``None`` = the bundled offline model."""
    batch_size: int = 32
    """Texts per forward pass."""
    replicas: int = 1
    """Encoder actors (Ray Data actor-pool size)."""
    num_gpus: float = 0.0
    """GPUs per actor; > 0 runs the encoder on CUDA."""
    num_cpus: float = 1.0
    """CPUs per actor (also its torch thread count)."""
    rows_per_shard: int = 5000
    """Rows per work unit and output shard."""
    on_bad_rows: Literal["error", "skip"] = "error"
    """``error`` (fail, listing the first bad ids) or ``skip`` (write them to ``_rejects.jsonl``)."""
    resume: bool = False
    """Finish a run that was interrupted, skipping units whose shard exists."""
    dtype: str | None = None
    """Model dtype (default fp32 on CPU, bf16 on GPU)."""
    normalize: bool = True
    """L2-normalise the vectors."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        """Validate the settings; each error names the bad value."""
        if self.on_bad_rows not in BAD_ROW_POLICIES:
            raise ValueError(f"unknown on_bad_rows {self.on_bad_rows!r}; valid: {list(BAD_ROW_POLICIES)}")
        for name in ("batch_size", "replicas", "rows_per_shard"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_gpus < 0 or self.num_cpus <= 0:
            raise ValueError(f"need num_gpus >= 0 and num_cpus > 0, got {self.num_gpus} and {self.num_cpus}")
        if self.id_column == EMBEDDING_COLUMN or EMBEDDING_COLUMN in self.columns:
            raise ValueError(f"{EMBEDDING_COLUMN!r} is the output vector column; rename the input column")
        self.columns = tuple(self.columns)

    def plan_settings(self) -> dict[str, Any]:
        """The settings that decide the output; ``--resume`` needs them unchanged."""
        keys = ("text_column", "id_column", "columns", "instruction", "model", "rows_per_shard", "dtype", "normalize")
        return {k: getattr(self, k) for k in keys} | {"on_bad_rows": self.on_bad_rows}


@dataclass
class Prepared:
    """A validated, planned run: the valid rows, the units and those still to embed."""

    config: BatchConfig
    corpus: Corpus
    units: list[WorkUnit]
    pending: list[WorkUnit]
    fingerprint: str
    output: OutputDir
    started: float = field(default_factory=time.perf_counter)


def prepare(config: BatchConfig) -> Prepared:
    """Read and validate the input, plan the units, check or write the plan; no Ray involved.

    Raises:
        BadRowsError: bad rows under ``on_bad_rows="error"`` (nothing is written).
        FileExistsError: the output folder holds a run and ``resume`` is off.
        ValueError: ``resume`` on a folder whose plan differs from this input and these settings.
    """
    started = time.perf_counter()
    corpus = load_corpus(
        find_inputs(config.input),
        id_column=config.id_column,
        text_column=config.text_column,
        columns=config.columns,
        on_bad_rows=config.on_bad_rows,
    )
    units = plan_units(corpus.table.num_rows, config.rows_per_shard)
    digest = fingerprint(corpus.table, config.plan_settings())
    output = OutputDir(Path(config.output).resolve())
    if output.has_run():
        if not config.resume:
            raise FileExistsError(
                f"{output.root} already holds a batch run; pass --resume to finish it or choose an empty folder"
            )
        plan = output.read_json(PLAN_NAME)
        if plan is None or plan.get("fingerprint") != digest:
            raise ValueError(
                f"cannot resume {output.root}: its plan was made from other input rows or settings "
                f"({(plan or {}).get('settings')}); use a new output folder"
            )
        output.remove_temporaries()
    else:
        output.root.mkdir(parents=True, exist_ok=True)
        plan_doc = {"fingerprint": digest, "settings": config.plan_settings(), "units": len(units)}
        output.write_json(PLAN_NAME, plan_doc | {"rows": corpus.table.num_rows})
    if corpus.rejected:
        output.write_rejects(corpus.rejected)
    pending = output.pending(units)
    return Prepared(config, corpus, units, pending, digest, output, started)


def _shard_dim(path: Path) -> int:
    kind = pq.read_schema(path).field(EMBEDDING_COLUMN).type
    return int(kind.list_size)


def finish(prepared: Prepared, *, rows_embedded: int, dim: int | None) -> Manifest:
    """Check every unit has its shard, then write and return the manifest (``_SUCCESS.json``)."""
    missing = prepared.output.pending(prepared.units)
    if missing:
        first = missing[0].shard_name
        raise RuntimeError(f"{len(missing)} unit(s) have no shard (first: {first}); run again with --resume")
    shards = prepared.output.shards()
    if dim is None:
        dim = _shard_dim(next(iter(shards.values()))) if shards else 0
    elapsed = time.perf_counter() - prepared.started
    config, corpus = prepared.config, prepared.corpus
    manifest = Manifest(
        rows_in=corpus.rows_in,
        rows_out=sum(u.rows for u in prepared.units),
        rows_rejected=len(corpus.rejected),
        model=config.model or "bundled:all-MiniLM-L6-v2",
        instruction=config.instruction,
        dim=dim,
        elapsed_s=round(elapsed, 3),
        texts_per_s=round(rows_embedded / elapsed, 2) if elapsed > 0 else 0.0,
        rows_embedded_this_run=rows_embedded,
        units=len(prepared.units),
        units_skipped=len(prepared.units) - len(prepared.pending),
        shards=[p.name for p in shards.values()],
        inputs=[str(s.path) for s in corpus.sources],
        id_column=config.id_column,
        text_column=config.text_column,
        passthrough=list(corpus.passthrough),
        rows_per_shard=config.rows_per_shard,
        fingerprint=prepared.fingerprint,
        rejects_file=REJECTS_NAME if corpus.rejected else None,
    )
    prepared.output.write_manifest(manifest)
    return manifest


class _RayUnitActor:
    """Ray Data actor: one encoder per actor; each call embeds whole units and writes their shards."""

    def __init__(self, settings: dict[str, Any]) -> None:
        import torch

        from instructor_plugins.model import InstructorEncoder

        torch.set_num_threads(max(1, int(settings["num_cpus"])))
        device = "cuda" if settings["num_gpus"] > 0 else "cpu"
        encoder = InstructorEncoder.load(settings["model"], device=device, dtype=settings["dtype"])
        self.embed = UnitEmbedder(
            encoder,
            OutputDir(Path(settings["output"])),
            id_column=settings["id_column"],
            text_column=settings["text_column"],
            passthrough=settings["passthrough"],
            instruction=settings["instruction"],
            batch_size=settings["batch_size"],
            normalize=settings["normalize"],
        )

    def __call__(self, batch: pa.Table) -> pa.Table:
        results = [
            self.embed(unit, table_from_ipc(payload))
            for unit, payload in zip(batch["unit"].to_pylist(), batch["payload"].to_pylist(), strict=True)
        ]
        return pa.Table.from_pylist([asdict(r) for r in results])


def _unit_blocks(prepared: Prepared) -> list[pa.Table]:
    table = prepared.corpus.table
    return [
        pa.table(
            {
                "unit": pa.array([u.index], type=pa.int64()),
                "rows": pa.array([u.rows], type=pa.int64()),
                "payload": pa.array([table_to_ipc(table.slice(u.start, u.rows))], type=pa.large_binary()),
            }
        )
        for u in prepared.pending
    ]


def run_in_process(config: BatchConfig | Prepared, encoder: Encoder) -> Manifest:
    """Run (or resume) a job in this process with ``encoder``, no Ray: the same plan, shards and manifest.

    Useful on a single machine without Ray and for tests of the exactly-once logic.
    """
    prepared = config if isinstance(config, Prepared) else prepare(config)
    cfg = prepared.config
    embed = UnitEmbedder(
        encoder,
        prepared.output,
        id_column=cfg.id_column,
        text_column=cfg.text_column,
        passthrough=prepared.corpus.passthrough,
        instruction=cfg.instruction,
        batch_size=cfg.batch_size,
        normalize=cfg.normalize,
    )
    rows, dim = 0, None
    for unit in tqdm(prepared.pending, desc="units", disable=not cfg.progress):
        result = embed(unit.index, prepared.corpus.table.slice(unit.start, unit.rows))
        rows, dim = rows + result.rows, result.dim
    return finish(prepared, rows_embedded=rows, dim=dim)


def execute(prepared: Prepared) -> Manifest:
    """Embed the pending units of a prepared run with Ray Data on the connected cluster; write the manifest."""
    import ray

    config = prepared.config
    rows_embedded, dim = 0, None
    if prepared.pending:
        ray.data.DataContext.get_current().enable_progress_bars = config.progress
        settings = asdict(config) | {"output": str(prepared.output.root), "passthrough": prepared.corpus.passthrough}
        ds = ray.data.from_arrow(_unit_blocks(prepared)).map_batches(
            _RayUnitActor,
            batch_size=1,  # one work unit per call: each call writes whole shards
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=min(config.replicas, len(prepared.pending))),
            num_cpus=config.num_cpus,
            num_gpus=config.num_gpus or None,
            fn_constructor_kwargs={"settings": settings},
        )
        total = sum(u.rows for u in prepared.pending)
        with tqdm(total=total, desc="embedded", unit="text", disable=not config.progress) as bar:
            for row in ds.iter_rows():
                rows_embedded += int(row["rows"])
                dim = int(row["dim"])
                bar.update(int(row["rows"]))
    return finish(prepared, rows_embedded=rows_embedded, dim=dim)


def run_batch(config: BatchConfig) -> Manifest:
    """Prepare and run (or resume) a job with Ray Data on the connected cluster (call ``ray.init()`` first)."""
    return execute(prepare(config))


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = command_parser(prog, __doc__)
    add_config_flags(parser, BatchConfig)
    add_config_flags(parser, RayOptions)
    return parser


def config_from_args(
    argv: Sequence[str] | None = None, *, prog: str = "python -m ray_backend.batch"
) -> tuple[BatchConfig, str | None]:
    """Parse CLI flags into a :class:`BatchConfig` and the Ray address (exit 2 on bad flags or values)."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    return config_from_args_of(parser, BatchConfig, args), config_from_args_of(parser, RayOptions, args).address


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m ray_backend.batch") -> int:
    """CLI entry point (``instructor batch``); prints the manifest as JSON.

    Exit status 2 (message on stderr) for bad flags, bad input rows, missing input, or an output folder that
    holds another run or was altered; nothing is embedded then. 1 when the run itself fails.
    """
    config, address = config_from_args(argv, prog=prog)
    try:
        prepared = prepare(config)  # validate the input before starting Ray: bad rows fail fast
    except (BadRowsError, FileExistsError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import ray

    from ray_backend.net import init_local_ray

    if address is None and not os.environ.get("RAY_ADDRESS"):
        init_local_ray(log_to_driver=False)  # a local Ray just for this run, on loopback only
    else:
        ray.init(address=address, log_to_driver=False)
    try:
        manifest = execute(prepared)
    finally:
        ray.shutdown()
    print(json.dumps(asdict(manifest), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
