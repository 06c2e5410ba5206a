"""Similarity distillation: the loss against a loop reference, its invariances, the teacher, and the step."""

from __future__ import annotations

import contextlib
import copy
import functools
import math

import pytest
import torch

from training.config import TrainConfig
from training.loss import contrastive_loss
from training.recipe import RecipeConfig
from training.regularizers.distill import (
    Distillation,
    DistilledLoss,
    document_texts,
    similarity_distillation,
    teacher_embeddings,
)
from training.step import grad_cache_step, plain_step, triple_features

from .test_training_loss import _examples, _grads


def _reference(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> float:
    """Row by row: KL between the softmax neighbour distributions over the other rows."""

    def dist(x: torch.Tensor, i: int) -> list[float]:
        cos = [float(torch.dot(x[i], x[j]) / (x[i].norm() * x[j].norm())) / temperature for j in range(len(x))]
        others = [c for j, c in enumerate(cos) if j != i]
        top = max(others)
        z = sum(math.exp(c - top) for c in others)
        return [math.exp(c - top) / z for c in others]

    total = 0.0
    for i in range(len(student)):
        p_t, p_s = dist(teacher, i), dist(student, i)
        total += sum(a * math.log(a / b) for a, b in zip(p_t, p_s, strict=True))
    return total / len(student)


@pytest.mark.parametrize("temperature", [0.05, 0.5])
def test_matches_loop_reference(temperature):
    gen = torch.Generator().manual_seed(0)
    student, teacher = (torch.randn(6, 8, generator=gen, dtype=torch.float64) for _ in range(2))
    got = similarity_distillation(student, teacher, temperature=temperature)
    assert got.item() == pytest.approx(_reference(student, teacher, temperature), rel=1e-5)
    assert got.item() > 0.01


def test_only_relative_geometry_counts():
    gen = torch.Generator().manual_seed(1)
    teacher = torch.randn(8, 16, generator=gen)
    rotation = torch.linalg.qr(torch.randn(16, 16, generator=gen))[0]
    assert similarity_distillation(teacher @ rotation * 3.0, teacher, temperature=0.05).item() < 1e-5
    swapped = teacher.clone()
    swapped[[0, 1]] = swapped[[1, 0]]  # two texts trade places: every row's neighbours change
    assert similarity_distillation(swapped, teacher, temperature=0.05).item() > 0.1


def test_gradient_flows_to_the_student_only():
    gen = torch.Generator().manual_seed(2)
    student = torch.randn(5, 8, generator=gen, requires_grad=True)
    teacher = torch.randn(5, 8, generator=gen, requires_grad=True)
    similarity_distillation(student, teacher, temperature=0.1).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_rejects_bad_arguments():
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match="temperature"):
        similarity_distillation(x, x, temperature=0.0)
    with pytest.raises(ValueError, match="one shape"):
        similarity_distillation(x, x[:3], temperature=0.1)
    with pytest.raises(ValueError, match="at least 3 rows"):
        similarity_distillation(x[:2], x[:2], temperature=0.1)
    with pytest.raises(ValueError, match="weight"):
        DistilledLoss(contrastive_loss, x, weight=-1.0, temperature=0.1)
    with pytest.raises(ValueError, match="distill_weight"):
        TrainConfig(data="d", output="o", distill_weight=-0.5)
    with pytest.raises(ValueError, match="2 triples per worker"):
        TrainConfig(data="d", output="o", batch_size=2, num_workers=2, distill_weight=1.0)
    assert TrainConfig(data="d", output="o", batch_size=2, num_workers=2).distill_weight == 0.0  # off: fine


def test_teacher_embeds_plain_texts_in_eval_mode(bundled_encoder):
    examples = _examples(3)
    texts = document_texts(examples)
    assert texts == [e.pos[1] for e in examples] + [e.neg[1] for e in examples]
    teacher = copy.deepcopy(bundled_encoder)
    teacher.module.train()
    got = teacher_embeddings(teacher, texts)
    assert teacher.module.training  # mode restored
    want = bundled_encoder.encode(texts, instruction="")
    torch.testing.assert_close(got, torch.as_tensor(want), rtol=1e-5, atol=1e-6)


def _distilled(encoder, examples, weight):
    targets = teacher_embeddings(encoder, document_texts(examples))
    loss_fn = functools.partial(contrastive_loss, temperature=0.05)
    return DistilledLoss(loss_fn, targets, weight=weight, temperature=0.05)


def test_distilled_step_grad_cache_equals_plain(bundled_encoder):
    examples = _examples(4)
    features = triple_features(bundled_encoder, examples)
    plain, cached = copy.deepcopy(bundled_encoder.module), copy.deepcopy(bundled_encoder.module)
    loss_fn = _distilled(bundled_encoder, examples, 1.0)
    loss_plain = plain_step(plain, features, loss_fn)
    parts = dict(loss_fn.last_parts)
    assert loss_plain.item() == pytest.approx(parts["contrastive"] + parts["distill"], rel=1e-5)
    assert parts["distill"] > 0  # the instructions move the documents' neighbourhoods away from the plain texts'
    loss_cached = grad_cache_step(cached, features, loss_fn, chunk_size=5)
    assert loss_cached.item() == pytest.approx(loss_plain.item(), rel=1e-5)
    grads_plain, grads_cached = _grads(plain), _grads(cached)
    for name, g in grads_plain.items():
        torch.testing.assert_close(grads_cached[name], g, rtol=1e-4, atol=1e-6, msg=name)


def test_distillation_term_changes_the_gradient_and_weight_zero_is_plain(bundled_encoder):
    examples = _examples(4)
    features = triple_features(bundled_encoder, examples)
    runs = {}
    for name, loss_fn in (
        ("contrastive", functools.partial(contrastive_loss, temperature=0.05)),
        ("weight 0", _distilled(bundled_encoder, examples, 0.0)),
        ("weight 1", _distilled(bundled_encoder, examples, 1.0)),
    ):
        module = copy.deepcopy(bundled_encoder.module)
        plain_step(module, features, loss_fn)
        runs[name] = torch.cat([g.flatten() for g in _grads(module).values()])
    torch.testing.assert_close(runs["weight 0"], runs["contrastive"])
    assert (runs["weight 1"] - runs["contrastive"]).norm() > 1e-3 * runs["contrastive"].norm()


def test_recipe_passes_the_weight_to_both_runs(tmp_path):
    assert RecipeConfig(output=str(tmp_path)).distill_weight == 1.0  # on by default in the recipe
    cfg = RecipeConfig(output=str(tmp_path), distill_weight=0.5)
    for no_instructions in (False, True):
        assert cfg.train_config(no_instructions=no_instructions).distill_weight == 0.5
    with pytest.raises(ValueError, match="2 triples per worker"):  # checked before the corpus is built
        RecipeConfig(output=str(tmp_path), batch_size=2, num_workers=2)


def _anchored(tmp_path, anchor: str, **kw) -> TrainConfig:
    return TrainConfig(
        data=str(tmp_path),
        output=str(tmp_path / "out"),
        distill_weight=0.5,
        distill_anchor=anchor,  # type: ignore[arg-type]
        temperature=0.05,
        **kw,
    )


@pytest.mark.parametrize("anchor", ["instructed", "plain"])
def test_the_anchor_is_the_geometry_held_to_the_base(bundled_encoder, tmp_path, anchor):
    """At the base weights (eval mode) the plain documents are their own teacher: the plain term is 0; the
    instructed one is not (the instruction moves the neighbourhoods)."""
    examples = _examples(4)
    distill = Distillation(_anchored(tmp_path, anchor), bundled_encoder, [])
    module = copy.deepcopy(bundled_encoder.module).eval()
    side = distill.side_terms(module, bundled_encoder, examples, 0, 0, 1, contextlib.nullcontext)
    loss_fn = distill.batch_loss(functools.partial(contrastive_loss, temperature=0.05), examples)
    plain_step(module, triple_features(bundled_encoder, examples), loss_fn)
    term = distill.record()["distill_loss"]
    if anchor == "plain":
        assert distill.plain and term < 1e-6 and side == pytest.approx(0.5 * term)
    else:
        assert not distill.plain and term > 1e-3 and side == 0.0


def test_the_plain_anchor_step_equals_its_loss_by_hand(bundled_encoder, tmp_path):
    """The plain anchor's gradients: contrastive loss on the instructed triples + weight x the term on the plain
    documents, against the base's plain embeddings; checked away from the base (perturbed weights)."""
    examples = _examples(4)
    start = copy.deepcopy(bundled_encoder.module).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in start.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))
    stepped, by_hand = copy.deepcopy(start), copy.deepcopy(start)
    distill = Distillation(_anchored(tmp_path, "plain"), bundled_encoder, [])
    side = distill.side_terms(stepped, bundled_encoder, examples, 0, 0, 1, contextlib.nullcontext)
    contrastive = functools.partial(contrastive_loss, temperature=0.05)
    loss = plain_step(stepped, triple_features(bundled_encoder, examples), distill.batch_loss(contrastive, examples))

    docs = document_texts(examples)
    targets = teacher_embeddings(bundled_encoder, docs)
    term = similarity_distillation(by_hand(bundled_encoder.tokenize(docs, [""] * len(docs))), targets, temperature=0.05)
    assert term.item() > 1e-3  # the perturbed model is no longer its own teacher
    (0.5 * term).backward()
    want_loss = plain_step(by_hand, triple_features(bundled_encoder, examples), contrastive)
    assert side == pytest.approx(0.5 * term.item(), rel=1e-5)
    assert loss.item() == pytest.approx(want_loss.item(), rel=1e-5)
    grads, want = _grads(stepped), _grads(by_hand)
    for name, g in want.items():
        torch.testing.assert_close(grads[name], g, rtol=1e-4, atol=1e-6, msg=name)


def test_the_ablation_runs_the_same_way_whatever_the_anchor(bundled_encoder, tmp_path):
    assert not Distillation(_anchored(tmp_path, "plain", no_instructions=True), bundled_encoder, []).plain
    assert Distillation(_anchored(tmp_path, "plain"), bundled_encoder, []).plain


def test_anchor_settings(tmp_path):
    assert TrainConfig(data="d", output="o").distill_anchor == "instructed"
    with pytest.raises(ValueError, match="needs distill_weight > 0"):
        TrainConfig(data="d", output="o", distill_anchor="plain")
    with pytest.raises(ValueError, match="'instructed' or 'plain'"):
        TrainConfig(data="d", output="o", distill_weight=1.0, distill_anchor="teacher")  # type: ignore[arg-type]
    cfg = RecipeConfig(output=str(tmp_path), distill_anchor="plain")
    for no_instructions in (False, True):
        assert cfg.train_config(no_instructions=no_instructions).distill_anchor == "plain"
