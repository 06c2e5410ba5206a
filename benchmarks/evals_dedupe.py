"""Embedding each distinct text once per mteb encode call vs embedding every row (baseline).

An STS task pairs every document with many others, so mteb hands the encoder the same text many
times. Runs the LeeNewsSTS pairs of the first 12 documents (66 pairs, both columns) through
InstructorMTEBModel with dedupe on and off, on the bundled model, and prints the speed-up.
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("MTEB_CACHE", os.path.join(tempfile.gettempdir(), "mteb-cache-bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from evals.meta import get_model_meta
from evals.model import InstructorMTEBModel
from evals.offline_data import lee_sts
from evals.tasks import LeeNewsSTS
from instructor_plugins.backends import LocalBackend
from instructor_plugins.model import InstructorEncoder


def main() -> None:
    encoder = InstructorEncoder.load(device="cpu")
    meta = get_model_meta("bundled")
    assert meta is not None
    pairs = lee_sts(12)
    metadata = LeeNewsSTS.metadata
    columns = (pairs.sentence1, pairs.sentence2)
    encoder.encode(pairs.sentence1[:4])  # warm-up
    outputs, seconds = {}, {}
    for dedupe in (False, True):
        model = InstructorMTEBModel(LocalBackend(encoder=encoder), meta, dedupe=dedupe, log=None)
        start = time.perf_counter()
        outputs[dedupe] = [
            model.encode([{"text": col}], task_metadata=metadata, hf_split="test", hf_subset="default")
            for col in columns
        ]
        seconds[dedupe] = time.perf_counter() - start
    for plain, deduped in zip(outputs[False], outputs[True], strict=True):
        np.testing.assert_allclose(plain, deduped, atol=1e-5)
    rows = sum(len(c) for c in columns)
    distinct = sum(len(set(c)) for c in columns)
    print(f"texts per run: {rows} rows, {distinct} distinct (LeeNewsSTS, 12 documents)")
    print(f"baseline (every row):   {seconds[False]:.2f} s")
    print(f"dedupe (distinct only): {seconds[True]:.2f} s")
    print(f"speed-up: {seconds[False] / seconds[True]:.1f}x")


if __name__ == "__main__":
    main()
