"""The LangChain and LlamaIndex examples run and find their answers (they assert on their hits)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_langchain_rag_example(capsys: pytest.CaptureFixture[str]) -> None:
    example = runpy.run_path(str(EXAMPLES / "langchain_rag.py"))
    assert example["main"]() == len(example["QUESTIONS"])
    assert "HIT  Who is the author of Frankenstein?\n  1. Mary Shelley." in capsys.readouterr().out


def test_llama_index_rag_example(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("llama_index.core")
    if not Path("/usr/share/wordnet/data.noun").is_file():
        pytest.skip("WordNet missing: apt-get install wordnet-base")
    example = runpy.run_path(str(EXAMPLES / "llama_index_rag.py"))
    assert example["main"]() == len(example["QUESTIONS"])
    assert "indexed 300 WordNet noun definitions" in capsys.readouterr().out
