"""quantize="int8": equal to fp32 within the bounds on real text, instruction masks kept, clear errors."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import torch

from instructor_plugins.corpora import chatterbot_pairs, wordnet_synsets
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.quantization import Int8Linear, check_quantize
from ray_backend.app import create_app
from ray_backend.serve import ServeArgs, _parse_cli
from ray_backend.service import EmbeddingService

QUERY = "Represent the question for retrieving supporting answers: "


@pytest.fixture(scope="module")
def int8_encoder() -> InstructorEncoder:
    return InstructorEncoder.load(device="cpu", quantize="int8")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Real short texts: chatterbot answers (many of a few words) and WordNet glosses."""
    answers = sorted({p.answer for p in chatterbot_pairs() if len(p.answer) <= 400})[:96]
    try:
        glosses = [s.gloss for s in wordnet_synsets("noun", limit=64)]
    except FileNotFoundError:
        glosses = []
    return answers + glosses


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


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
    from training.quality import ndcg_at_k

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
    served = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
    assert cos_rows(served, int8_encoder.encode(texts, QUERY)).min() >= 0.99999


def test_bad_quantize_values_are_clear_errors() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    with pytest.raises(ValueError, match=r"unknown quantize 'int4'; valid: \['int8'\]"):
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
