"""The recipe end to end at toy scale on Ray Train: corpus -> finetune -> ablation -> WiSE-FT -> report.

Plumbing only (no quality thresholds): two sources, a handful of pairs per task, 2 steps per run.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from instructor_plugins.model import InstructorEncoder
from training.recipe import RecipeConfig, run
from training.recipe_eval import SETTINGS
from training.seeds import load_run, seeds_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def recipe_out(ray_local: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    if not Path("/usr/share/wordnet/data.noun").is_file():
        pytest.skip("WordNet (Debian wordnet-base) not installed")
    out = tmp_path_factory.mktemp("recipe")
    cfg = RecipeConfig(
        output=str(out),
        sources=("wordnet", "chatterbot"),
        holdout=("chatterbot_same_category",),
        steps=2,
        batch_size=4,
        max_seq_length=24,
        max_train_per_task=8,
        max_eval_per_task=6,
        max_holdout_per_task=12,
        dev_queries_per_task=4,
        wise_alphas=(0.5, 1.0),
        evals_max_items=8,
    )
    yield out, run(cfg)
    shutil.rmtree(out, ignore_errors=True)  # three models and the corpus: ~0.4 GB


def test_outputs(recipe_out: tuple[Path, dict]) -> None:
    out, results = recipe_out
    for name, trained in (("model", True), ("ablation", False)):
        encoder = InstructorEncoder.load(out / name, device="cpu")
        assert encoder.encode(["a word"]).shape == (1, 384)
        assert encoder.defaults.instruction_trained is trained  # recorded in instructor.json
        assert json.loads((out / name / "instructor.json").read_text())["instruction_trained"] is trained
    manifest = json.loads((out / "corpus" / "manifest.json").read_text())
    assert manifest["held_out_tasks"] == ["chatterbot_same_category"]
    assert set(results["scores"]) == set(SETTINGS)
    assert "LeeNewsSTS" in results["held_out_tasks"]
    assert results["wise"]["finetuned"]["alpha"] in (0.5, 1.0)
    report = (out / "report.md").read_text()
    for setting in SETTINGS:
        assert f"| {setting} |" in report
    assert "distillation weight 1.0 (plus 16 general texts per step)" in report  # the recipe's defaults
    assert "held-out tasks (" in report and "target >= 3 of 3)" in report  # 80 % of this toy's 3 held-out tasks
    assert set(results["instruction_effect"]) == {"base", "finetuned"}
    lee = results["instruction_effect"]["finetuned"]["LeeNewsSTS"]  # the 8 toy documents, resampled
    assert lee["low"] <= lee["estimate"] <= lee["high"] and lee["verdict"] in ("win", "loss", "within noise")
    lee_diff = (
        results["scores"]["finetuned + instructions"]["LeeNewsSTS"] - results["scores"]["finetuned"]["LeeNewsSTS"]
    )
    assert lee["estimate"] == pytest.approx(lee_diff, abs=0.05)  # the same statistic as mteb's score
    assert "  - of the 3 tasks resampled below, significant wins: " in report
    assert "| task | base | finetuned |" in report and f" | {lee['estimate']:+.2f} [" in report
    targets = results["target_intervals"]  # every target as a difference with its interval
    assert set(targets) == {f"{s}_{t}" for s in ("in_domain", "held_out") for t in ("vs_base", "instructions")} | {
        "held_out_vs_ablation"
    }
    assert targets["held_out_vs_base"]["fixed_tasks"] == []  # polarity and newsgroups resampled from mteb's predictions
    assert all(t["low"] <= t["estimate"] <= t["high"] for t in targets.values())
    assert "## Targets with 95 % intervals" in report and "| held-out: finetuned + instructions - ablation | " in report
    for name in ("instructed", "ablation"):  # both runs trained with the distillation term, on Ray
        history = json.loads((out / "runs" / name / "train_history.json").read_text())["history"]
        assert len(history) == 2 and all(r["distill_loss"] >= 0 and r["general_distill_loss"] > 0 for r in history)
        parts = ("contrastive_loss", "distill_loss", "general_distill_loss")
        assert all(r["loss"] == pytest.approx(sum(r[k] for k in parts), rel=1e-4) for r in history)
    general = (out / "general_text.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(general) > 4000  # the Wikipedia paragraphs the distillation also covered
    assert (out / "results.png").stat().st_size > 0 and (out / "loss_curves.png").stat().st_size > 0
    assert json.loads((out / "results.json").read_text())["summary"] == json.loads(json.dumps(results["summary"]))
    for name in ("instructed", "ablation"):  # a finished run's resume checkpoints are gone; its logs stay
        assert not list((out / "ray_results" / name).glob("checkpoint_*"))
        assert list((out / "ray_results" / name / "logs").glob("steps.rank0.jsonl"))


def test_seeds_reads_the_recipe_results(recipe_out: tuple[Path, dict]) -> None:
    out, results = recipe_out
    run = load_run(out)  # the real results.json; the same run twice has zero spread across runs
    assert set(run.targets) == set(results["target_intervals"]) and run.held_out == 3
    table = seeds_table([run, run]).splitlines()
    estimate = results["target_intervals"]["in_domain_vs_base"]["estimate"]
    assert table[4].split(" | ")[1].startswith(f"{estimate:+.2f} [{estimate:+.2f}, {estimate:+.2f}]")


def test_rerun_reuses_corpus_and_models(recipe_out: tuple[Path, dict]) -> None:
    out, first = recipe_out
    cfg = RecipeConfig(**{**first["config"], "evals_suite": False})
    again = run(cfg)
    assert json.loads(json.dumps(again["wise"])) == json.loads(json.dumps(first["wise"]))  # same models
    assert again["scores"]["finetuned + instructions"]["wordnet_synonyms"] == pytest.approx(
        first["scores"]["finetuned + instructions"]["wordnet_synonyms"], abs=1e-4
    )
