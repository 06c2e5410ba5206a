"""Training storage and tracking without Ray: step logs on local and S3 storage, MLflow and TensorBoard runs."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from instructor_plugins.storage import resolve
from training.config import TrainConfig
from training.storage import StepLog, publish_dir, read_step_log
from training.tracking import make_tracker


def _records(n: int, start: int = 0) -> list[dict]:
    return [{"step": s, "loss": 1.0 / (s + 1)} for s in range(start, start + n)]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_step_log_reads_back_in_order(where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    run = str(tmp_path / "run") if where == "local" else "s3://test-bucket/steplog/run"
    if where == "s3":
        request.getfixturevalue("s3_endpoint")
    log = StepLog(resolve(run), rank=1)
    for record in _records(3):
        log.append(record)
    log.flush()
    for record in _records(2, start=3):  # a restarted attempt appends after the earlier lines
        log.append(record)
    log.flush()
    assert read_step_log(run, 1) == _records(5)
    assert read_step_log(run, 0) == []


def test_publish_dir_to_s3_and_config_uris(s3_endpoint: str, tmp_path: Path) -> None:
    (tmp_path / "model" / "2_Dense").mkdir(parents=True)
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "model" / "2_Dense" / "w.bin").write_bytes(b"\0" * 10)
    uri = publish_dir(tmp_path / "model", "s3://test-bucket/final/model")
    assert uri == "s3://test-bucket/final/model"
    assert resolve(f"{uri}/2_Dense/w.bin").read_bytes() == b"\0" * 10
    cfg = TrainConfig(data="d.json", output="s3://test-bucket/final/model", storage_path="s3://test-bucket/ray/")
    assert (cfg.name, cfg.storage, cfg.run_uri) == ("model", "s3://test-bucket/ray", "s3://test-bucket/ray/model")
    with pytest.raises(ValueError, match="is not local; use run_uri"):
        _ = cfg.run_dir
    with pytest.raises(ValueError, match=r"unknown tracker 'wandb'; valid: \['none', 'mlflow', 'tensorboard'\]"):
        TrainConfig(data="d.json", output="o", tracker="wandb")


def test_mlflow_tracker_logs_params_metrics_and_model_and_resumes(tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    uri = (tmp_path / "mlruns").as_uri()
    tracker = make_tracker("mlflow", uri, "my-run")
    tracker.log_params({"lr": 1e-4, "model": None})
    for s in range(3):
        tracker.log_metrics({"loss": 1.0 / (s + 1), "lr": 1e-4}, step=s)
    tracker.close()
    resumed = make_tracker("mlflow", uri, "my-run", run_id=tracker.run_id)  # a restarted rank 0
    resumed.log_params({"lr": 1e-4, "steps": 6})
    resumed.log_metrics({"loss": 0.2}, step=3)
    resumed.log_model(tmp_path / "model", "s3://bucket/final")
    resumed.close()
    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.get_run(tracker.run_id)
    assert run.info.run_name == "my-run" and run.data.params == {"lr": "0.0001", "model": "", "steps": "6"}
    assert [m.step for m in client.get_metric_history(tracker.run_id, "loss")] == [0, 1, 2, 3]
    assert run.data.tags["final_model"] == "s3://bucket/final"
    assert [a.path for a in client.list_artifacts(tracker.run_id, "model")] == ["model/config.json"]


def _tfrecords(path: Path) -> list[bytes]:
    data, out, i = path.read_bytes(), [], 0
    while i < len(data):
        (length,) = struct.unpack("<Q", data[i : i + 8])
        out.append(data[i + 12 : i + 12 + length])
        i += 12 + length + 4
    return out


def test_tensorboard_tracker_writes_scalars(tmp_path: Path) -> None:
    pytest.importorskip("tensorboardX")
    from tensorboardX.proto.event_pb2 import Event

    tracker = make_tracker("tensorboard", str(tmp_path / "tb"), "my-run")
    tracker.log_params({"lr": 1e-4})
    for s in range(3):
        tracker.log_metrics({"loss": 1.0 / (s + 1), "texts_per_s": 10.0}, step=s)
    tracker.log_model(tmp_path, "out/model")
    tracker.close()
    (events,) = (tmp_path / "tb" / "my-run").glob("events.out.tfevents.*")
    scalars = []
    for record in _tfrecords(events):
        event = Event.FromString(record)
        scalars += [
            (v.tag, event.step, round(v.simple_value, 4)) for v in event.summary.value if v.HasField("simple_value")
        ]
    assert [s for s in scalars if s[0] == "loss"] == [("loss", 0, 1.0), ("loss", 1, 0.5), ("loss", 2, 0.3333)]
    assert len([s for s in scalars if s[0] == "texts_per_s"]) == 3
