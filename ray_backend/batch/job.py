"""Embed a corpus into Parquet shards with Ray Data: exactly once, resumable, the same on a laptop and a cluster.

Examples::

    instructor batch --input docs/ --output emb/ --instruction "Represent the document for retrieval: "
    instructor batch --input docs/ --output emb/ --instruction "Represent the document for retrieval: " --resume
    instructor batch --input 's3://corpus/*.parquet' --output s3://corpus/emb --replicas 8 --num-gpus 1
    ray job submit --working-dir . -- instructor batch --input s3://... --output s3://... --replicas 8

Input: JSONL, Parquet or CSV rows with an id and a text column (a file, a folder or a glob). Output: one
``part-*.parquet`` shard per work unit (id, ``embedding``, the ``--columns`` you keep), bad rows in
``_rejects.jsonl`` with ``--on-bad-rows skip``, and ``_SUCCESS.json`` when every shard is written. Paths are
local or object storage (``s3://``, ``gs://``; credentials and endpoint from the standard AWS environment).
``--resume`` with the same flags finishes an interrupted run. Without ``--address`` (or ``RAY_ADDRESS``) it
starts a local Ray. Exit status 2 for bad rows (listed) or bad flags, before any embedding.
``python -m ray_backend.batch`` is the same command. Docs: docs/batch.md.

How it works:

The driver never holds the corpus: it lists the input files, then one Ray task per file streams and checks the rows
(:mod:`ray_backend.batch.scan`) and a hash-partitioned Ray Data groupby finds duplicate ids; the
driver only receives per-file summaries and the bad rows. It cuts each file into numbered work units,
locks the output (:mod:`ray_backend.batch.lock`) and writes the plan (:mod:`ray_backend.batch.plan`).
Ray Data then maps the pending unit numbers over a pool of actors (``map_batches`` with a callable
class holding one encoder per actor); each actor reads its unit's rows straight from storage, embeds
them and writes the unit's shard atomically. The driver writes the manifest last. This module is only
that thin Ray shell and the CLI.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pyarrow as pa
from tqdm.auto import tqdm

from instructor_plugins.flags import add_config_flags, command_parser
from instructor_plugins.flags import config_from_args as config_from_args_of
from instructor_plugins.storage import StorageError, check_reachable
from ray_backend.batch.embedder import load_encoder
from ray_backend.batch.io import BAD_ROW_POLICIES, EMBEDDING_COLUMN, BadRow, BadRowsError, InputFile, find_inputs
from ray_backend.batch.lock import OutputLock, OutputLockedError
from ray_backend.batch.plan import (
    PLAN_NAME,
    REJECTS_NAME,
    Encoder,
    Manifest,
    OutputDir,
    RowLayout,
    UnitEmbedder,
    WorkUnit,
    fingerprint,
    plan_units,
)
from ray_backend.batch.scan import Duplicate, FileScan, find_duplicates, find_duplicates_ray, scan_file
from ray_backend.net import RayOptions, alive_node_count

__all__ = [
    "BatchConfig",
    "Job",
    "Prepared",
    "alive_node_count",
    "check_cluster",
    "check_shared_storage",
    "execute",
    "finish",
    "locate",
    "main",
    "plan",
    "prepare",
    "run_batch",
    "run_in_process",
    "scan_local",
    "scan_ray",
]

logger = logging.getLogger(__name__)


@dataclass
class BatchConfig:
    """Settings of one batch-embedding run (the CLI flags)."""

    input: str
    """A file, a folder or a glob of JSONL / Parquet / CSV files: a local path or ``s3://``, ``gs://``... URI."""
    output: str
    """Output folder: a local path (shared storage on a multi-node cluster) or an ``s3://``, ``gs://``... URI."""
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
    encoder_factory: str | None = None
    """``module:callable`` of ``callable(model, *, device, dtype)`` returning an encoder (custom runtimes, tests)."""
    batch_size: int = 32
    """Texts per forward pass."""
    replicas: int = 1
    """Encoder actors (Ray Data actor-pool size)."""
    num_gpus: float = 0.0
    """GPUs per actor; > 0 runs the encoder on CUDA."""
    num_cpus: float = 1.0
    """CPUs per actor (also its torch thread count)."""
    rows_per_shard: int = 5000
    """Input rows per work unit and output shard (a unit never spans two files)."""
    on_bad_rows: Literal["error", "skip"] = "error"
    """``error`` (fail, listing the first bad rows) or ``skip`` (write them to ``_rejects.jsonl``)."""
    resume: bool = False
    """Finish a run that was interrupted, skipping units whose shard exists."""
    dtype: str | None = None
    """Model dtype (default fp32 on CPU, bf16 on GPU)."""
    normalize: bool = True
    """L2-normalise the vectors."""
    progress: bool = True
    """Show progress bars."""
    shared_storage: bool = False
    """Local input and output paths are mounted on every node (NFS, a shared disk): allow them on a multi-node
    cluster, where a local path is refused otherwise (each node would read and write its own disk)."""

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
        if self.id_column == self.text_column:
            raise ValueError(f"id_column and text_column are both {self.id_column!r}; they must differ")
        if self.id_column in self.columns:
            raise ValueError(f"pass-through columns {list(self.columns)} may not include the id {self.id_column!r}")
        if self.encoder_factory is not None and ":" not in self.encoder_factory:
            raise ValueError(f"encoder_factory must look like 'module:callable', got {self.encoder_factory!r}")
        self.columns = tuple(dict.fromkeys(self.columns))

    def plan_settings(self) -> dict[str, Any]:
        """The settings that decide the output; ``--resume`` needs them unchanged."""
        keys = ["text_column", "id_column", "columns", "instruction", "model", "encoder_factory", "rows_per_shard"]
        keys += ["dtype", "normalize"]
        return {k: getattr(self, k) for k in keys} | {"on_bad_rows": self.on_bad_rows}


@dataclass
class Job:
    """A located run: the input files and the output folder, checked reachable; nothing read yet."""

    config: BatchConfig
    files: list[InputFile]
    output: OutputDir
    started: float = field(default_factory=time.perf_counter)


@dataclass
class Prepared:
    """A validated, planned and locked run: the units, those still to embed, and how rows become shards."""

    job: Job
    scans: list[FileScan]
    rejected: list[BadRow]
    layout: RowLayout
    units: list[WorkUnit]
    pending: list[WorkUnit]
    fingerprint: str
    lock: OutputLock

    @property
    def config(self) -> BatchConfig:
        """The run's settings."""
        return self.job.config

    @property
    def output(self) -> OutputDir:
        """The run's output folder."""
        return self.job.output

    def close(self) -> None:
        """Release the output lock (idempotent)."""
        self.lock.release()


def locate(config: BatchConfig) -> Job:
    """List the input files and check the output, reading no rows (fast, before Ray starts).

    Raises:
        FileNotFoundError: no input files match.
        StorageError: an endpoint is unreachable or a bucket does not exist (message without credentials).
        FileExistsError: the output folder holds a run and ``resume`` is off.
    """
    files = find_inputs(config.input)
    output = OutputDir(config.output)
    check_reachable(output.root)
    if output.has_run() and not config.resume:
        raise FileExistsError(
            f"{output.root} already holds a batch run; pass --resume to finish it or choose an empty folder"
        )
    return Job(config, files, output)


def _scan_kwargs(config: BatchConfig) -> dict[str, Any]:
    return {
        "id_column": config.id_column,
        "text_column": config.text_column,
        "columns": [c for c in config.columns if c != config.text_column],
        "rows_per_shard": config.rows_per_shard,
    }


def scan_local(job: Job) -> tuple[list[FileScan], list[Duplicate]]:
    """The validation pass in this process, one file after another (no Ray)."""
    scans, keys = [], []
    for i, file in enumerate(tqdm(job.files, desc="scan", unit="file", disable=not job.config.progress)):
        scan, table = scan_file(file, i, **_scan_kwargs(job.config))
        scans.append(scan)
        keys.append(table)
    return scans, find_duplicates(keys)


def scan_ray(job: Job) -> tuple[list[FileScan], list[Duplicate]]:
    """The validation pass on the connected Ray cluster: one task per file, then a distributed duplicate check.

    The driver receives each file's summary; the key tables stay in the object store.
    """
    import ray

    scan: Any = scan_file
    task: Any = ray.remote(scan).options(num_returns=2, num_cpus=1, max_retries=2)
    refs = [task.remote(file, i, **_scan_kwargs(job.config)) for i, file in enumerate(job.files)]
    scans = list(ray.get([r[0] for r in refs]))
    total_keys = sum(sum(s.valid_per_unit) for s in scans)
    return scans, find_duplicates_ray([r[1] for r in refs], total_keys)


def _layout(config: BatchConfig, scans: Sequence[FileScan], duplicates: Sequence[Duplicate]) -> RowLayout:
    schemas = [s.extra_schema for s in scans if s.extra_schema is not None]
    extra = None
    if schemas:
        try:
            extra = pa.unify_schemas(schemas, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            message = f"pass-through columns {list(config.columns)} have different types across files: {exc}"
            raise ValueError(message) from exc
    return RowLayout(
        id_column=config.id_column,
        text_column=config.text_column,
        passthrough=tuple(config.columns),
        id_type=pa.int64()
        if sum(s.non_int_ids for s in scans) == sum(not d.is_int for d in duplicates)
        else pa.string(),
        extra_schema=extra,
    )


def _bad_rows(scans: Sequence[FileScan], duplicates: Sequence[Duplicate]) -> list[BadRow]:
    tagged = [((s.index, b.row), b) for s in scans for b in s.bad]
    tagged += [((d.file, d.row), BadRow(scans[d.file].uri, d.row, d.key, "duplicate_id")) for d in duplicates]
    return [b for _, b in sorted(tagged, key=lambda t: t[0])]


def plan(job: Job, scans: list[FileScan], duplicates: list[Duplicate]) -> Prepared:
    """Apply the bad-row policy, plan the units, lock the output and check or write the plan.

    Raises:
        BadRowsError: bad rows under ``on_bad_rows="error"`` (nothing is written).
        OutputLockedError: another live run holds the output folder.
        ValueError: ``resume`` on a folder whose plan differs from this input and these settings.
    """
    config, output = job.config, job.output
    rejected = _bad_rows(scans, duplicates)
    if rejected and config.on_bad_rows == "error":
        raise BadRowsError(rejected)
    layout = _layout(config, scans, duplicates)
    units = plan_units(scans, duplicates, config.rows_per_shard)
    digest = fingerprint(scans, config.plan_settings())
    output.prepare()
    lock = OutputLock(output.root)
    lock.acquire()
    try:
        if output.has_run():
            if not config.resume:
                raise FileExistsError(
                    f"{output.root} already holds a batch run; pass --resume to finish it or choose an empty folder"
                )
            saved = output.read_json(PLAN_NAME)
            if saved is None or saved.get("fingerprint") != digest:
                raise ValueError(
                    f"cannot resume {output.root}: its plan was made from other input rows or settings "
                    f"({(saved or {}).get('settings')}); use a new output folder"
                )
            output.remove_temporaries()
        else:
            rows = sum(u.rows for u in units)
            plan_doc = {"fingerprint": digest, "settings": config.plan_settings(), "units": len(units), "rows": rows}
            output.write_json(PLAN_NAME, plan_doc)
        if rejected:
            output.write_rejects(rejected)
        pending = output.pending(units)
    except BaseException:
        lock.release()
        raise
    logger.info(
        "%s: %d file(s), %d rows, %d rejected (%d duplicate ids); %d units, %d to embed",
        output.root,
        len(scans),
        sum(s.rows for s in scans),
        len(rejected),
        len(duplicates),
        len(units),
        len(pending),
    )
    return Prepared(job, scans, rejected, layout, units, pending, digest, lock)


def prepare(
    config: BatchConfig, scanner: Callable[[Job], tuple[list[FileScan], list[Duplicate]]] = scan_local
) -> Prepared:
    """Locate, scan (in this process by default), validate, plan and lock a run; no embedding.

    Call :meth:`Prepared.close` (or :func:`finish`) to release the output lock.
    """
    job = locate(config)
    return plan(job, *scanner(job))


def finish(prepared: Prepared, *, rows_embedded: int, dim: int | None, nodes: dict[str, int] | None = None) -> Manifest:
    """Check every unit has its shard, then write and return the manifest (``_SUCCESS.json``); unlocks."""
    try:
        missing = prepared.output.pending(prepared.units)
        if missing:
            first = missing[0].shard_name
            raise RuntimeError(f"{len(missing)} unit(s) have no shard (first: {first}); run again with --resume")
        shards = prepared.output.shards()
        if dim is None:
            dim = _shard_dim(next(iter(shards.values()))) if shards else 0
        elapsed = time.perf_counter() - prepared.job.started
        config = prepared.config
        manifest = Manifest(
            rows_in=sum(s.rows for s in prepared.scans),
            rows_out=sum(u.rows for u in prepared.units),
            rows_rejected=len(prepared.rejected),
            model=config.encoder_factory or config.model or "bundled:all-MiniLM-L6-v2",
            instruction=config.instruction,
            dim=dim,
            elapsed_s=round(elapsed, 3),
            texts_per_s=round(rows_embedded / elapsed, 2) if elapsed > 0 else 0.0,
            rows_embedded_this_run=rows_embedded,
            units=len(prepared.units),
            units_skipped=len(prepared.units) - len(prepared.pending),
            shards=[loc.uri.rsplit("/", 1)[-1] for loc in shards.values()],
            inputs=[f.uri for f in prepared.job.files],
            id_column=config.id_column,
            text_column=config.text_column,
            passthrough=list(config.columns),
            rows_per_shard=config.rows_per_shard,
            fingerprint=prepared.fingerprint,
            rejects_file=REJECTS_NAME if prepared.rejected else None,
            nodes=dict(sorted((nodes or {}).items())),
        )
        prepared.output.write_manifest(manifest)
        return manifest
    finally:
        prepared.close()


def _shard_dim(location: Any) -> int:
    import pyarrow.parquet as pq

    with location.fs.open_input_file(location.path) as fh:
        kind = pq.read_schema(fh).field(EMBEDDING_COLUMN).type
    return int(kind.list_size)


class _RayUnitActor:
    """Ray Data actor: one encoder per actor; each call reads, embeds and writes whole units."""

    def __init__(
        self, settings: dict[str, Any], output: OutputDir, files: list[InputFile], layout: RowLayout, units: dict
    ) -> None:
        import ray

        self.units = units
        device = "cuda" if settings["num_gpus"] > 0 else "cpu"
        encoder = load_encoder(
            settings["model"],
            device=device,
            dtype=settings["dtype"],
            encoder_factory=settings["encoder_factory"],
            num_threads=int(settings["num_cpus"]),
        )
        self.embed = UnitEmbedder(
            encoder,
            output,  # the driver's filesystem objects: same endpoint and options on every node
            files,
            layout,
            instruction=settings["instruction"],
            batch_size=settings["batch_size"],
            normalize=settings["normalize"],
            node=ray.get_runtime_context().get_node_id(),
        )

    def __call__(self, batch: pa.Table) -> pa.Table:
        results = [self.embed(self.units[int(k)]) for k in batch["unit"].to_pylist()]
        return pa.Table.from_pylist([asdict(r) for r in results])


def run_in_process(config: BatchConfig | Prepared, encoder: Encoder) -> Manifest:
    """Run (or resume) a job in this process with ``encoder``, no Ray: the same plan, shards and manifest.

    Useful on a single machine without Ray and for tests of the exactly-once logic.
    """
    prepared = config if isinstance(config, Prepared) else prepare(config)
    try:
        cfg = prepared.config
        embed = UnitEmbedder(
            encoder,
            prepared.output,
            prepared.job.files,
            prepared.layout,
            instruction=cfg.instruction,
            batch_size=cfg.batch_size,
            normalize=cfg.normalize,
        )
        rows, dim, nodes = 0, None, Counter[str]()
        for unit in tqdm(prepared.pending, desc="units", disable=not cfg.progress):
            result = embed(unit)
            rows, dim = rows + result.rows, result.dim
            nodes[result.node] += 1
    except BaseException:
        prepared.close()
        raise
    return finish(prepared, rows_embedded=rows, dim=dim, nodes=dict(nodes))


def execute(prepared: Prepared) -> Manifest:
    """Embed the pending units of a prepared run with Ray Data on the connected cluster; write the manifest."""
    import ray

    config = prepared.config
    rows_embedded, dim, nodes = 0, None, Counter[str]()
    try:
        if prepared.pending:
            ray.data.DataContext.get_current().enable_progress_bars = config.progress
            settings = asdict(config)
            units = {u.index: u for u in prepared.pending}
            ds = ray.data.from_items([{"unit": u.index} for u in prepared.pending]).map_batches(
                _RayUnitActor,
                batch_size=1,  # one work unit per call: each call writes whole shards
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=min(config.replicas, len(prepared.pending))),
                num_cpus=config.num_cpus,
                num_gpus=config.num_gpus or None,
                fn_constructor_kwargs={
                    "settings": settings,
                    "output": prepared.output,
                    "files": prepared.job.files,
                    "layout": prepared.layout,
                    "units": units,
                },
            )
            total = sum(u.rows for u in prepared.pending)
            with tqdm(total=total, desc="embedded", unit="text", disable=not config.progress) as bar:
                for row in ds.iter_rows():
                    rows_embedded += int(row["rows"])
                    dim = int(row["dim"])
                    nodes[str(row["node"])] += 1
                    bar.update(int(row["rows"]))
    except BaseException:
        prepared.close()
        raise
    return finish(prepared, rows_embedded=rows_embedded, dim=dim, nodes=dict(nodes))


def check_shared_storage(job: Job, alive_nodes: int) -> None:
    """Refuse local paths on a multi-node cluster unless the user says every node mounts them.

    Raises:
        ValueError: ``alive_nodes`` > 1, a local input or output, and no ``shared_storage``.
    """
    if alive_nodes <= 1 or job.config.shared_storage:
        return
    local = [f.uri for f in job.files if f.location.is_local][:1]
    if job.output.root.is_local:
        local.insert(0, job.output.root.uri)
    if local:
        raise ValueError(
            f"{local[0]} is a local path, and this Ray cluster has {alive_nodes} nodes: each node would read and "
            "write its own disk, scattering the shards. Use object storage (s3://, gs://...) or, for a path every "
            "node mounts (NFS), pass --shared-storage"
        )


def check_cluster(job: Job) -> None:
    """The connected cluster can run ``job``: its storage is shared, and a node can hold an encoder actor.

    Raises:
        ValueError: a local path on a multi-node cluster without ``shared_storage`` (:func:`check_shared_storage`).
        InsufficientResources: no alive node has the CPUs (and GPUs) of one actor, even after an autoscaler's wait.
    """
    from ray_backend.net import wait_for_resources

    check_shared_storage(job, alive_node_count())
    per_actor = {"CPU": job.config.num_cpus, "GPU": job.config.num_gpus}
    wait_for_resources(per_actor, 1, "batch embedding (an encoder actor, --num-cpus/--num-gpus)")


def run_batch(config: BatchConfig) -> Manifest:
    """Locate, scan (Ray tasks), plan and run (or resume) a job on the connected cluster (``ray.init()`` first).

    Raises:
        ValueError: a local path on a multi-node cluster without ``shared_storage`` (:func:`check_shared_storage`).
        InsufficientResources: no node can hold an encoder actor (:func:`check_cluster`).
    """
    job = locate(config)
    check_cluster(job)
    return execute(plan(job, *scan_ray(job)))


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

    Exit status 2 (message on stderr) for bad flags, unreachable storage, missing input, bad input rows,
    an output folder that holds another run, is locked by a live run or was altered; nothing is embedded then.
    1 when the run itself fails.
    """
    errors = (BadRowsError, FileExistsError, FileNotFoundError, StorageError, OutputLockedError, ValueError)
    config, address = config_from_args(argv, prog=prog)
    try:
        job = locate(config)  # storage and input listing are checked before Ray starts
    except (*errors, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import ray

    from ray_backend.net import ClusterUnreachable, init_local_ray, join_cluster

    address = address or os.environ.get("RAY_ADDRESS")
    if address is None:
        init_local_ray(log_to_driver=False)  # a local Ray just for this run, on loopback only
    else:
        try:
            join_cluster(address, log_to_driver=False)
        except ClusterUnreachable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        try:
            check_cluster(job)
            prepared = plan(job, *scan_ray(job))  # every row is checked before any is embedded
        except (*errors, RuntimeError) as exc:  # RuntimeError: the output folder was altered, or too few resources
            print(f"error: {exc}", file=sys.stderr)
            return 2
        manifest = execute(prepared)
    finally:
        ray.shutdown()
    print(json.dumps(asdict(manifest), indent=2))
    return 0
