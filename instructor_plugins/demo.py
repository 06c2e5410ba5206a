"""In-process demo: retrieve chatterbot answers for questions, with INSTRUCTOR-style instructions.

Run ``python -m instructor_plugins.demo`` (``make demo`` runs the served version of this job).
Answers are embedded with the ``qa`` preset's document instruction, questions with its query instruction
(none for a model that was not instruction-trained, such as the bundled one), and the top hits are printed
with their cosine scores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from instructor_plugins.corpora import chatterbot_pairs
from instructor_plugins.instructions import TaskInstructions, preset
from instructor_plugins.model import InstructorEncoder

QUESTIONS = [
    "What is AI?",
    "Who wrote Hamlet?",
    "What is your favorite sport?",
    "Tell me a joke.",
    "What is the stock market?",
]


def main(argv: list[str] | None = None) -> int:
    """Embed the corpus, answer the questions, print the top hits."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model path or hub id (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args(argv)

    answers = sorted({p.answer for p in chatterbot_pairs()})
    encoder = InstructorEncoder.load(args.model)
    print(f"model: {encoder}")
    if encoder.defaults.instruction_trained:
        instructions = preset("qa")
        print(f"document instruction: {instructions.document!r}")
        print(f"query instruction:    {instructions.query!r}")
    else:  # the model's own default: such a model embeds best without instructions
        instructions = TaskInstructions(query="", document="")
        print("instructions: none (this model was not instruction-trained)")
    start = time.perf_counter()
    docs = encoder.encode(answers, instructions.document, show_progress=True)
    elapsed = time.perf_counter() - start
    print(f"embedded {len(answers)} chatterbot answers in {elapsed:.1f} s ({len(answers) / elapsed:.0f} texts/s)")
    queries = encoder.encode(QUESTIONS, instructions.query)
    scores = queries @ docs.T
    for question, row in zip(QUESTIONS, scores, strict=True):
        print(f"\nQ: {question}")
        for rank, idx in enumerate(np.argsort(-row)[: args.top_k], start=1):
            print(f"  {rank}. {row[idx]:.3f}  {answers[idx][:100]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
