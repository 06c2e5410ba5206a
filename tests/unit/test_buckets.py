"""Length buckets: the cuts are optimal; a bucketed forward gives the plain forward's vectors and gradients."""

from __future__ import annotations

import copy
import itertools
import random

import numpy as np
import pytest
import torch

from instructor_plugins.buckets import inference_buckets, length_buckets, padded_tokens
from instructor_plugins.corpora import chatterbot_pairs
from instructor_plugins.model import InstructorEncoder
from tests.unit.test_training_loss import _examples, _grads
from training.loss import contrastive_loss
from training.step import grad_cache_step, plain_step, triple_features


def _brute_force(lengths: list[int], max_buckets: int, overhead: int) -> float:
    """Cheapest cost over every way to cut the length-sorted rows into at most ``max_buckets`` runs."""
    order = sorted(range(len(lengths)), key=lambda r: (lengths[r], r))
    best = float("inf")
    for k in range(1, max_buckets + 1):
        for cuts in itertools.combinations(range(1, len(order)), k - 1):
            bounds = (0, *cuts, len(order))
            buckets = [order[a:b] for a, b in itertools.pairwise(bounds)]
            best = min(best, padded_tokens(lengths, buckets) + overhead * k)
    return best


@pytest.mark.parametrize("seed", range(20))
def test_buckets_are_the_cheapest_cut(seed):
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(2, 12), rng.randint(40, 128)]) for _ in range(rng.randint(1, 9))]
    max_buckets, overhead = rng.randint(1, 4), rng.choice([0, 16, 200])
    buckets = length_buckets(lengths, max_buckets, overhead)
    assert sorted(r for rows in buckets for r in rows) == list(range(len(lengths)))
    assert 1 <= len(buckets) <= max_buckets and all(buckets)
    got = padded_tokens(lengths, buckets) + overhead * len(buckets)
    assert got == _brute_force(lengths, max_buckets, overhead)


def test_buckets_split_only_when_it_pays():
    assert length_buckets([5] * 10, max_buckets=3) == [list(range(10))]
    short_long = [4] * 32 + [120] * 64
    buckets = length_buckets(short_long, max_buckets=3, overhead_tokens=1024)
    assert [len(b) for b in buckets] == [32, 64]
    assert padded_tokens(short_long, buckets) == 32 * 4 + 64 * 120
    assert length_buckets([], max_buckets=2) == []


@pytest.mark.parametrize(("max_buckets", "overhead", "match"), [(0, 10, "max_buckets"), (2, -1, "overhead")])
def test_buckets_reject_bad_arguments(max_buckets, overhead, match):
    with pytest.raises(ValueError, match=match):
        length_buckets([3, 4], max_buckets, overhead)


# ---------------------------------------------------------------------------------------------- real model
def _assert_same_grads(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    """All gradients within 1e-4 of their joint norm, each within 1e-3 of its own (+1e-6 for the ones that are
    zero in exact arithmetic, like attention key biases). Shorter padding only reorders float sums: the
    token-type embedding's gradient sums every token of the batch, so elementwise checks are too tight."""
    assert got.keys() == want.keys() and len(want) > 10
    flat_got = torch.cat([got[k].flatten() for k in want])
    flat_want = torch.cat([g.flatten() for g in want.values()])
    assert float((flat_got - flat_want).norm()) <= 1e-4 * float(flat_want.norm())
    for name, g in want.items():
        assert float((got[name] - g).norm()) <= 1e-3 * float(g.norm()) + 1e-6, name


def test_bucketed_forward_equals_plain_forward(bundled_encoder):
    features = triple_features(bundled_encoder, _examples(24, long_texts=True))
    lengths = features.attention_mask.sum(dim=1).tolist()
    assert len(length_buckets(lengths, 3)) > 1  # the batch really is split
    plain, bucketed = copy.deepcopy(bundled_encoder.module), copy.deepcopy(bundled_encoder.module)
    bucketed.max_buckets = 3
    loss_plain = plain_step(plain, features, contrastive_loss)
    loss_bucketed = plain_step(bucketed, features, contrastive_loss)
    assert loss_bucketed.item() == pytest.approx(loss_plain.item(), rel=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(bucketed(features), plain(features), rtol=1e-5, atol=1e-6)
    _assert_same_grads(_grads(bucketed), _grads(plain))


def test_bucketed_grad_cache_equals_plain_step(bundled_encoder):
    features = triple_features(bundled_encoder, _examples(24, long_texts=True))
    assert len(length_buckets(features.attention_mask[:30].sum(dim=1).tolist(), 2)) > 1  # chunk 1 is split
    plain, bucketed = copy.deepcopy(bundled_encoder.module), copy.deepcopy(bundled_encoder.module)
    bucketed.max_buckets = 2
    loss_plain = plain_step(plain, features, contrastive_loss)
    loss_cached = grad_cache_step(bucketed, features, contrastive_loss, chunk_size=30)
    assert loss_cached.item() == pytest.approx(loss_plain.item(), rel=1e-5)
    _assert_same_grads(_grads(bucketed), _grads(plain))


def test_train_config_rejects_zero_length_buckets():
    from training.config import TrainConfig

    assert TrainConfig(data="d.json", output="o").length_buckets == 3
    with pytest.raises(ValueError, match="length_buckets must be >= 1"):
        TrainConfig(data="d.json", output="o", length_buckets=0)


def mixed_length_texts() -> tuple[list[str], list[str]]:
    """Real texts of every length (chatterbot answers, one word to paragraphs, shuffled) and mixed instructions."""
    answers = sorted({p.answer for p in chatterbot_pairs()}, key=len)
    texts = answers[:: max(1, len(answers) // 90)]
    random.Random(0).shuffle(texts)
    instructions = ["Represent the answer for retrieval: ", "", "Represent the sentence: "]
    return texts, [instructions[i % 3] for i in range(len(texts))]


def assert_buckets_change_nothing(encoder: InstructorEncoder, batch_size: int = 16) -> None:
    """``encode`` in length buckets (the CPU default) gives the vectors of one padded block per batch, and really
    runs more, shorter passes (counted on the transformer)."""
    texts, instructions = mixed_length_texts()
    shapes: list[tuple[int, int]] = []
    pre = encoder.module.encoder.register_forward_pre_hook(
        lambda _m, _a, kw: shapes.append(tuple(kw["input_ids"].shape)), with_kwargs=True
    )
    try:
        encoder.max_buckets = 1
        plain = encoder.encode(texts, instructions, batch_size=batch_size)
        plain_shapes, shapes[:] = list(shapes), []
        encoder.max_buckets = None
        bucketed = encoder.encode(texts, instructions, batch_size=batch_size)
    finally:
        pre.remove()
        encoder.max_buckets = None
    assert len(plain_shapes) == -(-len(texts) // batch_size)  # one pass per batch
    assert len(shapes) > len(plain_shapes)  # split into buckets
    assert sum(r * w for r, w in shapes) < 0.8 * sum(r * w for r, w in plain_shapes)  # less padding
    np.testing.assert_allclose(bucketed, plain, atol=2e-6, rtol=0)


def test_encode_in_buckets_equals_one_padded_block(bundled_encoder):
    assert inference_buckets(bundled_encoder.device.type, "torch") == (4, 64)
    assert_buckets_change_nothing(bundled_encoder)


def test_inference_buckets_by_device_and_choice():
    assert inference_buckets("cpu", "openvino") == (4, 32)
    assert inference_buckets("cuda", "torch") == (1, 1024)  # not measured off CPU: one padded block, as before
    assert inference_buckets("cpu", "torch", max_buckets=1) == (1, 64)
    assert inference_buckets("mps", "torch", max_buckets=3) == (3, 1024)
    with pytest.raises(ValueError, match="max_buckets must be >= 1 or None"):
        inference_buckets("cpu", "torch", max_buckets=0)
