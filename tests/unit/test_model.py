"""InstructorEncoder numerics on the real bundled model and a tiny INSTRUCTOR-layout T5."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from instructor_plugins.checkpoint import ModelLoadError, bundled_model_dir, read_checkpoint
from instructor_plugins.corpora import chatterbot_pairs
from instructor_plugins.model import InstructorEncoder
from tests.references import cosine_rows, sentence_transformers_vectors

QUERY = "Represent the question for retrieving supporting documents: "
DOC = "Represent the document for retrieval: "
STS = "Represent the sentence: "


@pytest.fixture(scope="module")
def texts() -> list[str]:
    pairs = chatterbot_pairs()
    # Real text of very different lengths, so batches carry real padding.
    return [pairs[i].answer for i in range(0, 400, 20)] + [pairs[i].question for i in range(5, 400, 40)]


# ---------------------------------------------------------------- tiny INSTRUCTOR-layout T5
@pytest.fixture(scope="module")
def tiny_t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random T5EncoderModel in the hkunlp/instructor-* layout: Transformer, mean Pooling, Dense, Normalize.

    Written by hand here (not by our ``save``) so that loading is tested against the layout itself. As on the
    hub, the pooling config has no ``include_prompt`` and the model card names the official package: that, not
    the name, makes it an INSTRUCTOR checkpoint.
    """
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, T5Config, T5EncoderModel

    root = tmp_path_factory.mktemp("tiny-instructor-t5")
    tokenizer = AutoTokenizer.from_pretrained(bundled_model_dir())
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=tokenizer.vocab_size,
        d_model=64,
        d_kv=16,
        d_ff=128,
        num_layers=2,
        num_heads=4,
        pad_token_id=tokenizer.pad_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    T5EncoderModel(config).save_pretrained(root)
    tokenizer.save_pretrained(root)
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 64, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False})
    )
    (root / "2_Dense").mkdir()
    (root / "2_Dense" / "config.json").write_text(
        json.dumps(
            {
                "in_features": 64,
                "out_features": 32,
                "bias": False,
                "activation_function": "torch.nn.modules.linear.Identity",
            }
        )
    )
    save_file({"linear.weight": torch.randn(32, 64) / 8}, str(root / "2_Dense" / "model.safetensors"))
    (root / "3_Normalize").mkdir()
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    (root / "README.md").write_text("# tiny\n\n```python\nfrom InstructorEmbedding import INSTRUCTOR\n```\n")
    return root


@pytest.fixture(scope="module")
def tiny_t5(tiny_t5_dir: Path) -> InstructorEncoder:
    return InstructorEncoder.load(tiny_t5_dir, device="cpu")


def test_tiny_t5_loads_as_instructor(tiny_t5: InstructorEncoder) -> None:
    from transformers import T5EncoderModel

    assert isinstance(tiny_t5.module.encoder, T5EncoderModel)
    assert tiny_t5.dim == 32 and tiny_t5.max_seq_length == 128
    assert len(tiny_t5.module.dense) == 1 and tiny_t5.module.dense[0].bias is None
    assert tiny_t5.spec.family == "instructor" and "README.md" in tiny_t5.spec.family_reason
    assert not tiny_t5.pooling.include_prompt and tiny_t5.defaults_source == "INSTRUCTOR layout"


def test_the_model_card_not_the_name_makes_instructor(tiny_t5_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "instructor-large"  # a name that says INSTRUCTOR, without the card that does
    shutil.copytree(tiny_t5_dir, copy)
    (copy / "README.md").unlink()
    spec = read_checkpoint(copy)
    assert spec.family == "sentence-transformers" and spec.pooling.include_prompt


# ---------------------------------------------------------------- equivalences
@pytest.mark.parametrize("which", ["bundled", "t5"])
def test_mixed_instructions_equal_rows_alone(
    which: str, bundled_encoder: InstructorEncoder, tiny_t5: InstructorEncoder, texts: list[str]
) -> None:
    enc = bundled_encoder if which == "bundled" else tiny_t5
    instructions = [[QUERY, DOC, STS, None, ""][i % 5] for i in range(len(texts))]
    mixed = enc.encode(texts, instructions, batch_size=8)
    alone = np.stack([enc.encode([t], i)[0] for t, i in zip(texts, instructions, strict=True)])
    assert mixed.shape == (len(texts), enc.dim) and mixed.dtype == np.float32
    assert np.abs(mixed - alone).max() <= 1e-5


def test_same_text_same_vector_whatever_batch(bundled_encoder: InstructorEncoder, texts: list[str]) -> None:
    target = "What is the capital of France?"
    ref = bundled_encoder.encode([target], QUERY)[0]
    cases = [(1, texts[:4], 2), (3, texts, 0), (7, texts, len(texts) // 2), (64, texts, len(texts))]
    for batch_size, others, position in cases:
        batch = others[:position] + [target] + others[position:]
        out = bundled_encoder.encode(batch, QUERY, batch_size=batch_size)
        assert np.abs(out[position] - ref).max() <= 1e-5


def test_instruction_changes_the_vector(bundled_encoder: InstructorEncoder) -> None:
    a, b, c = bundled_encoder.encode(["The cat sat on the mat."] * 3, [QUERY, DOC, None])
    assert float(a @ b) < 0.999 and float(a @ c) < 0.999


@pytest.mark.parametrize("which", ["bundled", "t5"])
@pytest.mark.parametrize("instruction", [QUERY, STS, None])
def test_parity_with_sentence_transformers(
    which: str,
    instruction: str | None,
    bundled_encoder: InstructorEncoder,
    tiny_t5: InstructorEncoder,
    tiny_t5_dir: Path,
    texts: list[str],
) -> None:
    enc, path = (bundled_encoder, bundled_model_dir()) if which == "bundled" else (tiny_t5, tiny_t5_dir)
    # The bundled MiniLM pools its prompt (no include_prompt key: sentence-transformers' default); INSTRUCTOR does not.
    ref = sentence_transformers_vectors(path, texts, instruction, None if which == "bundled" else False)
    ours = enc.encode(texts, instruction)
    assert cosine_rows(ours, ref).min() >= 0.99999


def test_pooled_positions_are_exactly_the_text_tokens(bundled_encoder: InstructorEncoder) -> None:
    text = "Paris is the capital and most populous city of France."
    # The bundled MiniLM pools every token, its instruction too (the checkpoint says nothing else).
    ids = bundled_encoder.tokenizer(QUERY + text, return_tensors="pt")
    with torch.inference_mode():
        hidden = bundled_encoder.module.encoder(**ids).last_hidden_state[0]
    manual = torch.nn.functional.normalize(hidden.mean(0), dim=0).numpy()
    assert np.abs(bundled_encoder.encode([text], QUERY)[0] - manual).max() <= 1e-5
    enc = InstructorEncoder.load(device="cpu")
    enc.without_instruction_pooling()  # the INSTRUCTOR method: the instruction is left out of pooling
    k = enc.instruction_length(QUERY)
    # BERT: the instruction alone is [CLS] + instruction tokens + [SEP]; [SEP] is not masked.
    instruction_ids = enc.tokenizer(QUERY)["input_ids"]
    assert k == len(instruction_ids) - 1
    ids = enc.tokenizer(QUERY + text, return_tensors="pt")
    with torch.inference_mode():
        hidden = enc.module.encoder(**ids).last_hidden_state[0]
    assert ids["input_ids"][0, :k].tolist() == instruction_ids[:-1]  # the masked prefix is the instruction
    manual = torch.nn.functional.normalize(hidden[k:].mean(0), dim=0).numpy()
    assert np.abs(enc.encode([text], QUERY)[0] - manual).max() <= 1e-5
    # Without an instruction every real token is pooled, [CLS] included.
    ids = enc.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        hidden = enc.module.encoder(**ids).last_hidden_state[0]
    manual = torch.nn.functional.normalize(hidden.mean(0), dim=0).numpy()
    assert np.abs(enc.encode([text])[0] - manual).max() <= 1e-5


def _tokenizer_with_template(template: str, special: list[tuple[str, int]]):  # noqa: ANN202
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_file(str(bundled_model_dir() / "tokenizer.json"))
    tok.post_processor = TemplateProcessing(single=template, special_tokens=special)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]"
    )


@pytest.mark.parametrize(
    ("template", "leading", "trailing"),
    [
        ("[CLS] $A [SEP]", 1, 1),  # BERT: BOS-like + EOS-like
        ("$A [SEP]", 0, 1),  # T5: EOS only
        ("$A", 0, 0),  # no special tokens at all
        ("[CLS] $A", 1, 0),  # BOS only
    ],
)
def test_instruction_length_counts_what_the_tokenizer_appends(
    bundled_encoder: InstructorEncoder, template: str, leading: int, trailing: int
) -> None:
    tokenizer = _tokenizer_with_template(template, [("[CLS]", 101), ("[SEP]", 102)])
    enc = InstructorEncoder(
        bundled_encoder.module,
        tokenizer,
        bundled_encoder.spec,
        device=bundled_encoder.device,
        dtype=bundled_encoder.dtype,
        name="probe",
    )
    bare = len(tokenizer(QUERY, add_special_tokens=False)["input_ids"])
    assert enc._trailing_specials == trailing
    assert enc.instruction_length(QUERY) == leading + bare
    assert enc.instruction_length("") == 0


def test_truncation_keeps_a_finite_vector(bundled_encoder: InstructorEncoder) -> None:
    enc = bundled_encoder
    long_instruction = "Represent the " + "very " * 400 + "long sentence: "
    text = "A short text."
    out = enc.encode([text, "word " * 1000], [long_instruction, None])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    ids = enc.token_ids(["word " * 1000], [""])
    assert len(ids[0]) == enc.max_seq_length == 256  # from sentence_bert_config.json


# ---------------------------------------------------------------- save / load / layouts
@pytest.mark.parametrize("which", ["bundled", "t5"])
def test_save_load_roundtrip(
    which: str, bundled_encoder: InstructorEncoder, tiny_t5: InstructorEncoder, tmp_path: Path, texts: list[str]
) -> None:
    enc = bundled_encoder if which == "bundled" else tiny_t5
    saved = enc.save(tmp_path / "model")
    again = InstructorEncoder.load(saved, device="cpu")
    assert (again.dim, again.max_seq_length) == (enc.dim, enc.max_seq_length)
    instructions = [QUERY if i % 2 else DOC for i in range(len(texts))]
    assert np.abs(again.encode(texts, instructions) - enc.encode(texts, instructions)).max() <= 1e-6
    spec = read_checkpoint(saved)
    assert spec.is_sentence_transformers and spec.normalize and len(spec.dense) == (which == "t5")
    # sentence-transformers reads what we write, with the same vectors.
    ref = sentence_transformers_vectors(saved, texts[:5], QUERY)
    assert cosine_rows(again.encode(texts[:5], QUERY), ref).min() >= 0.99999


def test_plain_hf_directory_gets_mean_pooling_and_normalize(
    bundled_encoder: InstructorEncoder, tmp_path: Path, texts: list[str]
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(bundled_model_dir() / name, plain / name)
    spec = read_checkpoint(plain)
    assert not spec.is_sentence_transformers and spec.pooling.modes == ("mean",) and spec.normalize
    assert spec.pooling.include_prompt and spec.family == "plain"
    enc = InstructorEncoder.load(plain, device="cpu")
    assert enc.max_seq_length == 512  # no sentence_bert_config.json: the documented default
    # The bundled model is exactly mean pooling + normalize, so the vectors agree.
    np.testing.assert_allclose(enc.encode(texts[:6], QUERY), bundled_encoder.encode(texts[:6], QUERY), atol=1e-5)


def test_unknown_hub_id_offline_names_the_model_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as err:
        InstructorEncoder.load("hkunlp/instructor-large", device="cpu")
    message = str(err.value)
    assert "hkunlp/instructor-large" in message and "local directory" in message


def test_missing_local_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a directory"):
        InstructorEncoder.load(str(tmp_path / "nope" / "model"), device="cpu")
    with pytest.raises(ModelLoadError, match="no config.json"):
        InstructorEncoder.load(tmp_path, device="cpu")


def test_unsupported_module_is_rejected_with_choices(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "modules.json").write_text(json.dumps([{"idx": 0, "path": "", "type": "x.models.LSTM"}]))
    with pytest.raises(ModelLoadError, match=r"'x.models.LSTM'.*Transformer"):
        read_checkpoint(tmp_path)


# ---------------------------------------------------------------- bad input
def test_bad_inputs(bundled_encoder: InstructorEncoder) -> None:
    enc = bundled_encoder
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        enc.encode(["ok", 3, "ok"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"texts\[0\]"):
        enc.encode([None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="2 instructions for 3 texts"):
        enc.encode(["a", "b", "c"], [QUERY, DOC])
    with pytest.raises(TypeError, match=r"instruction\[1\]"):
        enc.encode(["a", "b"], [QUERY, 7])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="batch_size"):
        enc.encode(["a"], batch_size=0)
    empty = enc.encode([])
    assert empty.shape == (0, enc.dim) and empty.dtype == np.float32


def test_empty_string_is_embedded(bundled_encoder: InstructorEncoder) -> None:
    out = bundled_encoder.encode(["", ""], [None, QUERY])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert bundled_encoder.encode("a single string").shape == (1, bundled_encoder.dim)


def test_normalize_false_returns_raw_pooled_vectors(bundled_encoder: InstructorEncoder) -> None:
    raw = bundled_encoder.encode(["Some text to embed."], QUERY, normalize=False)
    unit = bundled_encoder.encode(["Some text to embed."], QUERY)
    assert abs(float(np.linalg.norm(raw)) - 1.0) > 1e-3
    np.testing.assert_allclose(raw / np.linalg.norm(raw), unit, atol=1e-6)


def test_dtype_and_device_defaults(bundled_encoder: InstructorEncoder) -> None:
    from instructor_plugins.model import resolve_dtype

    assert bundled_encoder.dtype == torch.float32 and bundled_encoder.device.type == "cpu"
    assert resolve_dtype(None, torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="valid"):
        resolve_dtype("int8", torch.device("cpu"))


def test_hub_id_loads_from_the_hub_cache_offline(
    bundled_encoder: InstructorEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub id resolves through the standard hub cache layout, as after a download elsewhere."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--minilm-instructor"
    shutil.copytree(bundled_model_dir(), repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    enc = InstructorEncoder.load("acme/minilm-instructor", device="cpu")
    assert enc.name == "acme/minilm-instructor"
    np.testing.assert_allclose(enc.encode(["hello"], QUERY), bundled_encoder.encode(["hello"], QUERY), atol=1e-6)


def test_encode_token_ids_equals_encode(bundled_encoder: InstructorEncoder, texts: list[str]) -> None:
    instructions = [QUERY if i % 3 else "" for i in range(len(texts))]
    ids = bundled_encoder.token_ids(texts, instructions)
    np.testing.assert_allclose(
        bundled_encoder.encode_token_ids(ids, instructions, batch_size=5),
        bundled_encoder.encode(texts, instructions, batch_size=5),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="instructions for"):
        bundled_encoder.encode_token_ids(ids, instructions[:-1])
