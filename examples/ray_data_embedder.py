"""Embed your own Ray Dataset with ``InstructorBatchEmbedder`` (one encoder per actor), then check the vectors.

Run: ``python examples/ray_data_embedder.py`` (starts a local Ray unless one is running; on shared machines run it
in a loopback-only network namespace, see the README).
"""

from __future__ import annotations

import numpy as np
import ray

from instructor_plugins.model import InstructorEncoder
from ray_backend.batch.embedder import InstructorBatchEmbedder

DOCS = [
    {"id": 1, "text": "Mary Shelley wrote Frankenstein in 1818.", "task": "Represent the document for retrieval: "},
    {"id": 2, "text": "Where was Frankenstein written?", "task": "Represent the question for retrieving documents: "},
    {"id": 3, "text": "The Rhine flows through Basel.", "task": "Represent the document for retrieval: "},
    {"id": 4, "text": "Which river flows through Basel?", "task": "Represent the question for retrieving documents: "},
]


def main() -> int:
    """Embed DOCS twice (per-row instructions, one fixed instruction); return the number of rows checked."""
    if not ray.is_initialized():
        ray.init(include_dashboard=False)
    ds = ray.data.from_items(DOCS)

    # Per-row instructions from a column; two actors, each loading the model once.
    per_row = ds.map_batches(
        InstructorBatchEmbedder,
        fn_constructor_kwargs={"instruction_column": "task", "num_threads": 1},
        compute=ray.data.ActorPoolStrategy(size=2),
        num_cpus=1,
        batch_size=2,
        batch_format="pyarrow",
    )
    # One fixed instruction for every row, vectors in a column of our choice.
    fixed = ds.map_batches(
        InstructorBatchEmbedder,
        fn_constructor_kwargs={"instruction": "Represent the sentence: ", "output_column": "vec"},
        compute=ray.data.ActorPoolStrategy(size=1),
        batch_size=4,
    )
    rows = sorted(per_row.take_all(), key=lambda r: r["id"])
    fixed_rows = sorted(fixed.take_all(), key=lambda r: r["id"])

    encoder = InstructorEncoder.load(device="cpu")
    expected = encoder.encode([d["text"] for d in DOCS], [d["task"] for d in DOCS])
    got = np.stack([np.asarray(r["embedding"], dtype=np.float32) for r in rows])
    if not np.allclose(got, expected, atol=1e-5):
        raise SystemExit("per-row instruction vectors differ from the in-process encoder")
    expected_fixed = encoder.encode([d["text"] for d in DOCS], "Represent the sentence: ")
    if not np.allclose(np.stack([r["vec"] for r in fixed_rows]), expected_fixed, atol=1e-5):
        raise SystemExit("fixed instruction vectors differ from the in-process encoder")
    question, answer = got[1], got[0]
    print(f"embedded {len(rows)} rows; cos(question, its answer) = {float(question @ answer):.3f}")
    return len(rows)


if __name__ == "__main__":
    main()
