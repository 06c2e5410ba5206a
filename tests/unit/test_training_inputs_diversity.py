"""The corpus manifest's inputs (package versions, file fingerprints) and the diversity ablation's table."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from training.recipe.diversity import DiversityConfig, arm_summary, diversity_table
from training.recipe.inputs import debian_version, file_fingerprint, python_version, source_inputs
from training.recipe.sources import Source


def test_file_fingerprint_and_source_inputs(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"hello\n")
    (tmp_path / "b.txt").mkdir()  # a folder matching the pattern is not a file: left out
    fp = file_fingerprint(tmp_path / "a.txt")
    assert fp["bytes"] == 6 and fp["sha256"] == hashlib.sha256(b"hello\n").hexdigest()
    assert fp["modified"].endswith("+00:00")
    source = Source(
        "s", "MIT", "pip install x", lambda: None, lambda raw: [],
        debian_packages=("no-such-package-xyz",), python_packages=("numpy", "no-such-dist-xyz"),
        files=(str(tmp_path / "*.txt"),),
    )  # fmt: skip
    inputs = source_inputs(source)
    assert inputs["debian_packages"] == {"no-such-package-xyz": None}
    assert inputs["python_packages"]["no-such-dist-xyz"] is None
    assert inputs["python_packages"]["numpy"] == python_version("numpy") is not None
    assert list(inputs["files"]) == [str(tmp_path / "a.txt")]


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="no dpkg on this machine")
def test_debian_version_matches_dpkg() -> None:
    expected = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "dpkg"], capture_output=True, text=True, check=True
    ).stdout
    assert debian_version("dpkg") == expected != ""


def _run(seed: int, effect: float, vs_ablation: float, tasks: int, sources: list[str]) -> dict[str, Any]:
    def target(estimate: float) -> dict[str, Any]:
        return {"estimate": estimate, "low": estimate - 1.0, "high": estimate + 1.0, "level": 0.95}

    return {
        "summary": {
            "finetuned": {"held_out": 60.0, "in_domain": 70.0},
            "finetuned + instructions": {"held_out": 60.0 + effect, "in_domain": 72.0},
            "ablation": {"held_out": 60.0 + effect - vs_ablation, "in_domain": 71.0},
        },
        "target_intervals": {"held_out_instructions": target(effect), "held_out_vs_ablation": target(vs_ablation)},
        "in_domain_tasks": [f"t{i}" for i in range(tasks)],
        "held_out_tasks": ["h1", "h2"],
        "config": {"seed": seed, "sources": sources},
    }


def test_diversity_table_means_intervals_and_the_difference() -> None:
    narrow = [_run(0, 0.0, 1.0, 16, ["a"]), _run(1, 2.0, 1.0, 16, ["a"])]
    wide = [_run(0, 3.0, 2.0, 53, ["a", "b"])]
    summary = arm_summary(narrow)
    assert summary["held_out"]["finetuned + instructions"] == pytest.approx(61.0)
    effect = summary["figures"]["held_out_instructions"]  # t-interval across the two seeds
    assert effect.estimate == pytest.approx(1.0) and effect.high - effect.estimate == pytest.approx(12.706, abs=1e-3)
    one = arm_summary(wide)["figures"]["held_out_instructions"]  # one run: its own bootstrap interval
    assert (one.low, one.estimate, one.high) == (2.0, 3.0, 4.0)
    table = diversity_table({"narrow": narrow, "wide": wide})
    row = next(line for line in table.splitlines() if line.startswith("| instruction effect"))
    # wide - narrow: 3 - 1 = 2, half-width sqrt(12.706^2 + 1^2) = 12.745
    assert row.endswith("| +2.00 [-10.75, +14.75] (within noise) |")
    assert "| in-domain tasks scored / training sources | 16 / 1 | 53 / 2 |" in table
    assert diversity_table({"wide": wide, "narrow": narrow}) == table  # the arms' run order does not flip the sign


def test_diversity_config_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown arms"):
        DiversityConfig("x", arms=["narrow", "huge"])
    with pytest.raises(ValueError, match="--seed"):
        DiversityConfig("x", recipe_flags="--steps 10 --seed 3")
    with pytest.raises(ValueError, match="at least one seed"):
        DiversityConfig("x", seeds=[])


def test_diversity_table_shows_the_shape_breakdown_where_runs_have_it() -> None:
    narrow = [_run(0, 0.0, 1.0, 16, ["a"])]  # a run made before the breakdown: '-'
    wide = [_run(0, 3.0, 2.0, 53, ["a", "b"]), _run(1, 1.0, 2.0, 53, ["a", "b"])]
    for run, estimate in zip(wide, (2.5, 1.5), strict=True):
        run["target_intervals"]["held_out_instructions_asymmetric"] = {
            "estimate": estimate,
            "low": estimate - 1,
            "high": estimate + 1,
            "level": 0.95,
        }
    table = diversity_table({"narrow": narrow, "wide": wide})
    row = next(line for line in table.splitlines() if "asymmetric" in line)
    assert row.startswith("| instruction effect, held-out asymmetric tasks (retrieval, reranking) | - | +2.00 [")
    assert row.endswith("|  |")  # no difference: one arm lacks it
    symmetric = next(line for line in table.splitlines() if "held-out symmetric tasks" in line)
    assert symmetric.endswith("| - | - |  |")
