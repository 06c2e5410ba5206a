from __future__ import annotations

import doctest
import os
import tempfile
from pathlib import Path

os.environ.setdefault("MTEB_CACHE", os.path.join(tempfile.gettempdir(), "mteb-cache-tests"))  # before mteb import

import pytest

from evals import compare as evals_compare
from evals import report as evals_report
from evals.compare import compare_table
from evals.report import ScoreRow, Summary, load_summary, markdown_table, write_report

ROWS_A = [ScoreRow("A", "STS", "cosine_spearman", 0.5), ScoreRow("B", "Retrieval", "ndcg_at_10", 0.25)]
ROWS_B = [ScoreRow("A", "STS", "cosine_spearman", 0.6), ScoreRow("C", "Clustering", "v_measure", 0.9)]


def test_markdown_table_has_average() -> None:
    table = markdown_table(ROWS_A, title="run")
    assert "| A | STS | cosine_spearman | 50.00 |" in table
    assert "| **Average** | | | **37.50** |" in table


def test_compare_shows_deltas_and_missing_tasks() -> None:
    table = compare_table([("base", ROWS_A), ("new", ROWS_B)])
    lines = table.splitlines()
    assert lines[0] == "| Task | Type | Metric | base | new | Δ new |"
    assert "| A | STS | cosine_spearman | 50.00 | 60.00 | +10.00 |" in lines
    assert "| B | Retrieval | ndcg_at_10 | 25.00 | - | - |" in lines
    assert "| C | Clustering | v_measure | - | 90.00 | - |" in lines
    assert lines[-1] == "| **Average** | | | 50.00 | 60.00 | +10.00 |"  # over tasks present in every run
    with pytest.raises(ValueError, match="at least two"):
        compare_table([("base", ROWS_A)])


def test_report_round_trip(tmp_path: Path) -> None:
    summary = Summary(model="org/m", instructions="paper", rows=ROWS_A, settings={"seconds": 1.0})
    paths = write_report(tmp_path, summary)
    assert paths["plot"].read_bytes().startswith(b"\x89PNG")
    assert "org/m (instructions=paper)" in paths["table"].read_text()
    assert load_summary(tmp_path) == summary


def test_compare_cli_and_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_report(tmp_path / "a", Summary(model="org/m", instructions="paper", rows=ROWS_A))
    write_report(tmp_path / "b", Summary(model="org/m", instructions="none", rows=ROWS_B))
    assert evals_compare.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Model: org/m")
    assert "| Task | Type | Metric | instructions=paper | instructions=none | Δ instructions=none |" in out
    with pytest.raises(SystemExit):
        evals_compare.main([str(tmp_path / "a"), str(tmp_path / "missing")])
    assert "no summary.json" in capsys.readouterr().err


def test_doctests() -> None:
    result = doctest.testmod(evals_report)
    assert result.attempted > 0 and result.failed == 0, result  # examples ran, and passed
    result = doctest.testmod(evals_compare)
    assert result.attempted > 0 and result.failed == 0, result  # examples ran, and passed
