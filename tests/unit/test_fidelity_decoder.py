"""Fidelity to sentence-transformers on decoder embedders with instructions (Qwen3-Embedding, e5-mistral-instruct).

The reference is sentence-transformers itself (the installed version, 6.3 when written) loading the SAME
checkpoint folder: ``SentenceTransformer(folder).encode_query`` (its ``query`` prompt prepended) and
``encode_document`` (its ``document`` prompt, ``""``). Every vector of ours, fp32 on CPU, must have a cosine of
at least :data:`MIN_COSINE` with the reference row, whichever entry point computed it: the encoder, the
LangChain and LlamaIndex classes, the Serve HTTP app (without Ray) and the batch paths (without Ray).

The checkpoints are built at test time by :func:`tests.checkpoints_decoder.build_tiny_decoder` (about a
second each): a byte-level BPE tokenizer trained offline with ``tokenizers`` on WordNet glosses that appends
EOS to every sequence (and, for Llama, starts with BOS), a randomly initialised ``Qwen3Model`` or
``LlamaModel`` (hidden 64, 2 layers, seed 0), and the pipeline Transformer -> Pooling(lasttoken,
include_prompt) -> Normalize with the retrieval prompt on queries only, saved by sentence-transformers' own
``save()`` (``*-st``) or rewritten as the hub repositories ship it (``*-hub``; Qwen3 left-pads there).

The texts are real: WordNet glosses the tokenizer never saw, of every length up to one truncated at
``max_seq_length``, chatterbot questions, a bare word and a gloss wrapped in whitespace; every text is
embedded both as a query and as a document in one call, so rows of different lengths and prompts share a batch.
:func:`test_the_bar_is_discriminating` shows that the bar rejects what a wrong decoder path would give (mean
pooling, a padding position, a missing EOS, a missing prompt).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from instructor_plugins.model import InstructorEncoder
from tests.checkpoints_decoder import MAX_SEQ_LENGTH, build_tiny_decoder, query_prompt

MIN_COSINE = 0.99999
# Well below MIN_COSINE: what a wrong vector scores at most on these texts (see test_the_bar_is_discriminating).
WRONG_MAX_COSINE = 0.9999
VARIANTS = {
    "qwen3-st": ("qwen3", "st"),
    "qwen3-hub": ("qwen3", "hub"),
    "llama-st": ("llama", "st"),
    "llama-hub": ("llama", "hub"),
}
PLUGIN_VARIANT = "qwen3-hub"  # what users download: Qwen3-Embedding's hub files, left-padded by sentence-transformers
FALLBACK_QUESTIONS = [
    "What is the boiling point of water at sea level?",
    "Who wrote the novel Frankenstein?",
    "How do airplanes stay in the air?",
    "Why is the sky blue?",
]
BATCH = 16  # rows per forward pass: rows of different lengths share a batch


@dataclass
class Decoder:
    """One checkpoint, our encoder on it and sentence-transformers on it."""

    name: str
    arch: str
    root: Path
    prompt: str
    encoder: InstructorEncoder
    st: Any


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def assert_match(got: Any, want: np.ndarray, label: str) -> float:
    """Every row's cosine with the reference is at least MIN_COSINE; prints and returns the smallest."""
    got = np.asarray(got, dtype=np.float32)
    assert got.shape == want.shape, f"{label}: shape {got.shape}, sentence-transformers {want.shape}"
    cos = cosine_rows(got, want)
    low = float(cos.min())
    print(f"\n{label}: min cos {low:.8f} over {len(cos)} rows")
    bad = [f"row {i}: cos {c:.7f}" for i, c in enumerate(cos) if not c >= MIN_COSINE]
    assert not bad, f"{label} differs from sentence-transformers on {len(bad)} rows:\n" + "\n".join(bad)
    return low


def real_texts() -> list[str]:
    """Real texts of varied length: unseen WordNet glosses, questions, a word, whitespace, a truncated one."""
    from instructor_plugins.corpora import chatterbot_pairs, wordnet_synsets

    try:
        synsets = wordnet_synsets("noun", limit=7000)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    unseen = sorted({s.definition for s in synsets[5000:]}, key=len)  # the tokenizer trained on the first 4000
    glosses = [unseen[int(q * (len(unseen) - 1))] for q in (0.02, 0.2, 0.45, 0.7, 0.9, 1.0)]
    try:
        questions = [p.question for p in chatterbot_pairs() if p.question.endswith("?") and len(p.question) > 20][:4]
    except (FileNotFoundError, ImportError):
        questions = []
    questions = questions if len(questions) == 4 else FALLBACK_QUESTIONS
    long_text = " ".join(unseen[-12:])  # well over MAX_SEQ_LENGTH tokens: truncated, EOS kept
    return [*glosses, *questions, synsets[5000].lemmas[0], f"  {unseen[len(unseen) // 3]}\n", long_text]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return real_texts()


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Decoder]:
    """Checkpoints built on first use (a second each), shared by the tests of this module."""
    if not Path("/usr/share/wordnet/data.noun").is_file():
        pytest.skip("WordNet is not installed (apt-get install wordnet-base)")
    base = tmp_path_factory.mktemp("decoders")
    cache: dict[str, Decoder] = {}

    def get(name: str) -> Decoder:
        if name not in cache:
            from sentence_transformers import SentenceTransformer

            arch, layout = VARIANTS[name]
            root = build_tiny_decoder(base / name, arch=arch, layout=layout)
            encoder = InstructorEncoder.load(root, device="cpu")
            st = SentenceTransformer(str(root), device="cpu")
            cache[name] = Decoder(name, arch, root, query_prompt(arch), encoder, st)
        return cache[name]

    return get


@pytest.fixture(scope="module", params=list(VARIANTS))
def decoder(request: pytest.FixtureRequest, build: Callable[[str], Decoder]) -> Decoder:
    return build(request.param)


@pytest.fixture(scope="module")
def plugin_decoder(build: Callable[[str], Decoder]) -> Decoder:
    return build(PLUGIN_VARIANT)


def reference(decoder: Decoder, texts: list[str], side: str) -> np.ndarray:
    """sentence-transformers' vectors of ``texts`` as queries or documents (its prompts, its padding side)."""
    encode = decoder.st.encode_query if side == "query" else decoder.st.encode_document
    return np.asarray(encode(texts, batch_size=BATCH, convert_to_numpy=True), dtype=np.float32)


def mixed(texts: list[str], prompt: str) -> tuple[list[str], list[str], list[tuple[str, int]]]:
    """Every text as a query and as a document, interleaved: rows, instructions, and (side, text index)."""
    rows, instructions, where = [], [], []
    for i, text in enumerate(texts):
        for side in ("query", "document") if i % 2 else ("document", "query"):
            rows.append(text)
            instructions.append(prompt if side == "query" else "")
            where.append((side, i))
    return rows, instructions, where


def mixed_reference(decoder: Decoder, texts: list[str]) -> np.ndarray:
    refs = {"query": reference(decoder, texts, "query"), "document": reference(decoder, texts, "document")}
    return np.stack([refs[side][i] for side, i in mixed(texts, decoder.prompt)[2]])


# ---------------------------------------------------------------------------------------------- the fixture


def test_fixture_is_a_decoder_embedder_with_eos_appended(decoder: Decoder, texts: list[str]) -> None:
    config = json.loads((decoder.root / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == decoder.arch and config["hidden_size"] == 64
    assert json.loads((decoder.root / "tokenizer.json").read_text(encoding="utf-8"))["model"]["type"] == "BPE"
    tokenizer = decoder.st.tokenizer
    ids = tokenizer([decoder.prompt + t for t in texts], truncation=True, max_length=MAX_SEQ_LENGTH)["input_ids"]
    assert all(row[-1] == tokenizer.eos_token_id for row in ids)  # EOS appended, kept when truncated
    if decoder.arch == "llama":
        assert all(row[0] == tokenizer.bos_token_id for row in ids)
    lengths = sorted(len(row) for row in tokenizer(texts)["input_ids"])
    assert lengths[0] <= 12 and lengths[-1] > MAX_SEQ_LENGTH and len(set(lengths)) >= len(texts) // 2  # rows pad
    pooling = decoder.st[1]
    assert pooling.pooling_mode == "lasttoken" and pooling.include_prompt is True
    assert decoder.st.prompts == {"query": decoder.prompt, "document": ""}
    assert decoder.st.max_seq_length == MAX_SEQ_LENGTH
    assert tokenizer.padding_side == ("left" if decoder.name == "qwen3-hub" else "right")


# ---------------------------------------------------------------------------------------------- the encoder


def test_encoder_reads_lasttoken_pooling_and_the_prompts(decoder: Decoder) -> None:
    enc = decoder.encoder
    assert enc.spec.family == "sentence-transformers" and enc.spec.normalize and not enc.spec.dense
    assert enc.spec.pooling.modes == ("lasttoken",) and enc.spec.pooling.include_prompt is True
    assert enc.defaults_source == "ST prompts"
    assert (enc.defaults.instruction_trained, enc.defaults.query, enc.defaults.document) == (True, decoder.prompt, "")
    assert enc.max_seq_length == MAX_SEQ_LENGTH and enc.dim == 64


def test_mixed_instructions_in_one_call_match_sentence_transformers(decoder: Decoder, texts: list[str]) -> None:
    rows, instructions, _ = mixed(texts, decoder.prompt)
    got = decoder.encoder.encode(rows, instructions, batch_size=BATCH)
    assert_match(got, mixed_reference(decoder, texts), f"{decoder.name} encoder, mixed instructions")


def test_vectors_do_not_depend_on_batching_or_padding(decoder: Decoder, texts: list[str]) -> None:
    rows, instructions, _ = mixed(texts, decoder.prompt)
    one = decoder.encoder.encode(rows, instructions, batch_size=1)  # no padding at all
    for batch_size in (5, BATCH, 64):
        got = decoder.encoder.encode(rows, instructions, batch_size=batch_size)
        assert_match(got, one, f"{decoder.name} encoder, batch_size {batch_size} vs 1")
        np.testing.assert_allclose(got, one, atol=2e-6)


@pytest.mark.parametrize("side", ["left", "right"])
def test_either_padding_side_of_sentence_transformers_agrees(decoder: Decoder, texts: list[str], side: str) -> None:
    """Ours right-pads and pools the last real token; sentence-transformers pads as told and must agree."""
    tokenizer = decoder.st.tokenizer
    before = tokenizer.padding_side
    tokenizer.padding_side = side
    try:
        mask = tokenizer(texts, padding=True)["attention_mask"]
        assert any(row[0 if side == "left" else -1] == 0 for row in mask)  # this side really is padded
        want = mixed_reference(decoder, texts)
    finally:
        tokenizer.padding_side = before
    rows, instructions, _ = mixed(texts, decoder.prompt)
    got = decoder.encoder.encode(rows, instructions, batch_size=BATCH)
    assert_match(got, want, f"{decoder.name} encoder vs sentence-transformers {side}-padded")


def test_the_bar_is_discriminating(decoder: Decoder, texts: list[str]) -> None:
    """What a wrong decoder path gives scores well below MIN_COSINE on these texts, so the bar means something."""
    enc = decoder.encoder
    docs = reference(decoder, texts, "document")
    blank = [""] * len(texts)
    worst: dict[str, float] = {}

    before = enc.pooling
    enc.pooling = dataclasses.replace(before, modes=("mean",))
    try:
        worst["mean pooling"] = float(cosine_rows(enc.encode(texts, blank, batch_size=BATCH), docs).max())
    finally:
        enc.pooling = before
    assert enc.pooling.modes == ("lasttoken",)

    no_eos = [row[:-1] for row in enc.token_ids(texts, blank)]
    worst["EOS not appended"] = float(cosine_rows(enc.encode_token_ids(no_eos, blank, batch_size=BATCH), docs).max())

    worst["query prompt left out"] = float(
        cosine_rows(enc.encode(texts, blank, batch_size=BATCH), reference(decoder, texts, "query")).max()
    )

    features = enc.tokenize(texts, blank)  # one right-padded batch of every text
    padded = (features.attention_mask[:, -1] == 0).numpy()
    assert padded.sum() >= len(texts) - 2
    with torch.inference_mode():
        hidden = enc.module.encoder(input_ids=features.input_ids, attention_mask=features.attention_mask)
        at_end = torch.nn.functional.normalize(hidden.last_hidden_state[:, -1].float(), dim=-1).numpy()
    worst["last position, padding"] = float(cosine_rows(at_end[padded], docs[padded]).max())

    print(f"\n{decoder.name} wrong paths, max cos: " + ", ".join(f"{k} {v:.5f}" for k, v in worst.items()))
    assert all(v < WRONG_MAX_COSINE for v in worst.values()), worst


# ---------------------------------------------------------------------------------------------- plugin classes


def test_langchain_defaults_are_the_checkpoint_prompts(plugin_decoder: Decoder, texts: list[str]) -> None:
    from instructor_plugins.langchain import InstructorEmbeddings

    emb = InstructorEmbeddings(model=str(plugin_decoder.root), device="cpu", batch_size=BATCH)
    instructions = emb.instructions()
    assert (instructions.query, instructions.document) == (plugin_decoder.prompt, "")
    queries = np.array([emb.embed_query(t) for t in texts])
    assert_match(queries, reference(plugin_decoder, texts, "query"), "LangChain embed_query")
    docs = emb.embed_documents(texts)
    assert_match(docs, reference(plugin_decoder, texts, "document"), "LangChain embed_documents")


async def test_langchain_async_matches_too(plugin_decoder: Decoder, texts: list[str]) -> None:
    from instructor_plugins.langchain import InstructorEmbeddings

    emb = InstructorEmbeddings(model=str(plugin_decoder.root), device="cpu", batch_size=BATCH)
    assert_match([await emb.aembed_query(texts[-1])], reference(plugin_decoder, texts[-1:], "query"), "aembed_query")
    docs = await emb.aembed_documents(texts)
    assert_match(docs, reference(plugin_decoder, texts, "document"), "LangChain aembed_documents")


def test_llama_index_defaults_are_the_checkpoint_prompts(plugin_decoder: Decoder, texts: list[str]) -> None:
    from instructor_plugins.llama_index import InstructorEmbedding

    emb = InstructorEmbedding(model_name=str(plugin_decoder.root), device="cpu", embed_batch_size=BATCH)
    instructions = emb.instructions()
    assert (instructions.query, instructions.document) == (plugin_decoder.prompt, "")
    queries = np.array([emb.get_query_embedding(t) for t in texts])
    assert_match(queries, reference(plugin_decoder, texts, "query"), "LlamaIndex get_query_embedding")
    docs = emb.get_text_embedding_batch(texts)
    assert_match(docs, reference(plugin_decoder, texts, "document"), "LlamaIndex get_text_embedding_batch")


# ---------------------------------------------------------------------------------------------- Serve, no Ray


async def test_serve_per_request_instruction_matches(plugin_decoder: Decoder, texts: list[str]) -> None:
    import httpx

    from ray_backend.serving.app import create_app
    from ray_backend.serving.service import EmbeddingService

    service = EmbeddingService(encoder=plugin_decoder.encoder)
    transport = httpx.ASGITransport(app=create_app(service))
    rows, instructions, _ = mixed(texts, plugin_decoder.prompt)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        info = (await client.get("/info")).json()
        as_queries = await client.post("/embed", json={"texts": texts, "instruction": plugin_decoder.prompt})
        as_docs = await client.post("/v1/embeddings", json={"input": texts})
        pairs = await client.post("/embed", json={"pairs": [list(p) for p in zip(instructions, rows, strict=True)]})
    assert (info["query_instruction"], info["document_instruction"]) == (plugin_decoder.prompt, "")
    assert info["model_info"]["pooling"]["modes"] == ["lasttoken"] and info["model_info"]["pooling"]["include_prompt"]
    for response in (as_queries, as_docs, pairs):
        assert response.status_code == 200, response.text
    want_queries = reference(plugin_decoder, texts, "query")
    assert_match(as_queries.json()["embeddings"], want_queries, "Serve /embed with the query prompt")
    docs = [d["embedding"] for d in as_docs.json()["data"]]
    assert_match(docs, reference(plugin_decoder, texts, "document"), "Serve /v1/embeddings, no instruction")
    assert_match(pairs.json()["embeddings"], mixed_reference(plugin_decoder, texts), "Serve /embed pairs, mixed")


# ---------------------------------------------------------------------------------------------- batch, no Ray


@pytest.mark.parametrize("side", ["query", "document"])
def test_batch_job_in_process_matches(plugin_decoder: Decoder, texts: list[str], tmp_path: Path, side: str) -> None:
    from ray_backend.batch import BatchConfig, run_in_process
    from ray_backend.batch.plan import OutputDir
    from tests.batch_data import vectors, write_rows

    rows = [{"id": f"row-{i}", "text": t} for i, t in enumerate(texts)]
    inp = write_rows(rows, tmp_path / "docs.jsonl")
    instruction = plugin_decoder.prompt if side == "query" else ""
    config = BatchConfig(
        input=str(inp), output=str(tmp_path / "out"), instruction=instruction, rows_per_shard=5, batch_size=4
    )
    manifest = run_in_process(dataclasses.replace(config, progress=False), plugin_decoder.encoder)
    assert (manifest.rows_out, manifest.dim) == (len(texts), 64)
    out = OutputDir(tmp_path / "out").read()
    assert out["id"].to_pylist() == [r["id"] for r in rows]
    assert_match(vectors(out), reference(plugin_decoder, texts, side), f"batch job, {side} instruction")


def test_ray_data_embedder_per_row_instructions_match(plugin_decoder: Decoder, texts: list[str]) -> None:
    import pyarrow as pa

    from ray_backend.batch.embedder import InstructorBatchEmbedder

    embedder = InstructorBatchEmbedder(
        str(plugin_decoder.root), instruction_column="task", device="cpu", batch_size=BATCH
    )
    rows, instructions, _ = mixed(texts, plugin_decoder.prompt)
    out = embedder(pa.table({"text": rows, "task": instructions}))
    got = np.stack(out["embedding"].to_numpy(zero_copy_only=False))
    assert_match(got, mixed_reference(plugin_decoder, texts), "InstructorBatchEmbedder, per-row instructions")
