"""Fidelity to the official InstructorEmbedding package, on a checked-in checkpoint it made and vectors it computed.

The fixture and the official vectors are described in :mod:`tests.references`. The hub layout of
``hkunlp/instructor-*`` (plain sentence-transformers module types, old-format ``1_Pooling/config.json`` without
``include_prompt``, a model card naming the package) is made here from the same files.
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
from tests.references import MIN_COSINE, OFFICIAL, assert_rows_match, official_reference, reference_vectors


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return official_reference()


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("instructor-t5") / "hub"
    build_hub(OFFICIAL, root)
    return root


@pytest.fixture(scope="module", params=["official", "hub"])
def layout(request: pytest.FixtureRequest, hub_dir: Path) -> Path:
    return OFFICIAL if request.param == "official" else hub_dir


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
