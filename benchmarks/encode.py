"""Throughput of InstructorEncoder vs sentence-transformers on the same model, texts and settings.

Baseline: sentence-transformers ``encode(texts, prompt=instruction)`` with ``include_prompt=False``
pooling (the reference INSTRUCTOR math), on the bundled all-MiniLM-L6-v2, fp32, batch 32, same
process. Two cases:

- plain: one instruction for all texts;
- mixed: 4 instructions interleaved; ours in one call, sentence-transformers grouped by instruction
  (it takes one prompt per call) and reassembled.

Runs alternate A/B and the best of ``--repeats`` is kept for each side, since the machine is shared.
Prints texts/s and the ratio ours / baseline.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from instructor_plugins.checkpoint import bundled_model_dir
from instructor_plugins.corpora import gensim_test_file, wordnet_synsets
from instructor_plugins.model import InstructorEncoder

INSTRUCTIONS = [
    "Represent the dictionary definition for retrieval: ",
    "Represent the sentence for classifying its topic: ",
    "Represent the sentence for clustering: ",
    "Represent the question for retrieving supporting documents: ",
]


def load_texts(n: int) -> tuple[list[str], str]:
    try:
        return [s.gloss for s in wordnet_synsets("noun", limit=n)], "WordNet noun glosses"
    except FileNotFoundError:
        lines = gensim_test_file("lee_background.cor").read_text(encoding="latin-1").splitlines()
        sentences = [s.strip() + "." for line in lines for s in line.split(". ") if s.strip()]
        return (sentences * (n // len(sentences) + 1))[:n], "gensim lee_background sentences"


def best_time(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    texts, source = load_texts(args.n)
    ours = InstructorEncoder.load(device="cpu", dtype="float32")
    st = SentenceTransformer(str(bundled_model_dir()), device="cpu")
    next(m for m in st if type(m).__name__ == "Pooling").include_prompt = False
    print(f"{len(texts)} texts ({source}), batch {args.batch_size}, fp32, torch threads {torch.get_num_threads()}")

    mixed = [INSTRUCTIONS[i % len(INSTRUCTIONS)] for i in range(len(texts))]

    def st_grouped() -> np.ndarray:
        out = np.empty((len(texts), ours.dim), dtype=np.float32)
        for instruction in INSTRUCTIONS:
            rows = [i for i, ins in enumerate(mixed) if ins == instruction]
            out[rows] = st.encode([texts[i] for i in rows], prompt=instruction, batch_size=args.batch_size)
        return out

    cases: dict[str, tuple[Callable[[], np.ndarray], Callable[[], np.ndarray]]] = {
        "plain": (
            lambda: ours.encode(texts, INSTRUCTIONS[0], batch_size=args.batch_size),
            lambda: st.encode(texts, prompt=INSTRUCTIONS[0], batch_size=args.batch_size),
        ),
        "mixed (4 instructions)": (lambda: ours.encode(texts, mixed, batch_size=args.batch_size), st_grouped),
    }
    ours.encode(texts[:64], INSTRUCTIONS[0])  # warm-up both
    st.encode(texts[:64], prompt=INSTRUCTIONS[0])
    for name, (ours_fn, st_fn) in cases.items():
        t_ours = t_st = float("inf")
        for _ in range(args.repeats):  # alternate so both sides see the same machine load
            t, a = best_time(ours_fn, 1)
            t_ours = min(t_ours, t)
            t, b = best_time(st_fn, 1)
            t_st = min(t_st, t)
        cos = float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
        print(
            f"{name:24s} ours {len(texts) / t_ours:7.1f} texts/s | sentence-transformers {len(texts) / t_st:7.1f} "
            f"texts/s | ratio {t_st / t_ours:.2f}x | min cosine {cos:.6f}"
        )


if __name__ == "__main__":
    main()
