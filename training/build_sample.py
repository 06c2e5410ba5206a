"""Build a small MEDI-format training sample from real text that installs offline.

``python -m training.build_sample --output data/medi_sample.json [--per-task 48] [--holdout chatterbot_qa]``

Tasks (each with instructions in the paper's unified format, ``instructions.make_instruction``):

- ``wordnet_word_to_definition``: a noun -> its WordNet definition (retrieval);
- ``wordnet_definition_to_word``: a verb's definition -> the verb (reverse dictionary);
- ``wordnet_synonyms``: an adjective -> another lemma of its synset (symmetric);
- ``chatterbot_qa``: a chatterbot question -> its answer (question answering);
- ``polarity_same_label``: a movie-review snippet -> another snippet of the same sentiment (symmetric).

Hard negatives: among a random pool of candidates of the same task (same category for chatterbot,
the other sentiment for polarity), the one whose words overlap most with the positive. This is the
part to adapt when you build your own MEDI data: swap the sources, keep the row format.
``--holdout TASK`` leaves a task out of the training file and writes it to ``--holdout-output`` for
a zero-shot before/after evaluation (``python -m training.evaluate``).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from instructor_plugins.corpora import chatterbot_pairs, gensim_test_file, wordnet_synsets
from instructor_plugins.instructions import make_instruction
from training.medi import MediExample, save_medi

__all__ = ["TASKS", "build_sample", "hardest_negative", "main"]

Triple = tuple[str, str, str]
_WORD = re.compile(r"[a-z]{3,}")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def hardest_negative(positive: str, candidates: Sequence[str], rng: random.Random, pool: int = 64) -> str:
    """The candidate (from a random pool of ``pool``) with the highest word-overlap (Jaccard) with ``positive``.

    >>> hardest_negative("a large river bank", ["a small river", "blue sky"], random.Random(0))
    'a small river'
    """
    options = [c for c in candidates if c != positive]
    if not options:
        raise ValueError("no candidate differs from the positive")
    sample = rng.sample(options, min(pool, len(options)))
    target = _words(positive)

    def score(text: str) -> float:
        words = _words(text)
        return len(words & target) / (len(words | target) or 1)

    return max(sample, key=score)


def _word_to_definition(n: int, rng: random.Random) -> list[Triple]:
    synsets = [s for s in wordnet_synsets("noun", limit=20000) if len(s.definition) > 15]
    chosen = rng.sample(synsets, n)
    definitions = [s.definition for s in synsets]
    return [(s.lemmas[0], s.definition, hardest_negative(s.definition, definitions, rng)) for s in chosen]


def _definition_to_word(n: int, rng: random.Random) -> list[Triple]:
    synsets = [s for s in wordnet_synsets("verb", limit=8000) if len(s.definition) > 15]
    by_definition = {s.definition: s.lemmas[0] for s in synsets}
    chosen = rng.sample(synsets, n)
    definitions = list(by_definition)
    out = []
    for s in chosen:
        neg_definition = hardest_negative(s.definition, definitions, rng)
        neg = by_definition[neg_definition]
        if neg == s.lemmas[0]:
            neg = rng.choice([w for w in by_definition.values() if w != s.lemmas[0]])
        out.append((s.definition, s.lemmas[0], neg))
    return out


def _synonyms(n: int, rng: random.Random) -> list[Triple]:
    synsets = [s for s in wordnet_synsets("adj", limit=12000) if len(set(s.lemmas)) > 1]
    glosses = {s.definition: s for s in synsets}
    chosen = rng.sample(synsets, n)
    out = []
    for s in chosen:
        a, b = rng.sample(sorted(set(s.lemmas)), 2)
        other = glosses[hardest_negative(s.definition, list(glosses), rng)]
        neg = next((w for w in other.lemmas if w not in s.lemmas), None) or rng.choice(synsets[0].lemmas)
        out.append((a, b, neg))
    return out


def _chatterbot_qa(n: int, rng: random.Random) -> list[Triple]:
    pairs = list({p.question: p for p in chatterbot_pairs()}.values())
    by_category: dict[str, list[str]] = {}
    for p in pairs:
        by_category.setdefault(p.category, []).append(p.answer)
    chosen = rng.sample(pairs, n)
    out = []
    for p in chosen:
        candidates = [a for a in by_category[p.category] if a != p.answer] or [q.answer for q in pairs]
        out.append((p.question, p.answer, hardest_negative(p.answer, candidates, rng)))
    return out


def _polarity(n: int, rng: random.Random) -> list[Triple]:
    path = gensim_test_file("pang_lee_polarity.cor")
    labelled: dict[str, list[str]] = {"pos": [], "neg": []}
    for line in path.read_text(encoding="cp1252").splitlines():
        label, _, text = line.partition(" ")
        key = label.removeprefix("__label__")
        if key in labelled and text.strip():
            labelled[key].append(text.strip())
    out = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        query, pos = rng.sample(labelled[label], 2)
        other = labelled["neg" if label == "pos" else "pos"]
        out.append((query, pos, hardest_negative(query, other, rng)))
    return out


# task name -> (builder, query instruction, document instruction)
TASKS: dict[str, tuple[Callable[[int, random.Random], list[Triple]], str, str]] = {
    "wordnet_word_to_definition": (
        _word_to_definition,
        make_instruction("word", "retrieving its dictionary definition"),
        make_instruction("dictionary definition", "retrieval"),
    ),
    "wordnet_definition_to_word": (
        _definition_to_word,
        make_instruction("dictionary definition", "retrieving the word it defines"),
        make_instruction("word", "retrieval"),
    ),
    "wordnet_synonyms": (
        _synonyms,
        make_instruction("word", "retrieving its synonyms"),
        make_instruction("word", "retrieving its synonyms"),
    ),
    "chatterbot_qa": (
        _chatterbot_qa,
        make_instruction("question", "retrieving the answer", domain="conversational"),
        make_instruction("answer", "retrieval", domain="conversational"),
    ),
    "polarity_same_label": (
        _polarity,
        make_instruction("review", "classifying its sentiment", domain="movie"),
        make_instruction("review", "classifying its sentiment", domain="movie"),
    ),
}


def build_task(task: str, n: int, seed: int = 0) -> list[MediExample]:
    """``n`` MEDI examples of one task (see :data:`TASKS`)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {list(TASKS)}")
    builder, query_instruction, doc_instruction = TASKS[task]
    rng = random.Random(f"{seed}:{task}")
    return [
        MediExample(query=(query_instruction, q), pos=(doc_instruction, p), neg=(doc_instruction, n_), task=task)
        for q, p, n_ in builder(n, rng)
    ]


def build_sample(
    per_task: int = 48,
    *,
    tasks: Sequence[str] | None = None,
    holdout: str | None = None,
    holdout_size: int = 100,
    seed: int = 0,
) -> tuple[list[MediExample], list[MediExample]]:
    """Training examples for ``tasks`` (default all but ``holdout``) and the held-out task's examples."""
    names = list(tasks or TASKS)
    if holdout is not None and holdout not in TASKS:
        raise ValueError(f"unknown holdout task {holdout!r}; valid: {list(TASKS)}")
    train = [e for name in names if name != holdout for e in build_task(name, per_task, seed)]
    held = build_task(holdout, holdout_size, seed + 1) if holdout else []
    return train, held


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m training.build_sample", description=__doc__.split("\n\n")[0])
    p.add_argument("--output", required=True, help="training MEDI JSON to write")
    p.add_argument("--per-task", type=int, default=48, help="examples per training task")
    p.add_argument("--tasks", nargs="*", default=None, choices=list(TASKS), help="tasks to include (default all)")
    p.add_argument("--holdout", default=None, choices=list(TASKS), help="task left out of training")
    p.add_argument("--holdout-output", default=None, help="MEDI JSON for the held-out task")
    p.add_argument("--holdout-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    train, held = build_sample(
        args.per_task, tasks=args.tasks, holdout=args.holdout, holdout_size=args.holdout_size, seed=args.seed
    )
    print(f"wrote {len(train)} training rows to {save_medi(train, args.output)}")
    if held:
        target = args.holdout_output or str(Path(args.output).with_suffix("")) + f".{args.holdout}.json"
        print(f"wrote {len(held)} held-out rows ({args.holdout}) to {save_medi(held, target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
