"""Build the multi-task instruction-finetuning corpus from the offline sources (:mod:`training.recipe.sources`).

``instructor corpus --output DIR`` (or ``python -m training.recipe.corpus``) writes, from text that pip and apt
install (WordNet, the dictd dictionaries, man pages, the Debian package index, chatterbot, gensim's data)::

    DIR/train.jsonl, dev.jsonl, test.jsonl   MEDI rows (+ "label", "neg_label" for same-label tasks)
    DIR/dataset/                             the same rows as a datasets.DatasetDict (save_to_disk)
    DIR/manifest.json                        tasks, sources, counts, instructions, licences, skipped sources,
                                             inputs (package versions, file fingerprints), task categories

Steps, all deterministic:

1. every available source builds its tasks; a missing source is skipped with one log line and
   recorded in the manifest under ``skipped``;
2. each pair goes to the split of its key (:func:`training.recipe.sources.splits.split_of`); each split is
   capped per task (pairs ordered by a hash of their key, so the tasks of one source pick the same
   entries); *held-out* tasks are never trained on: all their pairs become evaluation rows;
3. no text is shared across splits: a dev, test or held-out pair whose query or positive appears
   in any training row is dropped (and a test pair whose text is in dev);
4. hard negatives are mined with the base encoder, as MEDI did: for each query the nearest
   document of the same task and split that is not one of its positives, shares no label with it
   and is not a near-duplicate of its positive (cosine < ``near_duplicate``). A negative the source
   knows (a WordNet antonym) wins;
5. opt-in (``instruction_negatives``): a share of the training rows whose query text is also a query of another
   task take that task's positive as their negative instead (:mod:`training.recipe.instruction_negatives`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from instructor_plugins.flags import add_config_flags, command_parser, config_from_args
from training.recipe import instruction_variants
from training.recipe.heldout import check_sources
from training.recipe.inputs import source_inputs
from training.recipe.instruction_negatives import instruction_negatives
from training.recipe.sources import (
    DEFAULT_SOURCES,
    SOURCES,
    Pair,
    SourceUnavailable,
    TaskPairs,
    get_source,
    sources_help,
)
from training.recipe.sources.splits import SPLITS, split_of

__all__ = ["CorpusConfig", "DEFAULT_HOLDOUT", "build_corpus", "load_rows", "main", "mine_negatives"]

logger = logging.getLogger(__name__)

# Whole sources are held out (training.recipe.heldout.HELDOUT_SOURCES: the corpus refuses them), so no
# task of a trained source is held out by default; --holdout can still keep some out, as extra held-out tasks.
DEFAULT_HOLDOUT: tuple[str, ...] = ()


@dataclass
class CorpusConfig:
    """What :func:`build_corpus` builds; ``python -m training.recipe.corpus --help`` documents each flag."""

    output: str
    """Corpus folder (JSONL splits, the DatasetDict in dataset/, manifest.json)."""
    sources: tuple[str, ...] = DEFAULT_SOURCES
    """Text sources to read (any of ``training.recipe.sources.SOURCES``); a missing one is skipped with one log line and
    listed under 'skipped'."""
    holdout: tuple[str, ...] = DEFAULT_HOLDOUT
    """Tasks never trained on: all their pairs become held-out evaluation rows."""
    max_train_per_task: int = 3600
    """Training pairs per task at most."""
    max_eval_per_task: int = 300
    """Dev and test pairs per trained task at most."""
    max_holdout_per_task: int = 500
    """Evaluation pairs per held-out task at most."""
    mining_model: str | None = None
    """Encoder that mines the hard negatives (default: the bundled model)."""
    mining_max_seq_length: int = 64
    """Tokens per text when mining."""
    near_duplicate: float = 0.95
    """A candidate negative this close (cosine) to the positive is a near-duplicate and skipped."""
    mine: bool = True
    """Mine hard negatives with the encoder (--no-mine: random in-task negatives)."""
    instruction_variants: bool = False
    """Give each training pair one of three wordings of its task's instructions (training.recipe.instruction_variants);
    dev, test and held-out rows keep the canonical wording."""
    instruction_negatives: float = 0.0
    """Opt-in: share of the training rows whose query text is also another task's query that take that task's positive
    as their negative instead of the mined one, a contrast only the instruction resolves
    (training.recipe.instruction_negatives); 0 = off."""
    seed: int = 0
    """Seed of the caps' order, the fallback negatives, the instruction wordings and the instruction negatives."""

    def __post_init__(self) -> None:
        for name in ("max_train_per_task", "max_eval_per_task", "max_holdout_per_task"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_sources(self.sources)
        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown:
            raise ValueError(f"unknown sources {unknown}; valid: {list(SOURCES)}")
        if not 0 < self.near_duplicate <= 1:
            raise ValueError(f"near_duplicate must be in (0, 1], got {self.near_duplicate}")
        if not 0 <= self.instruction_negatives <= 1:
            raise ValueError(f"instruction_negatives must be in [0, 1], got {self.instruction_negatives}")
        self.sources, self.holdout = tuple(self.sources), tuple(self.holdout)


@dataclass
class _TaskRows:
    spec: Any
    held_out: bool
    splits: dict[str, list[Pair]] = field(default_factory=dict)


def _order(pair: Pair, seed: int) -> tuple[str, str]:
    # By key first, so the tasks of one source cap to the same entries (shared texts embed once).
    return hashlib.sha1(f"{seed}:{pair.key}".encode()).hexdigest(), pair.query


def _split_task(tp: TaskPairs, cfg: CorpusConfig) -> _TaskRows:
    held_out = tp.spec.name in cfg.holdout
    unique = list({(p.query, p.pos): p for p in tp.pairs if p.query != p.pos}.values())
    unique.sort(key=lambda p: _order(p, cfg.seed))
    rows = _TaskRows(tp.spec, held_out)
    if held_out:
        rows.splits = {"test": unique}
        return rows
    grouped: dict[str, list[Pair]] = defaultdict(list)
    for p in unique:
        grouped[split_of(p.key)].append(p)
    caps = {"train": cfg.max_train_per_task, "dev": cfg.max_eval_per_task, "test": cfg.max_eval_per_task}
    rows.splits = {s: grouped[s][: caps[s]] for s in SPLITS}
    return rows


def _drop_shared(tasks: list[_TaskRows], cfg: CorpusConfig) -> dict[str, int]:
    """Drop evaluation pairs that share a text with training (or test with dev); returns drops per task."""
    train_texts = {t for r in tasks for p in r.splits.get("train", []) for t in (p.query, p.pos, p.neg) if t}
    dev_texts = {t for r in tasks for p in r.splits.get("dev", []) for t in (p.query, p.pos)}
    dropped: dict[str, int] = {}
    for r in tasks:
        for split in ("dev", "test"):
            before = r.splits.get(split, [])
            banned = train_texts | dev_texts if split == "test" and not r.held_out else train_texts
            kept = [p for p in before if p.query not in banned and p.pos not in banned]
            cap = cfg.max_holdout_per_task if r.held_out else cfg.max_eval_per_task
            r.splits[split] = kept[:cap]
            dropped[r.spec.name] = dropped.get(r.spec.name, 0) + len(before) - len(kept)
    return dropped


def mine_negatives(
    pairs: Sequence[Pair],
    embed: Any,
    *,
    near_duplicate: float = 0.95,
    rng: random.Random | None = None,
) -> list[str]:
    """One hard negative per pair: the nearest pool document that is not a positive of the query.

    Args:
        pairs: one task's pairs of one split; the pool is their distinct positives.
        embed: ``embed(texts) -> (n, d)`` L2-normalised vectors (the base encoder, no instruction).
        near_duplicate: skip candidates whose cosine with the positive is at least this.
        rng: fallback choice when no candidate qualifies.

    Returns:
        The negative text of every pair, in order.
    """
    rng = rng or random.Random(0)
    pool = list(dict.fromkeys(p.pos for p in pairs))
    pool_index = {t: i for i, t in enumerate(pool)}
    queries = list(dict.fromkeys(p.query for p in pairs))
    q_index = {t: i for i, t in enumerate(queries)}
    positives: dict[str, set[str]] = defaultdict(set)
    for p in pairs:
        positives[p.query].add(p.pos)
    pool_label = {p.pos: p.label for p in pairs}
    vectors = embed(pool + queries)
    doc_vecs, q_vecs = vectors[: len(pool)], vectors[len(pool) :]
    k = min(len(pool), 32)
    sims = q_vecs @ doc_vecs.T
    top = np.argsort(-sims, axis=1)[:, :k]
    out = []
    for p in pairs:
        if p.neg:
            out.append(p.neg)
            continue
        pos_vec = doc_vecs[pool_index[p.pos]]
        chosen = None
        for j in top[q_index[p.query]]:
            cand = pool[j]
            if cand in positives[p.query] or cand == p.query:
                continue
            if p.label is not None and pool_label.get(cand) == p.label:
                continue
            if float(doc_vecs[j] @ pos_vec) >= near_duplicate:
                continue
            chosen = cand
            break
        if chosen is None:
            others = [c for c in pool if c not in positives[p.query] and c != p.query]
            chosen = rng.choice(others) if others else p.query
        out.append(chosen)
    return out


def _embedder(cfg: CorpusConfig) -> Any:
    from instructor_plugins.model import InstructorEncoder

    encoder = InstructorEncoder.load(cfg.mining_model, device="cpu")
    encoder.max_seq_length = min(cfg.mining_max_seq_length, encoder.max_seq_length)
    cache: dict[str, np.ndarray] = {}

    def embed(texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            vecs = encoder.encode(missing, batch_size=128)
            cache.update(zip(missing, vecs, strict=True))
        return np.stack([cache[t] for t in texts])

    return embed


def _row(
    spec: Any, pair: Pair, neg: str, *, variant_seed: int | None = None, neg_label: str | None = None
) -> dict[str, Any]:
    query_instruction, document_instruction = spec.query_instruction, spec.document_instruction
    if variant_seed is not None:
        key = f"{pair.key}\0{pair.query}\0{pair.pos}"
        query_instruction, document_instruction = instruction_variants.pick(
            spec.name, (query_instruction, document_instruction), key, variant_seed
        )
    row: dict[str, Any] = {
        "query": [query_instruction, pair.query],
        "pos": [document_instruction, pair.pos],
        "neg": [document_instruction, neg],
        "task_name": spec.name,
    }
    if pair.label is not None:
        row["label"] = pair.label
        if neg_label is not None:
            row["neg_label"] = neg_label
    return row


def build_corpus(cfg: CorpusConfig) -> dict[str, Any]:
    """Build and write the corpus; returns the manifest (also written to ``output/manifest.json``)."""
    start = time.perf_counter()
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    tasks: list[_TaskRows] = []
    skipped: dict[str, str] = {}
    licences: dict[str, str] = {}
    inputs: dict[str, Any] = {}
    for name in cfg.sources:
        source = get_source(name)
        try:
            built = source.tasks()
        except SourceUnavailable as exc:
            logger.warning("skipping source %s: %s", name, exc)
            skipped[name] = str(exc)
            continue
        licences[name] = source.licence
        inputs[name] = source_inputs(source)
        tasks += [_split_task(tp, cfg) for tp in built if tp.pairs]
    known = {r.spec.name for r in tasks}
    missing_holdout = sorted(set(cfg.holdout) - known)
    dropped = _drop_shared(tasks, cfg)
    embed = _embedder(cfg) if cfg.mine else None
    rng = random.Random(cfg.seed)
    negatives: dict[str, dict[str, list[str]]] = {}
    for r in tasks:
        for split, pairs in r.splits.items():
            if not pairs:
                continue
            if embed is not None:
                negs = mine_negatives(pairs, embed, near_duplicate=cfg.near_duplicate, rng=rng)
            else:
                pool = list(dict.fromkeys(p.pos for p in pairs))
                negs = [p.neg or rng.choice([c for c in pool if c != p.pos] or [p.query]) for p in pairs]
            negatives.setdefault(r.spec.name, {})[split] = negs
    swapped: dict[str, int] = {}
    if cfg.instruction_negatives:
        train = {
            r.spec.name: (r.splits["train"], negatives[r.spec.name]["train"]) for r in tasks if r.splits.get("train")
        }
        new_negs, swapped = instruction_negatives(train, cfg.instruction_negatives, seed=cfg.seed)
        for name, negs in new_negs.items():
            negatives[name]["train"] = negs
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    manifest_tasks = []
    for r in tasks:
        counts = {}
        for split, pairs in r.splits.items():
            if not pairs:
                counts[split] = 0
                continue
            negs = negatives[r.spec.name][split]
            variant_seed = cfg.seed if cfg.instruction_variants and split == "train" else None
            label_of = {t: p.label for p in pairs if p.label is not None for t in (p.query, p.pos)}
            rows[split] += [
                _row(r.spec, p, n, variant_seed=variant_seed, neg_label=label_of.get(n))
                for p, n in zip(pairs, negs, strict=True)
            ]
            counts[split] = len(pairs)
        manifest_tasks.append(
            {
                **r.spec.to_dict(),
                "held_out": r.held_out,
                "counts": counts,
                "dropped_shared_text": dropped.get(r.spec.name, 0),
                "instruction_negatives": swapped.get(r.spec.name, 0),
            }
        )
        logger.info(
            "task %s: %s%s [%.0fs]",
            r.spec.name,
            counts,
            " (held out)" if r.held_out else "",
            time.perf_counter() - start,
        )
    for split, split_rows in rows.items():
        with (out / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for row in split_rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    _save_dataset(rows, out / "dataset")
    manifest = {
        "config": asdict(cfg),
        "tasks": manifest_tasks,
        "trained_tasks": [t["name"] for t in manifest_tasks if not t["held_out"]],
        "held_out_tasks": [t["name"] for t in manifest_tasks if t["held_out"]],
        "missing_holdout_tasks": missing_holdout,
        "counts": {s: len(v) for s, v in rows.items()},
        "sources": licences,
        "inputs": inputs,
        "categories": _category_counts(manifest_tasks),
        "skipped": skipped,
        "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def _category_counts(tasks: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Trained tasks per category and shape (the paper's categories; symmetric or asymmetric)."""
    out: dict[str, dict[str, int]] = {}
    for t in tasks:
        if not t["held_out"]:
            cell = out.setdefault(t["category"], {"asymmetric": 0, "symmetric": 0})
            cell[t["shape"]] += 1
    return dict(sorted(out.items()))


def _save_dataset(rows: dict[str, list[dict[str, Any]]], path: Path) -> None:
    from datasets import Dataset, DatasetDict

    def columns(split_rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        return {
            "query": [r["query"] for r in split_rows],
            "pos": [r["pos"] for r in split_rows],
            "neg": [r["neg"] for r in split_rows],
            "task_name": [r["task_name"] for r in split_rows],
            "label": [r.get("label") or "" for r in split_rows],
            "neg_label": [r.get("neg_label") or "" for r in split_rows],
        }

    DatasetDict({s: Dataset.from_dict(columns(v)) for s, v in rows.items() if v}).save_to_disk(str(path))


def load_rows(corpus: str | Path, split: str) -> list[dict[str, Any]]:
    """The raw JSON rows of one split (``train``, ``dev`` or ``test``) of a built corpus."""
    path = Path(corpus) / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: build the corpus with python -m training.recipe.corpus --output {corpus}"
        )
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def parse_args(argv: Sequence[str] | None = None, *, prog: str = "python -m training.recipe.corpus") -> CorpusConfig:
    """Parse the command line into a :class:`CorpusConfig` (flags from its fields; exit 2 on a bad value)."""
    parser = command_parser(prog, __doc__)
    add_config_flags(parser, CorpusConfig, help={"sources": sources_help()})
    return config_from_args(parser, CorpusConfig, parser.parse_args(argv))


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m training.recipe.corpus") -> int:
    """CLI entry point (``instructor corpus``)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = build_corpus(parse_args(argv, prog=prog))
    print(json.dumps({k: manifest[k] for k in ("counts", "trained_tasks", "held_out_tasks", "skipped", "seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
