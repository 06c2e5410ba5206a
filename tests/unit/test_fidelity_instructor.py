"""Fidelity to the official InstructorEmbedding package, on a checked-in checkpoint it made and vectors it computed.

``tests/fixtures/instructor_t5/`` is made by ``tests/fixtures/make_instructor_t5.py`` (in a venv of its own
with ``InstructorEmbedding==1.0.1`` and sentence-transformers 2.2.2): a tiny random T5 encoder with a real
SentencePiece tokenizer, saved by the official package (``official/``), and that package's vectors for
(instruction, text) rows covering its edge cases (``reference.json``). The hub layout of ``hkunlp/instructor-*``
(plain sentence-transformers module types, old-format ``1_Pooling/config.json`` without ``include_prompt``, a
model card naming the package) is made here from the same files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from instructor_plugins.instructions import preset
from instructor_plugins.model import InstructorEncoder
from tests.fixtures.make_instructor_t5 import build_hub

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "instructor_t5"
OFFICIAL = FIXTURE / "official"
MIN_COSINE = 0.99999


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return json.loads((FIXTURE / "reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("instructor-t5") / "hub"
    build_hub(OFFICIAL, root)
    return root


@pytest.fixture(scope="module", params=["official", "hub"])
def layout(request: pytest.FixtureRequest, hub_dir: Path) -> Path:
    return OFFICIAL if request.param == "official" else hub_dir


def reference_vectors(reference: dict[str, Any]) -> np.ndarray:
    return np.array([row["vector"] for row in reference["rows"]], dtype=np.float64)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def assert_rows_match(got: np.ndarray, reference: dict[str, Any], label: str) -> None:
    cos = cosine_rows(np.asarray(got, dtype=np.float64), reference_vectors(reference))
    bad = [
        f"{row['note']}: cos {c:.7f} (official masked {row['masked_tokens']} instruction tokens)"
        for row, c in zip(reference["rows"], cos, strict=True)
        if not c >= MIN_COSINE
    ]
    assert not bad, f"{label} differs from the official package on {len(bad)} rows:\n" + "\n".join(bad)


def test_fixture_covers_the_edge_cases(reference: dict[str, Any]) -> None:
    rows = reference["rows"]
    masked = [row["masked_tokens"] for row in rows]
    counted = [row["instruction_tokens"] for row in rows]
    assert any(row["instruction"] == "" for row in rows)
    assert sum(1 for n, m in zip(counted, masked, strict=True) if n == 1 and m == 0) >= 2  # one token: nothing masked
    assert any(n == 2 and m == 2 for n, m in zip(counted, masked, strict=True))  # the smallest count that is masked
    assert any(row["text"] == "" for row in rows)
    assert max(len(row["input_ids"]) for row in rows) == reference["max_seq_length"]  # a truncated row
    assert any(row["text"] != row["text"].strip() or "\t" in row["text"] for row in rows)
    assert any(row["instruction"] != row["instruction"].strip() for row in rows)
    assert reference["versions"]["InstructorEmbedding"] == "1.0.1"
    assert reference["batched_vs_one_by_one_max_abs_diff"] < 1e-6


def test_tokenizer_is_sentencepiece(layout: Path, reference: dict[str, Any]) -> None:
    from transformers import AutoTokenizer

    assert (layout / "spiece.model").is_file()
    assert json.loads((layout / "tokenizer.json").read_text(encoding="utf-8"))["model"]["type"] == "Unigram"
    tokenizer = AutoTokenizer.from_pretrained(layout)
    joined = [(row["instruction"] + row["text"].strip()).strip() for row in reference["rows"]]
    ids = tokenizer(joined, truncation=True, max_length=reference["max_seq_length"])["input_ids"]
    # This transformers version tokenizes every row as the official package's transformers 4.40 did.
    assert ids == [row["input_ids"] for row in reference["rows"]]


def test_official_layout_and_hub_layout_match_the_official_package(layout: Path, reference: dict[str, Any]) -> None:
    enc = InstructorEncoder.load(layout, device="cpu")
    texts = [row["text"] for row in reference["rows"]]
    instructions = [row["instruction"] for row in reference["rows"]]
    got = enc.encode(texts, instructions)  # every row, its own instruction, in one call
    assert got.shape == (len(texts), reference["dim"])
    assert_rows_match(got, reference, f"InstructorEncoder on the {layout.name} layout")


def test_layout_is_an_instruction_trained_instructor_checkpoint(layout: Path) -> None:
    enc = InstructorEncoder.load(layout, device="cpu")
    retrieval = preset("retrieval")
    assert enc.defaults.instruction_trained is True
    assert enc.defaults.query == retrieval.query
    assert enc.defaults.document == retrieval.document
    assert enc.pooling.include_prompt is False


def test_reference_agrees_with_sentence_transformers_on_the_hub_layout(
    hub_dir: Path, reference: dict[str, Any]
) -> None:
    """The reference itself, cross-checked: sentence-transformers with ``include_prompt=False`` on the hub layout.

    It masks ``len(prompt tokens) - 1`` always, the official package nothing when that is 1: those rows differ.
    """
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(hub_dir), device="cpu")
    pooling = [m for m in model if hasattr(m, "include_prompt")]
    assert len(pooling) == 1
    pooling[0].include_prompt = False
    ref = reference_vectors(reference)
    for row, want in zip(reference["rows"], ref, strict=True):
        kwargs = {"prompt": row["instruction"]} if row["instruction"] else {}
        got = model.encode(row["text"], **kwargs).astype(np.float64)
        cos = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
        if row["instruction_tokens"] == 1:
            assert cos < 0.9999, f"{row['note']}: sentence-transformers masks 1 token, the official package none"
        else:
            assert cos >= MIN_COSINE, f"{row['note']}: cos {cos:.7f}"
