"""The whole batch job without Ray (``run_in_process``): exactly once, resume, bad rows, manifest, CLI errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from instructor_plugins.model import InstructorEncoder
from instructor_plugins.testing import HashEncoder
from ray_backend.batch import BatchConfig, main, prepare, run_in_process
from ray_backend.batch.io import BadRowsError
from ray_backend.batch.plan import MANIFEST_NAME, PLAN_NAME, REJECTS_NAME, OutputDir
from tests.batch_data import INSTRUCTION, cosines, offline_rows, vectors, write_rows


class CrashingEncoder(HashEncoder):
    """Dies (like a killed worker) on its ``crash_on``-th call."""

    def __init__(self, crash_on: int) -> None:
        super().__init__(dim=8)
        self.crash_on = crash_on

    def encode(self, texts: str | Sequence[str], instruction: str | Sequence[str] | None = None, **kw) -> np.ndarray:  # type: ignore[override]
        if len(self.calls) + 1 == self.crash_on:
            raise KeyboardInterrupt("killed")
        return super().encode(texts, instruction, **kw)


def _config(tmp_path: Path, inp: Path, **kw) -> BatchConfig:
    defaults = {"rows_per_shard": 7, "instruction": INSTRUCTION, "columns": ("name",), "progress": False}
    return BatchConfig(input=str(inp), output=str(tmp_path / "out"), **(defaults | kw))


def test_in_process_job_writes_every_row_once(tmp_path: Path) -> None:
    rows = offline_rows(30)
    inp = write_rows(rows, tmp_path / "in.parquet")
    encoder = HashEncoder(dim=8)
    manifest = run_in_process(_config(tmp_path, inp), encoder)
    out = OutputDir(tmp_path / "out").read()
    assert out["id"].to_pylist() == [r["id"] for r in rows]
    assert out["name"].to_pylist() == [r["name"] for r in rows]
    np.testing.assert_array_equal(vectors(out), encoder.encode([r["text"] for r in rows], INSTRUCTION))
    assert (manifest.rows_in, manifest.rows_out, manifest.rows_rejected, manifest.dim) == (30, 30, 0, 8)
    assert (manifest.units, manifest.units_skipped, manifest.rows_embedded_this_run) == (5, 0, 30)
    assert manifest.instruction == INSTRUCTION and manifest.texts_per_s > 0
    on_disk = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert on_disk["shards"] == [f"part-{k:05d}.parquet" for k in range(5)]
    with pytest.raises(FileExistsError, match="pass --resume"):
        run_in_process(_config(tmp_path, inp), encoder)
    again = run_in_process(_config(tmp_path, inp, resume=True), encoder)
    assert (again.units_skipped, again.rows_embedded_this_run, again.rows_out) == (5, 0, 30)


def test_crash_then_resume_embeds_each_row_exactly_once(tmp_path: Path) -> None:
    rows = offline_rows(40)
    inp = write_rows(rows, tmp_path / "in.jsonl")
    with pytest.raises(KeyboardInterrupt):
        run_in_process(_config(tmp_path, inp), CrashingEncoder(crash_on=4))
    out_dir = tmp_path / "out"
    assert not (out_dir / MANIFEST_NAME).exists()
    before = {p.name: p.stat().st_mtime_ns for p in out_dir.glob("part-*.parquet")}
    assert sorted(before) == [f"part-{k:05d}.parquet" for k in range(3)]
    (out_dir / ".part-00003.parquet.dead.tmp").write_bytes(b"half")  # what a kill mid-write leaves

    encoder = HashEncoder(dim=8)
    manifest = run_in_process(_config(tmp_path, inp, resume=True), encoder)
    assert (manifest.units, manifest.units_skipped, manifest.rows_embedded_this_run) == (6, 3, 19)
    assert {p.name: p.stat().st_mtime_ns for p in out_dir.glob("part-0000[012].parquet")} == before
    assert not list(out_dir.glob(".*.tmp"))
    out = OutputDir(out_dir).read()
    assert out["id"].to_pylist() == [r["id"] for r in rows]
    np.testing.assert_array_equal(vectors(out), encoder.encode([r["text"] for r in rows], INSTRUCTION))


def test_resume_refuses_changed_input_or_settings(tmp_path: Path) -> None:
    rows = offline_rows(10)
    inp = write_rows(rows, tmp_path / "in.csv")
    with pytest.raises(KeyboardInterrupt):
        run_in_process(_config(tmp_path, inp), CrashingEncoder(crash_on=2))
    with pytest.raises(ValueError, match="cannot resume .*plan was made from other input rows or settings"):
        prepare(_config(tmp_path, inp, resume=True, instruction="Represent the word: "))
    write_rows([*rows, {"id": "new", "text": "a new row", "name": "new"}], inp)
    with pytest.raises(ValueError, match="cannot resume"):
        prepare(_config(tmp_path, inp, resume=True))


def test_skip_policy_writes_rejects_and_counts_them(tmp_path: Path) -> None:
    rows = offline_rows(12)
    bad = [{"id": None, "text": "x"}, {"id": "e", "text": ""}, {"id": rows[0]["id"], "text": "dup"}]
    inp = write_rows(rows + bad, tmp_path / "in.jsonl")
    with pytest.raises(BadRowsError):
        prepare(_config(tmp_path, inp))
    assert not (tmp_path / "out").exists()  # the error policy writes nothing
    manifest = run_in_process(_config(tmp_path, inp, on_bad_rows="skip"), HashEncoder(dim=8))
    assert (manifest.rows_in, manifest.rows_out, manifest.rows_rejected) == (15, 12, 3)
    assert manifest.rejects_file == REJECTS_NAME
    rejects = [json.loads(line) for line in (tmp_path / "out" / REJECTS_NAME).read_text().splitlines()]
    assert [(r["row"], r["id"], r["reason"]) for r in rejects] == [
        (12, None, "missing_id"),
        (13, "e", "empty_text"),
        (14, rows[0]["id"], "duplicate_id"),
    ]
    assert OutputDir(tmp_path / "out").read()["id"].to_pylist() == [r["id"] for r in rows]


def test_cli_fails_fast_before_starting_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad flags, missing input, an output holding a run and unreachable storage exit 2 before Ray starts."""
    monkeypatch.setattr("ray.init", lambda *a, **k: pytest.fail("Ray must not start"), raising=False)
    inp = write_rows([{"id": "a", "text": "fine"}], tmp_path / "in.jsonl")
    out = str(tmp_path / "out")
    with pytest.raises(SystemExit) as exit_info:
        main(["--input", str(inp), "--output", out, "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert "batch_size must be >= 1, got 0" in capsys.readouterr().err
    assert main(["--input", str(tmp_path / "nope.jsonl"), "--output", out]) == 2
    assert "is not a file, a folder or a glob" in capsys.readouterr().err
    run_in_process(_config(tmp_path, inp), HashEncoder(dim=8))
    assert main(["--input", str(inp), "--output", out]) == 2
    assert "already holds a batch run; pass --resume" in capsys.readouterr().err

    secret = "s3cr3t-never-printed"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    assert main(["--input", "s3://bucket/in/", "--output", out]) == 2
    err = capsys.readouterr().err
    assert "error: cannot reach storage for s3://bucket/in at endpoint http://127.0.0.1:9" in err
    assert secret not in err and "AKIDEXAMPLE" not in err
    assert main(["--input", f"s3://AKIDEXAMPLE:{secret}@bucket/in/", "--output", out]) == 2
    err = capsys.readouterr().err
    assert "credentials in the URI 's3://***@bucket/in/' are not accepted" in err
    assert secret not in err and "AKIDEXAMPLE" not in err


def test_config_validation_names_bad_values() -> None:
    with pytest.raises(ValueError, match=r"unknown on_bad_rows 'drop'; valid: \['error', 'skip'\]"):
        BatchConfig(input="x", output="y", on_bad_rows="drop")
    with pytest.raises(ValueError, match="replicas must be >= 1, got 0"):
        BatchConfig(input="x", output="y", replicas=0)
    with pytest.raises(ValueError, match="'embedding' is the output vector column"):
        BatchConfig(input="x", output="y", columns=("embedding",))


def test_sharded_job_equals_one_plain_encode_with_the_real_model(
    tmp_path: Path, bundled_encoder: InstructorEncoder
) -> None:
    rows = offline_rows(48)
    inp = write_rows(rows, tmp_path / "in.parquet")
    run_in_process(_config(tmp_path, inp, rows_per_shard=20, batch_size=8), bundled_encoder)
    out = OutputDir(tmp_path / "out").read()
    plain = bundled_encoder.encode([r["text"] for r in rows], INSTRUCTION, batch_size=32)
    assert out["id"].to_pylist() == [r["id"] for r in rows]
    assert cosines(vectors(out), plain).min() >= 0.99999
    assert (tmp_path / "out" / PLAN_NAME).exists()
