"""Batch jobs against a real S3 server on 127.0.0.1 (moto), in process: S3 -> S3 exactly once, resume, errors."""

from __future__ import annotations

import numpy as np
import pytest

from instructor_plugins.storage import StorageError, resolve
from instructor_plugins.testing import HashEncoder
from ray_backend.batch import BatchConfig, locate, main, prepare, run_in_process
from ray_backend.batch.io import find_inputs
from ray_backend.batch.lock import OutputLock, OutputLockedError
from ray_backend.batch.plan import MANIFEST_NAME, OutputDir
from tests.batch_data import INSTRUCTION, offline_rows, vectors, write_rows
from tests.s3 import ACCESS_KEY, SECRET_KEY, upload
from tests.unit.test_batch_pipeline import CrashingEncoder

BUCKET = "s3://test-bucket"


def _config(inp: str, out: str, **kw) -> BatchConfig:
    base = {"rows_per_shard": 10, "instruction": INSTRUCTION, "columns": ("name",), "progress": False}
    return BatchConfig(input=inp, output=out, **(base | kw))


def test_s3_to_s3_crash_then_resume_gives_every_id_once(s3_endpoint: str, tmp_path) -> None:
    rows = offline_rows(60)
    upload(write_rows(rows[:25], tmp_path / "a.jsonl"), f"{BUCKET}/crash/in/a.jsonl")
    upload(write_rows(rows[25:], tmp_path / "b.parquet"), f"{BUCKET}/crash/in/sub/b.parquet")
    out = f"{BUCKET}/crash/out"
    with pytest.raises(KeyboardInterrupt):
        run_in_process(_config(f"{BUCKET}/crash/in/", out), CrashingEncoder(crash_on=3))
    folder = OutputDir(out)
    assert sorted(folder.shards()) == [0, 1] and not folder.file(MANIFEST_NAME).exists()
    with pytest.raises(FileExistsError, match="pass --resume"):
        locate(_config(f"{BUCKET}/crash/in/", out))

    encoder = HashEncoder(dim=8)
    manifest = run_in_process(_config(f"{BUCKET}/crash/in/", out, resume=True), encoder)
    assert (manifest.units, manifest.units_skipped, manifest.rows_out) == (7, 2, 60)
    assert manifest.inputs == [f"{BUCKET}/crash/in/a.jsonl", f"{BUCKET}/crash/in/sub/b.parquet"]
    table = folder.read()
    assert table["id"].to_pylist() == [r["id"] for r in rows]
    assert table["name"].to_pylist() == [r["name"] for r in rows]
    np.testing.assert_array_equal(vectors(table), encoder.encode([r["text"] for r in rows], INSTRUCTION))
    assert not folder.file("_lock.json").exists()


def test_resume_against_changed_input_in_s3_is_refused(s3_endpoint: str, tmp_path) -> None:
    rows = offline_rows(20)
    upload(write_rows(rows, tmp_path / "in.csv"), f"{BUCKET}/changed/in.csv")
    out = f"{BUCKET}/changed/out"
    with pytest.raises(KeyboardInterrupt):
        run_in_process(_config(f"{BUCKET}/changed/in.csv", out), CrashingEncoder(crash_on=2))
    upload(
        write_rows([*rows[:-1], rows[-1] | {"text": "an edited gloss"}], tmp_path / "in.csv"),
        f"{BUCKET}/changed/in.csv",
    )
    with pytest.raises(ValueError, match="cannot resume s3://test-bucket/changed/out: its plan was made from other"):
        prepare(_config(f"{BUCKET}/changed/in.csv", out, resume=True))
    assert not OutputDir(out).file("_lock.json").exists()


def test_glob_over_s3_and_missing_bucket_or_key(s3_endpoint: str, tmp_path) -> None:
    rows = offline_rows(4)
    for name in ("x/a.jsonl", "x/b.csv", "x/deep/c.jsonl", "x/_skip.jsonl"):
        upload(write_rows(rows, tmp_path / name.rsplit("/", 1)[-1]), f"{BUCKET}/glob/{name}")
    assert [f.uri for f in find_inputs(f"{BUCKET}/glob/x/*.jsonl")] == [f"{BUCKET}/glob/x/a.jsonl"]
    assert [f.name for f in find_inputs(f"{BUCKET}/glob/x/**/*.jsonl")] == ["a.jsonl", "c.jsonl"]
    assert [f.name for f in find_inputs(f"{BUCKET}/glob/x")] == ["a.jsonl", "b.csv", "c.jsonl"]
    with pytest.raises(FileNotFoundError, match="is not a file, a folder or a glob"):
        find_inputs(f"{BUCKET}/glob/none/")
    with pytest.raises(
        StorageError,
        match=f"bucket 'no-such-bucket' of s3://no-such-bucket/in does not exist at endpoint {s3_endpoint}",
    ):
        find_inputs("s3://no-such-bucket/in")


def test_cli_missing_output_bucket_exits_2_without_credentials_in_the_message(
    s3_endpoint: str, tmp_path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ray.init", lambda *a, **k: pytest.fail("Ray must not start"), raising=False)
    upload(write_rows(offline_rows(3), tmp_path / "in.jsonl"), f"{BUCKET}/cli/in.jsonl")
    assert main(["--input", f"{BUCKET}/cli/in.jsonl", "--output", "s3://missing-out/x"]) == 2
    err = capsys.readouterr().err
    assert "error: bucket 'missing-out' of s3://missing-out/x does not exist" in err
    assert SECRET_KEY not in err and ACCESS_KEY not in err


def test_lock_on_s3_refuses_a_second_run(s3_endpoint: str) -> None:
    folder = resolve(f"{BUCKET}/locked")
    with OutputLock(folder, settle_s=0):
        with pytest.raises(OutputLockedError, match="s3://test-bucket/locked/_lock.json is held by another run"):
            OutputLock(folder, settle_s=0).acquire()
    assert not folder.child("_lock.json").exists()


def _without_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as a Ray worker on a node we did not start: no AWS environment of its own."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_the_driver_output_writes_readable_shards_on_a_node_without_credentials(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver's OutputDir, pickled as Ray sends it to an actor, works where the AWS environment is absent."""
    import pickle

    import pyarrow as pa

    carried = pickle.loads(pickle.dumps(OutputDir(f"{BUCKET}/carried")))
    _without_aws_credentials(monkeypatch)
    table = pa.table({"id": ["a", "b", "c"], "x": [1.0, 2.0, 3.0]})
    location = carried.write_shard(0, table)  # raises unless the stored object reads back as this table
    assert carried.shard_rows(location) == 3 and carried.read().equals(table)


def test_an_unsigned_upload_stored_verbatim_is_an_error_and_never_a_finished_unit(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without credentials the AWS SDK sends an aws-chunked body, which moto keeps verbatim: we notice."""
    import pyarrow as pa

    _without_aws_credentials(monkeypatch)
    folder = OutputDir(f"{BUCKET}/unsigned")  # resolved on the node itself: no keys to sign with
    with pytest.raises(StorageError, match=r"was stored as \d+ bytes starting b'[0-9a-f]+\\r\\nPAR1.*were sent"):
        folder.write_shard(0, pa.table({"id": ["a"]}))  # the chunk header before the Parquet magic
    assert not folder.shards()  # removed: nothing that looks finished is left


def test_resume_re_embeds_a_shard_that_does_not_read_as_parquet(s3_endpoint: str, tmp_path) -> None:
    from instructor_plugins.storage import atomic_write

    rows = offline_rows(40)
    upload(write_rows(rows, tmp_path / "a.jsonl"), f"{BUCKET}/torn/in/a.jsonl")
    out = f"{BUCKET}/torn/out"
    with pytest.raises(KeyboardInterrupt):
        run_in_process(_config(f"{BUCKET}/torn/in/", out), CrashingEncoder(crash_on=3))
    folder = OutputDir(out)
    assert sorted(folder.shards()) == [0, 1]
    atomic_write(folder.shard_path(1), b"10000\r\nPAR1 cut short")  # what a torn or mangled upload leaves
    encoder = HashEncoder(dim=8)
    manifest = run_in_process(_config(f"{BUCKET}/torn/in/", out, resume=True), encoder)
    assert (manifest.units, manifest.units_skipped, manifest.rows_out) == (4, 1, 40)
    table = folder.read()
    assert table["id"].to_pylist() == [r["id"] for r in rows]
    np.testing.assert_array_equal(vectors(table), encoder.encode([r["text"] for r in rows], INSTRUCTION))
