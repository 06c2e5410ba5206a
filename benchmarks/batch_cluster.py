"""Batch embedding on Ray's multi-node test cluster: 2 worker nodes vs 1, same job; prints the ratio.

The cluster is ``ray.cluster_utils.Cluster`` on this machine: a head with 0 CPUs (it runs the driver's
scheduling only) and 1-CPU worker raylets, so a 2-core machine can show scaling over nodes. Each node is
limited to 1 CPU, and each encoder actor takes 1 CPU (one torch thread).

Baseline: one batch job with 1 actor while the cluster has 1 worker node. Candidate: a second worker node is
added and the same rows are embedded again (a fresh output folder) with 2 actors, one per node. Both are timed end
to end (input listing, cluster checks, scan, plan, actor start and model load, embed, write and verify shards,
manifest) and for the embedding phase alone (``execute``). The cluster only grows, so the settings cannot
alternate: each runs ``--repeats`` times in a row and the best time counts. The fixed part (scan, actor start) is
a few seconds per job, so larger ``--rows`` move the end-to-end ratio toward the embedding phase's.

Run in a loopback-only namespace (see README)::

    unshare -n sh -c 'ip link set lo up && exec "$@"' sh python benchmarks/batch_cluster.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

INSTRUCTION = "Represent the dictionary definition for retrieval: "


def timed_job(
    tmp: Path, name: str, replicas: int, rows_per_shard: int, batch_size: int
) -> tuple[float, float, dict[str, int]]:
    """Seconds end to end and for the embedding phase of one job with ``replicas`` actors; units per node.

    The embedding phase is :func:`ray_backend.batch.execute`: actor start and model load, embed, write and verify
    the shards, the manifest. End to end adds locating the input, the cluster checks and the scan.
    """
    from ray_backend.batch import BatchConfig, check_cluster, execute, locate, plan, scan_ray

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
    job = locate(config)
    check_cluster(job)
    prepared = plan(job, *scan_ray(job))
    embed_start = time.perf_counter()
    manifest = execute(prepared)
    end = time.perf_counter()
    shutil.rmtree(tmp / name, ignore_errors=True)
    return end - start, end - embed_start, dict(manifest.nodes or {})


def add_worker(cluster: Any, temp_dir: Path) -> None:
    """A 1-CPU worker raylet with a Ray folder of its own (as on its own machine)."""
    temp_dir.mkdir()
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", temp_dir=str(temp_dir))
    cluster.wait_for_nodes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=12000)
    parser.add_argument("--rows-per-shard", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import ray
    from ray.cluster_utils import Cluster

    from instructor_plugins.corpora import wordnet_synsets
    from instructor_plugins.quantization import cpu_description

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
            total, embed, nodes = min(runs, key=lambda run: run[0])
            results[workers] = (len(synsets) / total, len(synsets) / min(run[1] for run in runs))
            print(
                f"{workers} worker node(s), {workers} actor(s) x 1 CPU, {len(synsets)} rows, best of {args.repeats}: "
                f"end to end {total:.1f} s = {results[workers][0]:.1f} texts/s, embedding phase "
                f"{results[workers][1]:.1f} texts/s; work units per node: {sorted(nodes.values(), reverse=True)}",
                flush=True,
            )
        print(f"ratio 2 worker nodes / 1 worker node, end to end: {results[2][0] / results[1][0]:.2f}x (goal >= 1.6x)")
        print(f"ratio 2 worker nodes / 1 worker node, embedding phase: {results[2][1] / results[1][1]:.2f}x")
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
