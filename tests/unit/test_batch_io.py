from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_backend.batch_io import BadRowsError, InputFile, find_inputs, load_corpus
from tests.batch_data import wordnet_rows, write_rows

FORMATS = ("jsonl", "parquet", "csv")


def _rows(n: int = 40) -> list[dict]:
    return wordnet_rows(n)


def test_find_inputs_resolves_file_folder_and_glob(tmp_path: Path) -> None:
    rows = _rows(6)
    a = write_rows(rows[:2], tmp_path / "d" / "b.jsonl")
    b = write_rows(rows[2:4], tmp_path / "d" / "sub" / "a.parquet")
    c = write_rows(rows[4:], tmp_path / "d" / "c.csv")
    (tmp_path / "d" / "_SUCCESS.json").write_text("{}")
    (tmp_path / "d" / "notes.txt").write_text("not input")

    assert find_inputs(a) == [InputFile(a.resolve(), "jsonl")]
    assert [f.path for f in find_inputs(tmp_path / "d")] == sorted(p.resolve() for p in (a, b, c))
    assert [f.format for f in find_inputs(str(tmp_path / "d" / "*.csv"))] == ["csv"]
    assert [f.path for f in find_inputs(str(tmp_path / "d" / "**" / "*.parquet"))] == [b.resolve()]


def test_find_inputs_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "x.txt"
    bad.write_text("hi")
    with pytest.raises(ValueError, match=r"unsupported input file 'x.txt'.*\.parquet"):
        find_inputs(bad)
    with pytest.raises(FileNotFoundError, match="not a file"):
        find_inputs(tmp_path / "missing.jsonl")
    with pytest.raises(FileNotFoundError, match="no input files"):
        find_inputs(str(tmp_path / "*.jsonl"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_the_same_rows(tmp_path: Path, fmt: str) -> None:
    rows = _rows()
    path = write_rows(rows, tmp_path / f"in.{fmt}")
    corpus = load_corpus(find_inputs(path), columns=("lemma",))
    assert corpus.table.column_names == ["id", "text", "lemma"]
    assert corpus.table.to_pylist() == rows
    assert corpus.rows_in == len(rows) and corpus.rejected == []


def test_custom_columns_and_text_passthrough(tmp_path: Path) -> None:
    rows = [{"doc": r["id"], "body": r["text"]} for r in _rows(5)]
    path = write_rows(rows, tmp_path / "in.parquet")
    corpus = load_corpus(find_inputs(path), id_column="doc", text_column="body", columns=("body",))
    assert corpus.table.column_names == ["doc", "body"] and corpus.passthrough == ["body"]
    assert corpus.table["doc"].to_pylist() == [r["doc"] for r in rows]


# Every bad-row case JSONL can express; each row's expected reason.
BAD_JSONL = [
    ({"id": "ok-1", "text": "a fine gloss"}, None),
    ({"id": None, "text": "null id"}, "missing_id"),
    ({"text": "absent id"}, "missing_id"),
    ({"id": "  ", "text": "blank id"}, "missing_id"),
    ({"id": [1], "text": "list id"}, "invalid_id"),
    ({"id": "t-null", "text": None}, "null_text"),
    ({"id": "t-absent"}, "null_text"),
    ({"id": "t-int", "text": 7}, "non_string_text"),
    ({"id": "t-dict", "text": {"a": 1}}, "non_string_text"),
    ({"id": "t-empty", "text": ""}, "empty_text"),
    ({"id": "t-space", "text": "  \n"}, "empty_text"),
    ({"id": "ok-1", "text": "duplicate of the first row"}, "duplicate_id"),
    ({"id": "ok-2", "text": "another fine gloss"}, None),
]


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_bad_rows_error_policy_lists_the_first_offending_ids(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl", [r for r, _ in BAD_JSONL])
    with pytest.raises(BadRowsError) as info:
        load_corpus(find_inputs(path))
    expected = [(i, reason) for i, (_, reason) in enumerate(BAD_JSONL) if reason]
    assert [(r.row, r.reason) for r in info.value.rows] == expected
    message = str(info.value)
    assert message.startswith(f"{len(expected)} bad input row(s): id=None (missing_id, bad.jsonl row 1)")
    assert "id='t-null' (null_text" in message and "and 1 more" in message
    assert "--on-bad-rows skip" in message


def test_bad_rows_skip_policy_keeps_valid_rows_and_returns_rejects(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl", [r for r, _ in BAD_JSONL])
    corpus = load_corpus(find_inputs(path), on_bad_rows="skip")
    assert corpus.table["id"].to_pylist() == ["ok-1", "ok-2"]
    assert corpus.table["text"].to_pylist() == ["a fine gloss", "another fine gloss"]
    assert [r.reason for r in corpus.rejected] == [reason for _, reason in BAD_JSONL if reason]
    assert corpus.rows_in == len(BAD_JSONL)
    assert json.dumps([r.to_json() for r in corpus.rejected])  # JSON-safe for the rejects file


def test_bad_rows_in_parquet_and_csv_both_policies(tmp_path: Path) -> None:
    parquet = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": ["p1", None, "p3", "p4", "p1"], "text": ["ok", "no id", None, "", "dup"]}), parquet)
    (tmp_path / "b.csv").write_text('id,text\nc1,ok\n,no id\nc3,""\np3,"dup across files? no: p3 was rejected"\n')
    with pytest.raises(BadRowsError):
        load_corpus(find_inputs(tmp_path))
    corpus = load_corpus(find_inputs(tmp_path), on_bad_rows="skip")
    assert corpus.table["id"].to_pylist() == ["p1", "c1", "p3"]
    assert [(Path(r.source).suffix, r.id, r.reason) for r in corpus.rejected] == [
        (".parquet", None, "missing_id"),
        (".parquet", "p3", "null_text"),
        (".parquet", "p4", "empty_text"),
        (".parquet", "p1", "duplicate_id"),
        (".csv", "", "missing_id"),
        (".csv", "c3", "empty_text"),
    ]


def test_non_string_text_column_in_parquet(tmp_path: Path) -> None:
    path = tmp_path / "nums.parquet"
    pq.write_table(pa.table({"id": [1, 2], "text": [10, 20]}), path)
    with pytest.raises(BadRowsError, match="non_string_text"):
        load_corpus(find_inputs(path))


def test_duplicate_ids_across_files_and_int_vs_str(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "a.jsonl", [{"id": 1, "text": "one"}, {"id": 2, "text": "two"}])
    _write_jsonl(tmp_path / "b.jsonl", [{"id": "1", "text": "one again"}, {"id": 3, "text": "three"}])
    corpus = load_corpus(find_inputs(tmp_path), on_bad_rows="skip")
    assert corpus.table["id"].type == pa.int64() and corpus.table["id"].to_pylist() == [1, 2, 3]
    assert [(r.id, r.reason) for r in corpus.rejected] == [("1", "duplicate_id")]


def test_mixed_id_types_become_strings(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "a.jsonl", [{"id": 1, "text": "one"}, {"id": "b", "text": "bee"}])
    assert load_corpus(find_inputs(path)).table["id"].to_pylist() == ["1", "b"]


def test_missing_column_and_bad_arguments(tmp_path: Path) -> None:
    path = write_rows(_rows(3), tmp_path / "in.parquet")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['body'\]; columns present: \['id', 'text', 'lemma'\]"):
        load_corpus(find_inputs(path), text_column="body")
    csv = write_rows(_rows(3), tmp_path / "in.csv")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['nope'\]"):
        load_corpus(find_inputs(csv), columns=("nope",))
    with pytest.raises(ValueError, match=r"unknown on_bad_rows 'drop'; valid: \['error', 'skip'\]"):
        load_corpus(find_inputs(path), on_bad_rows="drop")
    with pytest.raises(ValueError, match=r"\['embedding'\] may not include 'id' or 'embedding'"):
        load_corpus(find_inputs(path), columns=("embedding",))
    bad_json = tmp_path / "broken.jsonl"
    bad_json.write_text('{"id": 1, "text": "x"}\n{oops\n')
    with pytest.raises(ValueError, match="broken.jsonl:2: not valid JSON"):
        load_corpus(find_inputs(bad_json))
