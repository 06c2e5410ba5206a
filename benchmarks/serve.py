"""Served (Ray Serve over loopback HTTP) vs in-process encoder throughput, measured in the same run.

Workloads (real chatterbot answers, the document instruction):
- 100-text requests from 1 and from 4 concurrent clients -> texts/s (baseline: in-process
  ``encode`` of the same 100-text lists, one after another);
- 1-text requests from 8 concurrent clients -> req/s, p50/p99 latency (baseline: in-process
  ``encode`` of one text at a time).

Rounds alternate baseline and served measurements so that load from other processes on a shared
machine hits both alike; the medians are printed with their ratios. Goal: >= 0.9x in-process
throughput on 100-text requests. Bounded: each measurement runs a fixed time (``--seconds``).

    python benchmarks/serve.py                      # CPU, 1 replica using every core
    python benchmarks/serve.py --num-gpus 1         # GPU replica (bf16) + in-process GPU baseline,
                                                    # plus the CPU replica for a GPU-vs-CPU ratio

Run it inside a loopback-only network namespace on shared machines (``make bench`` does).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DOC = "Represent the answer for retrieval: "


def texts_pool() -> list[str]:
    from instructor_plugins.corpora import chatterbot_pairs

    return sorted({p.answer for p in chatterbot_pairs()})


def timed_loop(clients: int, seconds: float, work: Callable[[int, int], int]) -> tuple[float, list[float]]:
    """Run ``work(client, i)`` in ``clients`` threads for ``seconds``; (units/s, latencies)."""
    stop = time.perf_counter() + seconds
    units = [0] * clients
    latencies: list[list[float]] = [[] for _ in range(clients)]

    def run(c: int) -> None:
        i = 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            units[c] += work(c, i)
            latencies[c].append(time.perf_counter() - t)
            i += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return sum(units) / elapsed, [x for lat in latencies for x in lat]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")


def start_serve(num_gpus: float, num_cpus: float, port: int, name: str, prefix: str) -> str:
    from ray import serve

    from ray_backend.serve import build_app

    args: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus, "torch_threads": max(1, int(num_cpus))}
    serve.run(build_app(args), name=name, route_prefix=prefix)
    url = f"http://127.0.0.1:{port}{prefix.rstrip('/')}"
    deadline = time.monotonic() + 300
    while httpx.get(f"{url}/health", timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(url)
        time.sleep(0.3)
    return url


def measure(url: str, encoder: Any, pool: list[str], seconds: float, rounds: int) -> dict[str, list[float]]:
    from instructor_plugins.backends import ServeBackend

    big = [[pool[(i * 100 + j) % len(pool)] for j in range(100)] for i in range(9)]
    clients = [ServeBackend(url, batch_size=100, timeout=120) for _ in range(8)]
    for c in clients[:1]:
        c.embed(big[0], DOC)  # warm the server
    encoder.encode(big[0], DOC)
    r: dict[str, list[float]] = {k: [] for k in ("in_100", "srv_100_1", "srv_100_4", "in_1", "srv_1_8", "p50", "p99")}
    r |= {"in_p50": [], "in_p99": []}
    for k in range(rounds):
        r["in_100"].append(timed_loop(1, seconds, lambda c, i: len(encoder.encode(big[i % 9], DOC)))[0])
        r["srv_100_1"].append(timed_loop(1, seconds, lambda c, i: len(clients[c].embed(big[i % 9], DOC)))[0])
        r["srv_100_4"].append(timed_loop(4, seconds, lambda c, i: len(clients[c].embed(big[(i + c) % 9], DOC)))[0])
        rate, lat = timed_loop(1, seconds / 2, lambda c, i: len(encoder.encode([pool[i % len(pool)]], DOC)))
        r["in_1"].append(rate)
        r["in_p50"].append(pct(lat, 50))
        r["in_p99"].append(pct(lat, 99))
        rate, lat = timed_loop(8, seconds, lambda c, i: len(clients[c].embed([pool[(i * 8 + c) % len(pool)]], DOC)))
        r["srv_1_8"].append(rate)
        r["p50"].append(pct(lat, 50))
        r["p99"].append(pct(lat, 99))
        print(
            f"  round {k + 1}: in-process {r['in_100'][-1]:.0f} texts/s | served 1 client {r['srv_100_1'][-1]:.0f}, "
            f"4 clients {r['srv_100_4'][-1]:.0f} texts/s | 1-text x8: {r['srv_1_8'][-1]:.0f} req/s",
            flush=True,
        )
    return r


def report(label: str, r: dict[str, list[float]]) -> None:
    med = {k: statistics.median(v) for k, v in r.items()}
    print(f"\n== {label} (medians of {len(r['in_100'])} alternating rounds)")
    print(f"in-process encode, 100-text calls:    {med['in_100']:8.1f} texts/s   (baseline)")
    print(
        f"served, 100-text requests, 1 client:  {med['srv_100_1']:8.1f} texts/s   ratio {med['srv_100_1'] / med['in_100']:.2f}x"
    )
    print(
        f"served, 100-text requests, 4 clients: {med['srv_100_4']:8.1f} texts/s   ratio {med['srv_100_4'] / med['in_100']:.2f}x"
    )
    print(
        f"in-process encode, 1-text calls:      {med['in_1']:8.1f} req/s     "
        f"p50 {med['in_p50']:.1f} ms  p99 {med['in_p99']:.1f} ms   (baseline)"
    )
    print(
        f"served, 1-text requests, 8 clients:   {med['srv_1_8']:8.1f} req/s     "
        f"p50 {med['p50']:.1f} ms  p99 {med['p99']:.1f} ms   ratio {med['srv_1_8'] / med['in_1']:.2f}x"
    )
    goal = med["srv_100_4"] / med["in_100"]
    print(
        f"goal >= 0.9x in-process on 100-text requests (4 clients): {'met' if goal >= 0.9 else 'NOT met'} ({goal:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating baseline/served rounds")
    parser.add_argument("--num-gpus", type=float, default=0.0, help="GPUs for the replica (GPU run)")
    cli = parser.parse_args()

    import ray
    import torch
    from ray import serve

    from instructor_plugins.model import InstructorEncoder

    cpus = os.cpu_count() or 2
    pool = texts_pool()
    tmp = tempfile.mkdtemp(prefix="ray-bench-")
    ray.init(
        num_cpus=cpus, num_gpus=1 if cli.num_gpus else 0, include_dashboard=False, _temp_dir=tmp, log_to_driver=False
    )
    started = time.perf_counter()
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        torch.set_num_threads(cpus)
        if cli.num_gpus:
            gpu_url = start_serve(cli.num_gpus, 1, port, "gpu", "/gpu")
            gpu_encoder = InstructorEncoder.load(device="cuda")  # bf16 by default on CUDA
            gpu = measure(gpu_url, gpu_encoder, pool, cli.seconds, cli.rounds)
            report(f"GPU replica (num_gpus={cli.num_gpus}, {gpu_encoder.dtype}) vs in-process GPU", gpu)
            serve.delete("gpu")
            del gpu_encoder
        cpu_url = start_serve(0, cpus, port, "cpu", "/")
        cpu_encoder = InstructorEncoder.load(device="cpu")
        cpu = measure(cpu_url, cpu_encoder, pool, cli.seconds, cli.rounds)
        report(f"CPU replica ({cpus} threads) vs in-process CPU ({torch.get_num_threads()} threads)", cpu)
        if cli.num_gpus:
            ratio = statistics.median(gpu["srv_100_4"]) / statistics.median(cpu["srv_100_4"])
            print(f"\nGPU vs CPU replica, 100-text requests x4 clients: {ratio:.1f}x texts/s")
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"benchmark took {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
