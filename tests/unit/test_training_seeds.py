"""``instructor seeds``: recipe runs of several seeds lined up, with the mean across runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from instructor_plugins import cli
from training.recipe.seeds import SeedRun, across_seeds, load_run, seeds_table
from training.recipe.seeds import main as seeds_main

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


# Student-t critical values t(0.975, df) and t(0.95, df), as printed in any statistics table.
T975 = {1: 12.7062, 2: 4.3027, 5: 2.5706}
T95 = {2: 2.9200}


def _by_hand(values: list[float], t: float) -> tuple[float, float, float]:
    """Mean +- t * s / sqrt(n), with s the sample standard deviation (n - 1), in plain arithmetic."""
    n = len(values)
    mean = sum(values) / n
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, mean - t * s / math.sqrt(n), mean + t * s / math.sqrt(n)


def test_across_seeds_is_the_student_t_interval() -> None:
    # 1, 2, 3: mean 2, s = 1, half-width 4.3027 / sqrt(3) = 2.4842
    one_two_three = across_seeds([1.0, 2.0, 3.0])
    assert (one_two_three.estimate, one_two_three.low, one_two_three.high) == pytest.approx(
        (2.0, -0.4842, 4.4842), abs=1e-3
    )
    assert one_two_three.level == 0.95
    # the level is honoured: 90 % uses t(0.95, 2) = 2.9200, half-width 1.6859
    ninety = across_seeds([1.0, 2.0, 3.0], level=0.90)
    assert (ninety.low, ninety.high) == pytest.approx((0.3141, 3.6859), abs=1e-3)
    values = [5.24, 4.85, 5.20, 5.61, 5.88, 5.84]
    interval = across_seeds(values)
    assert (interval.estimate, interval.low, interval.high) == pytest.approx(_by_hand(values, T975[5]), abs=1e-3)
    assert (interval.estimate, interval.low, interval.high) == pytest.approx((5.4367, 5.0096, 5.8638), abs=1e-3)
    assert across_seeds([1.0, 1.0]).low == across_seeds([1.0, 1.0]).high == 1.0
    with pytest.raises(ValueError, match="at least 2"):
        across_seeds([1.0])
    with pytest.raises(ValueError, match="finite"):
        across_seeds([1.0, float("nan")])


def test_table_rows_mean_and_counts() -> None:
    runs = [
        SeedRun.from_results(_results(0, 5.24, 2.75, wins=4, ablation=1.00), "0"),
        SeedRun.from_results(_results(1, 4.85, -0.44, wins=2, ablation=None), "1"),  # --no-ablation
        SeedRun.from_results(_results(2, 5.88, 0.33, wins=3, ablation=-1.20), "2"),
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
    # 5.24, 4.85, 5.88: mean 5.3233, s = 0.5200, half-width 4.3027 * 0.5200 / sqrt(3) = 1.2918; contains +5: no verdict
    assert mean[1] == "+5.32 [+4.03, +6.62]"
    assert _by_hand([5.24, 4.85, 5.88], T975[2]) == pytest.approx((5.3233, 4.0315, 6.6152), abs=1e-3)
    # over the two runs that trained the ablation, 1.00 and -1.20: mean -0.10, s = 1.5556, half-width 12.7062 * 1.1
    assert mean[3] == "-0.10 [-14.08, +13.88]"
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
