"""Checkpoint files, the learning-rate schedule and the probe loss, without Ray."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from instructor_plugins.model import InstructorEncoder
from training.config import TrainConfig
from training.state import OPTIMIZER_FILE, TrainState, export_model, read_optimizer_state, save_checkpoint
from training.worker import build_optimizer, lr_factor, step_seed


def test_lr_warmup_then_linear_decay():
    assert [round(lr_factor(s, 2, 6), 3) for s in range(6)] == [0.333, 0.667, 1.0, 0.75, 0.5, 0.25]
    assert [round(lr_factor(s, 0, 3), 3) for s in range(3)] == [1.0, 0.667, 0.333]
    assert lr_factor(0, 0, 1) == 1.0


def test_step_seed_is_stable_and_distinct():
    assert step_seed(0, 5, 1) == step_seed(0, 5, 1)
    assert len({step_seed(0, s, r) for s in range(50) for r in range(4)}) == 200


def test_checkpoint_round_trip(tmp_path: Path, bundled_encoder):
    encoder = copy.copy(bundled_encoder)
    encoder.module = copy.deepcopy(bundled_encoder.module)
    with torch.no_grad():
        next(encoder.module.parameters()).add_(0.01)  # a "trained" model differs from the bundled one
    cfg = TrainConfig(data="d.json", output=str(tmp_path / "out"), num_workers=1, batch_size=4)
    optimizer = build_optimizer(encoder.module, cfg)
    encoder.module(encoder.tokenize(["a"], [""])).sum().backward()
    optimizer.step()
    state = TrainState(
        next_step=3, history=[{"step": i, "loss": 1.0 / (i + 1)} for i in range(3)], config=cfg.to_dict()
    )
    ckpt = save_checkpoint(tmp_path / "ckpt", encoder, optimizer, state)

    assert TrainState.read(ckpt) == state
    saved = read_optimizer_state(ckpt)
    assert saved is not None and len(saved["state"]) == len(optimizer.state_dict()["state"])
    fresh = build_optimizer(encoder.module, cfg)
    fresh.load_state_dict(saved)
    out = export_model(ckpt, tmp_path / "final")
    assert not (out / OPTIMIZER_FILE).exists() and (out / "modules.json").exists()
    loaded = InstructorEncoder.load(out, device="cpu")
    texts, instruction = ["river bank", "a guitar"], "Represent the word: "
    np.testing.assert_allclose(loaded.encode(texts, instruction), encoder.encode(texts, instruction), atol=1e-6)
    assert not np.allclose(loaded.encode(texts, instruction), bundled_encoder.encode(texts, instruction), atol=1e-4)
    assert read_optimizer_state(tmp_path) is None


def test_loss_curve_png(tmp_path: Path):
    from training.plots import plot_loss_curve

    history = [{"step": i, "loss": 3.0 - 0.1 * i, "task": "ab"[i % 2]} for i in range(10)]
    path = plot_loss_curve(history, tmp_path / "curve.png", probe_loss={"0": 3.0, "10": 2.0})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="empty"):
        plot_loss_curve([], tmp_path / "x.png")


def _tiny_t5_instructor(root: Path) -> Path:
    """A random 2-layer T5 encoder + Dense(bias=False) in the INSTRUCTOR layout (no T5 weights install offline)."""
    from transformers import AutoTokenizer, T5Config, T5EncoderModel

    from instructor_plugins.checkpoint import CheckpointSpec, DenseSpec, bundled_model_dir, write_checkpoint_files

    tokenizer = AutoTokenizer.from_pretrained(bundled_model_dir())
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
    T5EncoderModel(config).save_pretrained(root)
    tokenizer.save_pretrained(root)
    dense = DenseSpec(in_features=32, out_features=16)
    weight = {"weight": torch.randn(16, 32) * 0.1}
    write_checkpoint_files(root, CheckpointSpec(root=root, dense=(dense,), max_seq_length=32), [weight])
    return root


@pytest.mark.parametrize("arch", ["bert", "t5"])
def test_every_parameter_gets_a_gradient(tmp_path: Path, arch: str):
    """DDP runs without find_unused_parameters: a training step must reach every trainable parameter."""
    from training.loss import contrastive_loss
    from training.medi import MediExample
    from training.step import plain_step, triple_features

    path = None if arch == "bert" else _tiny_t5_instructor(tmp_path / "t5")
    encoder = InstructorEncoder.load(path, device="cpu")
    encoder.module.train()
    rows = [MediExample(("Represent the word: ", w), ("", f"about {w}"), ("", "other"), "t") for w in ("a", "b")]
    plain_step(encoder.module, triple_features(encoder, rows), contrastive_loss)
    missing = [n for n, p in encoder.module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    if arch == "t5":
        assert len(encoder.module.dense) == 1 and encoder.dim == 16
