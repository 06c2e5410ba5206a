"""One command from offline text to a measurably better instruction-following model, with the evidence.

Examples::

    instructor recipe --output runs/finetune          # what make finetune runs
    instructor recipe --output runs/seed1 --seed 1 --no-ablation
    ray job submit --working-dir . -- instructor recipe --output /mnt/shared/runs/finetune --shared-storage

It runs, writing into ``DIR`` (``--output``):

1. **corpus**: build the multi-task corpus (:mod:`training.recipe.corpus`) into ``DIR/corpus`` (reused when
   its manifest records the same settings);
2. **checks** before Ray starts: at least 2 trained tasks, each with at least ``batch_size``
   training pairs;
3. **finetune** with Ray Train (:mod:`training.train`), then the **ablation**: the same data,
   steps and seed with every instruction blanked; both add the similarity distillation toward the
   frozen base model (:mod:`training.regularizers.distill`), a guard against forgetting, on each batch's
   documents and on general Wikipedia paragraphs (:mod:`training.regularizers.general_text`, written to
   ``DIR/general_text.jsonl``; skipped with one line when gensim's sample is not installed);
4. **WiSE-FT**: each model's weights are interpolated with the base model's; ``alpha`` is picked
   on the *dev* splits (never on test), for each model separately;
5. **evaluate** base, base + instructions, finetuned, finetuned + instructions and the ablation
   on (a) the trained tasks' test splits, (b) the held-out benchmark (:mod:`training.recipe.heldout`):
   11 tasks of 6 categories from 4 whole sources the corpus never reads;
6. **report**: ``DIR/report.md``, ``DIR/results.json``, ``DIR/loss_curves.png``, ``DIR/results.png``;
   the models go to ``DIR/model`` and ``DIR/ablation``, each recording in ``instructor.json``
   whether it was instruction-trained and its default instructions
   (:func:`training.recipe.evaluation.recorded_defaults`). A finished run's Ray Train resume checkpoints
   (``DIR/ray_results/NAME/checkpoint_*``) are deleted; its exported model (``DIR/runs/NAME``) and step
   logs stay.

Held-out choice (made before any result was seen): the computing dictionaries (FOLDOC + Jargon
File), the Linux man pages, Vim's help and the gensim data (movie-review sentiment, newsgroup topics,
Lee news similarity) never enter training (:data:`training.recipe.heldout.HELDOUT_SOURCES`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from instructor_plugins.flags import add_config_flags, command_parser, config_from_args
from training.recipe.corpus import DEFAULT_HOLDOUT, CorpusConfig, build_corpus
from training.recipe.heldout import check_sources
from training.recipe.paired import PER_ITEM_FILE
from training.recipe.sources import DEFAULT_SOURCES, sources_help
from training.recipe.tasks import HELDOUT_EVAL_TASKS

__all__ = ["HELDOUT_EVAL_TASKS", "RecipeConfig", "check_corpus", "main", "run"]

logger = logging.getLogger(__name__)


@dataclass
class RecipeConfig:
    """The recipe's settings; ``python -m training.recipe --help`` documents each flag."""

    output: str
    """Folder for the corpus, the models, the report."""
    model: str | None = None
    """Base model (default: the bundled all-MiniLM-L6-v2); it also mines the hard negatives."""
    sources: tuple[str, ...] = DEFAULT_SOURCES
    """Text sources of the corpus (any of ``training.recipe.sources.SOURCES``; the CLI help lists them)."""
    steps: int = 240
    """Optimizer steps of each training run (the finetune and the ablation)."""
    batch_size: int = 32
    """Global batch (triples per step, one task per batch)."""
    lr: float = 1e-4
    """Peak learning rate (linear warmup over 10 % of the steps, then linear decay)."""
    temperature: float = 0.05
    """Contrastive loss temperature."""
    mask_false_negatives: bool = False
    """Opt-in: leave in-batch texts of the target's label (same-label tasks) or text out of the loss's negatives
    (training.false_negatives; off by default: it lowered the held-out instruction effect, results/recipe.md)."""
    max_seq_length: int = 128
    """Tokens per instruction + text while training."""
    distill_weight: float = 1.0
    """Weight of the similarity distillation toward the base model (training.regularizers.distill) in both runs;
    0 = off."""
    distill_general: int = 16
    """General Wikipedia paragraphs per step that the distillation also covers (training.regularizers.general_text);
    0 = the batch's documents only."""
    distill_anchor: Literal["instructed", "plain"] = "instructed"
    """What the distillation holds to the base model: the texts embedded with their task's instruction, or embedded
    plain as the base model sees them (only the no-instruction geometry anchored; the ablation is the same run either
    way; training.regularizers.distill)."""
    num_workers: int = 1
    """Ray Train workers."""
    cpus_per_worker: int = 2
    """CPU threads per worker."""
    wise_alphas: tuple[float, ...] = (0.5, 1.0)
    """WiSE-FT weights of the finetuned model to try; the best on the dev splits is kept."""
    max_train_per_task: int = 3600
    """Training pairs per task at most (task diversity over volume)."""
    max_eval_per_task: int = 300
    """Dev and test pairs per trained task at most."""
    max_holdout_per_task: int = 500
    """Evaluation pairs per held-out task at most."""
    dev_queries_per_task: int = 40
    """Dev queries per task for picking the WiSE-FT alpha."""
    test_queries_per_task: int = 40
    """Test queries per trained task in the in-domain evaluation (53 tasks x 40 = 2,120 queries by default)."""
    heldout_queries_per_task: int = 200
    """Queries per task kept out with --holdout in the evaluation."""
    heldout_items: int = 300
    """Scored items per task of the held-out benchmark (training.recipe.heldout), where its source has them."""
    ablation: bool = True
    """Also train the no-instruction ablation on the same data and steps."""
    evals_suite: bool = True
    """Also run the offline evals tasks that training never touches (Lee STS, polarity, newsgroups)."""
    evals_in_domain: bool = False
    """Also run the offline evals tasks that share a source with training (chatterbot QA, WordNet definitions)."""
    evals_max_items: int | None = None
    """Subsample the offline evals tasks (quick runs; not comparable with full runs)."""
    seed: int = 0
    """Seed of the splits' caps, the negatives' fallback and the batch plan."""
    holdout: tuple[str, ...] = DEFAULT_HOLDOUT
    """Tasks never trained on, evaluated as held-out."""
    instruction_variants: bool = False
    """Train on three wordings of each task's instructions (training.recipe.instruction_variants); evaluation keeps the
    canonical ones."""
    instruction_negatives: float = 0.0
    """Opt-in: share of the training rows whose query text is also another task's query that take that task's positive
    as their negative (training.recipe.instruction_negatives); 0 = off."""
    plain_batches: float = 0.0
    """Opt-in instruction dropout in the instructed run: the share of its steps that train without instructions
    (training.batching.is_plain_batch); 0 = off."""
    use_gpu: bool = False
    """One GPU per worker, bf16 autocast."""
    shared_storage: bool = False
    """``--output`` is a folder every node of the cluster mounts (NFS): needed for a local output on a cluster of
    several nodes, where the training checkpoints live under it."""

    def __post_init__(self) -> None:
        if not self.wise_alphas or any(not 0 <= a <= 1 for a in self.wise_alphas):
            raise ValueError(f"wise_alphas must be values in [0, 1], got {self.wise_alphas}")
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError(f"steps must be >= 1 and batch_size >= 2, got {self.steps}, {self.batch_size}")
        self.sources, self.holdout = tuple(self.sources), tuple(self.holdout)
        check_sources(self.sources)  # a held-out source fails here, before the corpus or Ray
        self.wise_alphas = tuple(sorted(set(self.wise_alphas)))
        if self.distill_general < 0:
            raise ValueError(f"distill_general must be >= 0 (0 = off), got {self.distill_general}")
        # a bad training setting fails now, not after the corpus is built
        self.train_config(no_instructions=False, distill_texts=self.general_text_path())

    def corpus_config(self) -> CorpusConfig:
        """The corpus this recipe trains on."""
        return CorpusConfig(
            output=str(Path(self.output) / "corpus"),
            sources=self.sources,
            holdout=self.holdout,
            max_train_per_task=self.max_train_per_task,
            max_eval_per_task=self.max_eval_per_task,
            max_holdout_per_task=self.max_holdout_per_task,
            mining_model=self.model,
            instruction_variants=self.instruction_variants,
            instruction_negatives=self.instruction_negatives,
            seed=self.seed,
        )

    def general_text_path(self) -> str | None:
        """Where the recipe writes the general texts, or None when ``distill_general`` or ``distill_weight`` is 0."""
        if self.distill_general == 0 or self.distill_weight == 0:
            return None
        return str(Path(self.output).resolve() / "general_text.jsonl")

    def train_config(self, *, no_instructions: bool, distill_texts: str | None = None) -> Any:
        """The Ray Train run of the instructed model or of the ablation (``distill_texts``: general texts)."""
        from training.config import TrainConfig

        name = "ablation" if no_instructions else "instructed"
        out = Path(self.output).resolve()
        return TrainConfig(
            data=str(out / "corpus" / "dataset"),
            output=str(out / "runs" / name),
            model=self.model,
            num_workers=self.num_workers,
            cpus_per_worker=self.cpus_per_worker,
            use_gpu=self.use_gpu,
            batch_size=self.batch_size,
            steps=self.steps,
            lr=self.lr,
            temperature=self.temperature,
            mask_false_negatives=self.mask_false_negatives,
            max_seq_length=self.max_seq_length,
            distill_weight=self.distill_weight,
            distill_texts=distill_texts,
            distill_texts_per_step=self.distill_general or TrainConfig.distill_texts_per_step,
            distill_anchor=self.distill_anchor,
            no_instructions=no_instructions,
            plain_batches=0.0 if no_instructions else self.plain_batches,
            seed=self.seed,
            checkpoint_every=max(self.steps, 1),
            run_name=name,
            storage_path=str(out / "ray_results"),
            shared_storage=self.shared_storage,
        )


class CorpusError(ValueError):
    """The corpus cannot train the recipe (too few tasks, or a task smaller than the batch)."""


def check_corpus(manifest: dict[str, Any], batch_size: int) -> list[str]:
    """The trained task names; :class:`CorpusError` when fewer than 2, or one is smaller than the batch."""
    trained = [t for t in manifest["tasks"] if not t["held_out"]]
    if len(trained) < 2:
        raise CorpusError(
            f"the corpus has {len(trained)} trained task(s) ({[t['name'] for t in trained]}); "
            f"multi-task finetuning needs at least 2 (skipped sources: {manifest.get('skipped', {})})"
        )
    small = {t["name"]: t["counts"].get("train", 0) for t in trained if t["counts"].get("train", 0) < batch_size}
    if small:
        raise CorpusError(
            f"tasks smaller than the batch size {batch_size}: {small}; lower --batch-size, raise "
            "--max-train-per-task or leave those sources out (--sources)"
        )
    return [t["name"] for t in trained]


def _corpus(cfg: RecipeConfig) -> dict[str, Any]:
    corpus_cfg = cfg.corpus_config()
    path = Path(corpus_cfg.output) / "manifest.json"
    if path.is_file():
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        wanted = json.loads(json.dumps(dataclasses.asdict(corpus_cfg)))
        # a setting the manifest lacks was added later: that corpus was built with its default
        defaults = json.loads(json.dumps(dataclasses.asdict(CorpusConfig(output=corpus_cfg.output))))
        if {**defaults, **manifest.get("config", {}), "output": wanted["output"]} == wanted:
            logger.info("corpus: reusing %s", path.parent)
            return manifest
    return build_corpus(corpus_cfg)


def _general_text(cfg: RecipeConfig) -> str | None:
    """Write the general texts for the distillation (reused when present); None when off or unavailable."""
    from training.regularizers.general_text import GeneralTextUnavailable, wikipedia_paragraphs, write_texts

    path = cfg.general_text_path()
    if path is None or Path(path).is_file():
        return path
    try:
        texts = wikipedia_paragraphs()
    except GeneralTextUnavailable as exc:
        logger.warning("general text: skipped (%s); the distillation covers the batches' documents only", exc)
        return None
    write_texts(texts, path)
    logger.info("general text: %d Wikipedia paragraphs -> %s", len(texts), path)
    return path


def _train(cfg: RecipeConfig, *, no_instructions: bool, distill_texts: str | None) -> Path:
    from training.train import run as train_run

    train_cfg = cfg.train_config(no_instructions=no_instructions, distill_texts=distill_texts)
    out = Path(train_cfg.output)
    if (out / "train_history.json").is_file():
        logger.info("train: reusing %s", out)
        return out
    start = time.perf_counter()
    _start_ray()
    train_run(train_cfg)
    logger.info("train %s: %.0f s", train_cfg.name, time.perf_counter() - start)
    freed = drop_resume_checkpoints(train_cfg.run_dir)
    logger.info(
        "train %s: removed its resume checkpoints (%.0f MB; the model is in %s)", train_cfg.name, freed / 1e6, out
    )
    return out


def drop_resume_checkpoints(run_dir: Path) -> int:
    """Delete a finished Ray Train run's ``checkpoint_*`` folders (weights and AdamW state); returns the bytes freed.

    They exist to resume an interrupted run. Once the run is done its model is exported (``runs/NAME``) and
    the recipe reuses that, so each would only keep ~3x the model's size on disk. Ray Train's snapshot of them
    goes too, so a rerun after ``runs/NAME`` was deleted trains afresh instead of failing on a missing checkpoint.
    Logs stay.
    """
    freed = 0
    snapshot = run_dir / "checkpoint_manager_snapshot.json"
    if snapshot.is_file():
        snapshot.unlink()
    for ckpt in sorted(run_dir.glob("checkpoint_*")):
        if ckpt.is_dir():
            freed += sum(f.stat().st_size for f in ckpt.rglob("*") if f.is_file())
            shutil.rmtree(ckpt)
    return freed


def _start_ray() -> None:
    """Start a loopback-only local Ray, workers at normal priority, or join the cluster ``RAY_ADDRESS`` names.

    Ray starts workers at nice 15 by default; on a shared machine that starves the training workers.
    Under ``ray job submit`` (``RAY_ADDRESS`` set) the cluster's own settings apply.
    """
    import os

    import ray

    from ray_backend.net import init_local_ray, join_cluster

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        join_cluster(os.environ["RAY_ADDRESS"], log_to_driver=False)
    else:
        init_local_ray(log_to_driver=False, _system_config={"worker_niceness": 0})


def check_cluster(cfg: RecipeConfig) -> None:
    """Join the cluster ``RAY_ADDRESS`` names, if any, and check it can run the recipe, before any work.

    A bad address, a local ``--output`` not marked shared on several nodes, or too few resources for the training
    workers fail in seconds, not after the corpus is built.

    Raises:
        ClusterUnreachable: the address does not answer (:func:`ray_backend.net.check_address`).
        StorageError: several alive nodes, and ``cfg.shared_storage`` not set.
        InsufficientResources: no room for the training workers (:func:`training.train.check_resources`).
    """
    import os

    from instructor_plugins.storage import StorageError
    from ray_backend.net import alive_node_count
    from training.train import check_resources

    if not os.environ.get("RAY_ADDRESS"):
        return
    _start_ray()
    nodes = alive_node_count()
    if nodes > 1 and not cfg.shared_storage:
        raise StorageError(
            f"--output {cfg.output} is a local folder, and this Ray cluster has {nodes} nodes: the recipe keeps its "
            "corpus, training checkpoints and models there, and every node must see them. Use a folder every node "
            "mounts (NFS) and pass --shared-storage"
        )
    check_resources(cfg.train_config(no_instructions=False, distill_texts=cfg.general_text_path()))


def run(cfg: RecipeConfig) -> dict[str, Any]:
    """Run the whole recipe; returns the results (also written to ``DIR/results.json``)."""
    from training.recipe import evaluation as recipe_eval

    start = time.perf_counter()
    check_cluster(cfg)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    manifest = _corpus(cfg)
    timings["corpus"] = time.perf_counter() - start
    trained = check_corpus(manifest, cfg.batch_size)
    general = _general_text(cfg)
    t0 = time.perf_counter()
    raw_model = _train(cfg, no_instructions=False, distill_texts=general)
    raw_ablation = _train(cfg, no_instructions=True, distill_texts=general) if cfg.ablation else None
    timings["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = recipe_eval.evaluate_recipe(cfg, manifest, trained, raw_model, raw_ablation)
    timings["evaluate"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - start
    results["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    results["config"] = dataclasses.asdict(cfg)
    results["general_texts_per_step"] = cfg.distill_general if general else 0  # 0 when off or unavailable
    per_item = results.pop("per_item")  # every setting's per-item results, for comparing runs item by item
    (out / PER_ITEM_FILE).write_text(json.dumps(per_item) + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    recipe_eval.write_report(out, results, manifest)
    return results


def parse_args(argv: Sequence[str] | None = None, *, prog: str = "python -m training.recipe") -> RecipeConfig:
    """Parse the command line into a :class:`RecipeConfig` (flags from its fields; exit 2 on a bad value)."""
    parser = command_parser(prog, __doc__)
    add_config_flags(parser, RecipeConfig, help={"sources": sources_help()})
    return config_from_args(parser, RecipeConfig, parser.parse_args(argv))


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m training.recipe") -> int:
    """CLI entry point (``instructor recipe``): 0 done, 2 bad input (see below).

    Exit 2: bad flags, a corpus that cannot be trained, a ``RAY_ADDRESS`` that does not answer, a local
    ``--output`` on a cluster of several nodes without ``--shared-storage``, or a cluster without room for the
    training workers.
    """
    logging.basicConfig(level=logging.INFO, format="[recipe] %(message)s")
    cfg = parse_args(argv, prog=prog)
    from instructor_plugins.storage import StorageError
    from ray_backend.net import ClusterUnreachable, InsufficientResources

    try:
        results = run(cfg)
    except (CorpusError, StorageError, ClusterUnreachable, InsufficientResources) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    print((Path(cfg.output) / "report.md").read_text(encoding="utf-8"))
    print(f"wall time: {results['timings_s']['total']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
