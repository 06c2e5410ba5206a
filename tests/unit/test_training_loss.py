"""Loss numerics: vectorised loss == loop reference; GradCache == plain; cross-device == global batch."""

from __future__ import annotations

import copy
import math
import os
import tempfile

import pytest
import torch
import torch.multiprocessing as mp

from instructor_plugins.model import InstructorEncoder
from ray_backend.net import free_port
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


def test_loss_rejects_bad_arguments():
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match="temperature"):
        contrastive_loss(x, x, x, temperature=0.0)
    with pytest.raises(ValueError, match="one shape"):
        contrastive_loss(x, x[:3], x)


def test_loss_rewards_the_right_pairing():
    q = torch.eye(4)
    assert contrastive_loss(q, q, -q).item() < 1e-3
    assert contrastive_loss(q, q.roll(1, 0), q).item() > 10


# ---------------------------------------------------------------------------------------------- real model
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


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.grad.detach().clone() for k, v in module.named_parameters() if v.grad is not None}


def test_grad_cache_equals_plain_step(bundled_encoder):
    # 9 rows in chunks of 4: chunk borders cut across the query / positive / negative blocks.
    features = triple_features(bundled_encoder, _examples(3))
    plain, cached = copy.deepcopy(bundled_encoder.module), copy.deepcopy(bundled_encoder.module)
    loss_plain = plain_step(plain, features, contrastive_loss)
    grads_plain = _grads(plain)
    loss_cached = grad_cache_step(cached, features, contrastive_loss, chunk_size=4)
    grads_cached = _grads(cached)
    assert loss_cached.item() == pytest.approx(loss_plain.item(), rel=1e-5)
    assert grads_plain.keys() == grads_cached.keys() and len(grads_plain) > 10
    for name, g in grads_plain.items():
        torch.testing.assert_close(grads_cached[name], g, rtol=1e-4, atol=1e-6, msg=name)


def test_grad_cache_replays_dropout(bundled_encoder):
    """Train mode: the second pass must reuse the first pass's dropout masks, else gradients differ."""
    features = triple_features(bundled_encoder, _examples(2))
    cached = copy.deepcopy(bundled_encoder.module).train()
    reference = copy.deepcopy(cached)
    torch.manual_seed(3)
    loss_cached = grad_cache_step(cached, features, contrastive_loss, chunk_size=3)
    torch.manual_seed(3)  # same chunks, same RNG stream, one graph: the exact gradient
    embeddings = torch.cat([reference(slice_features(features, s, s + 3)) for s in (0, 3)])
    loss_ref = contrastive_loss(*split_triples(embeddings))
    loss_ref.backward()
    assert loss_cached.item() == pytest.approx(loss_ref.item(), rel=1e-5)
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
            return contrastive_loss(q, p, n, cross_device=True)

        loss = plain_step(model, features, loss_fn)
        dist.all_reduce(loss)
        grads = _grads(enc.module)
        enc.module.zero_grad(set_to_none=True)
        # GradCache + cross-device (chunks of 5 over 6 rows) on the same weights must agree too.
        loss_gc = grad_cache_step(model, features, loss_fn, chunk_size=5)
        dist.all_reduce(loss_gc)
        if rank == 0:
            result = {"loss": loss / world, "grads": grads, "loss_gc": loss_gc / world, "grads_gc": _grads(enc.module)}
            torch.save(result, os.path.join(out_dir, "dist.pt"))
    finally:
        dist.destroy_process_group()


def test_cross_device_negatives_equal_single_process_global_batch(bundled_encoder):
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_worker, args=(2, free_port(), out_dir), nprocs=2, join=True)
        got = torch.load(os.path.join(out_dir, "dist.pt"))
    module = copy.deepcopy(bundled_encoder.module)
    features = triple_features(bundled_encoder, _examples(4))
    want = plain_step(module, features, contrastive_loss)
    want_grads = _grads(module)
    for loss_key, grad_key in (("loss", "grads"), ("loss_gc", "grads_gc")):
        assert got[loss_key].item() == pytest.approx(want.item(), rel=1e-5)
        assert got[grad_key].keys() == want_grads.keys()
        for name, g in want_grads.items():
            torch.testing.assert_close(got[grad_key][name], g, rtol=1e-4, atol=1e-6, msg=name)
