"""ONNX Runtime's per-token int8 (backend="onnx", quantize="int8"): the graph does the math it claims, in the bound."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from instructor_plugins import ort_int8, quantization, runtimes
from instructor_plugins.corpora import chatterbot_pairs
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.quantization import MIN_PROBE_COS, PROBE, Int8Method, Int8Unsupported, cpu_isa
from instructor_plugins.runtimes import OrtTransformer
from tests.exported import INSTRUCTIONS, T5_FIXTURE, cos_rows, every_length_texts

pytest.importorskip("onnxruntime", reason="backend='onnx' needs the onnx extra")
pytest.importorskip("onnx", reason="backend='onnx' needs the onnx extra")
pytestmark = pytest.mark.usefixtures("export_cache")  # every load here exports into a fresh cache


@pytest.fixture(scope="module")
def int8_encoder() -> InstructorEncoder:
    return InstructorEncoder.load(device="cpu", backend="onnx", quantize="int8")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Real texts of every length, none of them calibration text (tested below)."""
    return every_length_texts()


def _reference_layer(x: np.ndarray, w: np.ndarray, c: np.ndarray) -> np.ndarray:
    """One Linear layer as the int8 graph claims to compute it, written plainly in numpy (float32 steps as the graph's,
    the int8 product exact in int64): SmoothQuant, 8-bit activations scaled per token, 7-bit weights per output
    channel, the first token in float32."""
    limit = 2 ** (ort_int8.WEIGHT_BITS - 1) - 1
    first = x[:, :1].astype(np.float64) @ w.astype(np.float64)
    rest = x[:, 1:] * (1 / c).astype(np.float32)
    scale = np.maximum(np.abs(rest).max(-1, keepdims=True) * np.float32(1 / 127), np.float32(1e-12))
    q = np.round(rest / scale).astype(np.int64)
    smoothed = w * c[:, None]
    w_scale = (np.maximum(np.abs(smoothed).max(0), 1e-12) / limit).astype(np.float32)
    w_int = np.clip(np.round(smoothed / w_scale), -limit, limit).astype(np.int64)
    product = (q @ w_int).astype(np.float32) * w_scale * scale
    return np.concatenate([first, product.astype(np.float64)], axis=1)


def _maxima(encoder: InstructorEncoder, model_path: Path) -> dict[str, np.ndarray]:
    return ort_int8.channel_maxima(model_path, ort_int8.calibration_feeds(encoder.tokenize))


def test_the_int8_graph_computes_what_it_claims(
    int8_encoder: InstructorEncoder, bundled_encoder: InstructorEncoder, texts: list[str]
) -> None:
    """Every Linear layer of the graph ONNX Runtime runs equals the same math written plainly (on the layer's own
    input in that graph, so rounding in earlier layers does not compound), and is int8, not float32."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    runner = int8_encoder.module.encoder
    assert isinstance(runner, OrtTransformer) and runner.path == ort_int8.int8_path(runner.path.with_name("model.onnx"))
    src = onnx.load(str(runner.path.with_name("model.onnx")))
    weights = {init.name: numpy_helper.to_array(init) for init in src.graph.initializer}
    linears = ort_int8.linear_matmuls(src)
    factors = ort_int8._smoothing(
        src, _maxima(bundled_encoder, runner.path.with_name("model.onnx")), ort_int8.SMOOTH_ALPHA
    )
    graph = onnx.load(str(runner.path))
    names = sorted({n for node in linears for n in (node.input[0], node.output[0])})
    for name in names:  # the layers' inputs and outputs keep their names in the rewritten graph
        graph.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    batch = bundled_encoder.tokenize(texts[1:17], [INSTRUCTIONS[i % 3] for i in range(16)])
    feed = {"input_ids": batch.input_ids.numpy(), "attention_mask": batch.attention_mask.numpy()}
    values = dict(zip(names, session.run(names, feed), strict=True))
    assert len(linears) == 36  # 6 layers x (query, key, value, attention output, FFN up, FFN down)
    for node in linears:
        x, got, w = values[node.input[0]], values[node.output[0]], weights[node.input[1]]
        want = _reference_layer(x, w, factors[node.input[0]])
        float32 = x.astype(np.float64) @ w.astype(np.float64)
        error = np.abs(got - want).max() / np.abs(want).max()
        assert error < 1e-5, (node.name, error)
        assert np.abs(got - float32).max() / np.abs(want).max() > 100 * error  # int8: the test tells them apart
        np.testing.assert_allclose(got[:, 0], float32[:, 0], rtol=1e-4, atol=1e-4)  # the first token is float32


def test_int8_vectors_keep_the_bound_with_mixed_instructions(
    int8_encoder: InstructorEncoder, bundled_encoder: InstructorEncoder, texts: list[str]
) -> None:
    instructions = [INSTRUCTIONS[i % 3] for i in range(len(texts))]
    got, want = int8_encoder.encode(texts, instructions), bundled_encoder.encode(texts, instructions)
    cos = cos_rows(got, want)
    assert cos.min() >= MIN_PROBE_COS
    assert cos.min() < 0.99999  # it is int8, not the float32 model
    report = int8_encoder.quantization
    assert report is not None and report.method.startswith("onnxruntime int8: 8-bit activations scaled per token")
    assert int8_encoder.quantize == "int8" and report.probe_min_cos is not None and report.probe_min_cos >= 0.99
    runtime = int8_encoder.describe()["runtime"]
    assert runtime["backend"] == "onnx" and runtime["detail"].endswith(", int8")


def test_each_part_of_the_method_is_needed_for_the_bound(bundled_encoder: InstructorEncoder) -> None:
    """Without the first token in float32 (BERT's attention sink), the probe's short texts miss the bound."""
    fp32 = InstructorEncoder.load(device="cpu", backend="onnx")
    src = fp32.module.encoder.path
    maxima = _maxima(bundled_encoder, src)
    texts, instructions = [t for _, t in PROBE], [i for i, _ in PROBE]
    want = bundled_encoder.encode(texts, instructions)
    found = {}
    for name, kwargs in {"all": {}, "no first token": {"first_token_float": False}}.items():
        dst = src.with_name(f"ablation-{len(found)}.onnx")
        assert ort_int8.quantize_per_token(src, dst, maxima, **kwargs) == 36  # 6 layers x (Q, K, V, out, up, down)
        fp32.module.encoder = OrtTransformer(dst, fp32.module.encoder.config, torch.get_num_threads())
        found[name] = cos_rows(fp32.encode(texts, instructions), want).min()
    assert found["all"] >= MIN_PROBE_COS > found["no first token"]


def test_the_rewritten_model_is_cached_and_reused(export_cache: Path) -> None:
    first = InstructorEncoder.load(device="cpu", backend="onnx", quantize="int8")
    path = first.module.encoder.path
    stamp = path.stat().st_mtime_ns
    again = InstructorEncoder.load(device="cpu", backend="onnx", quantize="int8")
    assert again.module.encoder.path == path and path.stat().st_mtime_ns == stamp
    assert f"-v{ort_int8.GRAPH_VERSION}-" in path.name and oct(path.stat().st_mode & 0o777) == "0o644"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".int8-")]  # no temporary file left


def test_a_failed_probe_is_refused_and_auto_keeps_the_float32_export(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quantization, "MIN_PROBE_COS", 1.000001)  # no int8 model can reach it
    with pytest.raises(Int8Unsupported, match=r"ONNX Runtime int8's load-time probe gave min cos .* \(< 1.000001\)"):
        InstructorEncoder.load(device="cpu", backend="onnx", quantize="int8")
    auto = InstructorEncoder.load(device="cpu", backend="onnx", quantize="auto")
    assert auto.quantize is None and auto.runtime.backend == "onnx" and not auto.runtime.detail.endswith("int8")
    assert auto.quantization is not None and auto.quantization.method == "float32"
    assert "ONNX Runtime int8's load-time probe" in auto.quantization.reason


def test_an_export_it_cannot_rewrite_is_refused_and_auto_keeps_float32(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(ort_int8, "linear_matmuls", lambda model: [])  # as an export with Gemm nodes would be
    monkeypatch.setattr(ort_int8, "int8_path", lambda exported: tmp_path / "model.int8.onnx")  # not the cached one
    with pytest.raises(Int8Unsupported, match=r"ONNX Runtime int8 cannot rewrite this export: .*no Linear layer"):
        InstructorEncoder.load(device="cpu", backend="onnx", quantize="int8")
    auto = InstructorEncoder.load(device="cpu", backend="onnx", quantize="auto")
    assert auto.quantize is None and auto.runtime.backend == "onnx" and auto.quantization is not None
    assert auto.quantization.probe_min_cos is None and "cannot rewrite" in auto.quantization.reason
    assert not (tmp_path / "model.int8.onnx").exists()


def test_unset_backend_picks_it_where_it_was_measured(
    monkeypatch: pytest.MonkeyPatch, bundled_encoder: InstructorEncoder
) -> None:
    """As on an AVX2 CPU: OpenVINO's int8 needs VNNI, torch's is refused there, ONNX Runtime's per-token int8 runs."""
    monkeypatch.setattr(runtimes, "OV_INT8_GROUP_SIZE", 0)
    monkeypatch.setattr(quantization, "INT8_ISAS", {})
    monkeypatch.setattr(quantization, "ORT_INT8_ISAS", {cpu_isa(): Int8Method(8, 1.0, 0.99)})
    for requested in ("int8", "auto"):
        chosen = InstructorEncoder.load(device="cpu", quantize=requested)
        assert chosen.runtime.backend == "onnx" and chosen.quantize == "int8"
    monkeypatch.setattr(quantization, "ORT_INT8_ISAS", {})  # not measured here: int8 refused, auto keeps float32
    with pytest.raises(Int8Unsupported):
        InstructorEncoder.load(device="cpu", quantize="int8")


def test_a_t5_checkpoint_gets_int8_within_the_bound_or_a_clear_refusal() -> None:
    """The rewrite is generic: T5's Linear layers have no bias and no [CLS]; the probe decides."""
    try:
        int8 = InstructorEncoder.load(T5_FIXTURE, device="cpu", backend="onnx", quantize="int8")
    except Int8Unsupported as exc:
        assert "ONNX Runtime int8's load-time probe gave min cos" in str(exc)
        return
    fp32 = InstructorEncoder.load(T5_FIXTURE, device="cpu")
    texts = ["", "a", "What is AI?", "The cat sat on the mat."]
    assert (
        cos_rows(int8.encode(texts, "Represent the sentence: "), fp32.encode(texts, "Represent the sentence: ")).min()
        >= MIN_PROBE_COS
    )


def test_calibration_text_is_not_what_the_probe_or_the_benchmarks_score() -> None:
    calibration = set(ort_int8.calibration_texts())
    assert len(calibration) == 96 and all(t.strip() for t in calibration)
    assert not calibration & {t for _, t in PROBE}
    assert not calibration & {p.answer for p in chatterbot_pairs()}  # the benchmarks and tests score answers


@pytest.mark.parametrize("bits", [1, 9])
def test_bad_weight_bits_are_refused(bits: int, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"weight_bits must be 2-8"):
        ort_int8.quantize_per_token(tmp_path / "a.onnx", tmp_path / "b.onnx", {}, weight_bits=bits)


def test_a_graph_without_linear_layers_or_maxima_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4])],
    )
    onnx.save(helper.make_model(graph), tmp_path / "relu.onnx")
    with pytest.raises(ValueError, match="no Linear layer"):
        ort_int8.quantize_per_token(tmp_path / "relu.onnx", tmp_path / "out.onnx", {})
    fp32 = InstructorEncoder.load(device="cpu", backend="onnx")
    with pytest.raises(ValueError, match="no calibration maxima for"):
        ort_int8.quantize_per_token(fp32.module.encoder.path, tmp_path / "out.onnx", {})
    assert not (tmp_path / "out.onnx").exists() and os.listdir(tmp_path) == ["relu.onnx"]
