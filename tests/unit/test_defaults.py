"""InstructionDefaults: the lookup order, the files written, and what a saved checkpoint carries."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from instructor_plugins.defaults import (
    DEFAULTS_FILE,
    InstructionDefaults,
    find_defaults,
    read_defaults,
    write_defaults,
)
from instructor_plugins.instructions import preset
from instructor_plugins.model import InstructorEncoder

TRAINED = InstructionDefaults(True, "Represent the question: ", "Represent the passage: ")


def test_json_round_trip_and_bad_input() -> None:
    assert InstructionDefaults.from_json(TRAINED.to_json()) == TRAINED
    with pytest.raises(ValueError, match="unknown instruction-defaults keys \\['qurey'\\]"):
        InstructionDefaults.from_dict({"instruction_trained": True, "qurey": "x"})
    with pytest.raises(ValueError, match="need 'instruction_trained'"):
        InstructionDefaults.from_dict({"query": "x"})
    with pytest.raises(TypeError, match="instruction_trained must be a bool"):
        InstructionDefaults("yes")  # type: ignore[arg-type]


def test_lookup_order(tmp_path: Path) -> None:
    retrieval = preset("retrieval")
    paper = InstructionDefaults(True, retrieval.query, retrieval.document)
    assert find_defaults(None) == (InstructionDefaults(False), "not instruction-trained")
    assert find_defaults(tmp_path, "sentence-transformers") == (InstructionDefaults(False), "not instruction-trained")
    assert find_defaults(tmp_path, "instructor") == (paper, "INSTRUCTOR layout")
    # A name decides nothing: the folder of an hkunlp/instructor-* copy without its files is just a folder.
    named = tmp_path / "models--hkunlp--instructor-large" / "snapshots" / "abc"
    named.mkdir(parents=True)
    assert find_defaults(named, "sentence-transformers")[0] == InstructionDefaults(False)
    # sentence-transformers prompts beat the family
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "query: "}}))
    assert find_defaults(tmp_path, "instructor") == (InstructionDefaults(True, "query: ", ""), "ST prompts")
    # empty prompts (what sentence-transformers saves by default) say nothing
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {}}))
    assert find_defaults(tmp_path, "instructor") == (paper, "INSTRUCTOR layout")
    # instructor.json beats everything
    (tmp_path / DEFAULTS_FILE).write_text(InstructionDefaults(False).to_json())
    assert find_defaults(tmp_path, "instructor") == (InstructionDefaults(False), DEFAULTS_FILE)
    (tmp_path / DEFAULTS_FILE).write_text("[1]")
    with pytest.raises(ValueError, match="is not valid instruction defaults"):
        read_defaults(tmp_path, None)


def test_write_keeps_other_sentence_transformers_keys(tmp_path: Path) -> None:
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps({"__version__": {"x": "1"}}))
    write_defaults(tmp_path, TRAINED)
    config = json.loads((tmp_path / "config_sentence_transformers.json").read_text())
    assert config["__version__"] == {"x": "1"}
    assert config["prompts"] == {"query": TRAINED.query, "document": TRAINED.document}
    assert read_defaults(tmp_path, None) == TRAINED


def test_bundled_model_is_not_instruction_trained(bundled_encoder: InstructorEncoder) -> None:
    assert bundled_encoder.defaults == InstructionDefaults(False, "", "")


def test_saved_checkpoint_carries_its_defaults_and_loads_silently(
    tmp_path: Path, bundled_encoder: InstructorEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    encoder = InstructorEncoder.load(device="cpu")
    encoder.defaults = TRAINED
    encoder.save(tmp_path)
    with caplog.at_level(logging.WARNING):
        loaded = InstructorEncoder.load(tmp_path, device="cpu")
    assert loaded.defaults == TRAINED
    assert not [r for r in caplog.records if "MISSING" in r.getMessage() or "newly initialized" in r.getMessage()]
    np.testing.assert_allclose(loaded.encode(["a b c"]), bundled_encoder.encode(["a b c"]), atol=1e-6)
    with pytest.raises(TypeError, match="InstructionDefaults"):
        encoder.defaults = {"instruction_trained": True}  # type: ignore[assignment]


def test_sentence_transformers_prompt_names_match_our_encoder(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    encoder = InstructorEncoder.load(device="cpu")
    encoder.defaults = TRAINED
    encoder.save(tmp_path)
    st = SentenceTransformer(str(tmp_path), device="cpu")
    texts = ["how do I reset my password", "a short text"]
    ours = encoder.encode(texts, TRAINED.query)
    theirs = st.encode(texts, prompt_name="query", normalize_embeddings=True)
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
