"""Work units, shards and the output folder: exactly-once bookkeeping without Ray."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from instructor_plugins.testing import HashEncoder
from ray_backend.batch.io import find_inputs
from ray_backend.batch.lock import OutputLock, OutputLockedError
from ray_backend.batch.plan import OutputDir, RowLayout, UnitEmbedder, WorkUnit, fingerprint, plan_units, shard_table
from ray_backend.batch.scan import Duplicate, FileScan, find_duplicates, scan_file
from tests.batch_data import offline_rows, vectors, write_rows


def _scan(index: int, rows: int, size: int) -> FileScan:
    units = -(-rows // size)
    return FileScan(
        index,
        f"f{index}",
        rows,
        "d",
        valid_per_unit=[min(size, rows - k * size) for k in range(units)],
        unit_offsets=[0] * units,
    )


@pytest.mark.parametrize(("sizes", "size"), [((0,), 3), ((1,), 3), ((9, 10), 3), ((5, 0, 2), 100)])
def test_units_cover_every_row_once_and_never_span_files(sizes: tuple[int, ...], size: int) -> None:
    scans = [_scan(i, n, size) for i, n in enumerate(sizes)]
    units = plan_units(scans, [], size)
    covered = [(u.file, r) for u in units for r in range(u.start, u.stop)]
    assert covered == [(i, r) for i, n in enumerate(sizes) for r in range(n)]
    assert [u.index for u in units] == list(range(len(units)))
    assert all(0 < u.rows == u.stop - u.start <= size for u in units)


def test_duplicates_are_dropped_from_their_unit() -> None:
    units = plan_units([_scan(0, 10, 4)], [Duplicate(0, 5, "k"), Duplicate(0, 6, "j")], 4)
    assert [(u.start, u.stop, u.rows, u.drop) for u in units] == [(0, 4, 4, ()), (4, 8, 2, (5, 6)), (8, 10, 2, ())]
    with pytest.raises(ValueError, match="rows_per_shard must be >= 1, got 0"):
        plan_units([], [], 0)
    assert WorkUnit(7).shard_name == "part-00007.parquet"


def test_find_duplicates_keeps_the_first_in_input_order() -> None:
    a = pa.table(
        {"key": ["x", "y", "x"], "file": pa.array([0, 0, 0], pa.int32()), "row": [0, 1, 2], "is_int": [False] * 3}
    )
    b = pa.table(
        {"key": ["y", "z", "x"], "file": pa.array([1, 1, 1], pa.int32()), "row": [0, 1, 2], "is_int": [False] * 3}
    )
    assert find_duplicates([a, b]) == [Duplicate(0, 2, "x"), Duplicate(1, 0, "y"), Duplicate(1, 2, "x")]
    assert find_duplicates([b]) == []


def test_fingerprint_changes_with_rows_and_settings(tmp_path: Path) -> None:
    rows = offline_rows(4)
    (file,) = find_inputs(write_rows(rows, tmp_path / "a.jsonl"))
    kw = {"id_column": "id", "text_column": "text", "rows_per_shard": 2}
    base = fingerprint([scan_file(file, 0, **kw)[0]], {"instruction": ""})
    assert base == fingerprint([scan_file(file, 0, **kw)[0]], {"instruction": ""})
    assert base != fingerprint([scan_file(file, 0, **kw)[0]], {"instruction": "Represent: "})
    write_rows([*rows[:3], rows[3] | {"text": "changed"}], tmp_path / "a.jsonl")
    assert base != fingerprint([scan_file(file, 0, **kw)[0]], {"instruction": ""})


def test_shard_schema() -> None:
    table = pa.Table.from_pylist(offline_rows(5))
    vecs = np.arange(15, dtype=np.float64).reshape(5, 3)
    shard = shard_table(table, vecs, id_column="id", passthrough=["name"])
    assert shard.column_names == ["id", "embedding", "name"]
    assert shard.schema.field("embedding").type == pa.list_(pa.float32(), 3)
    np.testing.assert_array_equal(vectors(shard), vecs.astype(np.float32))
    with pytest.raises(ValueError, match=r"expected 5 vectors, got array of shape \(4, 3\)"):
        shard_table(table, vecs[:4], id_column="id")


def test_failed_write_leaves_no_shard_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = OutputDir(tmp_path)

    def die(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("instructor_plugins.storage.os.fsync", die)
    with pytest.raises(OSError, match="disk full"):
        out.write_shard(0, pa.table({"id": [1]}))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    out.write_shard(0, pa.table({"id": [1]}))
    assert [p.name for p in tmp_path.iterdir()] == ["part-00000.parquet"]
    assert pq.read_table(tmp_path / "part-00000.parquet")["id"].to_pylist() == [1]


def test_pending_skips_finished_shards_and_detects_tampering(tmp_path: Path) -> None:
    out = OutputDir(tmp_path)
    units = plan_units([_scan(0, 5, 2)], [], 2)
    out.write_shard(units[1], pa.table({"id": [2, 3]}))
    (tmp_path / ".part-00002.parquet.abc.tmp").write_bytes(b"partial")
    assert out.pending(units) == [units[0], units[2]]
    assert out.remove_temporaries() == 1
    out.write_shard(units[2], pa.table({"id": [4, 5]}))  # the plan says 1 row
    with pytest.raises(RuntimeError, match="holds 2 rows, the plan says 1"):
        out.pending(units)
    out.write_shard(9, pa.table({"id": [9]}))
    with pytest.raises(RuntimeError, match=r"shards \[2, 9\] that the plan does not know"):
        out.pending(plan_units([_scan(0, 4, 2)], [], 2))


def test_unit_embedder_reads_embeds_and_writes_its_unit(tmp_path: Path) -> None:
    rows = offline_rows(9)
    files = find_inputs(write_rows(rows, tmp_path / "in.jsonl"))
    encoder = HashEncoder(dim=8)
    layout = RowLayout("id", "text", ("name",), pa.string(), pa.schema([("name", pa.string())]))
    embed = UnitEmbedder(encoder, OutputDir(tmp_path / "out"), files, layout, instruction="Do: ")
    (tmp_path / "out").mkdir()
    offset = len((tmp_path / "in.jsonl").read_bytes().split(b"\n", 2)[0]) + 1
    result = embed(WorkUnit(3, 0, start=1, stop=5, rows=3, offset=offset, drop=(2,)))
    assert (result.unit, result.rows, result.dim) == (3, 3, 8)
    shard = pq.read_table(tmp_path / "out" / "part-00003.parquet")
    kept = [rows[1], rows[3], rows[4]]
    assert shard["id"].to_pylist() == [r["id"] for r in kept]
    assert shard["name"].to_pylist() == [r["name"] for r in kept]
    np.testing.assert_array_equal(vectors(shard), encoder.encode([r["text"] for r in kept], "Do: "))
    with pytest.raises(RuntimeError, match="the input changed during the run"):
        embed(WorkUnit(4, 0, start=1, stop=5, rows=4, offset=offset, drop=(2,)))


def test_lock_refuses_a_second_live_run_and_frees_on_release(tmp_path: Path) -> None:
    out = OutputDir(tmp_path)
    first = OutputLock(out.root, settle_s=0)
    with first:
        with pytest.raises(OutputLockedError, match=r"_lock.json is held by another run \(host .*, pid \d+\)"):
            OutputLock(out.root, settle_s=0).acquire()
    assert not (tmp_path / "_lock.json").exists()
    with OutputLock(out.root, settle_s=0):  # free again
        assert (tmp_path / "_lock.json").exists()


def test_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    import json
    import socket
    import subprocess

    dead = subprocess.run(["true"]).args and subprocess.Popen(["true"])
    dead.wait()
    record = {"token": "old", "host": socket.gethostname(), "pid": dead.pid, "heartbeat": 0}
    (tmp_path / "_lock.json").write_text(json.dumps(record))
    with OutputLock(OutputDir(tmp_path).root, settle_s=0) as lock:
        assert json.loads((tmp_path / "_lock.json").read_text())["token"] == lock.token
    record |= {"host": "elsewhere", "heartbeat": __import__("time").time()}
    (tmp_path / "_lock.json").write_text(json.dumps(record))
    with pytest.raises(OutputLockedError, match="host elsewhere"):
        OutputLock(OutputDir(tmp_path).root, settle_s=0).acquire()


def test_two_runs_racing_for_the_lock_one_wins(tmp_path: Path) -> None:
    locks = [OutputLock(OutputDir(tmp_path).root, settle_s=0.3) for _ in range(2)]
    outcomes: list[str] = []

    def take(lock: OutputLock) -> None:
        try:
            lock.acquire()
            outcomes.append("won")
        except OutputLockedError:
            outcomes.append("refused")

    threads = [threading.Thread(target=take, args=(lock,)) for lock in locks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for lock in locks:
        lock.release()
    assert sorted(outcomes) == ["refused", "won"]
