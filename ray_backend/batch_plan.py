"""Exactly-once bookkeeping for batch embedding: work units, atomic shards, plan and manifest. No Ray.

The valid rows (in input order) are cut into numbered work units of ``rows_per_shard`` rows. Unit
``k`` always holds the same rows for the same input and settings, and its output is exactly one
file, ``part-<k>.parquet``, written to a temporary name and renamed into place (atomic on POSIX),
so a shard is either complete or absent. A rerun of a unit (Ray retry, ``--resume``) rewrites the
same rows under the same name: never a duplicate. The output folder holds:

- ``_plan.json``: settings and a fingerprint of the valid rows, written before any shard;
  ``--resume`` refuses to continue a folder whose plan differs.
- ``part-00000.parquet`` ...: id, ``embedding`` (fixed-size float32 list) and pass-through columns.
- ``_rejects.jsonl``: the bad rows skipped under ``--on-bad-rows skip``.
- ``_SUCCESS.json``: the manifest, written last; its presence means the output is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from instructor_plugins.types import Encoder
from ray_backend.batch_io import EMBEDDING_COLUMN, BadRow

__all__ = [
    "MANIFEST_NAME",
    "PLAN_NAME",
    "REJECTS_NAME",
    "Encoder",
    "Manifest",
    "OutputDir",
    "UnitEmbedder",
    "UnitResult",
    "WorkUnit",
    "fingerprint",
    "plan_units",
    "shard_table",
    "table_from_ipc",
    "table_to_ipc",
]

PLAN_NAME = "_plan.json"
MANIFEST_NAME = "_SUCCESS.json"
REJECTS_NAME = "_rejects.jsonl"
_SHARD_RE = re.compile(r"^part-(\d{5,})\.parquet$")


@dataclass(frozen=True)
class WorkUnit:
    """Rows ``[start, stop)`` of the valid-row table; its shard is ``part-<index>.parquet``."""

    index: int
    start: int
    stop: int

    @property
    def rows(self) -> int:
        """Rows in the unit."""
        return self.stop - self.start

    @property
    def shard_name(self) -> str:
        """The unit's output file name."""
        return f"part-{self.index:05d}.parquet"


def plan_units(n_rows: int, rows_per_shard: int) -> list[WorkUnit]:
    """Cut ``n_rows`` into consecutive units of ``rows_per_shard`` rows (the last may be shorter)."""
    if rows_per_shard < 1:
        raise ValueError(f"rows_per_shard must be >= 1, got {rows_per_shard}")
    return [
        WorkUnit(k, start, min(start + rows_per_shard, n_rows))
        for k, start in enumerate(range(0, n_rows, rows_per_shard))
    ]


def fingerprint(table: pa.Table, settings: dict[str, Any]) -> str:
    """SHA-256 over the settings and every (id, text, pass-through) value, in order."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for batch in table.to_batches(max_chunksize=65536):
        for column in batch.columns:
            digest.update(json.dumps(column.to_pylist(), default=repr).encode())
    return digest.hexdigest()


def table_to_ipc(table: pa.Table) -> bytes:
    """Serialize a table as Arrow IPC stream bytes (how units travel through Ray's object store)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def table_from_ipc(payload: bytes | pa.Buffer) -> pa.Table:
    """Inverse of :func:`table_to_ipc`."""
    return pa.ipc.open_stream(payload).read_all()


def shard_table(unit: pa.Table, vectors: np.ndarray, *, id_column: str, passthrough: Sequence[str] = ()) -> pa.Table:
    """The output rows of one unit: id, ``embedding`` (``fixed_size_list<float32>[dim]``), pass-through."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != unit.num_rows:
        raise ValueError(f"expected {unit.num_rows} vectors, got array of shape {vectors.shape}")
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    embedding = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
    columns = {id_column: unit[id_column], EMBEDDING_COLUMN: embedding}
    columns.update({name: unit[name] for name in passthrough})
    return pa.table(columns)


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class Manifest:
    """What ``_SUCCESS.json`` records about a finished run."""

    rows_in: int
    rows_out: int
    rows_rejected: int
    model: str
    instruction: str
    dim: int
    elapsed_s: float
    texts_per_s: float
    rows_embedded_this_run: int
    units: int
    units_skipped: int
    shards: list[str]
    inputs: list[str]
    id_column: str
    text_column: str
    passthrough: list[str]
    rows_per_shard: int
    fingerprint: str
    rejects_file: str | None = None
    finished_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


@dataclass(frozen=True)
class OutputDir:
    """The output folder of a batch run (a local or shared-filesystem path visible to every worker)."""

    root: Path

    def shard_path(self, unit: WorkUnit | int) -> Path:
        """Where a unit's shard lives."""
        index = unit.index if isinstance(unit, WorkUnit) else unit
        return self.root / WorkUnit(index, 0, 0).shard_name

    def shards(self) -> dict[int, Path]:
        """Finished shards by unit index."""
        if not self.root.is_dir():
            return {}
        found = {}
        for path in self.root.iterdir():
            match = _SHARD_RE.match(path.name)
            if match:
                found[int(match.group(1))] = path
        return dict(sorted(found.items()))

    def read(self) -> pa.Table:
        """All finished shards as one table, in unit order (the whole output once complete)."""
        return pa.concat_tables([pq.read_table(path) for path in self.shards().values()])

    def has_run(self) -> bool:
        """Whether the folder already holds (part of) a batch run."""
        return (self.root / PLAN_NAME).exists() or (self.root / MANIFEST_NAME).exists() or bool(self.shards())

    def remove_temporaries(self) -> int:
        """Delete ``.*.tmp`` files left by writers that were killed; returns how many."""
        if not self.root.is_dir():
            return 0
        leftovers = [p for p in self.root.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)

    def write_shard(self, unit: WorkUnit | int, table: pa.Table) -> Path:
        """Write one unit's shard atomically (temporary file, fsync, rename)."""
        path = self.shard_path(unit)
        _atomic_write(path, lambda fh: pq.write_table(table, fh))
        return path

    def write_json(self, name: str, payload: dict[str, Any]) -> Path:
        """Write a JSON file atomically."""
        path = self.root / name
        _atomic_write(path, lambda fh: fh.write(json.dumps(payload, indent=2, default=str).encode()))
        return path

    def read_json(self, name: str) -> dict[str, Any] | None:
        """A JSON file of the folder, or ``None`` when absent."""
        path = self.root / name
        return json.loads(path.read_text()) if path.exists() else None

    def write_rejects(self, rows: Iterable[BadRow]) -> Path:
        """Write the rejected rows as JSON lines, atomically."""
        text = "".join(json.dumps(r.to_json()) + "\n" for r in rows)
        path = self.root / REJECTS_NAME
        _atomic_write(path, lambda fh: fh.write(text.encode()))
        return path

    def write_manifest(self, manifest: Manifest) -> Path:
        """Write ``_SUCCESS.json`` (last step of a run)."""
        return self.write_json(MANIFEST_NAME, asdict(manifest))

    def pending(self, units: Sequence[WorkUnit]) -> list[WorkUnit]:
        """Units without a finished shard; raises if a finished shard's row count is off."""
        done = self.shards()
        todo = []
        for unit in units:
            path = done.get(unit.index)
            if path is None:
                todo.append(unit)
                continue
            rows = pq.read_metadata(path).num_rows
            if rows != unit.rows:
                raise RuntimeError(f"{path} holds {rows} rows, the plan says {unit.rows}; the folder was altered")
        extra = sorted(set(done) - {u.index for u in units})
        if extra:
            raise RuntimeError(f"{self.root} holds shards {extra} that the plan does not know; the folder was altered")
        return todo


@dataclass(frozen=True)
class UnitResult:
    """What embedding one unit reports back."""

    unit: int
    rows: int
    dim: int
    seconds: float


class UnitEmbedder:
    """Embed a unit's texts and write its shard: the work each Ray actor does, testable without Ray."""

    def __init__(
        self,
        encoder: Encoder,
        output: OutputDir,
        *,
        id_column: str,
        text_column: str,
        passthrough: Sequence[str] = (),
        instruction: str = "",
        batch_size: int = 32,
        normalize: bool = True,
    ) -> None:
        self.encoder = encoder
        self.output = output
        self.id_column = id_column
        self.text_column = text_column
        self.passthrough = list(passthrough)
        self.instruction = instruction
        self.batch_size = batch_size
        self.normalize = normalize

    def __call__(self, unit: int, table: pa.Table) -> UnitResult:
        """Embed ``table`` (the unit's rows) and write ``part-<unit>.parquet``."""
        start = time.perf_counter()
        texts = table[self.text_column].to_pylist()
        vectors = self.encoder.encode(
            texts, self.instruction or None, batch_size=self.batch_size, normalize=self.normalize
        )
        shard = shard_table(table, vectors, id_column=self.id_column, passthrough=self.passthrough)
        self.output.write_shard(unit, shard)
        return UnitResult(unit, table.num_rows, int(vectors.shape[1]), time.perf_counter() - start)
