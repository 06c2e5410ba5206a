"""Loss numerics: vectorised loss == loop reference; GradCache == plain; cross-device == global batch."""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import tempfile

import pytest
import torch
import torch.multiprocessing as mp

from instructor_plugins.model import InstructorEncoder
from ray_backend.net import free_port
from training.false_negatives import group_ids
from training.loss import contrastive_loss
from training.medi import MediExample
from training.step import grad_cache_step, plain_step, slice_features, split_triples, triple_features


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def reference_loss(q, p, n, temperature, bidirectional=True):
    """The paper's loss written pair by pair, as the official training code does."""
    total_qp, total_pq = 0.0, 0.0
    batch = q.shape[0]
    for i in range(batch):
        scores = [_cos(q[i], p[j]) / temperature for j in range(batch)]
        if n is not None:
            scores += [_cos(q[i], n[j]) / temperature for j in range(batch)]
        total_qp += -scores[i] + math.log(sum(math.exp(s) for s in scores))
        back = [_cos(p[i], q[j]) / temperature for j in range(batch)]
        total_pq += -back[i] + math.log(sum(math.exp(s) for s in back))
    return total_qp / batch + (total_pq / batch if bidirectional else 0.0)


@pytest.mark.parametrize("temperature", [0.01, 0.1, 1.0])
@pytest.mark.parametrize("with_neg", [True, False])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_loss_matches_loop_reference(temperature, with_neg, bidirectional):
    gen = torch.Generator().manual_seed(0)
    q, p, n = (torch.randn(5, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    got = contrastive_loss(q, p, n if with_neg else None, temperature=temperature, bidirectional=bidirectional)
    want = reference_loss(q, p, n if with_neg else None, temperature, bidirectional)
    assert got.item() == pytest.approx(want, rel=1e-5)


def reference_masked_loss(q, p, n, groups, temperature):
    """The bidirectional loss pair by pair, leaving out candidates in the target's group (ids as plain lists)."""
    qg, pg, ng = (list(map(int, g)) for g in groups)
    batch, total = q.shape[0], 0.0
    for i in range(batch):
        scores = [_cos(q[i], p[j]) / temperature for j in range(batch) if j == i or pg[j] != pg[i]]
        scores += [_cos(q[i], n[j]) / temperature for j in range(batch) if ng[j] != pg[i]]
        total += -_cos(q[i], p[i]) / temperature + math.log(sum(math.exp(s) for s in scores))
        back = [_cos(p[i], q[j]) / temperature for j in range(batch) if j == i or qg[j] != qg[i]]
        total += -_cos(p[i], q[i]) / temperature + math.log(sum(math.exp(s) for s in back))
    return total / batch


@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_masked_loss_matches_loop_reference_and_masked_rows_get_no_gradient(temperature):
    gen = torch.Generator().manual_seed(1)
    q, p, n = (torch.randn(6, 8, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3))
    # rows 0, 2, 3 share a label; row 5's negative is row 1's label; 1 and 4 stand alone
    groups = torch.tensor([[7, 1, 7, 7, 4, 5], [7, 1, 7, 7, 4, 5], [9, 8, 9, 9, 9, 1]])
    got = contrastive_loss(q, p, n, temperature=temperature, groups=groups)
    assert got.item() == pytest.approx(reference_masked_loss(q, p, n, groups, temperature), rel=1e-6)
    assert got.item() < contrastive_loss(q, p, n, temperature=temperature).item()  # fewer negatives, lower loss
    # a masked candidate gets no gradient: one row whose negative is in its positive's group
    single = contrastive_loss(
        q[1:2], p[1:2], n[5:6], temperature=temperature, groups=torch.ones((3, 1), dtype=torch.int64)
    )
    (grad,) = torch.autograd.grad(single, n)
    assert torch.count_nonzero(grad) == 0


def test_masking_without_shared_groups_is_the_plain_loss():
    gen = torch.Generator().manual_seed(2)
    q, p, n = (torch.randn(5, 8, generator=gen) for _ in range(3))
    groups = torch.arange(15).reshape(3, 5)
    assert torch.equal(contrastive_loss(q, p, n, groups=groups), contrastive_loss(q, p, n))
    assert torch.equal(
        contrastive_loss(q, p, None, groups=groups, bidirectional=False),
        contrastive_loss(q, p, None, bidirectional=False),
    )


def test_group_ids_follow_labels_then_texts():
    def ex(query, pos, neg, label=None, neg_label=None):
        return MediExample(("i: ", query), ("d: ", pos), ("d: ", neg), "t", label=label, neg_label=neg_label)

    batch = [
        ex("q1", "shared doc", "a"),
        ex("q2", "shared doc", "q1"),  # same positive text as row 0
        ex("x", "y", "z", label="sec1", neg_label="sec2"),
        ex("u", "v", "w", label="sec2", neg_label="sec1"),
        ex("s", "t", "r", label="sec1"),  # neg without a known label: its text
    ]
    qg, pg, ng = group_ids(batch).tolist()
    assert pg[0] == pg[1] and qg[0] != qg[1]
    assert qg[2] == pg[2] == pg[4] == qg[4] == ng[3] and ng[2] == pg[3]
    assert len({pg[0], pg[2], pg[3], ng[4]}) == 4
    assert group_ids(batch).equal(group_ids(list(batch)))  # stable: a hash of the content, not of the process


def test_loss_rejects_bad_arguments():
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match="temperature"):
        contrastive_loss(x, x, x, temperature=0.0)
    with pytest.raises(ValueError, match="one shape"):
        contrastive_loss(x, x[:3], x)
    with pytest.raises(ValueError, match=r"groups must be \(3, B\)"):
        contrastive_loss(x, x, x, groups=torch.zeros(3, 3, dtype=torch.int64))


def test_loss_rewards_the_right_pairing():
    q = torch.eye(4)
    assert contrastive_loss(q, q, -q).item() < 1e-3
    assert contrastive_loss(q, q.roll(1, 0), q).item() > 10


# ---------------------------------------------------------------------------------------------- real model
# At the default 0.01 these short triples give a loss of 0.0 in float32 and gradients of ~1e-7, which a wrong
# gather or chunking would match too; at 0.1 the loss is ~0.4 and the largest gradient ~0.7.
TEMPERATURE = 0.1
LOSS = functools.partial(contrastive_loss, temperature=TEMPERATURE)


def _examples(n: int, *, long_texts: bool = False) -> list[MediExample]:
    """Word -> definition triples; ``long_texts``: positives and negatives of dozens of tokens, of varied length."""
    words = ["river", "bank", "guitar", "violin", "cloud", "storm", "bread", "cheese", "train", "plane"]
    filler = " ".join(["a long and detailed description of something with many words in it"] * 4)

    def pos_neg(i: int) -> tuple[str, str]:
        if long_texts:
            return f"{words[i % len(words)]}: {filler} {i}", f"unrelated {i}: {filler[: 40 + 8 * i]}"
        return f"a thing called {words[i % len(words)]} number {i}", f"something unrelated to item {i}"

    return [
        MediExample(
            query=("Represent the word for retrieving its definition: ", words[i % len(words)]),
            pos=("Represent the definition for retrieval: ", pos_neg(i)[0]),
            neg=("Represent the definition for retrieval: ", pos_neg(i)[1]),
            task="t",
        )
        for i in range(n)
    ]


def _labelled(examples: list[MediExample]) -> list[MediExample]:
    """The examples as a same-label task: labels a, b, a, b, ... (row ``i``'s negative has the next row's label)."""
    labels = ["a", "b"]
    return [dataclasses.replace(e, label=labels[i % 2], neg_label=labels[(i + 1) % 2]) for i, e in enumerate(examples)]


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.grad.detach().clone() for k, v in module.named_parameters() if v.grad is not None}


def test_grad_cache_equals_plain_step(bundled_encoder):
    # 9 rows in chunks of 4: chunk borders cut across the query / positive / negative blocks.
    features = triple_features(bundled_encoder, _examples(3))
    plain, cached = copy.deepcopy(bundled_encoder.module), copy.deepcopy(bundled_encoder.module)
    loss_plain = plain_step(plain, features, LOSS)
    grads_plain = _grads(plain)
    loss_cached = grad_cache_step(cached, features, LOSS, chunk_size=4)
    grads_cached = _grads(cached)
    assert loss_cached.item() == pytest.approx(loss_plain.item(), rel=1e-5) and loss_plain.item() > 0.05
    assert grads_plain.keys() == grads_cached.keys() and len(grads_plain) > 10
    for name, g in grads_plain.items():
        torch.testing.assert_close(grads_cached[name], g, rtol=1e-4, atol=1e-6, msg=name)


def test_grad_cache_replays_dropout(bundled_encoder):
    """Train mode: the second pass must reuse the first pass's dropout masks, else gradients differ."""
    features = triple_features(bundled_encoder, _examples(2))
    cached = copy.deepcopy(bundled_encoder.module).train()
    reference = copy.deepcopy(cached)
    torch.manual_seed(3)
    loss_cached = grad_cache_step(cached, features, LOSS, chunk_size=3)
    torch.manual_seed(3)  # same chunks, same RNG stream, one graph: the exact gradient
    embeddings = torch.cat([reference(slice_features(features, s, s + 3)) for s in (0, 3)])
    loss_ref = LOSS(*split_triples(embeddings))
    loss_ref.backward()
    assert loss_cached.item() == pytest.approx(loss_ref.item(), rel=1e-5) and loss_ref.item() > 0.05
    with torch.no_grad():
        assert not torch.allclose(reference(features), reference(features))  # dropout is really on
    grads_cached = _grads(cached)
    for name, g in _grads(reference).items():
        torch.testing.assert_close(grads_cached[name], g, rtol=1e-4, atol=1e-6, msg=name)


# ---------------------------------------------------------------------------------------------- cross-device
def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        enc = InstructorEncoder.load(device="cpu")
        model = DistributedDataParallel(enc.module)
        local = _examples(4)[rank * 2 : (rank + 1) * 2]
        features = triple_features(enc, local)

        def loss_fn(q, p, n):
            return contrastive_loss(q, p, n, cross_device=True, temperature=TEMPERATURE)

        loss = plain_step(model, features, loss_fn)
        dist.all_reduce(loss)
        grads = _grads(enc.module)
        enc.module.zero_grad(set_to_none=True)
        # GradCache + cross-device (chunks of 5 over 6 rows) on the same weights must agree too.
        loss_gc = grad_cache_step(model, features, loss_fn, chunk_size=5)
        dist.all_reduce(loss_gc)
        grads_gc = _grads(enc.module)
        enc.module.zero_grad(set_to_none=True)
        # False-negative masking across workers: rows 0 and 2 (one on each worker) share a label.
        labelled = _labelled(_examples(4))[rank * 2 : (rank + 1) * 2]

        def masked_fn(q, p, n):
            return contrastive_loss(q, p, n, cross_device=True, temperature=TEMPERATURE, groups=group_ids(labelled))

        loss_masked = plain_step(model, triple_features(enc, labelled), masked_fn)
        dist.all_reduce(loss_masked)
        if rank == 0:
            result = {
                "loss": loss / world,
                "grads": grads,
                "loss_gc": loss_gc / world,
                "grads_gc": grads_gc,
                "loss_masked": loss_masked / world,
                "grads_masked": _grads(enc.module),
            }
            torch.save(result, os.path.join(out_dir, "dist.pt"))
    finally:
        dist.destroy_process_group()


def test_cross_device_negatives_equal_single_process_global_batch(bundled_encoder):
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_worker, args=(2, free_port(), out_dir), nprocs=2, join=True)
        got = torch.load(os.path.join(out_dir, "dist.pt"))
    module = copy.deepcopy(bundled_encoder.module)
    features = triple_features(bundled_encoder, _examples(4))
    want = plain_step(module, features, LOSS)
    want_grads = _grads(module)
    module.zero_grad(set_to_none=True)
    labelled = _labelled(_examples(4))
    want_masked = plain_step(
        module,
        triple_features(bundled_encoder, labelled),
        functools.partial(contrastive_loss, temperature=TEMPERATURE, groups=group_ids(labelled)),
    )
    assert 0.05 < want_masked.item() < want.item()  # the label mates really were masked
    cases = [("loss", "grads", want, want_grads), ("loss_gc", "grads_gc", want, want_grads)]
    cases.append(("loss_masked", "grads_masked", want_masked, _grads(module)))
    for loss_key, grad_key, loss, grads in cases:
        assert got[loss_key].item() == pytest.approx(loss.item(), rel=1e-5)
        assert got[grad_key].keys() == grads.keys()
        for name, g in grads.items():
            torch.testing.assert_close(got[grad_key][name], g, rtol=1e-4, atol=1e-6, msg=name)
