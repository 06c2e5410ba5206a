"""The recipe's targets as differences of task averages with stratified paired bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from training.recipe.bootstrap import Interval, Resampled, average_difference, mean_part, paired_mean_difference
from training.recipe.targets import BREAKDOWNS, interval_lines, shape_scopes, target_intervals


def test_one_part_is_the_plain_paired_bootstrap() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 100, 80), rng.uniform(0, 100, 80)
    assert average_difference([mean_part(a, b)], seed=3) == paired_mean_difference(a, b, seed=3)


def test_tasks_are_resampled_independently_and_fixed_parts_shift_the_average() -> None:
    rng = np.random.default_rng(1)
    diff = rng.normal(1.0, 10.0, 100)
    one = average_difference([mean_part(diff, np.zeros(100))])
    two = average_difference([mean_part(diff, np.zeros(100)), mean_part(diff, np.zeros(100))])
    assert two.estimate == pytest.approx(one.estimate)
    # two independent draws of the same task average out: the interval narrows by about sqrt(2)
    ratio = (one.high - one.low) / (two.high - two.low)
    assert 1.2 < ratio < 1.7
    shifted = average_difference([mean_part(diff, np.zeros(100)), 4.0])
    assert shifted.estimate == pytest.approx((one.estimate + 4.0) / 2)
    assert shifted.high - shifted.low == pytest.approx((one.high - one.low) / 2, rel=1e-9)
    with pytest.raises(ValueError, match="at least one resampled"):
        average_difference([1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2 units"):
        Resampled(lambda idx: 0.0, 1)
    assert Interval(5.2, 4.6, 5.8, 0.95).relative_to(5.0) == "within noise"
    assert Interval(5.2, 5.1, 5.8, 0.95).relative_to(5.0) == "above"
    assert Interval(4.2, 3.6, 4.8, 0.95).relative_to(5.0) == "below"


def _scores(per_item: dict[str, dict[str, np.ndarray]], fixed: dict[str, dict[str, float]]) -> dict:
    return {s: {t: float(v.mean()) for t, v in tasks.items()} | fixed[s] for s, tasks in per_item.items()}


def test_target_intervals_compare_the_right_settings() -> None:
    rng = np.random.default_rng(2)
    n = 120
    base = {t: rng.uniform(40, 60, n) for t in ("t1", "t2", "h1")}
    per_item = {
        "base": base,
        "base + instructions": {t: v - 2.0 for t, v in base.items()},  # worse everywhere: not the base's best
        "finetuned": {t: v + 3.0 for t, v in base.items()},
        "finetuned + instructions": {t: v + 8.0 + rng.normal(0, 5, n) for t, v in base.items()},
        "ablation": {t: v + 7.0 for t, v in base.items()},
    }
    fixed = {s: {"clf": 70.0} for s in per_item} | {"finetuned + instructions": {"clf": 73.0}}
    scores = _scores(per_item, fixed)
    tasks = {"in_domain": ["t1", "t2"], "held_out": ["h1", "clf"]}
    summary = {
        s: {scope: float(np.mean([scores[s][t] for t in names])) for scope, names in tasks.items()} for s in scores
    }
    out = target_intervals(per_item, scores, summary, tasks)
    assert set(out) == {
        "in_domain_vs_base",
        "held_out_vs_base",
        "held_out_vs_ablation",
        "in_domain_instructions",
        "held_out_instructions",
    }
    for key, v in out.items():
        a, b = "finetuned + instructions", v["versus"]
        scope = "in_domain" if key.startswith("in_domain") else "held_out"
        assert v["estimate"] == pytest.approx(summary[a][scope] - summary[b][scope])  # the report's own difference
        assert v["low"] <= v["estimate"] <= v["high"]
    assert out["in_domain_vs_base"]["versus"] == "base" and out["in_domain_vs_base"]["target"] == 5.0
    assert out["in_domain_vs_base"]["verdict"] == "above"  # +8 with noise of 5 over 2 x 120 queries
    assert out["held_out_vs_base"]["fixed_tasks"] == ["clf"]
    assert out["held_out_vs_ablation"]["estimate"] == pytest.approx((1.0 + 3.0) / 2, abs=0.5)
    lines = interval_lines(out)
    text = "\n".join(lines)
    assert "| in-domain: finetuned + instructions - base's best (base) | +" in text and " | +5 | above |" in text
    assert " | +0 | above* |" in text  # held-out: above, but the classifier task was not resampled
    assert lines[-2].startswith("Not resampled: clf.")


def test_a_setting_that_did_not_run_has_no_target() -> None:
    per_item = {s: {"t": np.arange(5.0)} for s in ("base", "base + instructions", "finetuned + instructions")}
    scores = {s: {"t": 2.0} for s in per_item}
    summary = {s: {"in_domain": 2.0, "held_out": 2.0} for s in per_item}
    out = target_intervals(per_item, scores, summary, {"in_domain": ["t"], "held_out": []})
    assert list(out) == ["in_domain_vs_base"]  # no finetuned-alone, no ablation, no held-out tasks
    assert out["in_domain_vs_base"]["verdict"] == "below" and out["in_domain_vs_base"]["estimate"] == 0.0
    assert interval_lines({}) == []


def test_breakdowns_split_the_held_out_instruction_effect_by_task_shape() -> None:
    rng = np.random.default_rng(4)
    n = 150
    base = {t: rng.uniform(40, 60, n) for t in ("ret", "rerank", "clu", "sts")}
    lift = {"ret": 4.0, "rerank": 2.0, "clu": -3.0, "sts": -1.0}  # instructions help one shape, cost the other
    per_item = {
        "finetuned": base,
        "finetuned + instructions": {t: v + lift[t] + rng.normal(0, 1, n) for t, v in base.items()},
    }
    scores = _scores(per_item, {s: {"fixed_sym": 50.0} for s in per_item})
    categories = {"ret": "retrieval", "rerank": "reranking", "clu": "clustering", "sts": "sts", "fixed_sym": "sts"}
    held = ["ret", "clu", "rerank", "sts", "unknown"]
    scopes = shape_scopes(held, categories)
    assert scopes == {"held_out_asymmetric": ["ret", "rerank"], "held_out_symmetric": ["clu", "sts"]}
    summary = {s: {"held_out": float(np.mean([scores[s][t] for t in held[:4]]))} for s in scores}
    out = target_intervals(per_item, scores, summary, {"held_out": held[:4], **scopes})
    assert list(out) == ["held_out_instructions", *BREAKDOWNS]
    asym, sym = out["held_out_instructions_asymmetric"], out["held_out_instructions_symmetric"]
    for v, names in ((asym, ["ret", "rerank"]), (sym, ["clu", "sts"])):
        want = np.mean([scores["finetuned + instructions"][t] - scores["finetuned"][t] for t in names])
        assert v["estimate"] == pytest.approx(want) and v["tasks"] == names and v["breakdown"]
        assert v["versus"] == "finetuned" and v["low"] <= v["estimate"] <= v["high"]
    assert asym["verdict"] == "above" and sym["verdict"] == "below"  # +3 and -2 with noise of 1 over 150 items
    # the whole effect is the mean over the four tasks, and the shapes' means weigh back to it (2 tasks each)
    assert out["held_out_instructions"]["estimate"] == pytest.approx((asym["estimate"] + sym["estimate"]) / 2)
    text = "\n".join(interval_lines(out))
    assert "| held-out, asymmetric tasks (retrieval, reranking): finetuned + instructions - finetuned | +" in text
    assert "| (breakdown, vs 0) | above |" in text and "| (breakdown, vs 0) | below |" in text
    # a shape whose tasks have only fixed scores has no interval to give: left out, not an error
    only_fixed = target_intervals(per_item, scores, summary, {"held_out_symmetric": ["fixed_sym"]})
    assert only_fixed == {}
