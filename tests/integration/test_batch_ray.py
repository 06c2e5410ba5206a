"""Ray Data batch embedding on a local Ray (loopback-only namespace): formats, kill + resume, bad rows.

Embedding work is kept to one 2,000-row pass (Parquet) plus 400-row passes for JSONL (a folder)
and CSV (a glob), a 1,500-row kill/resume run and a small bad-rows run; all compared with one
in-process ``encode`` of the same 2,000 WordNet glosses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from instructor_plugins.model import InstructorEncoder
from ray_backend.batch import BatchConfig, locate, run_batch, scan_local, scan_ray
from ray_backend.batch.io import BadRowsError
from ray_backend.batch.plan import MANIFEST_NAME, REJECTS_NAME, OutputDir
from tests.batch_data import INSTRUCTION, cosines, offline_rows, vectors, write_rows

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
N_ROWS = 2000


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return offline_rows(N_ROWS)


@pytest.fixture(scope="module")
def reference(rows: list[dict], bundled_encoder: InstructorEncoder) -> dict[str, np.ndarray]:
    """In-process ``encode`` of every row, by id: what the Ray job must reproduce."""
    vecs = bundled_encoder.encode([r["text"] for r in rows], INSTRUCTION, batch_size=64)
    return {r["id"]: v for r, v in zip(rows, vecs, strict=True)}


def _check_output(out_dir: Path, rows: list[dict], reference: dict[str, np.ndarray]) -> None:
    out = OutputDir(out_dir).read()
    ids = out["id"].to_pylist()
    assert ids == [r["id"] for r in rows]  # ids in == ids out, in input order, each once
    assert len(set(ids)) == len(ids)
    expected = np.stack([reference[i] for i in ids])
    assert cosines(vectors(out), expected).min() >= 0.99999


def _config(inp: Path | str, out: Path, **kw) -> BatchConfig:
    base = {"instruction": INSTRUCTION, "replicas": 2, "progress": False, "batch_size": 64}
    return BatchConfig(input=str(inp), output=str(out), **(base | kw))


def test_parquet_2k_rows_with_passthrough(
    ray_local: str, tmp_path: Path, rows: list[dict], reference: dict[str, np.ndarray]
) -> None:
    inp = write_rows(rows, tmp_path / "glosses.parquet")
    manifest = run_batch(_config(inp, tmp_path / "out", rows_per_shard=500, columns=("name",)))
    _check_output(tmp_path / "out", rows, reference)
    out = OutputDir(tmp_path / "out").read()
    assert out.column_names == ["id", "embedding", "name"]
    assert out["name"].to_pylist() == [r["name"] for r in rows]
    assert out.schema.field("embedding").type == pa.list_(pa.float32(), 384)  # fixed-size float32 list
    assert (manifest.rows_in, manifest.rows_out, manifest.rows_rejected, manifest.dim) == (N_ROWS, N_ROWS, 0, 384)
    assert manifest.units == 4 and manifest.rows_embedded_this_run == N_ROWS
    assert manifest.instruction == INSTRUCTION and manifest.texts_per_s > 0
    assert (tmp_path / "out" / MANIFEST_NAME).exists()


def test_jsonl_folder_and_csv_glob(
    ray_local: str, tmp_path: Path, rows: list[dict], reference: dict[str, np.ndarray]
) -> None:
    write_rows(rows[:240], tmp_path / "jsonl" / "a.jsonl")
    write_rows(rows[240:400], tmp_path / "jsonl" / "nested" / "b.jsonl")
    run_batch(_config(tmp_path / "jsonl", tmp_path / "out-jsonl", rows_per_shard=120))
    _check_output(tmp_path / "out-jsonl", rows[:400], reference)

    write_rows(rows[400:600], tmp_path / "csv" / "part-1.csv")
    write_rows(rows[600:800], tmp_path / "csv" / "part-2.csv")
    manifest = run_batch(_config(str(tmp_path / "csv" / "*.csv"), tmp_path / "out-csv", rows_per_shard=160))
    _check_output(tmp_path / "out-csv", rows[400:800], reference)
    assert manifest.units == 4 and len(manifest.inputs) == 2  # units never span files: 2 per 200-row file


def test_kill_part_way_then_resume(
    ray_local: str, tmp_path: Path, rows: list[dict], reference: dict[str, np.ndarray]
) -> None:
    import ray

    subset = rows[:1500]
    inp = write_rows(subset, tmp_path / "in.jsonl")
    out_dir = tmp_path / "out"
    args = ["--input", str(inp), "--output", str(out_dir), "--instruction", INSTRUCTION, "--rows-per-shard", "150"]
    cmd = [sys.executable, "-m", "ray_backend.batch", *args, "--replicas", "2", "--no-progress", "--batch-size", "64"]
    cmd += ["--address", ray.get_runtime_context().gcs_address]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    log = tmp_path / "driver.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 300
        while not list(out_dir.glob("part-*.parquet")):
            assert proc.poll() is None, f"driver exited early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no shard written in time"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out_dir / MANIFEST_NAME).exists()
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out_dir.glob("part-*.parquet")}
    assert 0 < len(before) < 10, "the kill must land part-way"

    with pytest.raises(FileExistsError):
        run_batch(_config(inp, out_dir, rows_per_shard=150))  # no silent overwrite without --resume
    manifest = run_batch(_config(inp, out_dir, rows_per_shard=150, resume=True))
    assert manifest.units == 10 and manifest.units_skipped >= len(before)
    assert manifest.rows_out == 1500 and manifest.rows_embedded_this_run <= 1500 - 150 * len(before)
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out_dir.glob("part-*.parquet")}
    assert {name: after[name] for name in before} == before  # finished shards were not redone
    assert not list(out_dir.glob(".*.tmp"))
    _check_output(out_dir, subset, reference)


def test_bad_rows_both_policies(ray_local: str, tmp_path: Path, rows: list[dict]) -> None:
    good = rows[:40]
    bad = [
        {"id": None, "text": "null id"},
        {"text": "absent id"},
        {"id": "t-null", "text": None},
        {"id": "t-int", "text": 12},
        {"id": "t-empty", "text": "   "},
        {"id": good[0]["id"], "text": "duplicate id"},
    ]
    inp = write_rows(good[:20] + bad + good[20:], tmp_path / "in.jsonl")
    with pytest.raises(BadRowsError, match=r"6 bad input row\(s\): id=None \(missing_id, in.jsonl row 20\)"):
        run_batch(_config(inp, tmp_path / "out-error"))
    assert not (tmp_path / "out-error").exists()

    manifest = run_batch(_config(inp, tmp_path / "out", on_bad_rows="skip", rows_per_shard=16, replicas=1))
    assert (manifest.rows_in, manifest.rows_out, manifest.rows_rejected) == (46, 40, 6)
    reasons = [line.split('"reason": "')[1].split('"')[0] for line in (tmp_path / "out" / REJECTS_NAME).open()]
    assert reasons == ["missing_id", "missing_id", "null_text", "non_string_text", "empty_text", "duplicate_id"]
    assert OutputDir(tmp_path / "out").read()["id"].to_pylist() == [r["id"] for r in good]


def test_distributed_duplicate_check_equals_the_in_process_one(
    ray_local: str, tmp_path: Path, rows: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash-partitioned Ray Data groupby finds the same duplicates (first kept) as one dict in one process."""
    from ray_backend.batch import scan

    base = rows[:300]
    write_rows(base[:120] + [base[5] | {"text": "again"}], tmp_path / "in" / "a.jsonl")
    write_rows(base[120:] + [base[5], base[200], {"id": None, "text": "x"}], tmp_path / "in" / "b.parquet")
    write_rows([base[200] | {"text": "thrice"}, {"id": "fresh", "text": "new"}], tmp_path / "in" / "c.csv")
    job = locate(_config(tmp_path / "in", tmp_path / "out", on_bad_rows="skip", rows_per_shard=50))
    local_scans, local_dups = scan_local(job)
    small_job_dups = scan_ray(job)[1]  # 300 keys: checked in the driver
    monkeypatch.setattr(scan, "IN_DRIVER_KEYS", 0)  # the groupby, as for a corpus above the threshold
    ray_scans, ray_dups = scan_ray(job)
    assert ray_dups == local_dups == small_job_dups
    assert [(d.file, d.row, d.key) for d in ray_dups] == [
        (0, 120, base[5]["id"]),
        (1, 180, base[5]["id"]),
        (1, 181, base[200]["id"]),
        (2, 0, base[200]["id"]),
    ]
    assert [(s.rows, s.digest, s.bad) for s in ray_scans] == [(s.rows, s.digest, s.bad) for s in local_scans]


def test_cli_bad_rows_exit_2_and_write_nothing(ray_local: str, tmp_path: Path) -> None:
    import ray

    bad = [{"id": "a", "text": ""}, {"id": 2**70, "text": "huge"}, {"id": "b", "text": "ok"}]
    inp = write_rows(bad, tmp_path / "in.jsonl")
    cmd = [sys.executable, "-m", "ray_backend.batch", "--input", str(inp), "--output", str(tmp_path / "out")]
    cmd += ["--no-progress", "--address", ray.get_runtime_context().gcs_address]
    done = subprocess.run(cmd, env=os.environ | {"PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    assert (
        "error: 2 bad input row(s): id='a' (empty_text, in.jsonl row 0); "
        "id=1180591620717411303424 (id_out_of_range, in.jsonl row 1)"
    ) in done.stderr
    assert not (tmp_path / "out").exists()


def test_ray_data_embedder_example(ray_local: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's InstructorBatchEmbedder example runs on Ray Data and checks its vectors."""
    import runpy

    example = runpy.run_path(str(ROOT / "examples" / "ray_data_embedder.py"))
    assert example["main"]() == len(example["DOCS"])
    assert "embedded 4 rows" in capsys.readouterr().out
