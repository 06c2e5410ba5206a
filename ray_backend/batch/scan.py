"""The validation pass of a batch job: per-file scans and the global duplicate-id check.

Each input file is scanned on its own (:func:`scan_file`, a Ray task on a cluster): its rows are
streamed in bounded batches, checked, hashed into a content digest, and counted per work unit
(``rows_per_shard`` consecutive rows of the file). A scan returns a small :class:`FileScan` summary
and, separately, a table of ``(key, file, row)`` for its valid rows.

Duplicate ids are found from those key tables, never from the rows themselves:

- :func:`find_duplicates` (in-process, the plain reference) keeps one dict of keys;
- :func:`find_duplicates_ray` is a **hash-partitioned groupby** on Ray Data: ``groupby("key").count()``
  shuffles the key tables across the cluster by key hash, keys seen more than once are collected
  (normally none), and one filter pass finds their positions. The first position in input order is
  kept, later ones are rejected. We chose the groupby over per-unit id sets merged at the end because
  a merge puts every id in one process (the driver), so the driver's memory would grow with the
  corpus; the groupby keeps each key on one worker and sends the driver only the duplicates.
  Below ``IN_DRIVER_KEYS`` valid rows that memory is small (a few MB), and the shuffle's start-up (seconds
  of Ray Data scheduling) would cost more than the check: the key tables come to the driver and
  :func:`find_duplicates` runs there.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ray_backend.batch.io import BadRow, InputFile, id_key, iter_batches, row_problems

__all__ = ["KEY_SCHEMA", "Duplicate", "FileScan", "find_duplicates", "find_duplicates_ray", "scan_file"]

KEY_SCHEMA = pa.schema([("key", pa.string()), ("file", pa.int32()), ("row", pa.int64()), ("is_int", pa.bool_())])


@dataclass
class FileScan:
    """What the validation pass learned about one file (no row data)."""

    index: int
    uri: str
    rows: int
    digest: str
    bad: list[BadRow] = field(default_factory=list)
    valid_per_unit: list[int] = field(default_factory=list)
    unit_offsets: list[int] = field(default_factory=list)
    non_int_ids: int = 0
    extra_schema: pa.Schema | None = None


@dataclass(frozen=True, order=True)
class Duplicate:
    """A rejected repeat of an id: where it is (``file`` index, ``row``), the id's key and whether it is an int."""

    file: int
    row: int
    key: str
    is_int: bool = False


def _hash_batch(digest: Any, ids: list[Any], texts: list[Any], extra: pa.Table | None) -> None:
    digest.update(json.dumps([ids, texts], default=repr).encode("utf-8", "surrogatepass"))
    if extra is not None:
        digest.update(json.dumps(extra.to_pylist(), default=repr).encode("utf-8", "surrogatepass"))


def scan_file(
    file: InputFile,
    index: int,
    *,
    id_column: str,
    text_column: str,
    columns: Sequence[str] = (),
    rows_per_shard: int,
) -> tuple[FileScan, pa.Table]:
    """Stream one file, check its rows and return its summary and its valid rows' key table.

    Raises:
        ValueError: a missing column or a file the reader cannot parse (named in the message).
    """
    digest = hashlib.sha256(file.uri.encode())
    scan = FileScan(index=index, uri=file.uri, rows=0, digest="")
    keys: list[str] = []
    rows: list[int] = []
    ints: list[bool] = []
    schemas: list[pa.Schema] = []
    for batch in iter_batches(file, id_column=id_column, text_column=text_column, columns=columns):
        _hash_batch(digest, batch.ids, batch.texts, batch.extra)
        if batch.extra is not None:
            schemas.append(batch.extra.schema)
        for i, problem in enumerate(row_problems(batch)):
            row = batch.start + i
            unit = row // rows_per_shard
            if unit == len(scan.valid_per_unit):
                scan.valid_per_unit.append(0)
                scan.unit_offsets.append(batch.offsets[i] if batch.offsets else 0)
            if problem is not None:
                scan.bad.append(BadRow(file.uri, row, batch.ids[i], problem, batch.texts[i]))
                continue
            scan.valid_per_unit[unit] += 1
            rid = batch.ids[i]
            ints.append(isinstance(rid, int))
            scan.non_int_ids += not ints[-1]
            keys.append(id_key(rid))
            rows.append(row)
        scan.rows = batch.start + batch.rows
    scan.digest = digest.hexdigest()
    if schemas:
        scan.extra_schema = pa.unify_schemas(schemas, promote_options="permissive")
    table = pa.table(
        {"key": keys, "file": pa.array([index] * len(rows), pa.int32()), "row": rows, "is_int": ints},
        schema=KEY_SCHEMA,
    )
    return scan, table


def _first_wins(positions: Iterable[tuple[str, int, int, bool]]) -> list[Duplicate]:
    """Given every position of each duplicated key, the positions after the first (input order)."""
    by_key: dict[str, list[tuple[int, int, bool]]] = {}
    for key, file, row, is_int in positions:
        by_key.setdefault(key, []).append((file, row, is_int))
    out = [Duplicate(f, r, key, i) for key, places in by_key.items() for f, r, i in sorted(places)[1:]]
    return sorted(out)


def find_duplicates(key_tables: Iterable[pa.Table]) -> list[Duplicate]:
    """Repeated ids across all key tables, in one process (the plain reference for the Ray version)."""
    first: dict[str, tuple[int, int, bool]] = {}
    repeats: list[tuple[str, int, int, bool]] = []
    for table in key_tables:
        columns = (table[name].to_pylist() for name in ("key", "file", "row", "is_int"))
        for key, file, row, is_int in zip(*columns, strict=True):
            if key in first:
                repeats.append((key, file, row, is_int))
            else:
                first[key] = (file, row, is_int)
    if not repeats:
        return []
    return _first_wins([(k, *first[k]) for k in {r[0] for r in repeats}] + repeats)


def _repeated(batch: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    return batch.filter(pc.greater(batch["count()"], 1)).select(["key"])


def _positions_of(batch: pa.Table, keys: pa.Array) -> pa.Table:
    import pyarrow.compute as pc

    return batch.filter(pc.is_in(batch["key"], value_set=keys))


#: Keys per hash partition of the duplicate check (more partitions only add scheduling overhead).
KEYS_PER_PARTITION = 500_000
#: Up to this many keys (valid rows) the duplicate check runs in the driver: at ~50 bytes a key, a few MB.
IN_DRIVER_KEYS = 100_000


def find_duplicates_ray(key_refs: Sequence[Any], total_keys: int) -> list[Duplicate]:
    """Repeated ids via a hash-partitioned Ray Data groupby over the scans' key tables (ObjectRefs).

    ``total_keys`` (the number of valid rows) sizes the shuffle: one partition per cluster CPU, more for
    corpora above ``KEYS_PER_PARTITION`` keys per CPU. Only the repeated keys and their positions reach
    the driver. Up to ``IN_DRIVER_KEYS`` keys the tables are fetched and checked in the driver instead
    (:func:`find_duplicates`, the same result without a shuffle to start).
    """
    import ray

    if not key_refs:
        return []
    if total_keys <= IN_DRIVER_KEYS:
        return find_duplicates(ray.get(list(key_refs)))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    partitions = max(1, min(200, max(cpus, math.ceil(total_keys / KEYS_PER_PARTITION))))
    keys = ray.data.from_arrow_refs(list(key_refs))
    repeated = keys.groupby("key", num_partitions=partitions).count().map_batches(_repeated, batch_format="pyarrow")
    dup_keys = [row["key"] for row in repeated.iter_rows()]
    if not dup_keys:
        return []
    value_set = pa.array(sorted(dup_keys), pa.string())
    find: Any = _positions_of
    hits = keys.map_batches(find, batch_format="pyarrow", fn_kwargs={"keys": value_set})
    return _first_wins((r["key"], int(r["file"]), int(r["row"]), bool(r["is_int"])) for r in hits.iter_rows())
