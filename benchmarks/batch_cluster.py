"""Batch embedding on Ray's multi-node test cluster: 2 worker nodes vs 1, same job; prints the ratio.

The cluster is ``ray.cluster_utils.Cluster`` on this machine: a head with 0 CPUs (it runs the driver's
scheduling only) and 1-CPU worker raylets, so a 2-core machine can show scaling over nodes. Each node is
limited to 1 CPU, and each encoder actor takes 1 CPU (one torch thread).

Baseline: ``run_batch`` with 1 actor while the cluster has 1 worker node. Candidate: a second worker node is
added and the same rows are embedded again (a fresh output folder) with 2 actors, one per node. Both are end to
end (scan, plan, actor start and model load, embed, write and verify shards, manifest). Repeats alternate
nothing: the cluster only grows, so each setting runs ``--repeats`` times in a row and the best time counts.

Run in a loopback-only namespace (see README)::

    unshare -n sh -c 'ip link set lo up && exec "$@"' sh python benchmarks/batch_cluster.py
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

INSTRUCTION = "Represent the dictionary definition for retrieval: "


def cpu_description() -> str:
    """The CPU's model name and its SIMD class (AVX-512 VNNI, AVX-512, AVX2...), from /proc/cpuinfo."""
    name, flags = platform.processor() or "unknown CPU", set[str]()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                if name and flags:
                    break
    except OSError:
        pass
    isa = next(
        (
            label
            for flag, label in (("avx512_vnni", "AVX-512 VNNI"), ("avx512f", "AVX-512"), ("avx2", "AVX2"))
            if flag in flags
        ),
        "no AVX2",
    )
    return f"{name} ({isa}, {os.cpu_count()} logical CPUs)"


def timed_job(
    tmp: Path, name: str, replicas: int, rows_per_shard: int, batch_size: int
) -> tuple[float, dict[str, int]]:
    """Seconds for one batch job with ``replicas`` actors, and the work units each node embedded."""
    from ray_backend.batch import BatchConfig, run_batch

    config = BatchConfig(
        input=str(tmp / "glosses.parquet"),
        output=str(tmp / name),
        instruction=INSTRUCTION,
        batch_size=batch_size,
        replicas=replicas,
        num_cpus=1.0,
        rows_per_shard=rows_per_shard,
        progress=False,
        shared_storage=True,  # the nodes share this machine's disk
    )
    start = time.perf_counter()
    manifest = run_batch(config)
    seconds = time.perf_counter() - start
    shutil.rmtree(tmp / name, ignore_errors=True)
    return seconds, dict(manifest.nodes or {})


def add_worker(cluster: Any, temp_dir: Path) -> None:
    """A 1-CPU worker raylet with a Ray folder of its own (as on its own machine)."""
    temp_dir.mkdir()
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", temp_dir=str(temp_dir))
    cluster.wait_for_nodes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--rows-per-shard", type=int, default=250)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import ray
    from ray.cluster_utils import Cluster

    from instructor_plugins.corpora import wordnet_synsets

    synsets = wordnet_synsets("noun", limit=args.rows)
    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-", dir="/tmp"))
    os.environ["HOME"] = str(tmp)  # Ray's files (auth token...) stay in the temp dir
    node_args = {"node_ip_address": "127.0.0.1", "include_dashboard": False, "temp_dir": str(tmp / "ray")}
    Path("/tmp/ray").mkdir(exist_ok=True)  # Cluster records its address there, whatever temp_dir says
    print(f"CPU: {cpu_description()}")
    cluster = None
    try:
        table = pa.table({"id": [s.id for s in synsets], "text": [s.definition for s in synsets]})
        pq.write_table(table, tmp / "glosses.parquet")
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **node_args})
        add_worker(cluster, tmp / "w1")
        ray.init(address=cluster.address, log_to_driver=False)
        results = {}
        for workers in (1, 2):
            if workers == 2:
                add_worker(cluster, tmp / "w2")
            runs = [
                timed_job(tmp, f"out{workers}-{r}", workers, args.rows_per_shard, args.batch_size)
                for r in range(args.repeats)
            ]
            best, nodes = min(runs, key=lambda run: run[0])
            results[workers] = len(synsets) / best
            print(
                f"{workers} worker node(s), {workers} actor(s) x 1 CPU: {len(synsets)} rows, best of "
                f"{args.repeats}: {best:.1f} s = {results[workers]:.1f} texts/s; work units per node: "
                f"{sorted(nodes.values(), reverse=True)}"
            )
        print(f"ratio 2 worker nodes / 1 worker node: {results[2] / results[1]:.2f}x (goal >= 1.6x)")
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
