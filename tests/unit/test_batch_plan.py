from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from instructor_plugins.testing import HashEncoder
from ray_backend.batch_plan import (
    OutputDir,
    UnitEmbedder,
    WorkUnit,
    fingerprint,
    plan_units,
    shard_table,
    table_from_ipc,
    table_to_ipc,
)
from tests.batch_data import vectors, wordnet_rows


@pytest.mark.parametrize(("n", "size"), [(0, 3), (1, 3), (9, 3), (10, 3), (5, 100)])
def test_units_cover_every_row_once(n: int, size: int) -> None:
    units = plan_units(n, size)
    covered = [r for u in units for r in range(u.start, u.stop)]
    assert covered == list(range(n))
    assert [u.index for u in units] == list(range(len(units)))
    assert all(0 < u.rows <= size for u in units)


def test_units_reject_bad_size() -> None:
    with pytest.raises(ValueError, match="rows_per_shard must be >= 1, got 0"):
        plan_units(5, 0)
    assert WorkUnit(7, 0, 1).shard_name == "part-00007.parquet"


def test_fingerprint_changes_with_rows_and_settings() -> None:
    table = pa.table({"id": ["a", "b"], "text": ["x", "y"]})
    base = fingerprint(table, {"instruction": ""})
    assert base == fingerprint(pa.table({"id": ["a", "b"], "text": ["x", "y"]}), {"instruction": ""})
    assert base != fingerprint(pa.table({"id": ["a", "b"], "text": ["x", "z"]}), {"instruction": ""})
    assert base != fingerprint(table, {"instruction": "Represent: "})


def test_ipc_round_trip_and_shard_schema() -> None:
    rows = wordnet_rows(5)
    table = pa.Table.from_pylist(rows)
    assert table_from_ipc(table_to_ipc(table)).equals(table)
    vecs = np.arange(15, dtype=np.float64).reshape(5, 3)
    shard = shard_table(table, vecs, id_column="id", passthrough=["lemma"])
    assert shard.column_names == ["id", "embedding", "lemma"]
    assert shard.schema.field("embedding").type == pa.list_(pa.float32(), 3)
    np.testing.assert_array_equal(vectors(shard), vecs.astype(np.float32))
    with pytest.raises(ValueError, match=r"expected 5 vectors, got array of shape \(4, 3\)"):
        shard_table(table, vecs[:4], id_column="id")


def test_failed_write_leaves_no_shard_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = OutputDir(tmp_path)

    def write_half_then_die(table: pa.Table, fh: object) -> None:
        fh.write(b"PAR1 half a file")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", write_half_then_die)
    with pytest.raises(OSError, match="disk full"):
        out.write_shard(0, pa.table({"id": [1]}))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    out.write_shard(0, pa.table({"id": [1]}))
    assert [p.name for p in tmp_path.iterdir()] == ["part-00000.parquet"]
    assert pq.read_table(tmp_path / "part-00000.parquet")["id"].to_pylist() == [1]


def test_pending_skips_finished_shards_and_detects_tampering(tmp_path: Path) -> None:
    out = OutputDir(tmp_path)
    units = plan_units(5, 2)
    out.write_shard(units[1], pa.table({"id": [2, 3]}))
    (tmp_path / ".part-00002.parquet.abc.tmp").write_bytes(b"partial")
    assert out.pending(units) == [units[0], units[2]]
    assert out.remove_temporaries() == 1
    out.write_shard(units[2], pa.table({"id": [4, 5]}))  # the plan says 1 row
    with pytest.raises(RuntimeError, match="holds 2 rows, the plan says 1"):
        out.pending(units)
    out.write_shard(9, pa.table({"id": [9]}))
    with pytest.raises(RuntimeError, match=r"shards \[2, 9\] that the plan does not know"):
        out.pending(plan_units(4, 2))


def test_unit_embedder_writes_the_encoder_vectors(tmp_path: Path) -> None:
    rows = wordnet_rows(7)
    encoder = HashEncoder(dim=8)
    embed = UnitEmbedder(
        encoder, OutputDir(tmp_path), id_column="id", text_column="text", passthrough=["lemma"], instruction="Do: "
    )
    result = embed(3, pa.Table.from_pylist(rows))
    assert (result.unit, result.rows, result.dim) == (3, 7, 8)
    shard = pq.read_table(tmp_path / "part-00003.parquet")
    assert shard["id"].to_pylist() == [r["id"] for r in rows]
    assert shard["lemma"].to_pylist() == [r["lemma"] for r in rows]
    np.testing.assert_array_equal(vectors(shard), encoder.encode([r["text"] for r in rows], "Do: "))
