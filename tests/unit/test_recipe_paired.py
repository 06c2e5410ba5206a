"""``instructor paired``: two recipe runs compared item by item, against the run's own targets and by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.recipe.bootstrap import v_measure
from training.recipe.paired import PER_ITEM_FILE, compare, main
from training.recipe.targets import target_intervals

LABELS = [0, 0, 0, 1, 1, 1, 2, 2]


def _run(folder: Path, settings: dict[str, dict[str, list]], fingerprints: dict[str, str]) -> Path:
    """A recipe output with results.json and per_item.json: a retrieval task and a clustering task, held out."""
    folder.mkdir(parents=True, exist_ok=True)
    held = ["retrieval", "clustering"]
    categories = {
        "held_out_benchmark": {
            "tasks": {"retrieval": {"category": "retrieval"}, "clustering": {"category": "clustering"}}
        }
    }
    results = {"held_out_tasks": held, "in_domain_tasks": ["trained"], **categories}
    (folder / "results.json").write_text(json.dumps(results))
    per_item = {"settings": settings, "references": {"clustering": LABELS}, "fingerprints": fingerprints}
    (folder / PER_ITEM_FILE).write_text(json.dumps(per_item))
    return folder


def _setting(rng: np.random.Generator) -> dict[str, list]:
    return {
        "retrieval": rng.uniform(0, 100, 30).round(2).tolist(),
        "clustering": rng.integers(0, 3, len(LABELS)).tolist(),
        "trained": rng.uniform(0, 100, 10).round(2).tolist(),
    }


FINGERPRINTS = {"retrieval": "r1", "clustering": "c1", "trained": "t1"}


def test_within_one_run_it_is_the_run_s_own_target(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    settings = {"finetuned + instructions": _setting(rng), "ablation": _setting(rng)}
    run = _run(tmp_path / "a", settings, FINGERPRINTS)
    got = compare(run, "finetuned + instructions", run, "ablation")
    arrays = {s: {t: np.asarray(v) for t, v in items.items()} for s, items in settings.items()}
    scores = {s: {t: 0.0 for t in items} for s, items in settings.items()}
    summary = {s: {"held_out": 0.0, "in_domain": 0.0} for s in settings}
    want = target_intervals(
        arrays,
        scores,
        summary,
        {"held_out": ["retrieval", "clustering"], "in_domain": ["trained"]},
        references={"clustering": np.asarray(LABELS)},
    )["held_out_vs_ablation"]
    assert (got.interval.estimate, got.interval.low, got.interval.high) == pytest.approx(
        (want["estimate"], want["low"], want["high"])
    )
    by_hand = np.mean(
        [
            np.mean(settings["finetuned + instructions"]["retrieval"]) - np.mean(settings["ablation"]["retrieval"]),
            100 * v_measure(np.asarray(LABELS), np.asarray(settings["finetuned + instructions"]["clustering"]))
            - 100 * v_measure(np.asarray(LABELS), np.asarray(settings["ablation"]["clustering"])),
        ]
    )
    assert got.interval.estimate == pytest.approx(by_hand)
    assert got.tasks == ["retrieval", "clustering"] and not got.left_out
    assert got.groups == {
        "retrieval": ["retrieval"],
        "clustering": ["clustering"],
        "asymmetric": ["retrieval"],
        "symmetric": ["clustering"],
    }
    assert got.by_category["asymmetric"].estimate == pytest.approx(got.per_task["retrieval"].estimate)
    assert got.by_category["symmetric"].estimate == pytest.approx(got.per_task["clustering"].estimate)
    same = compare(run, "ablation", run, "ablation")
    assert (same.interval.estimate, same.interval.low, same.interval.high) == (0.0, 0.0, 0.0)


def test_two_runs_pair_only_the_tasks_scored_on_the_same_items(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    a = _run(tmp_path / "a", {"finetuned + instructions": _setting(rng)}, FINGERPRINTS)
    b_items = _setting(rng)
    b = _run(tmp_path / "b", {"finetuned + instructions": b_items}, {**FINGERPRINTS, "clustering": "other"})
    got = compare(a, "finetuned + instructions", b, "finetuned + instructions")
    assert got.tasks == ["retrieval"] and got.left_out == {"clustering": "scored on other items in the two runs"}
    a_items = json.loads((a / PER_ITEM_FILE).read_text())["settings"]["finetuned + instructions"]
    assert got.interval.estimate == pytest.approx(np.mean(a_items["retrieval"]) - np.mean(b_items["retrieval"]))
    assert got.interval.low < got.interval.estimate < got.interval.high
    in_domain = compare(a, "finetuned + instructions", b, "finetuned + instructions", scope="in_domain")
    assert in_domain.tasks == ["trained"]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(2)
    a = _run(tmp_path / "a", {"finetuned": _setting(rng)}, FINGERPRINTS)
    assert main([str(a), "finetuned", str(tmp_path / "missing"), "finetuned"]) == 2
    assert "results.json not found" in capsys.readouterr().err
    assert main([str(a), "finetuned", str(a), "ablation"]) == 2
    assert "did not evaluate 'ablation'" in capsys.readouterr().err
    b = _run(tmp_path / "b", {"finetuned": _setting(rng)}, {k: "x" for k in FINGERPRINTS})
    assert main([str(a), "finetuned", str(b), "finetuned"]) == 2
    assert "no held_out task was scored on the same items" in capsys.readouterr().err
    assert main([str(a), "finetuned", str(a), "finetuned", "--per-task", "--by-category"]) == 0
    out = capsys.readouterr().out
    assert "2 tasks paired item by item: **+0.00 [+0.00, +0.00] (within noise)**" in out and "| clustering |" in out
    assert "| symmetric | 1 | +0.00 [+0.00, +0.00] (within noise) |" in out
