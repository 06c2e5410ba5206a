"""Ray Train with its storage, checkpoints and final model in S3 (a real S3 server on 127.0.0.1, moto), 2 workers.

A 4-step run writes its checkpoints to S3; a rerun under the same run name with 6 steps restores the step-4
checkpoint from S3 and continues (no step repeated or skipped). Rank 0 logs to MLflow (local file store).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from instructor_plugins.model import InstructorEncoder
from instructor_plugins.storage import resolve
from tests.integration.test_train import _assert_history_matches_plan, _config
from tests.medi_data import write_medi_sample
from training.storage import read_step_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def s3_ray(s3_endpoint: str, ray_local: str) -> str:
    """The S3 server first, then Ray (whose workers inherit the AWS environment)."""
    return s3_endpoint


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_medi_sample(tmp_path_factory.mktemp("medi") / "sample.json", per_task=16)


def test_two_workers_checkpoint_to_s3_and_resume_from_it(
    s3_ray: str, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # reading the run back from MLflow's local file store
    from training.train import run

    tracking = (tmp_path / "mlruns").as_uri()
    cfg = _config(sample, tmp_path, steps=4, storage_path="s3://test-bucket/train", output="s3://test-bucket/model")
    cfg = dataclasses.replace(cfg, tracker="mlflow", tracker_uri=tracking)
    first = run(cfg)
    storage = resolve(cfg.run_uri)
    names = [i.base_name for i in storage.fs.get_file_info(pafs.FileSelector(storage.path))]
    assert any(n.startswith("checkpoint_") for n in names), names
    assert first.state.next_step == 4

    more = dataclasses.replace(cfg, steps=6)
    resumed = run(more)
    log = read_step_log(cfg.run_uri, 0)
    assert [r["step"] for r in log if r["resumed_from"] == 4] == [4, 5]  # continued from the S3 checkpoint
    assert [r["step"] for r in log if r["resumed_from"] == 0] == [0, 1, 2, 3]
    _assert_history_matches_plan(resumed.state, more, 6)

    assert resumed.uri == "s3://test-bucket/model"
    assert resolve("s3://test-bucket/model/loss_curve.png").exists()
    assert resolve("s3://test-bucket/model/modules.json").exists()
    model = InstructorEncoder.load(resumed.output, device="cpu")
    assert model.encode(["a river bank"]).shape == (1, model.dim)

    client = mlflow.MlflowClient(tracking_uri=tracking)
    (run_info,) = client.search_runs(client.get_experiment_by_name("instructor-plugins").experiment_id)
    assert run_info.info.run_name == "run" and run_info.data.params["num_workers"] == "2"
    assert [m.step for m in client.get_metric_history(run_info.info.run_id, "loss")] == list(range(6))
    assert {m.step for m in client.get_metric_history(run_info.info.run_id, "probe_loss")} == {0, 2, 4, 6}
    assert {"lr", "texts_per_s"} <= set(run_info.data.metrics)
    assert "model/modules.json" in [a.path for a in client.list_artifacts(run_info.info.run_id, "model")]
