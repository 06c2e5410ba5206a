"""WiSE-FT interpolation and the recipe's nDCG@10 evaluation."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from instructor_plugins.model import InstructorEncoder
from ray_backend.demo import choose_model
from training.recipe.quality import RetrievalTask, evaluate_rows, ndcg_at_k
from training.recipe.wise import interpolate


@pytest.fixture(scope="module")
def shifted(bundled_encoder: InstructorEncoder) -> InstructorEncoder:
    other = copy.deepcopy(bundled_encoder)
    with torch.no_grad():
        for p in other.module.parameters():
            p.add_(0.01 * torch.randn_like(p, generator=torch.Generator().manual_seed(0)))
    return other


def test_interpolation_endpoints_and_midpoint(bundled_encoder: InstructorEncoder, shifted: InstructorEncoder) -> None:
    texts = ["interpolated weights", "a second sentence"]
    np.testing.assert_allclose(
        interpolate(bundled_encoder, shifted, 0.0).encode(texts), bundled_encoder.encode(texts), atol=1e-6
    )
    np.testing.assert_allclose(
        interpolate(bundled_encoder, shifted, 1.0).encode(texts), shifted.encode(texts), atol=1e-6
    )
    mid = interpolate(bundled_encoder, shifted, 0.5).module.state_dict()
    a, b = bundled_encoder.module.state_dict(), shifted.module.state_dict()
    name = next(k for k, v in a.items() if v.is_floating_point())
    torch.testing.assert_close(mid[name], (a[name] + b[name]) / 2)
    assert bundled_encoder.module.state_dict()[name].equal(a[name])  # inputs untouched


def test_interpolation_rejects_bad_alpha(bundled_encoder: InstructorEncoder) -> None:
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        interpolate(bundled_encoder, bundled_encoder, 1.5)


def test_ndcg_perfect_and_worst() -> None:
    scores = np.array([[0.9, 0.1, 0.0], [0.0, 0.1, 0.9]])
    assert ndcg_at_k(scores, [{0}, {2}]) == pytest.approx(1.0)
    assert ndcg_at_k(scores, [{2}, {0}]) == pytest.approx(0.5)  # third of three: 1 / log2(4)


def _row(task: str, q: str, pos: str, neg: str, label: str | None = None) -> dict:
    row = {"query": ["Represent the q: ", q], "pos": ["Represent the d: ", pos], "neg": ["Represent the d: ", neg]}
    return row | {"task_name": task} | ({"label": label} if label else {})


def test_retrieval_task_relevance_by_positive_and_by_label() -> None:
    plain = RetrievalTask("t", [_row("t", "q1", "a", "b"), _row("t", "q1", "c", "b"), _row("t", "q2", "b", "a")])
    assert plain.queries == ["q1", "q2"]
    assert [{plain.documents[i] for i in rel} for rel in plain.relevant] == [{"a", "c"}, {"b"}]
    labelled = RetrievalTask("t", [_row("t", "x", "y", "z", "L"), _row("t", "y", "w", "x", "L")])
    assert {labelled.documents[i] for i in labelled.relevant[0]} == {"y", "w"}
    assert {labelled.documents[i] for i in labelled.relevant[1]} == {"w"}  # never the query itself


def test_evaluate_rows_with_and_without_instructions(bundled_encoder: InstructorEncoder) -> None:
    rows = [
        _row("defs", "dog", "a domesticated carnivorous mammal that barks", "a large body of salt water"),
        _row("defs", "sea", "a large body of salt water", "a domesticated carnivorous mammal that barks"),
    ]
    task = RetrievalTask("defs", rows)
    for instructions in (False, True):
        score = evaluate_rows(bundled_encoder, [task], instructions=instructions)["defs"]
        assert score == pytest.approx(100.0)


def test_demo_uses_the_finetuned_model_when_built(tmp_path: Path) -> None:
    assert choose_model(None, tmp_path)[0] is None
    assert "make finetune" in choose_model(None, tmp_path)[1]
    (tmp_path / "modules.json").write_text("[]")
    model, line = choose_model(None, tmp_path)
    assert model == str(tmp_path) and "instruction-finetuned" in line
    assert choose_model("some/model", tmp_path)[0] == "some/model"


@pytest.mark.parametrize(
    ("dev", "best"),
    [
        ({0.25: 40.0, 0.5: 55.0, 0.75: 55.0, 1.0: 50.0}, 0.5),  # a tie goes to the smaller alpha
        ({0.25: 40.0, 0.5: 45.0, 0.75: 50.0, 1.0: 60.0}, 1.0),
        ({0.25: 61.0, 0.5: 45.0, 0.75: 50.0, 1.0: 60.0}, 0.25),
    ],
)
def test_pick_alpha_takes_the_best_dev_score(monkeypatch: pytest.MonkeyPatch, dev: dict, best: float) -> None:
    """The selection rule alone: each alpha's model and dev score stand in (the numerics are tested above)."""
    from training.recipe import evaluation

    def scored(model: str, rows: list, instructions: bool) -> dict[str, float]:
        return {"t1": dev[float(model.split()[-1])], "t2": 0.0}

    monkeypatch.setattr(evaluation, "interpolate", lambda base, tuned, alpha: f"model at {alpha}")
    monkeypatch.setattr(evaluation, "evaluate_rows", scored)
    alpha, curve, model = evaluation.pick_alpha("base", "tuned", [], tuple(dev), instructions=True)  # type: ignore[arg-type]
    assert (alpha, model) == (best, f"model at {best}")
    assert curve == {a: s / 2 for a, s in dev.items()}  # the mean over the dev tasks
