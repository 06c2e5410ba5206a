"""``instructor seeds``: recipe runs of several seeds lined up, with the mean across runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from instructor_plugins import cli
from training.seeds import SeedRun, across_seeds, load_run, seeds_table
from training.seeds import main as seeds_main

HELD = ["man_pages", "computing_terms", "LeeNewsSTS", "PolarityClassification", "NewsgroupsClustering"]


def _target(estimate: float, half: float, threshold: float) -> dict:
    low, high = estimate - half, estimate + half
    verdict = "above" if low > threshold else "below" if high < threshold else "within noise"
    return {"estimate": estimate, "low": low, "high": high, "level": 0.95, "target": threshold, "verdict": verdict}


def _results(seed: int, in_domain: float, held_out: float, *, wins: int, ablation: float | None) -> dict:
    """A results.json as the recipe writes it, reduced to what ``seeds`` reads."""
    without = dict.fromkeys(HELD, 50.0)
    with_i = {t: 50.0 + (1.0 if i < wins else -1.0) for i, t in enumerate(HELD)}
    targets = {
        "in_domain_vs_base": _target(in_domain, 1.2, 5.0),
        "held_out_vs_base": _target(held_out, 2.5, 0.0),
        "in_domain_instructions": _target(2.5, 1.0, 0.0),
        "held_out_instructions": _target(0.2, 2.2, 0.0),
    }
    if ablation is not None:
        targets["held_out_vs_ablation"] = _target(ablation, 2.0, 0.0)
    return {
        "config": {"seed": seed},
        "scores": {"finetuned + instructions": with_i, "finetuned": without},
        "held_out_tasks": HELD,
        "target_intervals": targets,
    }


def _write(folder: Path, results: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_across_seeds_is_the_student_t_interval() -> None:
    values = [5.24, 4.85, 5.20, 5.61, 5.88, 5.84]
    interval = across_seeds(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert interval.estimate == pytest.approx(np.mean(values))
    assert (interval.low, interval.high) == (pytest.approx(low), pytest.approx(high))
    assert across_seeds([1.0, 1.0]).low == across_seeds([1.0, 1.0]).high == 1.0
    with pytest.raises(ValueError, match="at least 2"):
        across_seeds([1.0])
    with pytest.raises(ValueError, match="finite"):
        across_seeds([1.0, float("nan")])


def test_table_rows_mean_and_counts() -> None:
    runs = [
        SeedRun.from_results(_results(0, 5.24, 2.75, wins=4, ablation=0.99), "0"),
        SeedRun.from_results(_results(1, 4.85, -0.44, wins=2, ablation=None), "1"),  # --no-ablation
        SeedRun.from_results(_results(2, 5.88, 0.33, wins=3, ablation=-1.18), "2"),
    ]
    assert [r.wins for r in runs] == [4, 2, 3] and runs[0].held_out == 5
    lines = seeds_table(runs).splitlines()
    assert lines[0].startswith("| seed | in-domain vs base's best (target +5) | held-out vs base's best (target +0) |")
    assert lines[0].endswith("| instruction wins, held-out (target >= 4) |")
    assert len(lines) == 2 + 3 + 2
    row1 = lines[3].split(" | ")
    assert "not run" in row1 and row1[-1] == "2 of 5 |"
    assert "**+2.75 [+0.25, +5.25] above**" in lines[2]  # a run's own interval, against its target
    mean = lines[5].split(" | ")
    assert mean[1] == str(across_seeds([5.24, 4.85, 5.88]))  # +5.32 [+4.03, +6.62]: contains +5, no verdict
    assert mean[3] == str(across_seeds([0.99, -1.18]))  # over the runs that trained the ablation
    assert mean[-1] == "3.0 |"
    counts = lines[6].split(" | ")
    assert counts[1] == "2 of 3 (above 0, below 0)"  # 4.85 < 5; no run's interval leaves +5 out
    assert counts[2] == "2 of 3 (above 1, below 0)"  # -0.44 is short of 0, within its noise
    assert counts[-1] == "1 of 3 |"


def test_table_needs_two_runs() -> None:
    with pytest.raises(ValueError, match="at least two"):
        seeds_table([SeedRun.from_results(_results(0, 5.0, 0.0, wins=4, ablation=None), "0")])


def test_cli_prints_the_table_and_exits_2_on_bad_folders(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = _write(tmp_path / "s0", _results(0, 5.2, 1.0, wins=4, ablation=0.5))
    b = _write(tmp_path / "s1", _results(1, 5.6, 0.4, wins=3, ablation=-0.5))
    assert cli.main(["seeds", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| 0 (s0) | " in out and "| 1 (s1) | " in out and "| runs at or past the target |" in out
    assert load_run(a).label == "0 (s0)"
    old = _results(2, 5.0, 0.0, wins=4, ablation=None)
    del old["target_intervals"]
    c = _write(tmp_path / "old", old)
    for argv in ([str(a)], [str(a), str(tmp_path / "absent")], [str(a), str(c)]):
        with pytest.raises(SystemExit) as exit_info:
            seeds_main(argv)
        assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "at least two" in err and "no results.json" in err and "no target intervals" in err
