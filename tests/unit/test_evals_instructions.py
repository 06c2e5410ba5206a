from __future__ import annotations

import doctest
import os
import tempfile

os.environ.setdefault("MTEB_CACHE", os.path.join(tempfile.gettempdir(), "mteb-cache-tests"))  # before mteb import

import pytest

from evals import instructions as evals_instructions
from evals.instructions import OFFLINE_INSTRUCTIONS, TASK_TYPE_PRESETS, choose_instruction, task_instructions
from instructor_plugins.instructions import _table, mteb_instructions, preset


def test_retrieval_task_sides_come_from_the_paper_table() -> None:
    paper = mteb_instructions("ArguAna")
    assert paper is not None and paper.query != paper.document
    query = choose_instruction("ArguAna", "Retrieval", "query")
    document = choose_instruction("ArguAna", "Retrieval", "document")
    assert (query.instruction, query.source) == (paper.query, "paper")
    assert (document.instruction, document.source) == (paper.document, "paper")
    assert document.instruction == "Represent a Counter-argument: "


def test_sts_task_uses_its_symmetric_paper_instruction_on_both_sides() -> None:
    paper = mteb_instructions("STSBenchmark")
    assert paper is not None
    for side in (None, "query", "document"):
        assert choose_instruction("STSBenchmark", "STS", side).instruction == paper.query


def test_unknown_task_falls_back_to_the_preset_of_its_type() -> None:
    pair, source = task_instructions("SomeTaskNotInAnyTable", "Retrieval")
    assert source == "preset"
    assert pair == preset("retrieval")
    assert choose_instruction("SomeTaskNotInAnyTable", "Retrieval", "query").instruction == preset("retrieval").query
    assert (
        choose_instruction("SomeTaskNotInAnyTable", "Retrieval", "document").instruction == preset("retrieval").document
    )
    assert choose_instruction("OtherUnknown", "Clustering", None).instruction == preset("clustering").query


def test_offline_tasks_use_our_own_instructions() -> None:
    choice = choose_instruction("ChatterbotQARetrieval", "Retrieval", "document")
    assert choice.source == "offline"
    assert choice.instruction == OFFLINE_INSTRUCTIONS["ChatterbotQARetrieval"].document
    assert all(i.query.startswith("Represent the ") for i in OFFLINE_INSTRUCTIONS.values())


@pytest.mark.parametrize("side", [None, "query", "document"])
def test_none_mode_gives_no_instruction(side: str | None) -> None:
    choice = choose_instruction("ArguAna", "Retrieval", side, mode="none")
    assert choice.instruction is None and choice.source == "none"


def test_table_model_selects_that_models_row() -> None:
    models = _table()["models"]
    differing = [
        t
        for t, entry in models["hkunlp/instructor-xl"].items()
        if models["hkunlp/instructor-large"].get(t) not in (None, entry)
    ]
    assert differing, "the xl and large tables differ for some tasks"
    task = differing[0]
    xl = choose_instruction(task, "Retrieval", "query", table_model="hkunlp/instructor-xl").instruction
    large = choose_instruction(task, "Retrieval", "query").instruction
    assert xl == models["hkunlp/instructor-xl"][task]["query"]
    assert large == models["hkunlp/instructor-large"][task]["query"]


def test_bad_arguments_name_the_valid_choices() -> None:
    with pytest.raises(ValueError, match="valid: \\['paper', 'none'\\]"):
        choose_instruction("ArguAna", "Retrieval", "query", mode="paper-ish")
    with pytest.raises(ValueError, match="unknown prompt type"):
        choose_instruction("ArguAna", "Retrieval", "passage")
    with pytest.raises(ValueError, match="types with presets"):
        task_instructions("UnknownImageTask", "ImageClustering")
    assert "Retrieval" in TASK_TYPE_PRESETS


def test_doctests() -> None:
    result = doctest.testmod(evals_instructions)
    assert result.attempted > 0 and result.failed == 0, result  # examples ran, and passed
