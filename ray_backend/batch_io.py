"""Reading and validating batch-embedding inputs (JSONL, Parquet, CSV), without Ray.

:func:`find_inputs` turns a file, a folder or a glob into a sorted list of :class:`InputFile`;
:func:`load_corpus` reads them in that order, checks every row and returns the valid rows as one
Arrow table (id, text and pass-through columns) plus the rejected rows.

Bad rows: a missing (null / absent / empty) or non-scalar id, a null, non-string or blank text,
and an id seen before (the first occurrence is kept, later ones are rejected). Ids are compared as
strings, so ``1`` and ``"1"`` are duplicates. The output id column is ``int64`` when every valid
id is an integer, else ``string``.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

__all__ = [
    "BAD_ROW_POLICIES",
    "EMBEDDING_COLUMN",
    "FORMATS",
    "BadRow",
    "BadRowsError",
    "Corpus",
    "InputFile",
    "find_inputs",
    "load_corpus",
    "read_rows",
    "validate_rows",
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
_ERROR_LIST_LIMIT = 10


@dataclass(frozen=True)
class InputFile:
    """One input file and its format (``jsonl``, ``parquet`` or ``csv``)."""

    path: Path
    format: str


@dataclass(frozen=True)
class BadRow:
    """A rejected input row: where it came from, its id (as read), why, and its text (as read)."""

    source: str
    row: int
    id: Any
    reason: str
    text: Any = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (non-JSON values are written as their ``repr``)."""
        return {k: _json_safe(v) for k, v in self.__dict__.items()}


class BadRowsError(ValueError):
    """The input holds bad rows and the policy is ``error``; ``rows`` lists all of them."""

    def __init__(self, rows: Sequence[BadRow]) -> None:
        self.rows = list(rows)
        shown = "; ".join(f"id={r.id!r} ({r.reason}, {Path(r.source).name} row {r.row})" for r in rows[:10])
        more = f" and {len(rows) - _ERROR_LIST_LIMIT} more" if len(rows) > _ERROR_LIST_LIMIT else ""
        super().__init__(
            f"{len(rows)} bad input row(s): {shown}{more}. Fix them or pass --on-bad-rows skip to write them to a "
            "rejects file instead"
        )


@dataclass
class Corpus:
    """Valid rows in input order and the rejected rows.

    ``table`` holds the id column, the text column and the pass-through columns, named as in the input.
    """

    table: pa.Table
    rejected: list[BadRow] = field(default_factory=list)
    rows_in: int = 0
    sources: list[InputFile] = field(default_factory=list)
    id_column: str = "id"
    text_column: str = "text"
    passthrough: list[str] = field(default_factory=list)


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def _format_of(path: Path) -> str | None:
    return FORMATS.get(path.suffix.lower())


def find_inputs(spec: str | os.PathLike[str]) -> list[InputFile]:
    """Resolve a file, a folder (its supported files, recursively) or a glob to sorted input files.

    Files whose name starts with ``_`` or ``.`` are skipped in folders and globs (``_SUCCESS``
    markers, hidden files).

    Raises:
        FileNotFoundError: nothing matches.
        ValueError: a file given by name has an unsupported suffix (lists the valid ones).
    """
    text = os.fspath(spec)
    path = Path(text)
    if path.is_file():
        fmt = _format_of(path)
        if fmt is None:
            raise ValueError(f"unsupported input file {path.name!r}; valid suffixes: {sorted(FORMATS)}")
        return [InputFile(path.resolve(), fmt)]
    if path.is_dir():
        candidates: Iterable[Path] = (p for p in path.rglob("*") if p.is_file())
    elif glob.has_magic(text):
        candidates = (Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    else:
        raise FileNotFoundError(f"input {text!r} is not a file, a folder or a glob that matches files")
    found = sorted({p.resolve() for p in candidates if not p.name.startswith(("_", ".")) and _format_of(p) is not None})
    if not found:
        raise FileNotFoundError(f"no input files with suffixes {sorted(FORMATS)} under {text!r}")
    return [InputFile(p, _format_of(p) or "") for p in found]


def _read_jsonl(path: Path, columns: Sequence[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {c: [] for c in columns}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object per line, got {type(record).__name__}")
            for c in columns:
                out[c].append(record.get(c))
    return out


def _read_arrow(path: Path, fmt: str, columns: Sequence[str], string_columns: Sequence[str]) -> pa.Table:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        _check_columns(path, names, columns)
        return pq.read_table(path, columns=list(columns))
    import pyarrow.csv as pacsv

    with pacsv.open_csv(path) as reader:  # reads the header and the first block only
        _check_columns(path, reader.schema.names, columns)
    convert = pacsv.ConvertOptions(
        include_columns=list(columns),
        column_types={c: pa.string() for c in string_columns},
        strings_can_be_null=False,
    )
    try:
        return pacsv.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{path}: cannot read CSV: {exc}") from exc


def _check_columns(path: Path, names: Sequence[str], wanted: Sequence[str]) -> None:
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; columns present: {list(names)}")


def read_rows(
    source: InputFile, *, id_column: str, text_column: str, columns: Sequence[str] = ()
) -> tuple[list[Any], list[Any], pa.Table | dict[str, list[Any]]]:
    """Read one file: its ids, its texts (Python values, as read) and its pass-through columns.

    Pass-through columns come back as an Arrow table (Parquet, CSV) or as Python lists (JSONL).
    A JSONL row lacking a key reads as ``None``; a Parquet or CSV file lacking a column is an error.
    """
    wanted = list(dict.fromkeys([id_column, text_column, *columns]))
    if source.format == "jsonl":
        data = _read_jsonl(source.path, wanted)
        return data[id_column], data[text_column], {c: data[c] for c in columns}
    table = _read_arrow(source.path, source.format, wanted, [id_column, text_column])
    return table[id_column].to_pylist(), table[text_column].to_pylist(), table.select(list(columns))


def _id_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "missing_id"
    if isinstance(value, bool) or not isinstance(value, str | int):
        return "invalid_id"
    return None


def _text_problem(value: Any) -> str | None:
    if value is None:
        return "null_text"
    if not isinstance(value, str):
        return "non_string_text"
    if not value.strip():
        return "empty_text"
    return None


def validate_rows(
    ids: Sequence[Any], texts: Sequence[Any], *, source: str, seen: set[str]
) -> tuple[list[int], list[BadRow]]:
    """Check one file's rows; return the indices of the valid rows and the bad rows.

    ``seen`` holds the ids (as strings) already accepted from earlier files; it is updated.
    A row with several problems is reported once, id problems first.
    """
    valid: list[int] = []
    bad: list[BadRow] = []
    for i, (rid, text) in enumerate(zip(ids, texts, strict=True)):
        reason = _id_problem(rid) or _text_problem(text)
        key = str(rid)
        if reason is None and key in seen:
            reason = "duplicate_id"
        if reason is not None:
            bad.append(BadRow(source=source, row=i, id=rid, reason=reason, text=text))
            continue
        seen.add(key)
        valid.append(i)
    return valid, bad


def load_corpus(
    inputs: Sequence[InputFile],
    *,
    id_column: str = "id",
    text_column: str = "text",
    columns: Sequence[str] = (),
    on_bad_rows: str = "error",
) -> Corpus:
    """Read and validate every input file, in order, into one table of valid rows.

    Args:
        inputs: the files, usually from :func:`find_inputs`.
        id_column: the column holding each row's unique id.
        text_column: the column holding the text to embed.
        columns: pass-through columns copied to the output.
        on_bad_rows: ``"error"`` raises :class:`BadRowsError` listing the first bad ids;
            ``"skip"`` leaves them out and returns them in :attr:`Corpus.rejected`.

    Raises:
        BadRowsError: bad rows under the ``error`` policy.
        ValueError: a bad policy, a missing column, unreadable input, or pass-through columns whose
            types differ between files.
    """
    if on_bad_rows not in BAD_ROW_POLICIES:
        raise ValueError(f"unknown on_bad_rows {on_bad_rows!r}; valid: {list(BAD_ROW_POLICIES)}")
    if id_column == text_column:
        raise ValueError(f"id_column and text_column are both {id_column!r}; they must differ")
    if id_column in columns or EMBEDDING_COLUMN in columns:
        raise ValueError(f"pass-through columns {list(columns)} may not include {id_column!r} or {EMBEDDING_COLUMN!r}")
    passthrough = list(dict.fromkeys(columns))
    columns = [c for c in passthrough if c != text_column]
    seen: set[str] = set()
    all_ids: list[Any] = []
    all_texts: list[str] = []
    extras: list[pa.Table] = []
    rejected: list[BadRow] = []
    rows_in = 0
    for source in inputs:
        ids, texts, extra = read_rows(source, id_column=id_column, text_column=text_column, columns=columns)
        rows_in += len(ids)
        valid, bad = validate_rows(ids, texts, source=str(source.path), seen=seen)
        rejected.extend(bad)
        all_ids.extend(ids[i] for i in valid)
        all_texts.extend(texts[i] for i in valid)
        if columns:
            if isinstance(extra, pa.Table):
                extras.append(extra.take(pa.array(valid, type=pa.int64())))
            else:
                extras.append(pa.table({c: pa.array([extra[c][i] for i in valid]) for c in columns}))
    if rejected and on_bad_rows == "error":
        raise BadRowsError(rejected)
    if all(isinstance(i, int) for i in all_ids):
        id_array = pa.array(all_ids, type=pa.int64())
    else:
        id_array = pa.array([str(i) for i in all_ids], type=pa.string())
    table = pa.table({id_column: id_array, text_column: pa.array(all_texts, type=pa.string())})
    if columns:
        try:
            extra_table = pa.concat_tables(extras, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(f"pass-through columns {list(columns)} have different types across files: {exc}") from exc
        for name in columns:
            table = table.append_column(name, extra_table[name])
    return Corpus(
        table=table,
        rejected=rejected,
        rows_in=rows_in,
        sources=list(inputs),
        id_column=id_column,
        text_column=text_column,
        passthrough=passthrough,
    )
