"""Reading and checking batch inputs: formats, globs, every bad-row class, duplicate ids (in-process scan)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_backend.batch import BatchConfig, Prepared, locate, plan, scan_local
from ray_backend.batch.io import BadRowsError, find_inputs, iter_batches
from ray_backend.batch.plan import read_unit
from tests.batch_data import offline_rows, write_rows

FORMATS = ("jsonl", "parquet", "csv")


def _rows(n: int = 40) -> list[dict]:
    return offline_rows(n)


def _load(spec: Path | str, tmp_path: Path, **kw) -> tuple[pa.Table, Prepared]:
    """Scan, check and plan like a job does; return the valid rows as the units would read them."""
    config = BatchConfig(input=str(spec), output=str(tmp_path / "out"), progress=False, **kw)
    job = locate(config)
    prepared = plan(job, *scan_local(job))
    prepared.close()
    tables = [read_unit(job.files, u, prepared.layout) for u in prepared.units]
    return pa.concat_tables(tables), prepared


def test_find_inputs_resolves_file_folder_and_glob(tmp_path: Path) -> None:
    rows = _rows(6)
    a = write_rows(rows[:2], tmp_path / "d" / "b.jsonl")
    b = write_rows(rows[2:4], tmp_path / "d" / "sub" / "a.parquet")
    c = write_rows(rows[4:], tmp_path / "d" / "c.csv")
    (tmp_path / "d" / "_SUCCESS.json").write_text("{}")
    (tmp_path / "d" / "notes.txt").write_text("not input")

    assert [(f.uri, f.format) for f in find_inputs(a)] == [(str(a.resolve()), "jsonl")]
    assert [f.uri for f in find_inputs(tmp_path / "d")] == sorted(str(p.resolve()) for p in (a, b, c))
    assert [f.format for f in find_inputs(str(tmp_path / "d" / "*.csv"))] == ["csv"]
    assert [f.uri for f in find_inputs(str(tmp_path / "d" / "**" / "*.parquet"))] == [str(b.resolve())]
    assert [f.uri for f in find_inputs(f"file://{tmp_path}/d/*.jsonl")] == [str(a.resolve())]


def test_find_inputs_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "x.txt"
    bad.write_text("hi")
    with pytest.raises(ValueError, match=r"unsupported input file '.*x.txt'.*\.parquet"):
        find_inputs(bad)
    with pytest.raises(FileNotFoundError, match="not a file"):
        find_inputs(tmp_path / "missing.jsonl")
    with pytest.raises(FileNotFoundError, match="no input files"):
        find_inputs(str(tmp_path / "*.jsonl"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_the_same_rows(tmp_path: Path, fmt: str) -> None:
    rows = _rows()
    path = write_rows(rows, tmp_path / f"in.{fmt}")
    table, prepared = _load(path, tmp_path, columns=("name",), rows_per_shard=7)
    assert table.column_names == ["id", "text", "name"]
    assert table.to_pylist() == rows
    assert sum(s.rows for s in prepared.scans) == len(rows) and prepared.rejected == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_reading_from_any_row_equals_reading_all(tmp_path: Path, fmt: str) -> None:
    """The units' seek path (byte offsets, row groups, skipped CSV blocks) equals one full read."""
    rows = _rows(50)
    path = tmp_path / f"in.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=8)
    else:
        write_rows(rows, path)
    (file,) = find_inputs(path)
    full = [b for b in iter_batches(file, id_column="id", text_column="text", batch_rows=6)]
    offsets = [o for b in full for o in (b.offsets or [0] * b.rows)]
    for start, stop in [(0, 50), (13, 29), (48, 50), (7, 8)]:
        part = iter_batches(file, id_column="id", text_column="text", start=start, stop=stop, offset=offsets[start])
        got = [(b.start + i, t) for b in part for i, t in enumerate(b.texts)]
        assert got == [(k, rows[k]["text"]) for k in range(start, stop)]


def test_custom_columns_and_text_passthrough(tmp_path: Path) -> None:
    rows = [{"doc": r["id"], "body": r["text"]} for r in _rows(5)]
    path = write_rows(rows, tmp_path / "in.parquet")
    table, _ = _load(path, tmp_path, id_column="doc", text_column="body", columns=("body",))
    assert table.column_names == ["doc", "body"]
    assert table["doc"].to_pylist() == [r["doc"] for r in rows]


# Every bad-row case JSONL can express; each row's expected reason.
BAD_JSONL = [
    ({"id": "ok-1", "text": "a fine gloss"}, None),
    ({"id": None, "text": "null id"}, "missing_id"),
    ({"text": "absent id"}, "missing_id"),
    ({"id": "  ", "text": "blank id"}, "missing_id"),
    ({"id": [1], "text": "list id"}, "invalid_id"),
    ({"id": 2**70, "text": "huge id"}, "id_out_of_range"),
    ({"id": -(2**63) - 1, "text": "huge negative id"}, "id_out_of_range"),
    ({"id": "a\ud800", "text": "surrogate id"}, "invalid_id"),
    ({"id": "t-null", "text": None}, "null_text"),
    ({"id": "t-absent"}, "null_text"),
    ({"id": "t-int", "text": 7}, "non_string_text"),
    ({"id": "t-dict", "text": {"a": 1}}, "non_string_text"),
    ({"id": "t-empty", "text": ""}, "empty_text"),
    ({"id": "t-space", "text": "  \n"}, "empty_text"),
    ({"id": "t-surrogate", "text": "a\ud800"}, "invalid_text"),
    ({"id": "ok-1", "text": "duplicate of the first row"}, "duplicate_id"),
    ({"id": "ok-2", "text": "another fine gloss"}, None),
]
# Lines that are not a JSON object at all, appended after the records above.
BAD_LINES = [(b"\xff\xfe not utf-8\n", "undecodable_row"), (b"{oops\n", "invalid_json"), (b"[1, 2]\n", "not_an_object")]
BAD_LINES += [
    (b'{"id": 1' + b"0" * 5000 + b', "text": "x"}\n', "invalid_json"),
    (b"[" * 100000 + b"\n", "invalid_json"),
]


def _write_bad_jsonl(path: Path) -> Path:
    body = "".join(json.dumps(r) + "\n" for r, _ in BAD_JSONL).encode()
    path.write_bytes(body + b"\n" + b"".join(line for line, _ in BAD_LINES) + b'{"id": "ok-3", "text": "last"}\n')
    return path


EXPECTED_JSONL = [r for _, r in BAD_JSONL] + [r for _, r in BAD_LINES] + [None]


def test_every_bad_row_class_under_the_error_policy_names_file_and_row(tmp_path: Path) -> None:
    path = _write_bad_jsonl(tmp_path / "bad.jsonl")
    with pytest.raises(BadRowsError) as info:
        _load(path, tmp_path)
    expected = [(i, reason) for i, reason in enumerate(EXPECTED_JSONL) if reason]
    assert [(r.row, r.reason) for r in info.value.rows] == expected
    message = str(info.value)
    assert message.startswith(f"{len(expected)} bad input row(s): id=None (missing_id, bad.jsonl row 1)")
    assert "id=1180591620717411303424 (id_out_of_range, bad.jsonl row 5)" in message
    assert "id='a\\ud800' (invalid_id, bad.jsonl row 7)" in message
    assert "and 10 more" in message and "--on-bad-rows skip" in message
    assert not (tmp_path / "out").exists()


def test_every_bad_row_class_under_the_skip_policy_goes_to_rejects(tmp_path: Path) -> None:
    path = _write_bad_jsonl(tmp_path / "bad.jsonl")
    table, prepared = _load(path, tmp_path, on_bad_rows="skip")
    assert table["id"].to_pylist() == ["ok-1", "ok-2", "ok-3"]
    assert [(r.row, r.reason) for r in prepared.rejected] == [
        (i, reason) for i, reason in enumerate(EXPECTED_JSONL) if reason
    ]
    rejects = (tmp_path / "out" / "_rejects.jsonl").read_text().splitlines()
    assert [json.loads(line)["reason"] for line in rejects] == [r for r in EXPECTED_JSONL if r]
    assert all(json.loads(line)["source"] == str(path) for line in rejects)


def test_bad_rows_in_parquet_and_csv_both_policies(tmp_path: Path) -> None:
    parquet = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": ["p1", None, "p3", "p4", "p1"], "text": ["ok", "no id", None, "", "dup"]}), parquet)
    csv = b'id,text\nc1,ok\n,no id\nc3,""\np3,"p3 was rejected in a.parquet: not a duplicate"\nc5,bad \xff utf-8\n'
    (tmp_path / "b.csv").write_bytes(csv)
    with pytest.raises(BadRowsError, match=r"id='c5' \(invalid_text, b.csv row 4\)"):
        _load(tmp_path, tmp_path)
    table, prepared = _load(tmp_path, tmp_path, on_bad_rows="skip")
    assert table["id"].to_pylist() == ["p1", "c1", "p3"]
    assert [(Path(r.source).suffix, r.row, r.id, r.reason) for r in prepared.rejected] == [
        (".parquet", 1, None, "missing_id"),
        (".parquet", 2, "p3", "null_text"),
        (".parquet", 3, "p4", "empty_text"),
        (".parquet", 4, "p1", "duplicate_id"),
        (".csv", 1, "", "missing_id"),
        (".csv", 2, "c3", "empty_text"),
        (".csv", 4, "c5", "invalid_text"),
    ]


def test_huge_unsigned_id_in_parquet_is_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "u.parquet"
    pq.write_table(pa.table({"id": pa.array([1, 2**64 - 1], pa.uint64()), "text": ["one", "huge"]}), path)
    with pytest.raises(BadRowsError, match=r"id_out_of_range, u.parquet row 1"):
        _load(path, tmp_path)
    table, _ = _load(path, tmp_path, on_bad_rows="skip")
    assert table["id"].to_pylist() == [1] and table["id"].type == pa.int64()


def test_non_string_text_column_in_parquet(tmp_path: Path) -> None:
    path = tmp_path / "nums.parquet"
    pq.write_table(pa.table({"id": [1, 2], "text": [10, 20]}), path)
    with pytest.raises(BadRowsError, match="non_string_text"):
        _load(path, tmp_path)


def test_duplicate_ids_across_files_and_int_vs_str(tmp_path: Path) -> None:
    write_rows([{"id": 1, "text": "one"}, {"id": 2, "text": "two"}], tmp_path / "a.jsonl")
    write_rows([{"id": "1", "text": "one again"}, {"id": 3, "text": "three"}], tmp_path / "b.jsonl")
    table, prepared = _load(tmp_path, tmp_path, on_bad_rows="skip")
    assert table["id"].type == pa.int64() and table["id"].to_pylist() == [1, 2, 3]
    assert [(Path(r.source).name, r.row, r.id, r.reason) for r in prepared.rejected] == [
        ("b.jsonl", 0, "1", "duplicate_id")
    ]


def test_mixed_id_types_become_strings(tmp_path: Path) -> None:
    path = write_rows([{"id": 1, "text": "one"}, {"id": "b", "text": "bee"}], tmp_path / "a.jsonl")
    assert _load(path, tmp_path)[0]["id"].to_pylist() == ["1", "b"]


def test_missing_column_and_bad_arguments(tmp_path: Path) -> None:
    path = write_rows(_rows(3), tmp_path / "in.parquet")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['body'\]; columns present: \['id', 'text', 'name'\]"):
        _load(path, tmp_path, text_column="body")
    csv = write_rows(_rows(3), tmp_path / "in.csv")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['nope'\]"):
        _load(csv, tmp_path, columns=("nope",))
    with pytest.raises(ValueError, match=r"unknown on_bad_rows 'drop'; valid: \['error', 'skip'\]"):
        BatchConfig(input="x", output="y", on_bad_rows="drop")
    with pytest.raises(ValueError, match=r"may not include the id 'id'"):
        BatchConfig(input="x", output="y", columns=("id",))
