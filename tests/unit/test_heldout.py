"""The held-out benchmark: whole sources kept out of training, its task builders and its per-item scorers."""

from __future__ import annotations

import numpy as np
import pytest

from training.recipe import heldout
from training.recipe.heldout import (
    HELDOUT_SOURCES,
    BenchmarkTask,
    HeldOutSourceError,
    check_sources,
    classification_task,
    clustering_task,
    pair_task,
    reranking_task,
    retrieval_task,
    score_task,
)
from training.recipe.sources import CATEGORIES, SOURCES, Pair, SourceUnavailable, get_source


@pytest.mark.parametrize("source", HELDOUT_SOURCES)
def test_a_held_out_source_is_refused_before_anything_runs(source: str) -> None:
    from training.recipe import RecipeConfig
    from training.recipe.corpus import CorpusConfig

    with pytest.raises(HeldOutSourceError, match=f"'{source}'"):
        check_sources(("wordnet", source))
    with pytest.raises(HeldOutSourceError):
        CorpusConfig("x", sources=("wordnet", source))
    with pytest.raises(HeldOutSourceError):
        RecipeConfig("x", sources=("wordnet", source))


def test_the_recipe_cli_exits_2_on_a_held_out_source(capsys: pytest.CaptureFixture) -> None:
    from training.recipe.pipeline import main

    with pytest.raises(SystemExit) as exc:
        main(["--output", "unused", "--sources", "wordnet", "vimhelp"])
    assert exc.value.code == 2
    assert "held out" in capsys.readouterr().err


def test_no_training_source_reads_a_held_out_source_s_packages() -> None:
    assert not set(SOURCES) & set(HELDOUT_SOURCES)
    held = {p for s in HELDOUT_SOURCES for p in (*get_source(s).debian_packages, *get_source(s).python_packages)}
    assert held >= {"dict-foldoc", "dict-jargon", "manpages", "vim-runtime", "gensim"}
    for name in SOURCES:
        source = get_source(name)
        assert not held & {*source.debian_packages, *source.python_packages}, name


@pytest.mark.slow
def test_no_held_out_sentence_is_in_a_training_pair() -> None:
    """On the installed text: a held-out text of 8+ words never appears in any training source's pairs.

    Shorter ones may: a computing term can be an English word or a WordNet phrase ("American Standard Code for
    Information Interchange"); that is a shared name, not the benchmark's text.
    """
    tasks, skipped = heldout.build_benchmark(items=300)
    if not tasks:
        pytest.skip(f"no held-out source installed: {skipped}")
    held = {t for task in tasks for t in (*task.queries, *task.documents, *task.texts) if len(t.split()) >= 8}
    leaked = {}
    for name in SOURCES:
        try:
            built = get_source(name).tasks()
        except SourceUnavailable:
            continue
        for tp in built:
            for p in tp.pairs:
                for text in (p.query, p.pos):
                    if text in held:
                        leaked[text[:60]] = tp.spec.name
    assert not leaked


def _pairs(n: int) -> list[Pair]:
    return [Pair(f"q{i}", f"d{i}", f"k{i}") for i in range(n)]


def test_retrieval_task_has_its_positives_and_as_many_distractors() -> None:
    task = retrieval_task("t", "s", _pairs(10), ("Q: ", "D: "), items=3)
    assert len(task.queries) == 3 and len(task.documents) == 6
    for q, rel in zip(task.queries, task.relevant, strict=True):
        assert [task.documents[i] for i in rel] == ["d" + q[1:]]
    assert (task.query_instruction, task.document_instruction, task.category, task.items) == (
        "Q: ",
        "D: ",
        "retrieval",
        3,
    )


def test_reranking_task_candidates_hold_the_positive() -> None:
    pairs = [Pair(f"term{i}", f"definition of term{i} about topic{i % 3}", f"k{i}") for i in range(40)]
    task = reranking_task("r", "s", pairs, ("Q: ", "D: "), items=5, skip=10)
    assert task.items == 5 and all(len(c) == heldout.CANDIDATES for c in task.candidates)
    for q, rel, cands in zip(task.queries, task.relevant, task.candidates, strict=True):
        (pos,) = rel
        assert pos in cands and task.documents[pos] == f"definition of {q} about topic{int(q[4:]) % 3}"
    chosen = set(task.queries)
    first = {p.query for p in heldout._order(pairs)[:10]}
    assert not chosen & first  # skip leaves out the first pairs (the retrieval task's)


ROWS = [(f"k{i}", f"text {i}", "abc"[i % 3]) for i in range(30)] + [("x", "lonely", "z")]


def test_classification_is_balanced_and_split_in_alternation() -> None:
    task = classification_task("c", "s", ROWS, "I: ", labels=["a", "b"], items=4)
    assert task.labels == ["a", "b"] * 4 and task.train == [True, False] * 4
    assert task.items == 4
    prefix = clustering_task("k", "s", ROWS, "I: ", labels=["a", "b"], items=4)
    assert prefix.texts == task.texts[:4]  # the same seed: the clustered texts are embedded already
    assert list(prefix.reference()) == [0, 1, 0, 1]


def test_pair_task_positives_share_a_label_and_negatives_do_not() -> None:
    task = pair_task("p", "s", ROWS, "I: ", items=6)
    positives = [(a, b) for a, b, same in task.pairs if same]
    negatives = [(a, b) for a, b, same in task.pairs if not same]
    assert len(positives) == 6 and 0 < len(negatives) <= 6 and task.items == 6
    assert all(task.labels[a] == task.labels[b] for a, b in positives)
    assert all(task.labels[a] != task.labels[b] for a, b in negatives)
    used = [i for pair in positives for i in pair]
    assert len(used) == len(set(used)) == len(task.texts)


class Lookup:
    """encode() from a table of fixed unit vectors (scorer arithmetic, not model numerics)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = {k: np.array(v) / np.linalg.norm(v) for k, v in table.items()}
        self.instructions: list[str] = []

    def __call__(self, texts: list[str], instruction: str) -> np.ndarray:
        self.instructions.append(instruction)
        return np.stack([self.table[t] for t in texts])


def test_scores_of_each_category() -> None:
    enc = Lookup({"q0": [1, 0], "q1": [0, 1], "d0": [1, 0.1], "d1": [1, 0.2], "d2": [0.1, 1]})
    ret = BenchmarkTask("r", "s", "retrieval", "Q: ", "D: ", queries=["q0", "q1"], documents=["d0", "d1", "d2"],
                        relevant=[{0}, {1}])  # fmt: skip
    items, score = score_task(ret, enc, instructions=True)
    assert enc.instructions == ["Q: ", "D: "]
    # q1's positive d1 is second behind d2: 1 / log2(3)
    assert items.round(2).tolist() == [100.0, 63.09] and score == pytest.approx(81.55, abs=0.01)
    rer = BenchmarkTask("k", "s", "reranking", "Q: ", "D: ", queries=["q0", "q1"], documents=["d0", "d1", "d2"],
                        relevant=[{1}, {2}], candidates=[[0, 1, 2], [2, 0, 1]])  # fmt: skip
    items, _ = score_task(rer, enc, instructions=False)
    assert enc.instructions[-2:] == ["", ""]
    assert items.tolist() == [50.0, 100.0]  # q0's positive d1 is second behind d0
    cls = BenchmarkTask("c", "s", "classification", "I: ", "I: ", texts=["d0", "q0", "d2", "q1", "d1"],
                        labels=["x", "x", "y", "y", "y"], train=[True, False, True, False, False])  # fmt: skip
    items, score = score_task(cls, enc, instructions=True)
    assert items.tolist() == [100.0, 100.0, 0.0] and score == pytest.approx(200 / 3)
    pair = BenchmarkTask("p", "s", "pair_classification", "I: ", "I: ", texts=["q0", "d0", "q1", "d2"],
                         labels=["x", "x", "y", "y"], pairs=[(0, 1, True), (2, 3, True), (0, 3, False)])  # fmt: skip
    items, score = score_task(pair, enc, instructions=True)
    assert items.tolist() == [100.0, 100.0] and score == 100.0
    clu = BenchmarkTask("u", "s", "clustering", "I: ", "I: ", texts=["q0", "d0", "q1", "d2"],
                        labels=["x", "x", "y", "y"])  # fmt: skip
    ids, score = score_task(clu, enc, instructions=True)
    assert ids[0] == ids[1] != ids[2] == ids[3] and score == pytest.approx(100.0)


def test_the_installed_benchmark_meets_its_shape() -> None:
    tasks, skipped = heldout.build_benchmark()
    if skipped:
        pytest.skip(f"held-out sources missing: {skipped}")
    names = [t.name for t in tasks] + list(heldout.HELDOUT_EVAL_TASKS)
    assert len(names) >= 8 and len(set(names)) == len(names)
    assert len({t.source for t in tasks} | {"gensim"}) >= 4
    assert len({t.category for t in tasks} | {"sts"}) >= 4 and {t.category for t in tasks} <= set(CATEGORIES)
    assert all(t.items == heldout.ITEMS for t in tasks), {t.name: t.items for t in tasks}


def test_real_model_scores_a_small_benchmark() -> None:
    """The bundled encoder on 20 items per task: per-item results line up and the tasks are far from chance."""
    from instructor_plugins.model import InstructorEncoder

    tasks, skipped = heldout.build_benchmark(items=20)
    if not tasks:
        pytest.skip(f"no held-out source installed: {skipped}")
    encoder = InstructorEncoder.load(None, device="cpu")
    encoder.max_seq_length = 64
    per_item, scores = heldout.evaluate_benchmark(encoder, tasks, instructions=True)
    for t in tasks:
        assert len(per_item[t.name]) == (len(t.texts) if t.category == "clustering" else t.items)
        assert np.isfinite(scores[t.name])
    retrieval = [scores[t.name] for t in tasks if t.category == "retrieval"]
    assert min(retrieval) > 30  # random ranking of 40 documents gives nDCG@10 near 10
    _, plain = heldout.evaluate_benchmark(encoder, tasks, instructions=False)
    assert plain != scores


def test_held_out_versus_base_picks_the_base_s_better_setting_per_task() -> None:
    from training.recipe.evaluation import held_out_versus_base

    per_item = {
        "base": {"a": np.array([50.0, 50.0, 50.0]), "b": np.array([10.0, 10.0, 10.0])},
        "base + instructions": {"a": np.array([40.0, 40.0, 40.0]), "b": np.array([30.0, 30.0, 30.0])},
        "finetuned + instructions": {"a": np.array([60.0, 60.0, 60.0]), "b": np.array([20.0, 20.0, 20.0])},
    }
    scores = {s: {t: float(v.mean()) for t, v in tasks.items()} for s, tasks in per_item.items()}
    out = held_out_versus_base(per_item, scores, {})
    assert out["a"][0] == "base" and out["a"][1].estimate == pytest.approx(10.0) and out["a"][1].verdict == "win"
    assert out["b"][0] == "base + instructions" and out["b"][1].estimate == pytest.approx(-10.0)
    assert out["b"][1].verdict == "loss"
    assert held_out_versus_base({"base": {}}, {}, {}) == {}
