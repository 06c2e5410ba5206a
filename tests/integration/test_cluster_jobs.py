"""Jobs from outside a multi-node cluster, and the recipe as a job: ``ray job submit`` to Ray's test cluster.

The cluster is ``job_cluster`` (``tests/integration/conftest.py``): a 0-CPU head running the job server on
127.0.0.1 and three 1-CPU worker raylets, started with no AWS environment. From a separate shell, as a user would:

- ``ray job submit ... -- instructor recipe ... --shared-storage`` at toy scale (two sources, a handful of pairs
  per task, 2 steps per run, 2 training workers on 2 worker nodes, the tiny BERT of ``tests.tiny_bert`` as the
  base model); the tests below check its outputs, the report's plumbing (no quality thresholds), ``instructor
  seeds`` on its results and an in-process rerun;
- ``ray job submit ... -- instructor batch`` from S3 to S3 (the moto server on 127.0.0.1);
- bad input against the cluster: a local ``--output`` without ``--shared-storage``, more than the cluster
  holds, an address that does not answer: each exit 2 with one clear line, before any work.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from instructor_plugins.model import InstructorEncoder
from ray_backend.batch.plan import MANIFEST_NAME, OutputDir
from ray_backend.net import free_port
from tests.batch_data import INSTRUCTION, cosines, offline_rows, vectors, write_rows
from tests.s3 import s3_server, upload
from tests.tiny_bert import TINY_CONFIG
from training.medi import MediExample, save_medi
from training.recipe.evaluation import SETTINGS
from training.recipe.seeds import load_run, seeds_table
from training.recipe.targets import ASYMMETRIC, TARGETS, wins_needed
from training.recipe.tasks import HELDOUT_EVAL_TASKS

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
INSTRUCTOR = str(Path(sys.executable).with_name("instructor"))  # the console script of this environment
RAY = str(Path(sys.executable).with_name("ray"))
JOB_ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def submit(address: str, entry: list[str], env_vars: dict[str, str], timeout: float) -> str:
    """``ray job submit --working-dir <repo>`` of ``entry``; returns the job's output (asserting it succeeded)."""
    runtime_env = json.dumps({"env_vars": JOB_ENV | env_vars})
    cmd = [RAY, "job", "submit", "--address", address, "--working-dir", str(ROOT), "--runtime-env-json", runtime_env]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # the submitting shell needs no keys
    done = subprocess.run([*cmd, "--", *entry], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "succeeded" in done.stdout, f"{shlex.join(entry)}\n{out[-5000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def recipe_out(
    job_cluster: tuple[Any, str], tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict, Any]]:
    if not Path("/usr/share/wordnet/data.noun").is_file():
        pytest.skip("WordNet (Debian wordnet-base) not installed")
    cluster, address = job_cluster
    out = tmp_path_factory.mktemp("recipe")
    flags = {
        "--sources": "wordnet chatterbot",
        "--holdout": "chatterbot_same_category",
        "--steps": 2,
        "--batch-size": 4,
        "--max-seq-length": 24,
        "--max-train-per-task": 8,
        "--max-eval-per-task": 6,
        "--max-holdout-per-task": 12,
        "--heldout-items": 6,
        "--dev-queries-per-task": 4,
        "--wise-alphas": "0.5 1.0",
        "--evals-max-items": 8,
        "--num-workers": 2,  # one per 1-CPU worker node
        "--cpus-per-worker": 1,
        "--mask-false-negatives": "",  # the opt-in loss runs through Ray Train (its numerics: test_training_loss)
        "--model": tiny_model,  # the job's plumbing and the report's, not quality: a tiny BERT (tests.tiny_bert)
    }
    entry = [INSTRUCTOR, "recipe", "--output", str(out), "--shared-storage"]
    for flag, value in flags.items():
        entry += [flag, *str(value).split()]
    submit(address, entry, {}, timeout=900)
    results = json.loads((out / "results.json").read_text())
    yield out, results, cluster
    shutil.rmtree(out, ignore_errors=True)  # three models and the corpus: ~0.4 GB


def test_outputs(recipe_out: tuple[Path, dict, Any]) -> None:
    out, results, _ = recipe_out
    for name, trained in (("model", True), ("ablation", False)):
        encoder = InstructorEncoder.load(out / name, device="cpu")
        assert encoder.encode(["a word"]).shape == (1, TINY_CONFIG["hidden_size"])
        assert encoder.defaults.instruction_trained is trained  # recorded in instructor.json
        assert json.loads((out / name / "instructor.json").read_text())["instruction_trained"] is trained
    manifest = json.loads((out / "corpus" / "manifest.json").read_text())
    assert manifest["held_out_tasks"] == ["chatterbot_same_category"]
    assert results["config"]["mask_false_negatives"] is True
    assert set(results["scores"]) == set(SETTINGS)
    assert "LeeNewsSTS" in results["held_out_tasks"]
    wise = results["wise"]["finetuned"]
    curve = {float(alpha): score for alpha, score in wise["dev_ndcg10"].items()}
    assert set(curve) == {0.5, 1.0} and curve[wise["alpha"]] == max(curve.values())  # the best alpha on dev
    report = (out / "report.md").read_text()
    for setting in SETTINGS:
        assert f"| {setting} |" in report
    assert "distillation weight 1.0 (plus 16 general texts per step, anchor instructed)" in report  # the defaults
    held = results["held_out_tasks"]  # the --holdout task, the held-out benchmark's and the evals suite's
    assert held[0] == "chatterbot_same_category" and held[-3:] == list(HELDOUT_EVAL_TASKS)
    benchmark = results["held_out_benchmark"]
    assert set(held[1:-3]) == {n for n, t in benchmark["tasks"].items() if t["source"] != "gensim"}
    if not benchmark["skipped_sources"]:  # every held-out source installed: 8 tasks of 5 categories, 6 items each
        assert len(held) == 12 and {t["category"] for t in benchmark["tasks"].values()} >= {
            "retrieval",
            "reranking",
            "classification",
            "clustering",
            "pair_classification",
            "sts",
        }
        assert all(t["items"] in (6, None) for t in benchmark["tasks"].values())
    assert f"target >= {wins_needed(len(held))} of {len(held)})" in report
    assert set(results["instruction_effect"]) == {"base", "finetuned"}
    lee = results["instruction_effect"]["finetuned"]["LeeNewsSTS"]  # the 8 toy documents, resampled
    assert lee["low"] <= lee["estimate"] <= lee["high"]
    expected_verdict = "win" if lee["low"] > 0 else "loss" if lee["high"] < 0 else "within noise"
    assert lee["verdict"] == expected_verdict, lee  # the verdict is what the interval says
    lee_diff = (
        results["scores"]["finetuned + instructions"]["LeeNewsSTS"] - results["scores"]["finetuned"]["LeeNewsSTS"]
    )
    assert lee["estimate"] == pytest.approx(lee_diff, abs=0.05)  # the same statistic as mteb's score
    assert f"  - of the {len(held)} tasks resampled below, significant wins: " in report
    assert "| task | base | finetuned |" in report and f" | {lee['estimate']:+.2f} [" in report
    targets = results["target_intervals"]  # every target as a difference with its interval
    # plus the held-out instruction effect split by shape: symmetric (the --holdout task, the suite's) and, where the
    # held-out benchmark's sources are installed, asymmetric (its retrieval and reranking tasks)
    shapes = {"held_out_instructions_symmetric"}
    if any(t["category"] in ASYMMETRIC for t in benchmark["tasks"].values()):
        shapes.add("held_out_instructions_asymmetric")
    assert set(targets) == {f"{s}_{t}" for s in ("in_domain", "held_out") for t in ("vs_base", "instructions")} | {
        "held_out_vs_ablation",
        *shapes,
    }
    assert not any(targets[k]["breakdown"] for k in TARGETS) and all(targets[k]["breakdown"] for k in shapes)
    assert targets["held_out_vs_base"]["fixed_tasks"] == []  # polarity and newsgroups resampled from mteb's predictions
    assert all(t["low"] <= t["estimate"] <= t["high"] for t in targets.values())
    assert "## Targets with 95 % intervals" in report and "| held-out: finetuned + instructions - ablation | " in report
    for name in ("instructed", "ablation"):  # both runs trained with the distillation term, on Ray
        history = json.loads((out / "runs" / name / "train_history.json").read_text())["history"]
        assert len(history) == 2 and all(r["distill_loss"] >= 0 and r["general_distill_loss"] > 0 for r in history)
        # the logged loss is the mean over the 2 workers; each worker logs its own parts
        parts = ("contrastive_loss", "distill_loss", "general_distill_loss")
        logs = out / "ray_results" / name / "logs"
        ranks = [[json.loads(line) for line in (logs / f"steps.rank{r}.jsonl").open()] for r in (0, 1)]
        for step, (r0, r1) in enumerate(zip(*ranks, strict=True)):
            mean_of_parts = (sum(r0[k] for k in parts) + sum(r1[k] for k in parts)) / 2
            assert r0["loss"] == r1["loss"] == history[step]["loss"] == pytest.approx(mean_of_parts, rel=1e-4)
    general = (out / "general_text.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(general) > 4000  # the Wikipedia paragraphs the distillation also covered
    assert (out / "results.png").stat().st_size > 0 and (out / "loss_curves.png").stat().st_size > 0
    assert json.loads((out / "results.json").read_text())["summary"] == json.loads(json.dumps(results["summary"]))
    for name in ("instructed", "ablation"):  # a finished run's resume checkpoints are gone; its logs stay
        assert not list((out / "ray_results" / name).glob("checkpoint_*"))
        assert list((out / "ray_results" / name / "logs").glob("steps.rank0.jsonl"))


def test_the_recipe_trained_on_two_worker_nodes(recipe_out: tuple[Path, dict, Any]) -> None:
    out, _, cluster = recipe_out
    workers = {n.node_id for n in cluster.worker_nodes}
    for name in ("instructed", "ablation"):
        logs = out / "ray_results" / name / "logs"
        nodes = [{json.loads(line)["node"] for line in (logs / f"steps.rank{r}.jsonl").open()} for r in (0, 1)]
        assert all(len(n) == 1 for n in nodes) and nodes[0] != nodes[1], nodes  # one node per rank, two nodes
        assert nodes[0] | nodes[1] <= workers, (nodes, workers)  # never the 0-CPU head


def test_seeds_reads_the_recipe_results(recipe_out: tuple[Path, dict, Any]) -> None:
    out, results, _ = recipe_out
    run = load_run(out)  # the real results.json; the same run twice has zero spread across runs
    assert set(run.targets) == set(results["target_intervals"]) and run.held_out == len(results["held_out_tasks"])
    table = seeds_table([run, run]).splitlines()
    estimate = results["target_intervals"]["in_domain_vs_base"]["estimate"]
    assert table[4].split(" | ")[1].startswith(f"{estimate:+.2f} [{estimate:+.2f}, {estimate:+.2f}]")


def test_paired_reads_the_recipe_s_per_item_results(recipe_out: tuple[Path, dict, Any]) -> None:
    from training.recipe.paired import compare

    out, results, _ = recipe_out
    got = compare(out, "finetuned + instructions", out, "ablation")  # the real per_item.json, paired with itself
    want = results["target_intervals"]["held_out_vs_ablation"]
    assert got.tasks == results["held_out_tasks"] and not got.left_out
    assert (got.interval.estimate, got.interval.low, got.interval.high) == pytest.approx(
        (want["estimate"], want["low"], want["high"]), abs=1e-6
    )
    # the run's own split of the instruction effect by task shape is the command's --by-category split
    assert "chatterbot_same_category" in results["held_out_categories"]  # a --holdout task has a shape too
    shapes = compare(out, "finetuned + instructions", out, "finetuned").by_category
    found = [s for s in ("asymmetric", "symmetric") if f"held_out_instructions_{s}" in results["target_intervals"]]
    assert "symmetric" in found  # asymmetric too where the held-out benchmark's sources are installed
    for shape in found:
        mine = results["target_intervals"][f"held_out_instructions_{shape}"]
        assert (shapes[shape].estimate, shapes[shape].low, shapes[shape].high) == pytest.approx(
            (mine["estimate"], mine["low"], mine["high"]), abs=1e-6
        )


def test_rerun_reuses_corpus_and_models(recipe_out: tuple[Path, dict, Any]) -> None:
    from training.recipe import RecipeConfig, run

    out, first, _ = recipe_out
    cfg = RecipeConfig(**{**first["config"], "evals_suite": False})
    again = run(cfg)  # in this process, without Ray: nothing is trained again
    assert json.loads(json.dumps(again["wise"])) == json.loads(json.dumps(first["wise"]))  # same models
    assert again["scores"]["finetuned + instructions"]["wordnet_synonyms"] == pytest.approx(
        first["scores"]["finetuned + instructions"]["wordnet_synonyms"], abs=1e-4
    )


def test_ray_job_submit_of_the_batch_cli_s3_to_s3(
    job_cluster: tuple[Any, str], tmp_path: Path, bundled_encoder: InstructorEncoder
) -> None:
    cluster, address = job_cluster
    rows = offline_rows(240)
    with s3_server("jobs-bucket") as endpoint:
        upload(write_rows(rows, tmp_path / "a.parquet"), "s3://jobs-bucket/in/a.parquet")
        keys = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}
        entry = [INSTRUCTOR, "batch", "--input", "s3://jobs-bucket/in/", "--output", "s3://jobs-bucket/out"]
        entry += ["--instruction", INSTRUCTION, "--rows-per-shard", "40", "--replicas", "2", "--no-progress"]
        stdout = submit(address, entry, keys | {"AWS_ENDPOINT_URL": endpoint}, timeout=600)
        assert '"rows_out": 240' in stdout  # the CLI prints its manifest
        out = OutputDir("s3://jobs-bucket/out")
        assert out.file(MANIFEST_NAME).exists()
        table = out.read()
        nodes = {out.shard_node(loc) for loc in out.shards().values()}
    assert table["id"].to_pylist() == [r["id"] for r in rows]
    expected = bundled_encoder.encode([r["text"] for r in rows], INSTRUCTION, batch_size=64)
    assert cosines(vectors(table), expected).min() >= 0.99999
    assert nodes <= {n.node_id for n in cluster.worker_nodes}, nodes  # the actors ran on worker nodes
    print(f"\nbatch job: 240 rows, shards written by {len(nodes)} worker node(s)")


def _medi(path: Path) -> Path:
    """A small MEDI file: two tasks of 8 examples (no optional data needed)."""
    examples = [
        MediExample(
            query=("Represent the question: ", f"question {t}-{i}"),
            pos=("Represent the answer: ", f"answer {t}-{i}"),
            neg=("Represent the answer: ", f"unrelated {t}-{i}"),
            task=f"task{t}",
        )
        for t in (0, 1)
        for i in range(8)
    ]
    return save_medi(examples, path)


def test_bad_input_on_the_cluster_exits_2_before_any_work(job_cluster: tuple[Any, str], tmp_path: Path) -> None:
    cluster, _ = job_cluster
    data = _medi(tmp_path / "medi.json")
    parquet = write_rows([{"id": "a", "text": "a word"}], tmp_path / "in.parquet")
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    train = [INSTRUCTOR, "train", "--data", str(data), "--output", str(tmp_path / "m"), "--batch-size", "4"]
    batch = [INSTRUCTOR, "batch", "--input", str(parquet), "--output", str(tmp_path / "b"), "--no-progress"]
    cases: dict[str, tuple[list[str], str, str]] = {  # name: (command, RAY_ADDRESS, what stderr must say)
        "recipe, local --output": (
            [INSTRUCTOR, "recipe", "--output", str(tmp_path / "r"), "--sources", "wordnet", "chatterbot"],
            cluster.address,
            "is a local folder, and this Ray cluster has 4 nodes",
        ),
        "train, 2 CPUs per worker on 1-CPU nodes": (
            [*train, "--storage-path", str(tmp_path / "s"), "--shared-storage", "--num-workers", "2"]
            + ["--cpus-per-worker", "2"],
            cluster.address,
            "training (--num-workers, --cpus-per-worker, --use-gpu) needs 2 x (CPU 2) on single nodes",
        ),
        "batch, a GPU per actor on CPU nodes": (
            [*batch, "--shared-storage", "--num-gpus", "1", "--address", cluster.address],
            "",
            "needs 1 x (CPU 1, GPU 1) on single nodes",
        ),
        "batch, an address that does not answer": ([*batch, "--address", dead], "", f"{dead} does not answer"),
        "train, a RAY_ADDRESS that does not answer": (
            [*train, "--storage-path", str(tmp_path / "s2")],
            dead,
            f"{dead} does not answer",
        ),
    }
    env = os.environ | {"INSTRUCTOR_RESOURCE_WAIT_S": "2", "HF_HUB_OFFLINE": "1"}
    procs, start = {}, time.monotonic()
    for name, (cmd, ray_address, _) in cases.items():  # all at once: each is mostly interpreter start-up
        case_env = {k: v for k, v in env.items() if k != "RAY_ADDRESS"}
        if ray_address:
            case_env["RAY_ADDRESS"] = ray_address
        procs[name] = subprocess.Popen(cmd, env=case_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, (name, err[-3000:])
        assert cases[name][2] in err, (name, err[-3000:])
    print(f"\n{len(cases)} refusals in {time.monotonic() - start:.0f} s")
    for folder in ("r", "m", "b", "s", "s2"):
        assert not (tmp_path / folder).exists(), folder  # nothing was written
