"""backend="onnx": the same vectors as torch (both pooling families), one cached export, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instructor_plugins import runtimes
from instructor_plugins.checkpoint import bundled_model_dir
from instructor_plugins.corpora import chatterbot_pairs
from instructor_plugins.model import InstructorEncoder, ModelLoadError
from instructor_plugins.runtimes import MIN_EXACT_COS, BackendUnavailable, export_dir
from tests.exported import assert_exact_to_torch, cos_rows

pytest.importorskip("onnxruntime", reason="backend='onnx' needs the onnx extra")

T5_FIXTURE = Path(__file__).parents[1] / "fixtures" / "instructor_t5" / "official"
INSTRUCTIONS = ["Represent the question for retrieving supporting answers: ", "", "Represent the sentence: "]


@pytest.fixture(scope="module")
def onnx_encoder(export_cache: Path) -> InstructorEncoder:
    return InstructorEncoder.load(device="cpu", backend="onnx")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Real texts of every length: chatterbot answers from one word to paragraphs, and an empty one."""
    answers = sorted({p.answer for p in chatterbot_pairs()}, key=len)
    return ["", *answers[:: max(1, len(answers) // 120)]]


def test_onnx_vectors_equal_torch_with_mixed_instructions(
    onnx_encoder: InstructorEncoder, bundled_encoder: InstructorEncoder, texts: list[str]
) -> None:
    assert_exact_to_torch(onnx_encoder, bundled_encoder, texts, [INSTRUCTIONS[i % 3] for i in range(len(texts))])


def test_onnx_keeps_the_instructor_pooling_of_a_t5_checkpoint(export_cache: Path, texts: list[str]) -> None:
    # The official-layout INSTRUCTOR fixture pools the text tokens only: the mask must survive the export.
    torch_enc = InstructorEncoder.load(T5_FIXTURE, device="cpu")
    onnx_enc = InstructorEncoder.load(T5_FIXTURE, device="cpu", backend="onnx")
    assert onnx_enc.pooling.include_prompt is False and onnx_enc.runtime.backend == "onnx"
    rows = texts[:40]
    instructions = [INSTRUCTIONS[i % 3] for i in range(len(rows))]
    want, got = torch_enc.encode(rows, instructions), onnx_enc.encode(rows, instructions)
    assert cos_rows(got, want).min() >= MIN_EXACT_COS
    # and the instruction still changes the vector exactly as in torch
    plain = onnx_enc.encode(rows[1:5])
    assert not np.allclose(plain, got[1:5], atol=1e-3)


def test_the_export_is_cached_and_reported(onnx_encoder: InstructorEncoder, export_cache: Path) -> None:
    runtime = onnx_encoder.describe()["runtime"]
    assert runtime["backend"] == "onnx" and runtime["probe_min_cos"] >= MIN_EXACT_COS
    assert "onnxruntime" in runtime["detail"] and "backend='onnx'" in repr(onnx_encoder)
    model = export_dir(bundled_model_dir()) / "model.onnx"
    assert model.is_file() and model.parent.parent == export_cache
    before = model.stat().st_mtime_ns
    again = InstructorEncoder.load(device="cpu", backend="onnx")
    assert str(model) in again.runtime.detail and model.stat().st_mtime_ns == before  # reused, not re-exported
    assert not [p for p in export_cache.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_a_changed_checkpoint_gets_its_own_export(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(bundled_model_dir(), copy)
    first = export_dir(copy)
    (copy / "config_sentence_transformers.json").write_text('{"prompts": {}}', encoding="utf-8")
    assert export_dir(copy) != first


def test_a_failed_probe_refuses_the_backend(monkeypatch: pytest.MonkeyPatch, export_cache: Path) -> None:
    monkeypatch.setattr(runtimes, "MIN_EXACT_COS", 1.000001)  # no export can reach it: the refusal path runs
    with pytest.raises(ModelLoadError, match=r"backend='onnx'.*min cos .* use backend='torch'"):
        InstructorEncoder.load(device="cpu", backend="onnx")


def test_the_onnx_encoder_refuses_to_save(onnx_encoder: InstructorEncoder, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend='onnx'.*backend='torch' to save"):
        onnx_encoder.save(tmp_path / "out")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "tensorrt"}, r"unknown backend 'tensorrt'; valid: \['torch', 'onnx', 'openvino'\]"),
        ({"backend": "onnx", "device": "cuda"}, r"CPU only.*'cuda'"),
        ({"backend": "onnx", "dtype": "bfloat16"}, r"float32 export.*'bfloat16'"),
        ({"backend": "onnx", "quantize": "int4"}, r"unknown quantize 'int4'"),
    ],
)
def test_bad_backend_values_are_clear_errors(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InstructorEncoder.load(**kwargs)


def test_a_missing_runtime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(BackendUnavailable, match=r"\['onnxruntime'\].*pip install \"instructor-plugins\[onnx\]\""):
        InstructorEncoder.load(backend="onnx")


def test_plugin_classes_take_the_backend(
    onnx_encoder: InstructorEncoder, bundled_encoder: InstructorEncoder, export_cache: Path
) -> None:
    from instructor_plugins.langchain import InstructorEmbeddings
    from instructor_plugins.llama_index import InstructorEmbedding

    query = "How do I reset my password?"
    want = bundled_encoder.encode([query], INSTRUCTIONS[0])[0]
    lc = InstructorEmbeddings(query_instruction=INSTRUCTIONS[0], model_kwargs={"backend": "onnx"})
    li = InstructorEmbedding(query_instruction=INSTRUCTIONS[0], backend="onnx")
    assert lc.backend == "onnx"
    for got in (lc.embed_query(query), li.get_query_embedding(query)):
        assert float(np.dot(got, want)) >= MIN_EXACT_COS
    with pytest.raises(ValueError, match="backend"):
        InstructorEmbeddings(backend="tensorrt")


async def test_the_server_loads_the_backend_and_reports_it(
    export_cache: Path, bundled_encoder: InstructorEncoder
) -> None:
    import httpx

    from ray_backend.serving.app import create_app
    from ray_backend.serving.service import EmbeddingService

    service = EmbeddingService(device="cpu", backend="onnx", background=False)
    texts = ["How are you?", "Fine, and you?", "The cat sat on the mat."]
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        info = (await client.get("/info")).json()
        r = await client.post("/v1/embeddings", json={"input": texts, "instruction": INSTRUCTIONS[0]})
    assert info["runtime"]["backend"] == "onnx" and info["runtime"]["probe_min_cos"] >= MIN_EXACT_COS
    assert info["model_info"]["runtime"] == info["runtime"]
    served = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
    assert cos_rows(served, bundled_encoder.encode(texts, INSTRUCTIONS[0])).min() >= MIN_EXACT_COS


def test_serve_args_and_cli_check_the_backend(capsys: pytest.CaptureFixture[str]) -> None:
    from ray_backend.serve import ServeArgs, _parse_cli

    assert ServeArgs(backend="onnx").backend == "onnx" and ServeArgs().backend is None
    for bad, message in (
        ({"backend": "tensorrt"}, "torch"),
        ({"backend": "onnx", "num_gpus": 1}, "CPU only"),
        ({"backend": "onnx", "quantize": "int8", "device": "cuda"}, "CPU"),
        ({"backend": "onnx", "dtype": "bf16"}, "float32 export"),
    ):
        with pytest.raises(ValueError, match=message):
            ServeArgs.model_validate(bad)
    for argv, message in (
        (["--backend", "tensorrt"], "invalid choice: 'tensorrt'"),
        (["--backend", "onnx", "--num-gpus", "1"], "CPU only"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            _parse_cli(argv, "instructor serve")
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert _parse_cli(["--backend", "onnx"], "instructor serve")[0].backend == "onnx"


def test_instructor_serve_without_the_runtime_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from ray_backend.serve import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["--backend", "onnx"], prog="instructor serve") == 2  # before Ray or Serve start
    assert "instructor serve: error: --backend onnx: backend='onnx' needs ['onnxruntime']" in capsys.readouterr().err


def test_onnx_encode_in_buckets_equals_one_padded_block(onnx_encoder: InstructorEncoder) -> None:
    from tests.unit.test_buckets import assert_buckets_change_nothing

    assert_buckets_change_nothing(onnx_encoder)
