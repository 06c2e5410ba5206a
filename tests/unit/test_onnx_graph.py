"""The export without softmax's NaN guard (instructor_plugins.onnx_graph): the same vectors to the bit, and no NaN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instructor_plugins import runtimes
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.onnx_graph import drop_nan_guards
from tests.exported import INSTRUCTIONS, every_length_texts

onnx = pytest.importorskip("onnx", reason="backend='onnx' needs the onnx extra")
ort = pytest.importorskip("onnxruntime", reason="backend='onnx' needs the onnx extra")


@pytest.fixture(scope="module")
def exports(bundled_encoder: InstructorEncoder, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The bundled model exported as torch writes it, and as :func:`runtimes.export_onnx` keeps it."""
    sample = bundled_encoder.tokenize(["a sample"], [""])
    kept = runtimes.export_onnx(
        bundled_encoder.module.encoder, (sample.input_ids, sample.attention_mask), tmp_path_factory.mktemp("kept") / "m"
    )
    raw = runtimes.export_onnx(
        bundled_encoder.module.encoder,
        (sample.input_ids, sample.attention_mask),
        tmp_path_factory.mktemp("raw") / "m",
        keep_nan_guards=True,
    )
    return raw, kept


def _ops(path: Path, op: str) -> int:
    return sum(node.op_type == op for node in onnx.load(str(path)).graph.node)


def _session(path: Path) -> object:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_the_export_has_no_guard_and_gives_the_same_token_embeddings_to_the_bit(
    exports: tuple[Path, Path], bundled_encoder: InstructorEncoder
) -> None:
    raw, kept = exports
    assert (_ops(raw, "IsNaN"), _ops(kept, "IsNaN")) == (6, 0)  # one guard per attention layer, all gone
    assert _ops(raw, "Where") - _ops(kept, "Where") == 6
    texts = every_length_texts()
    before, after = _session(raw), _session(kept)
    for start in range(0, len(texts), 24):  # padded batches of every length, mixed instructions
        chunk = texts[start : start + 24]
        batch = bundled_encoder.tokenize(chunk, [INSTRUCTIONS[i % 3] for i in range(len(chunk))])
        feed = {"input_ids": batch.input_ids.numpy(), "attention_mask": batch.attention_mask.numpy()}
        want, got = before.run(None, feed)[0], after.run(None, feed)[0]  # type: ignore[attr-defined]
        assert np.array_equal(want, got)


def test_a_row_with_every_key_masked_stays_finite(
    exports: tuple[Path, Path], bundled_encoder: InstructorEncoder
) -> None:
    """The guard's reason: a row whose mask is all 0 is NaN without it unless the mask is finite (ours is)."""
    raw, kept = exports
    batch = bundled_encoder.tokenize(["a text", "another text"], ["", ""])
    mask = batch.attention_mask.numpy().copy()
    mask[1] = 0
    feed = {"input_ids": batch.input_ids.numpy(), "attention_mask": mask}
    want, got = _session(raw).run(None, feed)[0], _session(kept).run(None, feed)[0]  # type: ignore[attr-defined]
    assert np.isfinite(got).all() and np.isfinite(want).all()  # the raw export: finite thanks to its guard
    assert np.array_equal(want[0], got[0])  # the other row: unchanged


def test_a_graph_without_the_pattern_is_left_alone(exports: tuple[Path, Path]) -> None:
    raw, kept = exports
    model = onnx.load(str(kept))
    before = model.SerializeToString()
    assert drop_nan_guards(model) == 0 and model.SerializeToString() == before  # already rewritten: nothing to do
    model = onnx.load(str(raw))
    guard = next(node for node in model.graph.node if node.op_type == "Where" and "IsNaN" in node.input[0])
    model.graph.output.append(onnx.helper.make_tensor_value_info(guard.output[0], onnx.TensorProto.FLOAT, None))
    before = model.SerializeToString()
    assert drop_nan_guards(model) == 0 and model.SerializeToString() == before  # a guard read from outside: kept
