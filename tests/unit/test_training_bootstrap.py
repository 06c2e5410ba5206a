"""Paired bootstrap intervals for the recipe's held-out comparisons, and their equivalence with mteb's score."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("MTEB_CACHE", os.path.join(tempfile.gettempdir(), "mteb-cache-tests"))  # before mteb import

import numpy as np
import pytest
from scipy.stats import spearmanr

from evals.offline_data import lee_ratings
from instructor_plugins.model import InstructorEncoder
from training.recipe.bootstrap import Interval, paired_mean_difference, paired_sts_difference, sts_spearman
from training.recipe.evaluation import instruction_effect, lee_similarity
from training.recipe.quality import RetrievalTask, evaluate_per_query, evaluate_rows, ndcg_at_k, ndcg_per_query


def test_a_clear_difference_is_a_win_and_a_swapped_one_a_loss() -> None:
    rng = np.random.default_rng(1)
    b = rng.uniform(0, 100, 200)
    a = b + 5 + rng.normal(0, 3, 200)
    win = paired_mean_difference(a, b)
    assert win.verdict == "win" and win.low < win.estimate < win.high
    assert win.estimate == pytest.approx(float((a - b).mean()))
    assert paired_mean_difference(b, a).verdict == "loss"
    same = paired_mean_difference(b, b)
    assert (same.estimate, same.low, same.high, same.verdict) == (0.0, 0.0, 0.0, "within noise")


def test_interval_is_deterministic_and_narrows_with_more_items() -> None:
    rng = np.random.default_rng(2)
    diff = rng.normal(0.5, 10, 2000)
    small = paired_mean_difference(diff[:100], np.zeros(100))
    assert small == paired_mean_difference(diff[:100], np.zeros(100))  # seeded
    assert small != paired_mean_difference(diff[:100], np.zeros(100), seed=1)
    large = paired_mean_difference(diff, np.zeros(2000))
    assert (large.high - large.low) < (small.high - small.low) / 3  # ~ 1 / sqrt(20)


def test_95_percent_intervals_cover_a_true_zero_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(3)
    covered = [
        paired_mean_difference(rng.normal(0, 1, 60), rng.normal(0, 1, 60), resamples=400, seed=s).verdict
        == "within noise"
        for s in range(80)
    ]
    assert 0.85 <= sum(covered) / len(covered) <= 1.0


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="paired"):
        paired_mean_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        paired_mean_difference([1.0], [0.0])
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        paired_sts_difference(np.zeros((3, 3)), np.zeros((2, 2)), np.zeros((3, 3)))
    assert str(Interval(1.0, -0.5, 2.5, 0.95)) == "+1.00 [-0.50, +2.50]"


def test_sts_spearman_over_all_pairs_and_over_resampled_documents() -> None:
    rng = np.random.default_rng(4)
    sim, human = rng.uniform(size=(6, 6)), rng.uniform(size=(6, 6))
    i, j = np.triu_indices(6, k=1)
    assert sts_spearman(sim, human) == pytest.approx(100 * spearmanr(sim[i, j], human[i, j]).statistic)
    # a document drawn twice pairs with the others twice and never with itself
    docs = np.array([0, 0, 1, 2])
    pairs = [(0, 1), (0, 2), (0, 1), (0, 2), (1, 2)]
    a, b = zip(*pairs, strict=True)
    expected = 100 * spearmanr(sim[a, b], human[a, b]).statistic
    assert sts_spearman(sim, human, docs) == pytest.approx(expected)
    assert paired_sts_difference(sim, sim, human).estimate == 0.0


def test_per_query_ndcg_averages_to_the_task_score(bundled_encoder: InstructorEncoder) -> None:
    scores = np.random.default_rng(5).uniform(size=(7, 9))
    relevant = [{0}, {1, 2}, {8}, set(), {3}, {4, 5, 6}, {7}]
    assert ndcg_per_query(scores, relevant).mean() == pytest.approx(ndcg_at_k(scores, relevant))
    rows = [
        {
            "query": ["Represent the word: ", w],
            "pos": ["Represent the gloss: ", d],
            "neg": ["Represent the gloss: ", n],
            "task_name": "t",
        }
        for w, d, n in [
            ("dog", "a domestic animal that barks", "a large body of water"),
            ("sea", "a large body of water", "a domestic animal that barks"),
            ("red", "the colour of blood", "a large body of water"),
        ]
    ]
    task = RetrievalTask("t", rows)
    for instructions in (True, False):
        per_query = evaluate_per_query(bundled_encoder, [task], instructions=instructions)["t"]
        assert per_query.shape == (3,)
        assert evaluate_rows(bundled_encoder, [task], instructions=instructions)["t"] == pytest.approx(per_query.mean())


def test_lee_spearman_matches_mteb_score(tmp_path: Path, bundled_encoder: InstructorEncoder) -> None:
    """The bootstrap's Lee STS statistic on all documents is the score mteb reports for the same model."""
    from evals.run import RunConfig, run

    n = 12
    human = np.array(lee_ratings()[1])[:n, :n]
    for mode, instructions in (("paper", True), ("none", False)):
        summary = run(
            RunConfig(output=tmp_path / mode, tasks=["LeeNewsSTS"], instructions=mode, max_items=n, progress=False),
            encoder=bundled_encoder,
        )
        sim = lee_similarity(bundled_encoder, instructions=instructions, max_docs=n)
        assert sim.shape == (n, n)
        assert sts_spearman(sim, human) == pytest.approx(100 * summary.rows[0].score, abs=0.05)


def test_instruction_effect_per_held_out_task() -> None:
    rng = np.random.default_rng(6)
    human = np.array(lee_ratings()[1])
    noisy = human + rng.normal(0, 0.3, human.shape)
    groups = np.repeat([0, 1], 30)
    per_query = {
        "finetuned + instructions": {
            "retrieval": np.full(50, 80.0),
            "LeeNewsSTS": human,
            "clustering": groups.copy(),
        },
        "finetuned": {"retrieval": np.full(50, 70.0), "LeeNewsSTS": noisy, "clustering": rng.integers(0, 2, 60)},
    }
    per_query |= {"base + instructions": per_query["finetuned"], "base": per_query["finetuned + instructions"]}
    references = {"LeeNewsSTS": human, "clustering": groups}
    base = instruction_effect(per_query, references, model="base")
    assert base["retrieval"] == Interval(-10.0, -10.0, -10.0, 0.95)
    effect = instruction_effect(per_query, references)
    assert effect["retrieval"] == Interval(10.0, 10.0, 10.0, 0.95)
    assert effect["LeeNewsSTS"].verdict == "win" and effect["LeeNewsSTS"].estimate > 0
    # perfect clusters against random ones: V-measure 100 minus about 0
    assert effect["clustering"].verdict == "win" and effect["clustering"].estimate > 90


def test_suite_items_match_mteb_scores(tmp_path: Path, bundled_encoder: InstructorEncoder) -> None:
    """Per-item results read from mteb's predictions give back mteb's own polarity and newsgroups scores."""
    from types import SimpleNamespace

    from sklearn.metrics import v_measure_score

    from training.recipe.evaluation import _evals_suite, held_out_references

    cfg = SimpleNamespace(output=str(tmp_path), evals_in_domain=False, evals_max_items=40)
    scores, items = _evals_suite(cfg, bundled_encoder, "base", False)
    polarity = items["PangLeePolarityClassification"]
    assert polarity.shape == (20,) and polarity.mean() == pytest.approx(scores["PangLeePolarityClassification"])
    labels = held_out_references(40)["MiniNewsgroupsClustering"]
    clusters = items["MiniNewsgroupsClustering"]
    assert clusters.shape == labels.shape == (40,)
    assert 100 * v_measure_score(labels, clusters) == pytest.approx(scores["MiniNewsgroupsClustering"])


def test_resamples_without_a_defined_statistic_are_left_out() -> None:
    from training.recipe.bootstrap import paired_bootstrap

    ok = paired_bootstrap(lambda idx: 1.0 if len(set(idx.tolist())) > 1 else float("nan"), 3, resamples=200)
    assert (ok.estimate, ok.low, ok.high) == (1.0, 1.0, 1.0)  # the 3 of 27 one-unit resamples are skipped
    with pytest.raises(ValueError, match="undefined on"):
        paired_bootstrap(lambda idx: float("nan"), 3, resamples=200)


@pytest.mark.parametrize(
    "module", ["training.recipe.bootstrap", "training.recipe.quality", "training.recipe.instruction_variants"]
)
def test_doctests(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_v_measure_equals_sklearn() -> None:
    """The bootstrap's own v-measure (no per-call input checks) against sklearn's, on random and edge labelings."""
    from sklearn.metrics import v_measure_score

    from training.recipe.bootstrap import v_measure

    rng = np.random.default_rng(0)
    cases = [(rng.integers(0, k, n), rng.integers(0, c, n)) for n, k, c in [(50, 3, 4), (200, 20, 7), (7, 7, 1)]]
    cases += [
        (np.zeros(5, int), np.arange(5)),  # one label
        (np.arange(5), np.zeros(5, int)),  # one cluster
        (np.zeros(4, int), np.zeros(4, int)),  # both trivial
        (np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])),  # independent: 0
        (np.array([2, 2, 5]), np.array([9, 9, 3])),  # codes with gaps
    ]
    for labels, clusters in cases:
        assert v_measure(labels, clusters) == pytest.approx(v_measure_score(labels, clusters), abs=1e-12)


def test_clustering_part_resamples_equal_sklearn() -> None:
    from sklearn.metrics import v_measure_score

    from training.recipe.bootstrap import clustering_part

    rng = np.random.default_rng(1)
    labels = rng.choice(["a", "b", "c"], 60)
    a, b = rng.integers(0, 4, 60), rng.integers(10, 13, 60)
    part = clustering_part(a, b, labels)
    for _ in range(20):
        idx = rng.integers(0, 60, 60)
        want = 100 * (v_measure_score(labels[idx], a[idx]) - v_measure_score(labels[idx], b[idx]))
        assert part.statistic(idx) == pytest.approx(want, abs=1e-9)


def test_sts_spearman_equals_scipy() -> None:
    rng = np.random.default_rng(2)
    n = 12
    similarity = rng.normal(size=(n, n))
    human = rng.integers(0, 4, size=(n, n)).astype(float)  # many ties, as human ratings have
    for docs in (None, rng.integers(0, n, n), np.array([3, 3, 5, 7])):
        d = np.arange(n) if docs is None else docs
        i, j = np.triu_indices(len(d), k=1)
        keep = d[i] != d[j]
        a, b = np.minimum(d[i], d[j])[keep], np.maximum(d[i], d[j])[keep]
        want = 100 * spearmanr(similarity[a, b], human[a, b]).statistic
        assert sts_spearman(similarity, human, docs) == pytest.approx(want, abs=1e-9)
    assert np.isnan(sts_spearman(similarity, np.ones((n, n)), np.array([1, 2, 3])))  # constant: undefined
