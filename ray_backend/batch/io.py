r"""Reading and validating batch-embedding inputs (JSONL, Parquet, CSV) from any storage, in bounded batches.

:func:`find_inputs` turns a file, a folder or a glob (local or ``s3://``/``gs://``...) into a sorted
list of :class:`InputFile`; :func:`iter_batches` streams one file's rows as :class:`RowBatch` es of at
most ``batch_rows`` rows, starting at any row (a JSONL reader seeks to a recorded byte offset, a
Parquet reader skips whole row groups), so no reader ever holds a whole file.

Row checks (:func:`row_problems`), one reason per bad row, id problems first:

- ``undecodable_row`` (a JSONL line that is not UTF-8), ``invalid_json``, ``not_an_object``;
- ``missing_id`` (null, absent, blank), ``invalid_id`` (not a string or integer, or not valid
  Unicode), ``id_out_of_range`` (an integer outside signed 64-bit, e.g. ``2**70``);
- ``null_text``, ``non_string_text``, ``empty_text``, ``invalid_text`` (not valid Unicode: a lone
  surrogate such as ``"a\ud800"`` in JSON, or bytes that are not UTF-8);
- ``duplicate_id`` (found across all files by :mod:`ray_backend.batch.scan`; the first occurrence
  in input order is kept). Ids are compared as strings, so ``1`` and ``"1"`` are duplicates.

Rows are numbered from 0 per file (data rows; blank JSONL lines are not rows).
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from instructor_plugins.storage import Location, StorageError, redact, resolve

__all__ = [
    "BAD_ROW_POLICIES",
    "EMBEDDING_COLUMN",
    "FORMATS",
    "INT64_MAX",
    "BadRow",
    "BadRowsError",
    "InputFile",
    "RowBatch",
    "find_inputs",
    "iter_batches",
    "row_problems",
]

#: File suffix -> input format.
FORMATS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}
#: Name of the vector column in the output shards.
EMBEDDING_COLUMN = "embedding"
#: What to do with bad rows: fail listing them, or skip them into a rejects file.
BAD_ROW_POLICIES = ("error", "skip")
INT64_MAX = 2**63 - 1
_ERROR_LIST_LIMIT = 10
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class InputFile:
    """One input file: where it is, its format (``jsonl``, ``parquet`` or ``csv``) and its URI for messages."""

    location: Location
    format: str

    @property
    def uri(self) -> str:
        """The file's URI or absolute path (no credentials)."""
        return self.location.uri

    @property
    def name(self) -> str:
        """The file's base name."""
        return self.location.uri.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class BadRow:
    """A rejected input row: its file, its row number there, its id (as read), why, and its text (as read)."""

    source: str
    row: int
    id: Any
    reason: str
    text: Any = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (non-JSON values, surrogates included, are written as their ``repr``)."""
        return {k: _json_safe(v) for k, v in self.__dict__.items()}


class BadRowsError(ValueError):
    """The input holds bad rows and the policy is ``error``; ``rows`` lists them (``count`` in all)."""

    def __init__(self, rows: Sequence[BadRow], count: int | None = None) -> None:
        self.rows = list(rows)
        self.count = len(self.rows) if count is None else count
        shown = "; ".join(
            f"id={r.id!r} ({r.reason}, {r.source.rsplit('/', 1)[-1]} row {r.row})"
            for r in self.rows[:_ERROR_LIST_LIMIT]
        )
        more = f" and {self.count - _ERROR_LIST_LIMIT} more" if self.count > _ERROR_LIST_LIMIT else ""
        super().__init__(
            f"{self.count} bad input row(s): {shown}{more}. Fix them or pass --on-bad-rows skip to write them to a "
            "rejects file instead"
        )


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if -INT64_MAX - 1 <= value <= INT64_MAX else repr(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return repr(value)
        return value
    return repr(value)


class _Undecodable:
    """A value whose bytes are not UTF-8 (kept to report it, never embedded)."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return f"<not UTF-8: {self.raw[:40]!r}>"


class _Unparsed:
    """Marks a row whose line could not be parsed (the reason says why)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<{self.reason}>"


@dataclass
class RowBatch:
    """Consecutive rows of one file, as read.

    ``ids`` and ``texts`` are Python values (``None`` for absent); ``extra`` holds the pass-through
    columns; ``offsets`` (JSONL only) the byte offset where each row's line starts.
    """

    start: int
    ids: list[Any]
    texts: list[Any]
    extra: pa.Table | None
    offsets: list[int] | None = None

    @property
    def rows(self) -> int:
        """Rows in the batch."""
        return len(self.ids)


def _format_of(name: str) -> str | None:
    return FORMATS.get(os.path.splitext(name)[1].lower())


def _glob_parts(pattern: str) -> tuple[str, str]:
    """Split a glob into the folder before its first wildcard and the pattern after it."""
    parts = pattern.split("/")
    for i, part in enumerate(parts):
        if glob.has_magic(part):
            return "/".join(parts[:i]), "/".join(parts[i:])
    return pattern, ""


def _match(relative: str, pattern: str) -> bool:
    """Glob match by path segment: ``*`` stays inside one segment, ``**`` spans any number of them."""
    names, pats = relative.split("/"), pattern.split("/")

    def go(i: int, j: int) -> bool:
        if j == len(pats):
            return i == len(names)
        if pats[j] == "**":
            return any(go(k, j + 1) for k in range(i, len(names) + 1))
        return i < len(names) and fnmatch.fnmatchcase(names[i], pats[j]) and go(i + 1, j + 1)

    return go(0, 0)


def _keep(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(("_", ".")) and _format_of(base) is not None


def find_inputs(spec: str | os.PathLike[str]) -> list[InputFile]:
    """Resolve a file, a folder (its supported files, recursively) or a glob to sorted input files.

    Works for local paths and object-store URIs alike. Files whose name starts with ``_`` or ``.``
    are skipped in folders and globs (``_SUCCESS`` markers, hidden files).

    Raises:
        FileNotFoundError: nothing matches.
        ValueError: a file given by name has an unsupported suffix (lists the valid ones).
        StorageError: the storage cannot be reached or the bucket does not exist.
    """
    from instructor_plugins.storage import check_reachable

    text = os.fspath(spec)
    base_text, pattern = _glob_parts(text) if glob.has_magic(text) else (text, "")
    base = resolve(base_text or ".")
    check_reachable(base)
    try:
        info = base.fs.get_file_info(base.path)
        if info.type == pafs.FileType.File and not pattern:
            fmt = _format_of(info.path)
            if fmt is None:
                raise ValueError(f"unsupported input file {base.uri!r}; valid suffixes: {sorted(FORMATS)}")
            return [InputFile(base, fmt)]
        if info.type != pafs.FileType.Directory:
            raise FileNotFoundError(f"input {redact(text)!r} is not a file, a folder or a glob that matches files")
        listing = base.fs.get_file_info(pafs.FileSelector(base.path, recursive=True))
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise StorageError(f"cannot list {redact(text)!r}: {redact(str(exc))[:300]}") from None
    found = []
    for entry in listing:
        if entry.type != pafs.FileType.File:
            continue
        relative = entry.path[len(base.path) :].lstrip("/")
        if not _keep(relative) or (pattern and not _match(relative, pattern)):
            continue
        if any(part.startswith(("_", ".")) for part in relative.split("/")[:-1]):
            continue  # e.g. an output folder's _tmp/ or a .git/ inside the input folder
        found.append(base.child(relative))
    if not found:
        raise FileNotFoundError(f"no input files with suffixes {sorted(FORMATS)} under {redact(text)!r}")
    return [InputFile(loc, _format_of(loc.path) or "") for loc in sorted(found, key=lambda loc: loc.path)]


# ---------------------------------------------------------------------------------------------- readers


def _py_values(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """Python values of a column; strings are decoded one by one so bad UTF-8 marks a row, not the file."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = column.cast(pa.large_binary())
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        out: list[Any] = []
        for raw in column.to_pylist():
            if raw is None:
                out.append(None)
                continue
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(_Undecodable(raw))
        return out
    return list(column.to_pylist())


def _check_columns(file: InputFile, names: Sequence[str], wanted: Sequence[str]) -> None:
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ValueError(f"{file.uri}: missing column(s) {missing}; columns present: {list(names)}")


def _lines(stream: Any, offset: int) -> Iterator[tuple[int, bytes]]:
    """``(byte offset, line)`` for each line of a binary stream positioned at ``offset``."""
    pos, tail = offset, b""
    while chunk := stream.read(_READ_CHUNK):
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        for line in parts:
            yield pos, line
            pos += len(line) + 1
    if tail:
        yield pos, tail


def _parse_line(line: bytes) -> dict[str, Any] | _Unparsed:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return _Unparsed("undecodable_row")
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, too many digits, nesting too deep
        return _Unparsed("invalid_json")
    return record if isinstance(record, dict) else _Unparsed("not_an_object")


def _iter_jsonl(
    file: InputFile, columns: Sequence[str], start: int, offset: int, stop: int | None, batch_rows: int
) -> Iterator[tuple[int, dict[str, list[Any]], list[int]]]:
    row = start
    data: dict[str, list[Any]] = {c: [] for c in columns}
    offsets: list[int] = []
    first = row
    with file.location.fs.open_input_file(file.location.path) as fh:
        fh.seek(offset)
        for pos, line in _lines(fh, offset):
            if stop is not None and row >= stop:
                break
            if not line.strip():
                continue
            record = _parse_line(line)
            for c in columns:
                data[c].append(record if isinstance(record, _Unparsed) else record.get(c))
            offsets.append(pos)
            row += 1
            if len(offsets) >= batch_rows:
                yield first, data, offsets
                data, offsets, first = {c: [] for c in columns}, [], row
    if offsets:
        yield first, data, offsets


def _iter_parquet(
    file: InputFile, wanted: Sequence[str], start: int, stop: int | None, batch_rows: int
) -> Iterator[tuple[int, pa.Table]]:
    import pyarrow.parquet as pq

    with file.location.fs.open_input_file(file.location.path) as fh:
        pf = pq.ParquetFile(fh)
        _check_columns(file, pf.schema_arrow.names, wanted)
        first = 0
        for group in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(group).num_rows
            lo, hi = max(start, first), first + n if stop is None else min(stop, first + n)
            if lo < hi:
                b0 = first
                for batch in pf.iter_batches(batch_size=batch_rows, row_groups=[group], columns=wanted):
                    s, e = max(lo, b0), min(hi, b0 + batch.num_rows)
                    if s < e:
                        yield s, pa.Table.from_batches([batch]).slice(s - b0, e - s)
                    b0 += batch.num_rows
            first += n
            if stop is not None and first >= stop:
                break


def _iter_csv(
    file: InputFile, wanted: Sequence[str], text_columns: Sequence[str], start: int, stop: int | None
) -> Iterator[tuple[int, pa.Table]]:
    import pyarrow.csv as pacsv

    convert = pacsv.ConvertOptions(
        include_columns=list(wanted),
        column_types={c: pa.large_binary() for c in text_columns},
        strings_can_be_null=False,
    )
    first = 0
    with file.location.fs.open_input_stream(file.location.path) as fh:
        try:
            reader = pacsv.open_csv(fh, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
            with file.location.fs.open_input_stream(file.location.path) as again:
                _check_columns(file, pacsv.open_csv(again).schema.names, wanted)  # names a missing column
            raise ValueError(f"{file.uri}: cannot read CSV: {exc}") from exc
        while stop is None or first < stop:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise ValueError(f"{file.uri}: cannot read CSV near row {first}: {exc}") from exc
            n = batch.num_rows
            lo, hi = max(start, first), first + n if stop is None else min(stop, first + n)
            if lo < hi:
                yield lo, pa.Table.from_batches([batch]).slice(lo - first, hi - lo)
            first += n


def iter_batches(
    file: InputFile,
    *,
    id_column: str,
    text_column: str,
    columns: Sequence[str] = (),
    start: int = 0,
    stop: int | None = None,
    offset: int = 0,
    batch_rows: int = 8192,
) -> Iterator[RowBatch]:
    """Stream rows ``[start, stop)`` of one file in batches of at most ``batch_rows`` rows.

    ``offset`` is the byte offset of row ``start`` in a JSONL file (0 with ``start=0``); other formats
    ignore it. A JSONL row lacking a key reads as ``None``; a Parquet or CSV file lacking a column is an
    error.

    Raises:
        ValueError: a missing column or a file the format's reader cannot parse at all.
    """
    wanted = list(dict.fromkeys([id_column, text_column, *columns]))
    if file.format == "jsonl":
        for first, data, offsets in _iter_jsonl(file, wanted, start, offset, stop, batch_rows):
            extra = pa.table({c: _jsonl_column(data[c]) for c in columns}) if columns else None
            yield RowBatch(first, data[id_column], data[text_column], extra, offsets)
        return
    if file.format == "parquet":
        tables: Iterator[tuple[int, pa.Table]] = _iter_parquet(file, wanted, start, stop, batch_rows)
    elif file.format == "csv":
        tables = _iter_csv(file, wanted, [id_column, text_column], start, stop)
    else:
        raise ValueError(f"unknown input format {file.format!r}; valid: {sorted(set(FORMATS.values()))}")
    for first, table in tables:
        for k in range(0, table.num_rows, batch_rows):
            part = table.slice(k, batch_rows)
            extra = part.select(list(columns)) if columns else None
            yield RowBatch(first + k, _py_values(part[id_column]), _py_values(part[text_column]), extra)


def _jsonl_column(values: list[Any]) -> pa.Array:
    clean = [None if isinstance(v, _Unparsed) else v for v in values]
    try:
        return pa.array(clean)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else json.dumps(v, default=repr) for v in clean], type=pa.string())


def _valid_unicode(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _id_problem(value: Any) -> str | None:
    if isinstance(value, _Unparsed):
        return value.reason
    if value is None or (isinstance(value, str) and not value.strip()):
        return "missing_id"
    if isinstance(value, bool) or not isinstance(value, str | int):
        return "invalid_id"
    if isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        return "id_out_of_range"
    if isinstance(value, str) and not _valid_unicode(value):
        return "invalid_id"
    return None


def _text_problem(value: Any) -> str | None:
    if isinstance(value, _Unparsed):
        return value.reason
    if isinstance(value, _Undecodable):
        return "invalid_text"
    if value is None:
        return "null_text"
    if not isinstance(value, str):
        return "non_string_text"
    if not value.strip():
        return "empty_text"
    if not _valid_unicode(value):
        return "invalid_text"
    return None


def row_problems(batch: RowBatch) -> list[str | None]:
    """Each row's problem (see the module docstring), or ``None`` for a good row; duplicates aside."""
    return [_id_problem(i) or _text_problem(t) for i, t in zip(batch.ids, batch.texts, strict=True)]


def id_key(value: Any) -> str:
    """The string an id is compared by (``1`` and ``"1"`` are the same id)."""
    return str(value)


def local_path(file: InputFile) -> Path:
    """A local input file's path (for tests and messages)."""
    return Path(file.location.path)
