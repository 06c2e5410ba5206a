"""Retrieval recall@1 on MEDI-format pairs: does each query's nearest document equal its positive?

``python -m training.evaluate --data heldout.json [--model DIR]`` prints recall@1 for each model
given (the bundled one when none). Used for the before/after figure on a task left out of training.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from instructor_plugins.model import InstructorEncoder
from training.medi import MediExample, load_medi

__all__ = ["main", "recall_at_1"]


def recall_at_1(encoder: InstructorEncoder, examples: Sequence[MediExample], *, batch_size: int = 64) -> float:
    """Share of queries whose top document (among all distinct positives) is their own positive.

    Documents are the distinct positive texts of ``examples`` (with their instructions); a query
    counts as a hit when its most similar document has the same text as its positive.
    """
    if not examples:
        raise ValueError("no examples to evaluate")
    docs: dict[str, str] = {}
    for e in examples:
        docs.setdefault(e.pos[1], e.pos[0])
    doc_texts = list(docs)
    q = encoder.encode([e.query[1] for e in examples], [e.query[0] for e in examples], batch_size=batch_size)
    d = encoder.encode(doc_texts, [docs[t] for t in doc_texts], batch_size=batch_size)
    top = np.argmax(q @ d.T, axis=1)
    return float(np.mean([doc_texts[j] == e.pos[1] for j, e in zip(top, examples, strict=True)]))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="MEDI JSON with the evaluation pairs")
    p.add_argument("--model", action="append", default=None, help="model dir (repeatable; default: bundled)")
    p.add_argument("--no-instructions", action="store_true", help="blank the instructions")
    p.add_argument("--max-seq-length", type=int, default=128)
    args = p.parse_args(argv)
    examples = load_medi(args.data, blank_instructions=args.no_instructions)
    for model in args.model or [None]:
        encoder = InstructorEncoder.load(model, device="cpu")
        encoder.max_seq_length = args.max_seq_length
        print(f"recall@1 {recall_at_1(encoder, examples):.3f}  n={len(examples)}  model={model or 'bundled'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
