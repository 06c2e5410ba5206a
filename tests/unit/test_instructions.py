from __future__ import annotations

import json
from importlib import resources

import pytest

from instructor_plugins.instructions import (
    PRESETS,
    TaskInstructions,
    make_instruction,
    mteb_instructions,
    mteb_task_names,
    preset,
)


def test_unified_format() -> None:
    assert make_instruction("question", "retrieving supporting documents", "Wikipedia") == (
        "Represent the Wikipedia question for retrieving supporting documents: "
    )
    assert make_instruction("document", "retrieval") == "Represent the document for retrieval: "
    assert make_instruction(" sentence ") == "Represent the sentence: "
    with pytest.raises(ValueError, match="text_type"):
        make_instruction("")


@pytest.mark.parametrize("task", PRESETS)
def test_every_preset_is_in_unified_format(task: str) -> None:
    ti = preset(task, domain="medical")
    for side in (ti.query, ti.document):
        assert side.startswith("Represent the medical ") and side.endswith(": ")


def test_retrieval_is_asymmetric_and_sts_symmetric() -> None:
    assert not preset("retrieval").symmetric
    assert preset("sts").symmetric and preset("STS") == preset("semantic-similarity")
    assert preset("Retrieval").query == "Represent the question for retrieving supporting documents: "
    assert preset("PairClassification") == preset("pair_classification")


def test_unknown_preset_lists_choices() -> None:
    with pytest.raises(ValueError, match="retrieval"):
        preset("translation")


def test_paper_table_has_both_sides_and_every_model() -> None:
    scifact = mteb_instructions("SciFact")
    assert scifact is not None and scifact.query != scifact.document
    assert scifact.query.startswith("Represent") and "passage" in scifact.document
    sts = mteb_instructions("STSBenchmark")
    assert sts is not None and sts.symmetric
    assert mteb_instructions("NoSuchTask") is None
    # Unknown models use the instructor-large table, as the official evaluation code does.
    assert mteb_instructions("SciFact", "my/finetuned-model") == scifact
    # instructor-xl has its own table (as published, typos and all)
    assert mteb_instructions("SciFact", "hkunlp/instructor-xl") == TaskInstructions(
        "Represent the Scientific queries for retrieving a supporting passage: ",
        "represent the scientific paragraph for retrieval: ",
    )
    assert scifact.query == "Represent a Scientific query for retrieving a supporting passage; "
    data = json.loads(resources.files("instructor_plugins").joinpath("data/mteb_instructions.json").read_text())
    assert set(data["models"]) == {"hkunlp/instructor-base", "hkunlp/instructor-large", "hkunlp/instructor-xl"}
    names = mteb_task_names()
    assert len(names) >= 60 and {"NFCorpus", "Banking77Classification", "SummEval", "SciDocsRR"} <= set(names)
