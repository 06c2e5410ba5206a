"""quantize="int8": equal to fp32 within the bounds on real text, instruction masks kept, clear errors."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import torch

from instructor_plugins.corpora import chatterbot_pairs, wordnet_synsets
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.quantization import (
    INT8_ISAS,
    MIN_PROBE_COS,
    Int8Linear,
    Int8Unsupported,
    check_quantize,
    cpu_isa,
)
from ray_backend.serve import ServeArgs, _parse_cli
from ray_backend.serving.app import create_app
from ray_backend.serving.service import EmbeddingService
from tests.exported import cos_rows, run_json_script

QUERY = "Represent the question for retrieving supporting answers: "


@pytest.fixture(scope="module")
def int8_encoder() -> InstructorEncoder:
    if cpu_isa() not in INT8_ISAS:  # the refusal there is tested on every machine below
        pytest.skip(f"int8 is refused on this CPU class ({cpu_isa()}); int8 runs on {sorted(INT8_ISAS)}")
    return InstructorEncoder.load(device="cpu", backend="torch", quantize="int8")


def real_texts() -> list[str]:
    """Real short texts: chatterbot answers (many of a few words) and WordNet glosses."""
    answers = sorted({p.answer for p in chatterbot_pairs() if len(p.answer) <= 400})[:96]
    try:
        glosses = [s.gloss for s in wordnet_synsets("noun", limit=64)]
    except FileNotFoundError:
        glosses = []
    return answers + glosses


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return real_texts()


def test_every_linear_is_int8_and_the_rest_is_unchanged(int8_encoder: InstructorEncoder) -> None:
    linears = [m for m in int8_encoder.module.encoder.modules() if isinstance(m, torch.nn.Linear)]
    int8 = [m for m in int8_encoder.module.encoder.modules() if isinstance(m, Int8Linear)]
    assert not linears and len(int8) == 36  # 6 layers x (q, k, v, attention out, intermediate, out)
    assert int8_encoder.quantize == "int8" and int8_encoder.dtype == torch.float32
    assert "quantize='int8'" in repr(int8_encoder)


def test_int8_rows_match_fp32_with_and_without_instructions(
    int8_encoder: InstructorEncoder, bundled_encoder: InstructorEncoder, texts: list[str]
) -> None:
    instructions = [QUERY if i % 3 == 0 else "" for i in range(len(texts))]  # mixed in one call
    cos = cos_rows(int8_encoder.encode(texts, instructions), bundled_encoder.encode(texts, instructions))
    assert cos.min() >= 0.99, f"worst row {texts[int(cos.argmin())]!r}: {cos.min():.4f}"


def test_int8_pools_as_the_checkpoint_says(int8_encoder: InstructorEncoder, bundled_encoder: InstructorEncoder) -> None:
    """The instruction changes the vector exactly as in fp32: the checkpoint's pooling is kept in the int8 path."""
    text = ["A dog is chasing a ball in the park."]
    with_q, without_q = int8_encoder.encode(text, QUERY), int8_encoder.encode(text)
    with_f, without_f = bundled_encoder.encode(text, QUERY), bundled_encoder.encode(text)
    assert cos_rows(with_q, with_f)[0] >= 0.99 and cos_rows(without_q, without_f)[0] >= 0.99
    features = int8_encoder.tokenize(text, [QUERY])
    with torch.inference_mode():
        hidden = int8_encoder.module.encoder(input_ids=features.input_ids, attention_mask=features.attention_mask)
    states = hidden.last_hidden_state[0]
    # The bundled MiniLM pools its prompt: every token, the instruction's too.
    expected = torch.nn.functional.normalize(states.mean(0), dim=-1).numpy()
    np.testing.assert_allclose(with_q[0], expected, atol=1e-5)
    saved = int8_encoder.pooling
    try:  # the INSTRUCTOR method (what training sets): the text tokens only
        int8_encoder.without_instruction_pooling()
        k = int8_encoder.instruction_length(QUERY)
        expected = torch.nn.functional.normalize(states[k:].mean(0), dim=-1).numpy()
        np.testing.assert_allclose(int8_encoder.encode(text, QUERY)[0], expected, atol=1e-5)
    finally:
        int8_encoder.pooling = saved


@pytest.mark.slow
def test_int8_chatterbot_ndcg_within_one_point(
    int8_encoder: InstructorEncoder, bundled_encoder: InstructorEncoder
) -> None:
    from evals.offline_data import chatterbot_qa
    from training.recipe.quality import ndcg_at_k

    data = chatterbot_qa()
    queries, doc_texts = list(data.queries.values()), list(data.corpus.values())
    position = {doc_id: i for i, doc_id in enumerate(data.corpus)}
    relevant = [{position[d] for d in data.relevant[q]} for q in data.queries]
    scores = {}
    for name, encoder in (("fp32", bundled_encoder), ("int8", int8_encoder)):
        q = encoder.encode(queries, QUERY, batch_size=64)
        d = encoder.encode(doc_texts, batch_size=64)
        scores[name] = 100 * ndcg_at_k(q @ d.T, relevant, k=10)
    assert scores["fp32"] > 30  # a real retrieval task, not a degenerate one
    assert abs(scores["int8"] - scores["fp32"]) <= 1.0, scores


async def test_info_reports_quantization_and_served_equals_in_process(int8_encoder: InstructorEncoder) -> None:
    service = EmbeddingService(encoder=int8_encoder)
    texts = ["How are you?", "Fine, and you?", "The cat sat on the mat."]
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        info = (await client.get("/info")).json()
        r = await client.post("/v1/embeddings", json={"input": texts, "instruction": QUERY})
    assert info["quantize"] == "int8" and info["dtype"] == "float32" and info["device"] == "cpu"
    assert info["quantization"] == int8_encoder.quantization.to_dict() and info["quantization"]["isa"] == cpu_isa()
    served = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
    assert cos_rows(served, int8_encoder.encode(texts, QUERY)).min() >= 0.99999


def test_bad_quantize_values_are_clear_errors() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    with pytest.raises(ValueError, match=r"unknown quantize 'int4'; valid: \['int8', 'auto'\]"):
        check_quantize("int4", cpu, torch.float32)
    with pytest.raises(ValueError, match=r"CPU only, got device 'cuda'.*valid devices: \['cpu'\]"):
        check_quantize("int8", cuda, torch.bfloat16)
    with pytest.raises(ValueError, match=r"got dtype 'bfloat16'.*\['float32'\]"):
        check_quantize("int8", cpu, torch.bfloat16)
    assert check_quantize(None, cuda, torch.bfloat16) is None
    with pytest.raises(ValueError, match="unknown quantize 'int4'"):  # before anything is loaded
        InstructorEncoder.load(quantize="int4")
    with pytest.raises(ValueError, match="CPU only"):
        InstructorEncoder.load(device="cuda", quantize="int8")


def test_quantized_encoder_refuses_to_save(int8_encoder: InstructorEncoder, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="cannot save a quantize='int8' encoder"):
        int8_encoder.save(tmp_path / "m")


def test_serve_args_and_cli_reject_quantize_on_gpu_or_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert ServeArgs(quantize="int8").quantize == "int8" and ServeArgs().quantize is None
    with pytest.raises(ValueError, match="int8"):
        ServeArgs.model_validate({"quantize": "int4"})
    with pytest.raises(ValueError, match="CPU only"):
        ServeArgs(quantize="int8", num_gpus=1)
    with pytest.raises(ValueError, match="bfloat16"):
        ServeArgs(quantize="int8", dtype="bf16")
    for argv, message in (
        (["--quantize", "int4"], "invalid choice: 'int4'"),
        (["--quantize", "int8", "--num-gpus", "1"], "CPU only"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            _parse_cli(argv, "instructor serve")
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    args = _parse_cli(["--quantize", "int8"], "instructor serve")[0]
    assert args.quantize == "int8"
    assert _parse_cli(["--quantize", "auto"], "instructor serve")[0].quantize == "auto"


AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def test_the_load_reports_the_cpu_class_method_and_probe(int8_encoder: InstructorEncoder) -> None:
    report = int8_encoder.quantization
    assert report is not None and report.isa == cpu_isa() and report.requested == "int8"
    bits = INT8_ISAS[report.isa].activation_bits
    assert report.method == f"torch dynamic int8, {bits}-bit activations, first token float32"
    assert report.probe_min_cos is not None and MIN_PROBE_COS <= report.probe_min_cos <= 1.0 + 1e-6
    layers = [m for m in int8_encoder.module.encoder.modules() if isinstance(m, Int8Linear)]
    assert layers and all(layer.reduce_range == (bits < 8) for layer in layers)
    assert int8_encoder.describe()["quantization"] == report.to_dict()


# The AVX2 class's kernels in a fresh interpreter (torch, fbgemm and oneDNN read these variables when they load).
AVX2_CLASS = r"""
import json
import numpy as np
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.quantization import Int8Unsupported
texts = ["Hi.", "What is AI?", "a river bank"]
try:
    InstructorEncoder.load(device="cpu", backend="torch", quantize="int8")
    refused = ""
except Int8Unsupported as exc:
    refused = str(exc)
auto = InstructorEncoder.load(device="cpu", backend="torch", quantize="auto")
fp32 = InstructorEncoder.load(device="cpu")
same = bool(np.array_equal(auto.encode(texts), fp32.encode(texts)))
print(json.dumps({"refused": refused, "auto": auto.quantization.to_dict(), "quantize": auto.quantize, "same": same}))
"""


def test_with_the_avx2_kernels_int8_is_refused_and_auto_keeps_fp32() -> None:
    """The AVX2 class (emulated on a bigger CPU; native on an AVX2 one), where no int8 method kept the bound."""
    if cpu_isa() == "other":
        pytest.skip("not an x86 CPU with AVX2")
    result = run_json_script(AVX2_CLASS, AVX2_ENV)
    assert result["refused"].startswith("quantize='int8' refused: int8 is not used on this CPU class (avx2: ")
    assert result["refused"].endswith("use quantize='auto' to fall back to float32")
    assert "ONNX Runtime's per-token int8 keeps it here: backend='onnx'" in result["refused"]  # the way out
    assert result["auto"]["isa"] == "avx2" and result["auto"]["method"] == "float32" and result["quantize"] is None
    assert "7-bit activations" in result["auto"]["reason"] and result["same"]


def test_auto_is_int8_where_int8_keeps_its_bound(int8_encoder: InstructorEncoder) -> None:
    auto = InstructorEncoder.load(device="cpu", backend="torch", quantize="auto")
    assert auto.quantize == "int8" and auto.quantization is not None and auto.quantization.requested == "auto"
    assert auto.quantization.method == int8_encoder.quantization.method and not auto.quantization.reason
    text = ["What is AI?"]
    np.testing.assert_allclose(auto.encode(text, QUERY), int8_encoder.encode(text, QUERY), atol=1e-6)


@pytest.mark.parametrize(
    ("flags", "env", "capability", "isa"),
    [
        ({"avx2", "avx512f", "avx512_vnni"}, {}, "AVX512", "avx512_vnni"),
        ({"avx2", "avx512f"}, {}, "AVX512", "avx512"),
        ({"avx2", "avx_vnni"}, {}, "AVX2", "avx2"),  # AVX-VNNI without AVX-512: fbgemm runs AVX2 kernels
        ({"avx2", "avx512f", "avx512_vnni"}, {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}, "AVX512", "avx2"),
        ({"avx2", "avx512f", "avx512_vnni"}, {"ONEDNN_MAX_CPU_ISA": "AVX2_VNNI"}, "AVX512", "avx2"),
        ({"avx2", "avx512f", "avx512_vnni"}, {}, "AVX2", "avx2"),  # ATEN_CPU_CAPABILITY=avx2
        ({"sse4_2"}, {}, "DEFAULT", "other"),
        (set(), {}, "DEFAULT", "other"),  # ARM: no x86 flags
    ],
)
def test_cpu_class_from_flags_and_kernel_limits(
    flags: set[str], env: dict[str, str], capability: str, isa: str
) -> None:
    assert cpu_isa(flags, env, capability) == isa


def test_where_int8_cannot_keep_its_bound_int8_refuses_and_auto_keeps_fp32(
    monkeypatch: pytest.MonkeyPatch, bundled_encoder: InstructorEncoder
) -> None:
    import instructor_plugins.quantization as quantization

    texts = ["Hi.", "What is AI?"]
    monkeypatch.setattr(quantization, "cpu_isa", lambda: "other")  # a CPU class int8 was not measured on
    with pytest.raises(Int8Unsupported, match=r"quantize='int8' refused: int8 was not measured on this CPU class"):
        InstructorEncoder.load(device="cpu", backend="torch", quantize="int8")
    auto = InstructorEncoder.load(device="cpu", backend="torch", quantize="auto")
    assert auto.quantize is None and auto.quantization is not None and auto.quantization.method == "float32"
    assert "not measured on this CPU class ('other'" in auto.quantization.reason
    monkeypatch.undo()
    if cpu_isa() not in INT8_ISAS:
        return  # the probe runs only where int8 is tried
    monkeypatch.setattr(quantization, "MIN_PROBE_COS", 1.5)  # a probe no int8 model can pass
    with pytest.raises(Int8Unsupported, match=r"load-time probe gave min cos 0\.9\d+ to float32 \(< 1\.5\)"):
        InstructorEncoder.load(device="cpu", backend="torch", quantize="int8")
    auto = InstructorEncoder.load(device="cpu", backend="torch", quantize="auto")
    assert auto.quantize is None and not any(isinstance(m, Int8Linear) for m in auto.module.modules())
    assert "load-time probe" in auto.quantization.reason and auto.quantization.probe_min_cos < 1.0
    np.testing.assert_array_equal(auto.encode(texts, QUERY), bundled_encoder.encode(texts, QUERY))  # fp32 back
