"""Exactly-once bookkeeping for batch embedding: work units, atomic shards, plan and manifest. No Ray.

Each input file is cut into numbered work units of ``rows_per_shard`` consecutive rows (a unit never
spans two files). Unit ``k`` always covers the same rows for the same input and settings, and its
output is exactly one object, ``part-<k>.parquet``, holding the unit's valid rows. A shard is written
atomically (a local file goes to a temporary name and is renamed; an object-store object becomes
visible only when its single upload completes), so it is either complete or absent. A rerun of a
unit (Ray retry, ``--resume``) rewrites the same rows under the same name: never a duplicate. The
output folder (a local path or an ``s3://``/``gs://`` prefix) holds:

- ``_plan.json``: settings and a fingerprint of the input, written before any shard;
  ``--resume`` refuses to continue a folder whose plan differs.
- ``part-00000.parquet`` ...: id, ``embedding`` (fixed-size float32 list) and pass-through columns.
- ``_rejects.jsonl``: the bad rows skipped under ``--on-bad-rows skip``.
- ``_lock.json`` while a run is active (:mod:`ray_backend.batch.lock`).
- ``_SUCCESS.json``: the manifest, written last; its presence means the output is complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from instructor_plugins.storage import Location, StorageError, atomic_write, resolve
from instructor_plugins.types import Encoder
from ray_backend.batch.io import EMBEDDING_COLUMN, BadRow, InputFile, iter_batches, row_problems
from ray_backend.batch.scan import Duplicate, FileScan

logger = logging.getLogger(__name__)
#: Schema metadata key of a shard naming the node that embedded it.
NODE_METADATA = b"instructor.node"

__all__ = [
    "MANIFEST_NAME",
    "PLAN_NAME",
    "REJECTS_NAME",
    "Encoder",
    "Manifest",
    "OutputDir",
    "RowLayout",
    "UnitEmbedder",
    "UnitResult",
    "WorkUnit",
    "fingerprint",
    "plan_units",
    "read_unit",
    "shard_table",
]

PLAN_NAME = "_plan.json"
MANIFEST_NAME = "_SUCCESS.json"
REJECTS_NAME = "_rejects.jsonl"
_SHARD_RE = re.compile(r"^part-(\d{5,})\.parquet$")


@dataclass(frozen=True)
class WorkUnit:
    """Rows ``[start, stop)`` of input file ``file``; its shard ``part-<index>.parquet`` holds ``rows`` rows.

    ``offset`` is the byte offset of row ``start`` (JSONL), ``drop`` the rows of the range rejected as
    duplicate ids.
    """

    index: int
    file: int = 0
    start: int = 0
    stop: int = 0
    rows: int = 0
    offset: int = 0
    drop: tuple[int, ...] = ()

    @property
    def shard_name(self) -> str:
        """The unit's output file name."""
        return f"part-{self.index:05d}.parquet"


def plan_units(scans: Sequence[FileScan], duplicates: Sequence[Duplicate], rows_per_shard: int) -> list[WorkUnit]:
    """Cut every file into consecutive units of ``rows_per_shard`` rows (numbered across files in order)."""
    if rows_per_shard < 1:
        raise ValueError(f"rows_per_shard must be >= 1, got {rows_per_shard}")
    drops: dict[tuple[int, int], list[int]] = {}
    for dup in duplicates:
        drops.setdefault((dup.file, dup.row // rows_per_shard), []).append(dup.row)
    units: list[WorkUnit] = []
    for scan in scans:
        for k, start in enumerate(range(0, scan.rows, rows_per_shard)):
            drop = tuple(sorted(drops.get((scan.index, k), [])))
            units.append(
                WorkUnit(
                    index=len(units),
                    file=scan.index,
                    start=start,
                    stop=min(start + rows_per_shard, scan.rows),
                    rows=scan.valid_per_unit[k] - len(drop),
                    offset=scan.unit_offsets[k],
                    drop=drop,
                )
            )
    return units


def fingerprint(scans: Sequence[FileScan], settings: dict[str, Any]) -> str:
    """SHA-256 over the settings and each file's URI and content digest, in input order."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for scan in scans:
        digest.update(f"\n{scan.uri}\n{scan.digest}".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class RowLayout:
    """How a unit's rows become a shard: column names, the output id type and the pass-through schema."""

    id_column: str
    text_column: str
    passthrough: tuple[str, ...] = ()
    id_type: pa.DataType = field(default_factory=pa.string)
    extra_schema: pa.Schema | None = None

    @property
    def read_columns(self) -> list[str]:
        """Pass-through columns read from the input (the text column is read anyway)."""
        return [c for c in self.passthrough if c != self.text_column]


def read_unit(files: Sequence[InputFile], unit: WorkUnit, layout: RowLayout) -> pa.Table:
    """The unit's valid rows (id, text, pass-through) in input order, typed as ``layout`` says.

    Raises:
        RuntimeError: the file no longer yields the planned number of valid rows (it changed).
    """
    file = files[unit.file]
    drop = set(unit.drop)
    ids: list[Any] = []
    texts: list[str] = []
    extras: list[pa.Table] = []
    for batch in iter_batches(
        file,
        id_column=layout.id_column,
        text_column=layout.text_column,
        columns=layout.read_columns,
        start=unit.start,
        stop=unit.stop,
        offset=unit.offset,
    ):
        keep = [i for i, p in enumerate(row_problems(batch)) if p is None and batch.start + i not in drop]
        ids.extend(batch.ids[i] for i in keep)
        texts.extend(batch.texts[i] for i in keep)
        if batch.extra is not None and layout.extra_schema is not None:
            extras.append(batch.extra.take(pa.array(keep, pa.int64())).cast(layout.extra_schema))
    if len(ids) != unit.rows:
        raise RuntimeError(
            f"{file.uri} rows {unit.start}-{unit.stop} now hold {len(ids)} valid rows, the plan says {unit.rows}: "
            "the input changed during the run; start again in a new output folder"
        )
    id_values = ids if pa.types.is_integer(layout.id_type) else [str(i) for i in ids]
    table = pa.table({layout.id_column: pa.array(id_values, layout.id_type), layout.text_column: texts})
    if layout.read_columns:
        schema = layout.extra_schema or pa.schema([])
        extra = pa.concat_tables(extras) if extras else schema.empty_table()
        for name in layout.read_columns:
            table = table.append_column(name, extra[name])
    return table


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
    nodes: dict[str, int] = field(default_factory=dict)
    """Units embedded by this run per node (Ray node id; the host name in-process)."""
    finished_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


@dataclass(frozen=True)
class OutputDir:
    """The output folder of a batch run: a local path, a shared filesystem or an object-store prefix."""

    root: Location

    def __init__(self, root: Location | str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", root if isinstance(root, Location) else resolve(root))

    def file(self, name: str) -> Location:
        """A file of the folder."""
        return self.root.child(name)

    def shard_path(self, unit: WorkUnit | int) -> Location:
        """Where a unit's shard lives."""
        index = unit.index if isinstance(unit, WorkUnit) else unit
        return self.file(WorkUnit(index).shard_name)

    def _listing(self) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self.root.path, allow_not_found=True, recursive=False)
        return [i for i in self.root.fs.get_file_info(selector) if i.type == pafs.FileType.File]

    def shards(self) -> dict[int, Location]:
        """Finished shards by unit index."""
        found = {}
        for info in self._listing():
            match = _SHARD_RE.match(info.base_name)
            if match:
                found[int(match.group(1))] = self.file(info.base_name)
        return dict(sorted(found.items()))

    def read(self) -> pa.Table:
        """All finished shards as one table, in unit order (the whole output once complete)."""
        return pa.concat_tables([pq.read_table(loc.path, filesystem=loc.fs) for loc in self.shards().values()])

    def has_run(self) -> bool:
        """Whether the folder already holds (part of) a batch run."""
        names = {i.base_name for i in self._listing()}
        return PLAN_NAME in names or MANIFEST_NAME in names or any(_SHARD_RE.match(n) for n in names)

    def prepare(self) -> None:
        """Create the folder (object stores need no folders)."""
        if self.root.is_local:
            os.makedirs(self.root.path, exist_ok=True)

    def remove_temporaries(self) -> int:
        """Delete ``.*.tmp`` files left by local writers that were killed; returns how many."""
        leftovers = [i for i in self._listing() if i.base_name.startswith(".") and i.base_name.endswith(".tmp")]
        for info in leftovers:
            self.root.fs.delete_file(info.path)
        return len(leftovers)

    @staticmethod
    def shard_node(location: Location) -> str | None:
        """The node that wrote a shard (its ``instructor.node`` schema metadata), if recorded."""
        with location.fs.open_input_file(location.path) as fh:
            metadata = pq.read_schema(fh).metadata or {}
        node = metadata.get(NODE_METADATA)
        return node.decode() if node is not None else None

    def write_shard(self, unit: WorkUnit | int, table: pa.Table) -> Location:
        """Write one unit's shard atomically, then read its footer back: a unit is done only if it reads.

        Raises:
            StorageError: the stored shard is not the Parquet file written (size, footer or row count).
        """
        buf = io.BytesIO()
        pq.write_table(table, buf)
        location = self.shard_path(unit)
        atomic_write(location, buf.getvalue())
        rows = self.shard_rows(location)
        if rows != table.num_rows:
            found = "no Parquet footer" if rows is None else f"{rows} rows"
            raise StorageError(f"{location} read back with {found}, {table.num_rows} rows were written")
        return location

    @staticmethod
    def shard_rows(location: Location) -> int | None:
        """The row count in a shard's Parquet footer, or ``None`` when it does not read as Parquet."""
        try:
            with location.fs.open_input_file(location.path) as fh:
                return int(pq.read_metadata(fh).num_rows)
        except (pa.ArrowInvalid, OSError):
            return None

    def write_json(self, name: str, payload: dict[str, Any]) -> Location:
        """Write a JSON file atomically."""
        location = self.file(name)
        atomic_write(location, json.dumps(payload, indent=2, default=str).encode())
        return location

    def read_json(self, name: str) -> dict[str, Any] | None:
        """A JSON file of the folder, or ``None`` when absent."""
        location = self.file(name)
        if not location.exists():
            return None
        return dict(json.loads(location.read_bytes()))

    def write_rejects(self, rows: Iterable[BadRow]) -> Location:
        """Write the rejected rows as JSON lines, atomically."""
        text = "".join(json.dumps(r.to_json()) + "\n" for r in rows)
        location = self.file(REJECTS_NAME)
        atomic_write(location, text.encode())
        return location

    def write_manifest(self, manifest: Manifest) -> Location:
        """Write ``_SUCCESS.json`` (last step of a run)."""
        return self.write_json(MANIFEST_NAME, asdict(manifest))

    def pending(self, units: Sequence[WorkUnit]) -> list[WorkUnit]:
        """Units without a finished shard; raises if a finished shard's row count is off.

        A shard that does not read as Parquet (cut short, or stored as something else) is not finished: its
        unit is pending again and the shard is rewritten.
        """
        done = self.shards()
        todo = []
        for unit in units:
            location = done.get(unit.index)
            if location is None:
                todo.append(unit)
                continue
            rows = self.shard_rows(location)
            if rows is None:
                logger.warning("%s does not read as Parquet; its unit is embedded again", location)
                todo.append(unit)
                continue
            if rows != unit.rows:
                raise RuntimeError(f"{location} holds {rows} rows, the plan says {unit.rows}; the folder was altered")
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
    node: str = ""


class UnitEmbedder:
    """Read a unit's rows, embed them and write its shard: the work each Ray actor does, testable without Ray."""

    def __init__(
        self,
        encoder: Encoder,
        output: OutputDir,
        files: Sequence[InputFile],
        layout: RowLayout,
        *,
        instruction: str = "",
        batch_size: int = 32,
        normalize: bool = True,
        node: str | None = None,
    ) -> None:
        self.node = node or socket.gethostname()
        self.encoder = encoder
        self.output = output
        self.files = list(files)
        self.layout = layout
        self.instruction = instruction
        self.batch_size = batch_size
        self.normalize = normalize

    def __call__(self, unit: WorkUnit) -> UnitResult:
        """Embed the unit's valid rows and write ``part-<unit>.parquet``."""
        start = time.perf_counter()
        table = read_unit(self.files, unit, self.layout)
        texts = table[self.layout.text_column].to_pylist()
        if texts:
            vectors = self.encoder.encode(
                texts, self.instruction or None, batch_size=self.batch_size, normalize=self.normalize
            )
        else:  # every row of the unit was bad: an empty shard keeps the unit accounted for
            vectors = np.zeros((0, int(getattr(self.encoder, "dim", 0))), dtype=np.float32)
        shard = shard_table(table, vectors, id_column=self.layout.id_column, passthrough=self.layout.passthrough)
        shard = shard.replace_schema_metadata({NODE_METADATA: self.node.encode()})
        self.output.write_shard(unit, shard)
        seconds = time.perf_counter() - start
        return UnitResult(unit.index, table.num_rows, int(vectors.shape[1]), seconds, self.node)
