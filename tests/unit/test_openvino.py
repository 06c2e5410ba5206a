"""backend="openvino": float32 vectors equal to torch's, int8 within its bound or refused, clear errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from instructor_plugins import quantization, runtimes
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.quantization import MIN_PROBE_COS, Int8Unsupported, cpu_isa
from instructor_plugins.runtimes import MIN_EXACT_COS, BackendUnavailable, ov_int8_supported
from tests.exported import (
    INSTRUCTIONS,
    T5_FIXTURE,
    assert_exact_to_torch,
    cos_rows,
    every_length_texts,
    run_json_script,
)

pytest.importorskip("openvino", reason="backend='openvino' needs the openvino extra")
pytest.importorskip("nncf", reason="OpenVINO's int8 needs the openvino extra")
pytestmark = pytest.mark.usefixtures("export_cache")  # every load here exports into a fresh cache


@pytest.fixture(scope="module")
def ov_encoder() -> InstructorEncoder:
    return InstructorEncoder.load(device="cpu", backend="openvino")


@pytest.fixture(scope="module")
def ov_int8() -> InstructorEncoder:
    """OpenVINO int8 where it keeps its bound on this CPU, else float32 (``auto``): the tests check either."""
    return InstructorEncoder.load(device="cpu", backend="openvino", quantize="auto")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return every_length_texts()


def test_openvino_float32_vectors_equal_torch_with_mixed_instructions(
    ov_encoder: InstructorEncoder, bundled_encoder: InstructorEncoder, texts: list[str]
) -> None:
    assert_exact_to_torch(ov_encoder, bundled_encoder, texts, [INSTRUCTIONS[i % 3] for i in range(len(texts))])
    runtime = ov_encoder.describe()["runtime"]
    assert runtime["backend"] == "openvino" and runtime["detail"].endswith(", f32")
    assert runtime["probe_min_cos"] >= MIN_EXACT_COS and "backend='openvino'" in repr(ov_encoder)
    assert ov_encoder.quantize is None


def test_openvino_keeps_the_instructor_pooling_of_a_t5_checkpoint(texts: list[str]) -> None:
    torch_enc = InstructorEncoder.load(T5_FIXTURE, device="cpu")
    ov_enc = InstructorEncoder.load(T5_FIXTURE, device="cpu", backend="openvino")
    assert ov_enc.pooling.include_prompt is False and ov_enc.runtime.backend == "openvino"
    rows = texts[:40]
    instructions = [INSTRUCTIONS[i % 3] for i in range(len(rows))]
    assert cos_rows(ov_enc.encode(rows, instructions), torch_enc.encode(rows, instructions)).min() >= MIN_EXACT_COS


def test_openvino_int8_keeps_the_bound_on_real_text_or_is_refused(
    ov_int8: InstructorEncoder, bundled_encoder: InstructorEncoder, texts: list[str]
) -> None:
    """The method this CPU gets: int8 within cos 0.99 of float32 on every row, or float32 with the reason."""
    report = ov_int8.quantization
    assert report is not None and report.requested == "auto"
    instructions = [INSTRUCTIONS[i % 3] for i in range(len(texts))]
    want = bundled_encoder.encode(texts, instructions, batch_size=16)
    got = ov_int8.encode(texts, instructions, batch_size=16)
    if ov_int8.quantize == "int8":
        assert report.method.startswith("openvino int8") and report.probe_min_cos >= MIN_PROBE_COS
        assert ov_int8_supported() == "" and f"per token and {runtimes.OV_INT8_GROUP_SIZE} features" in report.method
        assert ov_int8.runtime.detail.endswith(", int8")
        cos = cos_rows(got, want)
        assert cos.min() >= MIN_PROBE_COS
        assert cos.min() < 0.99999  # it is int8, not the float32 model
    else:  # a CPU without VNNI: OpenVINO would run the int8 weights in float32
        assert report.method == "float32" and report.reason == ov_int8_supported() != ""
        assert cos_rows(got, want).min() >= MIN_EXACT_COS


def test_int8_without_run_time_int8_kernels_is_refused_and_auto_keeps_float32(
    monkeypatch: pytest.MonkeyPatch, bundled_encoder: InstructorEncoder
) -> None:
    """Group size 0 turns OpenVINO's run-time int8 off, as on a CPU without its kernels: weights widen to float32."""
    monkeypatch.setattr(runtimes, "OV_INT8_GROUP_SIZE", 0)
    with pytest.raises(Int8Unsupported, match=r"OpenVINO's run-time int8 is off .*quantize='auto' to fall back"):
        InstructorEncoder.load(device="cpu", backend="openvino", quantize="int8")
    auto = InstructorEncoder.load(device="cpu", backend="openvino", quantize="auto")
    assert auto.quantize is None and auto.runtime.backend == "openvino" and auto.runtime.detail.endswith(", f32")
    assert auto.quantization is not None and auto.quantization.method == "float32"
    assert "int8 weights run in float32" in auto.quantization.reason
    texts = ["Hi.", "What is AI?", "a river bank"]
    assert cos_rows(auto.encode(texts), bundled_encoder.encode(texts)).min() >= MIN_EXACT_COS


def test_a_failed_int8_probe_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    if ov_int8_supported():
        pytest.skip(f"OpenVINO's int8 does not run on this CPU, so there is no probe to fail: {ov_int8_supported()}")
    monkeypatch.setattr(quantization, "MIN_PROBE_COS", 1.000001)  # no int8 model can reach it
    with pytest.raises(Int8Unsupported, match=r"OpenVINO int8's load-time probe gave min cos .* \(< 1.000001\)"):
        InstructorEncoder.load(device="cpu", backend="openvino", quantize="int8")


def test_unset_backend_runs_openvino_int8_and_falls_back_to_torch_int8(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = InstructorEncoder.load(device="cpu", quantize="auto")
    if chosen.quantize == "int8" and not ov_int8_supported():
        assert chosen.runtime.backend == "openvino" and chosen.quantization.method.startswith("openvino int8")
    elif chosen.quantize == "int8":  # no VNNI: ONNX Runtime's per-token int8 where it was measured (AVX2)
        assert chosen.runtime.backend == "onnx" and chosen.quantization.method.startswith("onnxruntime int8")
    monkeypatch.setattr(runtimes, "OV_INT8_GROUP_SIZE", 0)  # OpenVINO's int8 unavailable: torch's method is next
    monkeypatch.setattr(quantization, "ORT_INT8_ISAS", {})  # (ONNX Runtime's is tried only where torch's is refused)
    # torch's int8 counted as running on this CPU class, whatever it is (its probe may still keep float32)
    monkeypatch.setitem(quantization.INT8_ISAS, cpu_isa(), quantization.Int8Method(8, 1.0, 0.99))
    fallback = InstructorEncoder.load(device="cpu", quantize="auto")
    assert fallback.runtime.backend == "torch" and fallback.quantization is not None
    assert fallback.quantization.method == "float32" or fallback.quantization.method.startswith("torch dynamic int8")
    assert fallback.quantize == ("int8" if fallback.quantization.method != "float32" else None)


def test_auto_where_no_int8_method_runs_takes_openvino_float32(
    monkeypatch: pytest.MonkeyPatch, bundled_encoder: InstructorEncoder, texts: list[str]
) -> None:
    """As on an AVX2 CPU: OpenVINO's run-time int8 needs VNNI, torch's is refused; "auto" is the faster float32."""
    monkeypatch.setattr(runtimes, "OV_INT8_GROUP_SIZE", 0)
    monkeypatch.setattr(quantization, "INT8_ISAS", {})
    monkeypatch.setattr(quantization, "ORT_INT8_ISAS", {})  # and ONNX Runtime's per-token int8 not measured here
    auto = InstructorEncoder.load(device="cpu", quantize="auto")
    assert auto.quantize is None and auto.runtime.backend == "openvino" and auto.runtime.detail.endswith(", f32")
    report = auto.quantization
    assert report is not None and report.method == "float32" and report.probe_min_cos is None
    assert "int8 weights run in float32" in report.reason
    assert f"torch's int8: {quantization.unsupported_reason(cpu_isa())}" in report.reason
    assert_exact_to_torch(auto, bundled_encoder, texts, [INSTRUCTIONS[i % 3] for i in range(len(texts))])
    with pytest.raises(Int8Unsupported):  # "int8" still refuses: no method keeps its bound
        InstructorEncoder.load(device="cpu", quantize="int8")
    # OpenVINO's float32 failing its probe (never seen): torch float32 is kept, no error, as without OpenVINO
    monkeypatch.setattr(runtimes, "MIN_EXACT_COS", 1.000001)
    kept = InstructorEncoder.load(device="cpu", quantize="auto")
    assert kept.runtime.backend == "torch" and kept.quantize is None


def test_int8_refuses_to_save(tmp_path: Path) -> None:
    encoder = InstructorEncoder.load(device="cpu", backend="openvino")
    with pytest.raises(ValueError, match="backend='openvino'.*backend='torch' to save"):
        encoder.save(tmp_path / "out")


def test_threads_share_the_compiled_model(ov_encoder: InstructorEncoder, bundled_encoder: InstructorEncoder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    batches = [[f"question {i} about topic {j}" for j in range(5)] for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda b: ov_encoder.encode(b, INSTRUCTIONS[0]), batches))
    for batch, vectors in zip(batches, got, strict=True):
        assert cos_rows(vectors, bundled_encoder.encode(batch, INSTRUCTIONS[0])).min() >= MIN_EXACT_COS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "openvino", "device": "cuda"}, r"backend='openvino' runs on CPU only.*'cuda'"),
        ({"backend": "openvino", "dtype": "bfloat16"}, r"backend='openvino' runs a float32 export.*'bfloat16'"),
    ],
)
def test_bad_openvino_values_are_clear_errors(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InstructorEncoder.load(**kwargs)


@pytest.mark.parametrize(
    ("missing", "kwargs", "names"),
    [
        ("openvino", {"backend": "openvino"}, r"\['openvino'\]"),
        ("nncf", {"backend": "openvino", "quantize": "int8"}, r"\['nncf'\]"),
    ],
)
def test_a_missing_package_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, missing: str, kwargs: dict[str, str], names: str
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))
    with pytest.raises(BackendUnavailable, match=names + r".*pip install \"instructor-plugins\[openvino\]\""):
        InstructorEncoder.load(**kwargs)
    if missing == "nncf":  # backend unset: OpenVINO's int8 is not chosen without NNCF
        assert not runtimes.backend_available("openvino", int8=True) and runtimes.backend_available("openvino")


def test_plugin_classes_take_the_backend(bundled_encoder: InstructorEncoder) -> None:
    from instructor_plugins.langchain import InstructorEmbeddings
    from instructor_plugins.llama_index import InstructorEmbedding

    query = "How do I reset my password?"
    want = bundled_encoder.encode([query], INSTRUCTIONS[0])[0]
    lc = InstructorEmbeddings(query_instruction=INSTRUCTIONS[0], model_kwargs={"backend": "openvino"})
    li = InstructorEmbedding(query_instruction=INSTRUCTIONS[0], backend="openvino")
    for got in (lc.embed_query(query), li.get_query_embedding(query)):
        assert float(np.dot(got, want)) >= MIN_EXACT_COS


def test_serve_args_and_cli_check_openvino(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from ray_backend.serve import ServeArgs, _parse_cli, local_backend_problem, main

    assert ServeArgs(backend="openvino", quantize="int8").quantize == "int8"
    for bad, message in (
        ({"backend": "openvino", "num_gpus": 1}, "CPU only"),
        ({"backend": "openvino", "dtype": "bf16"}, "float32 export"),
    ):
        with pytest.raises(ValueError, match=message):
            ServeArgs.model_validate(bad)
    args = _parse_cli(["--backend", "openvino", "--quantize", "int8"], "instructor serve")[0]
    assert args.backend == "openvino" and args.quantize == "int8"
    # "" where OpenVINO's run-time int8 runs (VNNI); elsewhere the refusal that names why and the way out
    problem = local_backend_problem("openvino", "int8")
    assert problem == (
        "" if not ov_int8_supported() else f"--quantize int8: {ov_int8_supported()}; use --quantize auto"
    )
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["--backend", "openvino"], prog="instructor serve") == 2  # before Ray or Serve start
    err = capsys.readouterr().err
    assert "instructor serve: error: --backend openvino: backend='openvino' needs ['openvino']" in err


@pytest.mark.parametrize(
    ("flags", "env", "runs"),
    [
        ({"avx2", "avx512f", "avx512_vnni"}, {}, True),
        ({"avx2", "avx_vnni"}, {}, True),  # AVX-VNNI without AVX-512 (OpenVINO's avx2_vnni kernels)
        ({"avx2"}, {}, False),  # the AVX2 class: no VNNI, no run-time int8
        ({"avx2", "avx512f"}, {}, False),  # AVX-512 without VNNI
        ({"avx2", "avx512f", "avx512_vnni"}, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, False),
        ({"avx2", "avx512f", "avx512_vnni"}, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"}, True),
        ({"avx2", "avx512f", "avx512_vnni"}, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, True),
        ({"avx2", "avx512f", "avx512_vnni"}, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, False),
    ],
)
def test_openvino_int8_runs_where_the_cpu_has_vnni(flags: set[str], env: dict[str, str], runs: bool) -> None:
    reason = ov_int8_supported(flags, env)
    assert (reason == "") is runs
    if not runs:
        assert "AVX-VNNI or AVX-512 VNNI" in reason and "gains no speed" in reason


AVX2_CLASS = r"""
import json
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.quantization import Int8Unsupported
try:
    InstructorEncoder.load(device="cpu", backend="openvino", quantize="int8")
    refused = ""
except Int8Unsupported as exc:
    refused = str(exc)
auto = InstructorEncoder.load(device="cpu", backend="openvino", quantize="auto")
chosen = InstructorEncoder.load(device="cpu", quantize="auto")
print(json.dumps({"refused": refused, "auto": auto.quantization.to_dict(), "runtime": auto.runtime.to_dict(),
                  "chosen": chosen.runtime.backend, "method": chosen.quantization.method}))
"""


def test_with_the_kernels_capped_at_avx2_openvino_int8_is_refused(export_cache: Path) -> None:
    """The AVX2 class emulated: oneDNN (OpenVINO's too) capped at AVX2, as on an AVX2 EPYC without VNNI."""
    if cpu_isa() == "other":
        pytest.skip("not an x86 CPU with AVX2")
    result = run_json_script(AVX2_CLASS, {"ONEDNN_MAX_CPU_ISA": "AVX2", "INSTRUCTOR_EXPORT_CACHE": str(export_cache)})
    assert result["refused"].startswith("quantize='int8' refused: OpenVINO quantizes activations at run time only")
    assert result["auto"]["method"] == "float32" and "ONEDNN_MAX_CPU_ISA=AVX2" in result["auto"]["reason"]
    assert result["runtime"]["backend"] == "openvino" and result["runtime"]["probe_min_cos"] >= MIN_EXACT_COS
    # backend unset: neither OpenVINO's nor torch's int8 runs with AVX2 kernels: ONNX Runtime's per-token int8 does
    assert result["chosen"] == "onnx" and result["method"].startswith("onnxruntime int8"), result


def test_the_serve_cli_refuses_int8_where_no_method_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray_backend.serve import local_backend_problem

    monkeypatch.setattr(runtimes, "OV_INT8_GROUP_SIZE", 0)  # OpenVINO's int8 cannot run here
    assert local_backend_problem("openvino", "int8").startswith("--quantize int8: OpenVINO's run-time int8 is off")
    assert local_backend_problem("openvino", "auto") == "" and local_backend_problem("onnx", None) == ""
    monkeypatch.setattr(quantization, "INT8_ISAS", {})  # and torch's is refused too
    monkeypatch.setattr(quantization, "ORT_INT8_ISAS", {cpu_isa(): quantization.Int8Method(8, 1.0, 0.99)})
    assert local_backend_problem(None, "int8") == ""  # ONNX Runtime's per-token int8 runs (its probe is checked)
    monkeypatch.setattr(quantization, "ORT_INT8_ISAS", {})  # and that one was not measured here
    problem = local_backend_problem(None, "int8")
    assert problem.startswith(f"--quantize int8: {quantization.unsupported_reason(cpu_isa())}")
    assert "OpenVINO's int8: OpenVINO's run" in problem


def test_openvino_encode_in_buckets_equals_one_padded_block(ov_encoder: InstructorEncoder) -> None:
    from tests.unit.test_buckets import assert_buckets_change_nothing

    assert_buckets_change_nothing(ov_encoder)
