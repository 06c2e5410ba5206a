"""Ray Data batch job vs in-process ``encode`` on the same WordNet glosses, same run; prints the ratio.

Baseline: ``InstructorEncoder.encode`` in this process (model already loaded, torch's default threads).
Candidate: ``ray_backend.batch.run_batch`` end to end on a local Ray that is already up (read + validate
the Parquet input, plan, start the actor pool and load one model per actor, embed, write shards and the
manifest), ``--replicas`` actors with ``--num-cpus`` each.

The baseline embeds ``--rows`` rows (default 20,000) in chunks and stops early once ``--budget`` seconds
have passed, so the whole run stays bounded on a busy machine; the Ray job then embeds exactly the rows
the baseline did. Run in a loopback-only namespace (see README)::

    unshare -n sh -c 'ip link set lo up && exec "$@"' sh python benchmarks/batch.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

INSTRUCTION = "Represent the dictionary definition for retrieval: "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--budget", type=float, default=150.0, help="seconds for the baseline before it stops early")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--num-cpus", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rows-per-shard", type=int, default=2500)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from instructor_plugins.corpora import wordnet_synsets
    from instructor_plugins.model import InstructorEncoder

    synsets = wordnet_synsets("noun", limit=args.rows)
    texts = [s.definition for s in synsets]

    encoder = InstructorEncoder.load(device="cpu")
    encoder.encode(texts[:64], INSTRUCTION)  # warm-up
    chunk, done, start = 250, 0, time.perf_counter()
    while done < len(texts) and time.perf_counter() - start < args.budget:
        encoder.encode(texts[done : done + chunk], INSTRUCTION, batch_size=args.batch_size)
        done = min(done + chunk, len(texts))
    base_s = time.perf_counter() - start
    base_tps = done / base_s
    note = "" if done == len(texts) else f" (stopped early at the {args.budget:.0f} s budget)"
    import torch

    threads = torch.get_num_threads()
    print(
        f"baseline  in-process encode ({threads} torch threads): "
        f"{done} rows in {base_s:.1f} s = {base_tps:.1f} texts/s{note}"
    )
    del encoder

    import ray

    from ray_backend.batch import BatchConfig, run_batch

    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-", dir="/tmp"))
    try:
        table = pa.table({"id": [s.id for s in synsets[:done]], "text": texts[:done]})
        pq.write_table(table, tmp / "glosses.parquet")
        os.environ["HOME"] = str(tmp)  # Ray's files (auth token...) stay in the temp dir
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(tmp / "ray"), log_to_driver=False)
        init_s = time.perf_counter() - t0
        config = BatchConfig(
            input=str(tmp / "glosses.parquet"),
            output=str(tmp / "out"),
            instruction=INSTRUCTION,
            batch_size=args.batch_size,
            replicas=args.replicas,
            num_cpus=args.num_cpus,
            rows_per_shard=args.rows_per_shard,
            progress=False,
        )
        t0 = time.perf_counter()
        manifest = run_batch(config)
        job_s = time.perf_counter() - t0
        ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert manifest.rows_out == done and manifest.rows_rejected == 0
    job_tps = done / job_s
    print(
        f"candidate Ray Data job ({args.replicas} actors x {args.num_cpus:g} CPU, end to end): "
        f"{done} rows in {job_s:.1f} s = {job_tps:.1f} texts/s (ray.init took {init_s:.1f} s, not counted)"
    )
    print(f"ratio Ray Data job / in-process encode: {job_tps / base_tps:.2f}x (goal >= 0.8x)")


if __name__ == "__main__":
    main()
