"""The recipe's evaluation and report: WiSE-FT alpha on dev, then base / finetuned / ablation on test.

Settings compared (rows of the report):

- ``base``, ``base + instructions``: the model before finetuning;
- ``finetuned``, ``finetuned + instructions``: the instruction-finetuned model (after WiSE-FT);
- ``ablation``: trained on the same data and steps without instructions, evaluated without them.

Columns: the average nDCG@10 of the trained tasks' test splits (in-domain), each held-out task
(two held-out retrieval families, scored by nDCG@10, and the offline evals suite's untouched
tasks, scored by mteb's main score) and their average, all in points (x 100). For the base and the
finetuned model, the report also gives the instruction effect on each held-out task (with minus
without) with a paired bootstrap interval (:mod:`training.recipe.bootstrap`), and every target as a
difference with its interval (:mod:`training.recipe.targets`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instructor_plugins.defaults import InstructionDefaults
from instructor_plugins.instructions import preset
from instructor_plugins.model import InstructorEncoder
from training.recipe.bootstrap import Interval, average_difference
from training.recipe.corpus import load_rows
from training.recipe.heldout import build_benchmark, evaluate_benchmark
from training.recipe.heldout import references as benchmark_references
from training.recipe.quality import RetrievalTask, evaluate_per_query, evaluate_rows, task_means
from training.recipe.targets import (
    instruction_wins,
    interval_lines,
    shape_scopes,
    target_intervals,
    task_part,
    wins_needed,
)
from training.recipe.tasks import HELDOUT_EVAL_TASKS, INDOMAIN_EVAL_TASKS
from training.recipe.wise import interpolate

__all__ = [
    "SETTINGS",
    "evaluate_recipe",
    "held_out_references",
    "held_out_versus_base",
    "instruction_effect",
    "lee_similarity",
    "pick_alpha",
    "recorded_defaults",
    "subsample_tasks",
    "write_report",
]

logger = logging.getLogger(__name__)

EVAL_MAX_SEQ_LENGTH = 128
_SUITE_CATEGORIES = {
    "LeeNewsSTS": "sts",
    "PangLeePolarityClassification": "classification",
    "MiniNewsgroupsClustering": "clustering",
}
# setting -> (model key, with instructions)
SETTINGS: dict[str, tuple[str, bool]] = {
    "base": ("base", False),
    "base + instructions": ("base", True),
    "finetuned": ("finetuned", False),
    "finetuned + instructions": ("finetuned", True),
    "ablation": ("ablation", False),
}


def subsample_tasks(rows: list[dict[str, Any]], names: list[str], per_task: int) -> list[RetrievalTask]:
    """One :class:`RetrievalTask` per name in ``names`` from the rows of its first ``per_task`` distinct queries."""
    kept: dict[str, list[dict[str, Any]]] = defaultdict(list)
    queries: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        name = r["task_name"]
        if name not in names:
            continue
        q = r["query"][1]
        if q in queries[name] or len(queries[name]) < per_task:
            queries[name].add(q)
            kept[name].append(r)
    return [RetrievalTask(n, kept[n]) for n in names if kept[n]]


def recorded_defaults(*, instruction_trained: bool) -> InstructionDefaults:
    """What a recipe model records about itself (``instructor.json``).

    The finetune was trained with instructions and defaults to the retrieval preset's; the ablation was
    not, and defaults to none.
    """
    if not instruction_trained:
        return InstructionDefaults(instruction_trained=False)
    task = preset("retrieval")
    return InstructionDefaults(instruction_trained=True, query=task.query, document=task.document)


def _mean(values: Any) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def _load(path: str | Path | None) -> InstructorEncoder:
    encoder = InstructorEncoder.load(path, device="cpu")
    encoder.max_seq_length = min(EVAL_MAX_SEQ_LENGTH, encoder.max_seq_length)
    return encoder


def pick_alpha(
    base: InstructorEncoder,
    tuned: InstructorEncoder,
    dev: list[RetrievalTask],
    alphas: tuple[float, ...],
    *,
    instructions: bool,
) -> tuple[float, dict[float, float], InstructorEncoder]:
    """The WiSE-FT alpha with the best dev nDCG@10 average (ties: the smaller alpha), its scores, its model."""
    scores: dict[float, float] = {}
    best: tuple[float, float, InstructorEncoder] | None = None
    for alpha in alphas:
        model = interpolate(base, tuned, alpha)
        scores[alpha] = _mean(evaluate_rows(model, dev, instructions=instructions).values())
        logger.info("dev nDCG@10 alpha=%.2f instructions=%s: %.2f", alpha, instructions, scores[alpha])
        if best is None or scores[alpha] > best[0]:
            best = (scores[alpha], alpha, model)
    assert best is not None
    return best[1], scores, best[2]


def _evals_suite(
    cfg: Any, model: InstructorEncoder, setting: str, instructions: bool
) -> tuple[dict[str, float], dict[str, Any]]:
    """The evals suite's scores (points) and its per-item results, read from mteb's saved predictions.

    Per item: each classification test text's accuracy over mteb's experiments; each clustered post's cluster id.
    """
    import json

    from evals import offline_data
    from evals.run import RunConfig
    from evals.run import run as run_evals

    folder = Path(cfg.output) / "evals" / setting.replace(" + ", "_").replace(" ", "_")
    summary = run_evals(
        RunConfig(
            output=folder,
            tasks=[*HELDOUT_EVAL_TASKS, *(INDOMAIN_EVAL_TASKS if cfg.evals_in_domain else ())],
            instructions="paper" if instructions else "none",
            max_items=cfg.evals_max_items,
            progress=False,
            predictions=True,
        ),
        encoder=model,
    )

    def predictions(task: str) -> Any:
        path = folder / "predictions" / f"{task}_predictions.json"
        return json.loads(path.read_text(encoding="utf-8"))["default"]["test"]

    test_labels = np.array(offline_data.train_test_split(offline_data.polarity(cfg.evals_max_items))[1].labels)
    correct = np.array(predictions("PangLeePolarityClassification")) == test_labels  # (experiments, texts)
    items = {
        "PangLeePolarityClassification": 100.0 * correct.mean(0),
        "MiniNewsgroupsClustering": np.array(predictions("MiniNewsgroupsClustering")[0]),
    }
    return {r.task: 100.0 * r.score for r in summary.rows}, items


def held_out_references(max_items: int | None = None) -> dict[str, Any]:
    """What the evals suite's held-out STS and clustering tasks are scored against.

    Lee STS's human similarity matrix and the newsgroups' true groups (see :func:`training.recipe.targets.task_part`).
    """
    from evals import offline_data

    return {
        "LeeNewsSTS": np.array(offline_data.lee_ratings()[1]),
        "MiniNewsgroupsClustering": np.array(offline_data.newsgroups(max_items).labels),
    }


def evaluate_recipe(
    cfg: Any, manifest: dict[str, Any], trained: list[str], raw_model: Path, raw_ablation: Path | None
) -> dict[str, Any]:
    """Pick WiSE-FT alphas on dev, save ``DIR/model`` and ``DIR/ablation``, evaluate every setting on test."""
    out = Path(cfg.output)
    corpus = out / "corpus"
    base = _load(cfg.model)
    dev = subsample_tasks(load_rows(corpus, "dev"), trained, cfg.dev_queries_per_task)
    models: dict[str, InstructorEncoder] = {"base": base}
    wise: dict[str, Any] = {}
    for key, raw, instructions in (("finetuned", raw_model, True), ("ablation", raw_ablation, False)):
        if raw is None:
            continue
        alpha, curve, model = pick_alpha(base, _load(raw), dev, cfg.wise_alphas, instructions=instructions)
        wise[key] = {"alpha": alpha, "dev_ndcg10": curve}
        target = out / ("model" if key == "finetuned" else "ablation")
        model.defaults = recorded_defaults(instruction_trained=instructions)
        model.save(target)
        models[key] = model
    test_rows = load_rows(corpus, "test")
    in_domain = subsample_tasks(test_rows, trained, cfg.test_queries_per_task)
    # tasks of trained sources kept out with --holdout (none by default), then the held-out benchmark
    held_retrieval = subsample_tasks(test_rows, list(manifest["held_out_tasks"]), cfg.heldout_queries_per_task)
    benchmark, benchmark_skipped = build_benchmark(items=cfg.heldout_items)
    scores: dict[str, dict[str, float]] = {}
    # held-out per item: nDCG@10 per query, polarity accuracy per text, newsgroups cluster ids, Lee's cosine matrix
    per_query: dict[str, dict[str, Any]] = {}
    per_query_in: dict[str, dict[str, Any]] = {}  # in-domain: per-query nDCG@10
    for setting, (key, instructions) in SETTINGS.items():
        if key not in models:
            continue
        t0 = time.perf_counter()
        model = models[key]
        per_query_in[setting] = evaluate_per_query(model, in_domain, instructions=instructions)
        per_query[setting] = evaluate_per_query(model, held_retrieval, instructions=instructions)
        row = task_means(per_query_in[setting]) | task_means(per_query[setting])
        bench_items, bench_scores = evaluate_benchmark(model, benchmark, instructions=instructions)
        per_query[setting].update(bench_items)
        row.update(bench_scores)
        if cfg.evals_suite:
            suite_scores, suite_items = _evals_suite(cfg, model, setting, instructions)
            row.update(suite_scores)
            per_query[setting].update(suite_items)
            per_query[setting]["LeeNewsSTS"] = lee_similarity(
                model, instructions=instructions, max_docs=cfg.evals_max_items
            )
        scores[setting] = row
        logger.info("evaluated %s in %.0f s", setting, time.perf_counter() - t0)
    held_names = [t.name for t in held_retrieval] + [t.name for t in benchmark]
    held_names += list(HELDOUT_EVAL_TASKS) if cfg.evals_suite else []
    summary = {
        s: {
            "in_domain": _mean(row[t.name] for t in in_domain),
            "held_out": _mean(row[n] for n in held_names),
        }
        for s, row in scores.items()
    }
    references = held_out_references(cfg.evals_max_items) if cfg.evals_suite else {}
    references |= benchmark_references(benchmark)
    effect = {m: instruction_effect(per_query, references, model=m) for m in ("base", "finetuned") if m in per_query}
    versus_base = held_out_versus_base(per_query, scores, references)
    categories = held_out_categories(manifest, benchmark)
    intervals = target_intervals(
        {s: per_query_in[s] | per_query[s] for s in per_query},
        scores,
        summary,
        {
            "in_domain": [t.name for t in in_domain],
            "held_out": held_names,
            **shape_scopes(held_names, categories),
        },
        references=references,
    )
    fingerprints = {
        t.name: fingerprint([t.query_instruction, t.document_instruction, t.queries, t.documents, t.relevant])
        for t in (*in_domain, *held_retrieval)
    }
    fingerprints |= {t.name: fingerprint(dataclasses.asdict(t)) for t in benchmark}
    if cfg.evals_suite:
        fingerprints |= {n: fingerprint(["gensim", n, cfg.evals_max_items]) for n in HELDOUT_EVAL_TASKS}
    return {
        "per_item": {
            "settings": {s: _as_lists(per_query_in[s] | per_query[s]) for s in per_query},
            "references": _as_lists(references),
            "fingerprints": fingerprints,
        },
        "scores": scores,
        "summary": summary,
        "in_domain_tasks": [t.name for t in in_domain],
        "held_out_tasks": held_names,
        "held_out_categories": {n: categories[n] for n in held_names if n in categories},
        "held_out_benchmark": {
            "tasks": {t.name: {"source": t.source, "category": t.category, "items": t.items} for t in benchmark}
            | {
                name: {"source": "gensim", "category": category, "items": None}
                for name, category in _SUITE_CATEGORIES.items()
            },
            "skipped_sources": benchmark_skipped,
        },
        "wise": wise,
        "held_out_vs_base_per_task": {
            name: {**dataclasses.asdict(i), "versus": versus, "verdict": i.verdict}
            for name, (versus, i) in versus_base.items()
        },
        "instruction_effect": {
            m: {name: {**dataclasses.asdict(i), "verdict": i.verdict} for name, i in e.items()}
            for m, e in effect.items()
        },
        "target_intervals": intervals,
    }


def held_out_categories(manifest: Mapping[str, Any], benchmark: Sequence[Any]) -> dict[str, str]:
    """``task -> category`` of every held-out task.

    The trained sources' tasks kept out with ``--holdout`` (the corpus manifest's category), the benchmark's, and
    the gensim suite's.
    """
    out = {t["name"]: t["category"] for t in manifest["tasks"] if t["held_out"] and t.get("category")}
    return out | {t.name: t.category for t in benchmark} | _SUITE_CATEGORIES


def fingerprint(items: Any) -> str:
    """A short hash of a task's evaluation items: runs are compared item by item only where it is equal."""
    text = json.dumps(items, sort_keys=True, default=lambda x: sorted(x) if isinstance(x, set) else str(x))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _as_lists(items: Mapping[str, Any]) -> dict[str, Any]:
    """``task -> array`` as JSON-able lists (float32 precision is kept: the scores are computed from it)."""
    return {name: np.asarray(v).tolist() for name, v in items.items()}


def lee_similarity(model: InstructorEncoder, *, instructions: bool, max_docs: int | None = None) -> Any:
    """The cosine matrix of the (first ``max_docs``) Lee documents, with the evals suite's instruction or none."""
    from evals.instructions import choose_instruction
    from evals.offline_data import lee_ratings

    docs = lee_ratings()[0][:max_docs]
    instruction = choose_instruction("LeeNewsSTS", "STS", None, mode="paper").instruction if instructions else ""
    vectors = model.encode(docs, instruction, batch_size=64)
    return vectors @ vectors.T


def held_out_versus_base(
    per_query: dict[str, dict[str, Any]], scores: dict[str, dict[str, float]], references: dict[str, Any]
) -> dict[str, tuple[str, Interval]]:
    """Finetuned + instructions minus the base's better setting on each held-out task, with paired bootstrap intervals.

    The base's better setting is picked per task (with or without instructions, by its score). Empty when the
    finetuned model was not evaluated.
    """
    target = "finetuned + instructions"
    if target not in per_query:
        return {}
    out = {}
    for name in per_query[target]:
        versus = max(("base", "base + instructions"), key=lambda s: scores[s].get(name, float("-inf")))
        part = task_part(per_query[target][name], per_query[versus][name], references.get(name))
        out[name] = (versus, average_difference([part]))
    return out


def instruction_effect(
    per_query: dict[str, dict[str, Any]],
    references: dict[str, Any],
    *,
    model: str = "finetuned",
    seed: int = 0,
) -> dict[str, Interval]:
    """``model`` + instructions minus ``model``, per held-out task, with paired bootstrap intervals.

    ``per_query[setting][task]`` is a task's per-item results and ``references`` what the STS and
    clustering tasks are scored against (:func:`training.recipe.targets.task_part`).
    """
    with_i, without = per_query[f"{model} + instructions"], per_query[model]
    return {
        name: average_difference([task_part(with_i[name], without[name], references.get(name))], seed=seed)
        for name in with_i
    }


def _targets(results: dict[str, Any]) -> list[str]:
    s = results["summary"]
    if "finetuned + instructions" not in s:
        return []
    base_in = max(s["base"]["in_domain"], s["base + instructions"]["in_domain"])
    base_held = max(s["base"]["held_out"], s["base + instructions"]["held_out"])
    ft = s["finetuned + instructions"]
    lines = [
        f"- in-domain: finetuned + instructions {ft['in_domain']:.2f} vs base's best {base_in:.2f}: "
        f"**{ft['in_domain'] - base_in:+.2f}** (target >= +5)",
        f"- held-out: finetuned + instructions {ft['held_out']:.2f} vs base's best {base_held:.2f}: "
        f"**{ft['held_out'] - base_held:+.2f}** (target >= 0, aim +2)",
    ]
    if "ablation" in s:
        abl = s["ablation"]["held_out"]
        lines.append(
            f"- held-out vs the no-instruction ablation {abl:.2f}: **{ft['held_out'] - abl:+.2f}** (target >= 0)"
        )
    wins = instruction_wins(results)
    n = len(results["held_out_tasks"])
    need = wins_needed(n)
    lines.append(
        f"- instructions beat no instructions on the finetuned model on **{len(wins)} of {n}** held-out tasks "
        f"({', '.join(wins) or 'none'}; target >= {need} of {n})"
    )
    effect = results.get("instruction_effect", {}).get("finetuned", {})
    if effect:
        verdicts = [e["verdict"] for e in effect.values()]
        lines.append(
            f"  - of the {len(verdicts)} tasks resampled below, significant wins: {verdicts.count('win')}, "
            f"significant losses: {verdicts.count('loss')}, within noise: {verdicts.count('within noise')}"
        )
    return lines


def _versus_base_lines(per_task: dict[str, dict[str, Any]]) -> list[str]:
    if not per_task:
        return []
    losses = [n for n, e in per_task.items() if e["verdict"] == "loss"]
    lines = [
        "## Held-out tasks against the base's best: paired bootstrap",
        "",
        "Finetuned + instructions minus the base's better setting on each task (with or without instructions), in "
        "points, 95 % interval of 2,000 paired resamples. Target: no task significantly below "
        f"({len(losses)} {'is' if len(losses) == 1 else 'are'}{': ' + ', '.join(losses) if losses else ''}).",
        "",
        "| task | versus | difference [95 % interval] | verdict |",
        "|---|---|---|---|",
    ]
    for name, e in per_task.items():
        lines.append(
            f"| {name} | {e['versus']} | {e['estimate']:+.2f} [{e['low']:+.2f}, {e['high']:+.2f}] | {e['verdict']} |"
        )
    return [*lines, ""]


def _effect_lines(effect: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    if not effect:
        return []
    models = list(effect)
    lines = [
        "## Instructions against none, held-out: paired bootstrap",
        "",
        "With instructions minus without, on the same model, in points, with the 95 % percentile interval of "
        "2,000 paired resamples (retrieval: queries; Lee STS: documents; polarity: test texts, each scored by its "
        "accuracy over mteb's 10 classifiers; newsgroups: posts, with the k-means clusters kept); 'win' or 'loss' "
        "when the interval excludes 0.",
        "",
        "| task | " + " | ".join(models) + " |",
        "|" + "---|" * (len(models) + 1),
    ]
    for name in effect[models[-1]]:
        cells = []
        for m in models:
            e = effect[m].get(name)
            cells.append(f"{e['estimate']:+.2f} [{e['low']:+.2f}, {e['high']:+.2f}] {e['verdict']}" if e else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def write_report(out: Path, results: dict[str, Any], manifest: dict[str, Any]) -> Path:
    """``report.md`` with the tables, targets, settings and timings, plus ``results.png`` and ``loss_curves.png``."""
    scores, summary = results["scores"], results["summary"]
    held = results["held_out_tasks"]
    lines = ["# Instruction finetuning recipe: results", ""]
    lines += ["All figures in points (x 100). In-domain: nDCG@10 averaged over the trained tasks' test splits.", ""]
    header = ["setting", "in-domain avg", "held-out avg", *held]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setting, row in scores.items():
        cells = [setting, f"{summary[setting]['in_domain']:.2f}", f"{summary[setting]['held_out']:.2f}"]
        cells += [f"{row[t]:.2f}" for t in held]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Targets", "", *_targets(results), ""]
    lines += interval_lines(results.get("target_intervals", {}))
    lines += _effect_lines(results.get("instruction_effect", {}))
    lines += _versus_base_lines(results.get("held_out_vs_base_per_task", {}))
    lines += ["## In-domain tasks (test split, nDCG@10)", ""]
    settings = list(scores)
    lines += ["| task | " + " | ".join(settings) + " |", "|" + "---|" * (len(settings) + 1)]
    extra = [t for t in next(iter(scores.values())) if t not in held and t not in results["in_domain_tasks"]]
    for task in [*results["in_domain_tasks"], *extra]:
        lines.append(f"| {task} | " + " | ".join(f"{scores[s][task]:.2f}" for s in settings) + " |")
    if extra:
        lines += ["", "(Chatterbot QA and WordNet definitions from the evals suite share sources with training.)"]
    lines.append("")
    lines += ["## WiSE-FT (alpha picked on dev nDCG@10)", ""]
    for key, w in results.get("wise", {}).items():
        curve = ", ".join(f"{a}: {v:.2f}" for a, v in sorted(w["dev_ndcg10"].items(), key=lambda kv: float(kv[0])))
        lines.append(f"- {key}: alpha **{w['alpha']}** (dev: {curve})")
    cfg = results.get("config", {})
    lines += ["", "## Settings and time", ""]
    lines.append(
        "steps {steps}, global batch {batch_size}, lr {lr}, temperature {temperature}, max_seq_length "
        "{max_seq_length}, distillation weight {distill_weight} (plus {general} general texts per step, anchor "
        "{distill_anchor}), workers {num_workers} x {cpus_per_worker} CPU, seed {seed}".format(
            **{
                "distill_weight": 0.0,
                "distill_anchor": "instructed",
                **cfg,
                "general": results.get("general_texts_per_step", 0),
            }
        )
        if cfg
        else ""
    )
    if cfg.get("plain_batches"):
        share = cfg["plain_batches"]
        lines.append(f"instruction dropout: {share} of the instructed run's steps trained without instructions")
    counts = manifest["counts"]
    lines.append(
        f"corpus: {len(manifest['trained_tasks'])} trained tasks, {counts.get('train', 0)} training pairs, "
        f"held out: {', '.join(manifest['held_out_tasks'])}; skipped sources: {manifest['skipped'] or 'none'}"
    )
    timings = results.get("timings_s", {})
    lines.append("wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    lines += ["", "![results](results.png)", "", "![loss curves](loss_curves.png)", ""]
    _plots(out, results)
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _plots(out: Path, results: dict[str, Any]) -> None:
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = results["summary"]
    settings = list(summary)
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    width = 0.38
    xs = range(len(settings))
    ax.bar([x - width / 2 for x in xs], [summary[s]["in_domain"] for s in settings], width, label="in-domain")
    ax.bar([x + width / 2 for x in xs], [summary[s]["held_out"] for s in settings], width, label="held-out")
    ax.set_xticks(list(xs), settings, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("score x 100")
    ax.legend()
    ax.set_title("base vs finetuned vs no-instruction ablation")
    fig.tight_layout()
    fig.savefig(out / "results.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for name in ("instructed", "ablation"):
        path = out / "runs" / name / "train_history.json"
        if not path.is_file():
            continue
        history = json.loads(path.read_text(encoding="utf-8"))["history"]
        losses = [float(r["loss"]) for r in history]
        window = max(1, len(losses) // 20)
        smooth = [
            sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
            for i in range(len(losses))
        ]
        ax.plot(range(1, len(losses) + 1), smooth, label=f"{name} (moving mean of {window})")
    ax.set_xlabel("step")
    ax.set_ylabel("contrastive loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss_curves.png")
    plt.close(fig)
