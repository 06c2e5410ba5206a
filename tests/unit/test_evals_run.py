from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("MTEB_CACHE", os.path.join(tempfile.gettempdir(), "mteb-cache-tests"))  # before mteb import

import pytest

from evals import compare, run
from evals.report import load_summary
from evals.run import HubUnavailableError, RunConfig, resolve_tasks
from evals.tasks import OFFLINE_TASKS
from instructor_plugins.corpora import WORDNET_DIR
from instructor_plugins.instructions import mteb_task_names
from instructor_plugins.model import InstructorEncoder


def test_resolve_tasks() -> None:
    assert [t.metadata.name for t in resolve_tasks(suite="offline")] == list(OFFLINE_TASKS)
    mixed = resolve_tasks(["LeeNewsSTS", "SciFact"], max_items=5)
    assert [t.metadata.name for t in mixed] == ["LeeNewsSTS", "SciFact"]
    paper = resolve_tasks(suite="mteb-paper")
    assert [t.metadata.name for t in paper] == mteb_task_names()
    with pytest.raises(ValueError, match="not an offline task"):
        resolve_tasks(["NoSuchTask"])


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="either tasks or a suite"):
        RunConfig(output=tmp_path)
    with pytest.raises(ValueError, match="valid: \\['offline', 'mteb-paper'\\]"):
        RunConfig(output=tmp_path, suite="all")
    with pytest.raises(ValueError, match="valid: \\['auto', 'paper', 'none'\\]"):
        RunConfig(output=tmp_path, suite="offline", instructions="yes")


def test_real_mteb_tasks_offline_give_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError, match="HF_HUB_OFFLINE"):
        run.run(RunConfig(output=tmp_path, tasks=["SciFact"]))
    with pytest.raises(SystemExit) as exc:
        run.main(["--tasks", "SciFact", "LeeNewsSTS", "--output", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "SciFact" in err and "--suite offline" in err
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.slow
@pytest.mark.skipif(not (WORDNET_DIR / "data.noun").is_file(), reason="Debian wordnet-base missing")
def test_offline_suite_end_to_end(tmp_path: Path, bundled_encoder: InstructorEncoder) -> None:
    summaries = {}
    for mode in ("paper", "none"):
        out = tmp_path / mode
        config = RunConfig(output=out, suite="offline", instructions=mode, max_items=8, progress=False)
        summaries[mode] = run.run(config, encoder=bundled_encoder)
        table = (out / "table.md").read_text()
        assert all(name in table for name in OFFLINE_TASKS)
        assert (out / "scores.png").read_bytes().startswith(b"\x89PNG")
        results = sorted(p.stem for p in (out / "results").rglob("*.json") if p.stem in OFFLINE_TASKS)
        assert results == sorted(OFFLINE_TASKS)
        rows = summaries[mode].rows
        assert [r.task for r in rows] == list(OFFLINE_TASKS) and not summaries[mode].failures
        assert all(-1.0 <= r.score <= 1.0 for r in rows)
        # the mteb result files alone give the same scores
        from_files = {r.task: r.score for r in load_summary(out / "results").rows}
        assert from_files == pytest.approx({r.task: r.score for r in rows})
    paper = {r.task: r.score for r in summaries["paper"].rows}
    none = {r.task: r.score for r in summaries["none"].rows}
    assert paper != none  # instructions reach the encoder
    folders = [tmp_path / "paper", tmp_path / "none"]
    table = compare.comparison([load_summary(f) for f in folders], folders)
    delta = none["LeeNewsSTS"] - paper["LeeNewsSTS"]
    assert f"| LeeNewsSTS | STS | cosine_spearman | {100 * paper['LeeNewsSTS']:.2f} |" in table
    lee_line = next(line for line in table.splitlines() if line.startswith("| LeeNewsSTS"))
    assert lee_line.endswith(f"| {100 * delta:+.2f} |")
