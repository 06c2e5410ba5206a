"""Served (Ray Serve over loopback HTTP) vs in-process encoder throughput, measured in the same run.

Workloads (real chatterbot answers, the document instruction):
- 100-text requests from 1 and from 4 concurrent clients -> texts/s (baseline: in-process
  ``encode`` of the same 100-text lists, one after another);
- 1-text requests from 8 concurrent clients -> req/s, p50/p99 latency (baseline: in-process
  ``encode`` of one text at a time).

Small slices of each workload alternate in-process and served, back to back, until the time budget
(``--seconds``) is spent, so load from other processes on a shared machine hits both sides alike;
totals and ratios are printed. Goal: >= 0.9x in-process throughput on 100-text requests.

    python benchmarks/serve.py                      # CPU, 1 replica using every core
    python benchmarks/serve.py --num-gpus 1         # GPU replica (bf16) + in-process GPU baseline,
                                                    # plus the CPU replica for a GPU-vs-CPU ratio
    python benchmarks/serve.py --mode hol           # 1-text p99 during a 2,048-text request
    python benchmarks/serve.py --mode flood --seconds 60   # /health under maximal bodies
    python benchmarks/serve.py --mode soak --seconds 600   # replica RSS over a steady load
    python benchmarks/serve.py --mode peers --seconds 60   # ours (defaults, int8) vs infinity-emb

(hol, flood and soak are in ``benchmarks/serve_stress.py``; peers in ``benchmarks/serve_peers.py``:
``make bench-peers`` installs infinity-emb in ``.venv-peers`` and runs it).

Requests enter as under ``instructor serve`` with its defaults: one replica answers HTTP itself
(direct ingress); ``--ingress proxy`` sends them through Ray Serve's HTTP proxy instead.

Run it inside a loopback-only network namespace on shared machines (``make bench`` does).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bursts import burst, pct  # benchmarks/bursts.py: concurrent client calls and percentiles

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The replicas run with OMP_WAIT_POLICY=PASSIVE (ServeArgs.omp_wait_policy); give the in-process baseline the same.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DOC = "Represent the answer for retrieval: "


def texts_pool() -> list[str]:
    from instructor_plugins.corpora import chatterbot_pairs

    return sorted({p.answer for p in chatterbot_pairs()})


def start_serve(num_gpus: float, num_cpus: float, port: int, name: str, prefix: str) -> str:
    from ray import serve

    from ray_backend.serve import build_app

    args: dict[str, Any] = {
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "torch_threads": max(1, int(num_cpus)),
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
    }
    serve.run(build_app(args), name=name, route_prefix=prefix)
    return wait_healthy(f"http://127.0.0.1:{port}{prefix.rstrip('/')}")


def wait_healthy(url: str, timeout_s: float = 300) -> str:
    """Poll ``url/health`` until it answers 200 (a replica is ready); returns ``url``."""
    deadline = time.monotonic() + timeout_s
    while httpx.get(f"{url}/health", timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(url)
        time.sleep(0.3)
    return url


class Totals:
    """Seconds spent and units done per workload, summed over interleaved slices."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.units: dict[str, float] = {}
        self.latencies: dict[str, list[float]] = {}

    def add(self, key: str, seconds: float, units: float, latencies: list[float]) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds
        self.units[key] = self.units.get(key, 0.0) + units
        self.latencies.setdefault(key, []).extend(latencies)

    def rate(self, key: str) -> float:
        return self.units[key] / self.seconds[key]


def measure(url: str, encoder: Any, pool: list[str], budget_s: float) -> Totals:
    """Alternate small slices of each workload, in-process then served, until ``budget_s`` is spent.

    Each slice does the same work both ways back to back, so a burst of load from other
    processes on a shared machine lands on both sides alike.
    """
    from instructor_plugins.backends import ServeBackend

    big = [[pool[(i * 100 + j) % len(pool)] for j in range(100)] for i in range(9)]
    clients = [ServeBackend(url, batch_size=100, timeout=300) for _ in range(8)]
    clients[0].embed(big[0], DOC)  # warm both sides
    encoder.encode(big[0], DOC)
    totals = Totals()
    deadline = time.perf_counter() + budget_s
    k = 0
    while time.perf_counter() < deadline or k == 0:
        lists: list[list[str]] = [big[(k * 4 + j) % 9] for j in range(4)]
        one: list[str] = [pool[(k * 16 + j) % len(pool)] for j in range(16)]
        # 100-text requests: 1 client, then 4 concurrent clients (in-process: the same lists in turn).
        t, lat = burst(1, 1, lambda c, i, lists=lists: encoder.encode(lists[0], DOC))
        totals.add("in_100", t, 100, lat)
        t, lat = burst(1, 1, lambda c, i, lists=lists: clients[0].embed(lists[0], DOC))
        totals.add("srv_100_1", t, 100, lat)
        t, lat = burst(1, 4, lambda c, i, lists=lists: encoder.encode(lists[i], DOC))
        totals.add("in_100", t, 400, [])
        t, lat = burst(4, 4, lambda c, i, lists=lists: clients[c].embed(lists[i], DOC))
        totals.add("srv_100_4", t, 400, lat)
        # 1-text requests: in-process one by one, served from 8 concurrent clients.
        t, lat = burst(1, 16, lambda c, i, one=one: encoder.encode([one[i]], DOC))
        totals.add("in_1", t, 16, lat)
        t, lat = burst(8, 16, lambda c, i, one=one: clients[c].embed([one[i]], DOC))
        totals.add("srv_1_8", t, 16, lat)
        k += 1
    stats = httpx.get(f"{url}/info", timeout=30).json()["stats"]
    print(f"  {k} interleaved slices in {budget_s:.0f}s budget", flush=True)
    print(
        f"  replica: {stats['batches']} batches, {stats['rows'] / max(stats['batches'], 1):.1f} texts/batch, "
        f"{stats['requests'] / max(stats['batches'], 1):.1f} requests/batch, "
        f"encode {stats['rows'] / max(stats['encode_s'], 1e-9):.1f} texts/s inside the replica",
        flush=True,
    )
    return totals


def report(label: str, r: Totals) -> None:
    base100, base1 = r.rate("in_100"), r.rate("in_1")
    print(f"\n== {label}")
    print(f"in-process encode, 100-text calls:    {base100:8.1f} texts/s   (baseline)")
    for key, what in (("srv_100_1", "1 client: "), ("srv_100_4", "4 clients:")):
        print(f"served, 100-text requests, {what} {r.rate(key):8.1f} texts/s   ratio {r.rate(key) / base100:.2f}x")
    lat_in, lat_srv = r.latencies["in_1"], r.latencies["srv_1_8"]
    print(
        f"in-process encode, 1-text calls:      {base1:8.1f} req/s     "
        f"p50 {pct(lat_in, 50):.1f} ms  p99 {pct(lat_in, 99):.1f} ms   (baseline)"
    )
    print(
        f"served, 1-text requests, 8 clients:   {r.rate('srv_1_8'):8.1f} req/s     "
        f"p50 {pct(lat_srv, 50):.1f} ms  p99 {pct(lat_srv, 99):.1f} ms   ratio {r.rate('srv_1_8') / base1:.2f}x"
    )
    goal = min(r.rate("srv_100_1"), r.rate("srv_100_4")) / base100
    print(f"goal >= 0.9x in-process on 100-text requests: {'met' if goal >= 0.9 else 'NOT met'} (worst {goal:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget for the interleaved measurement")
    parser.add_argument("--num-gpus", type=float, default=0.0, help="GPUs for the replica (GPU run)")
    parser.add_argument(
        "--worker-niceness",
        type=int,
        default=0,
        help="nice level of Ray workers (Ray's default is 15; 0 = same priority as the in-process baseline)",
    )
    parser.add_argument(
        "--mode",
        choices=["throughput", "hol", "flood", "soak", "peers"],
        default="throughput",
        help="throughput: served vs in-process; hol, flood, soak: see benchmarks/serve_stress.py; "
        "peers: ours vs infinity-emb, see benchmarks/serve_peers.py",
    )
    parser.add_argument(
        "--peer-venv",
        type=Path,
        default=Path(os.environ.get("INSTRUCTOR_PEER_VENV", ".venv-peers")),
        help="venv holding infinity-emb for --mode peers (env INSTRUCTOR_PEER_VENV; make bench-peers creates it)",
    )
    parser.add_argument(
        "--ingress",
        choices=["auto", "proxy", "direct"],
        default="auto",
        help="where requests enter, as `instructor serve --ingress` (auto = direct for its one replica)",
    )
    cli = parser.parse_args()

    import ray
    import torch
    from ray import serve

    from instructor_plugins.model import InstructorEncoder

    cpus = os.cpu_count() or 2
    pool = texts_pool()
    tmp = tempfile.mkdtemp(prefix="ray-bench-")
    from ray_backend.net import free_port, init_local_ray
    from ray_backend.serving.ingress import plan_ingress, ray_has_direct_ingress

    # Where requests enter, decided as `instructor serve` decides it (one replica at a time here).
    plan = plan_ingress(
        cli.ingress,
        port=free_port(),
        replicas=1,
        starts_ray=True,
        free_port=free_port,
        direct_supported=ray_has_direct_ingress(ray.__version__),
    )
    os.environ.update(plan.env(os.environ))
    init_local_ray(
        num_cpus=cpus,
        num_gpus=1 if cli.num_gpus else 0,
        _temp_dir=tmp,
        log_to_driver=False,
        _system_config={"worker_niceness": cli.worker_niceness},
    )
    print(f"ingress: {plan.mode} (--ingress {cli.ingress}; clients use port {plan.port})", flush=True)
    print(
        f"Ray workers at nice {cli.worker_niceness}; driver (in-process baseline; the peer) at nice {os.nice(0)}; "
        f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} on both sides",
        flush=True,
    )
    started = time.perf_counter()
    try:
        from ray_backend.serve import ServeArgs

        # the HTTP proxy logs as under `instructor serve` with its defaults (access log off unless asked)
        serve.start(
            http_options={"host": "127.0.0.1", "port": plan.proxy_port},
            logging_config={"enable_access_log": ServeArgs().access_log},
        )
        port = plan.port  # the replica's own port under direct ingress (the CLI's default), else the proxy's
        if cli.mode == "peers":
            import serve_peers

            serve_peers.main(port, cli.seconds, cli.peer_venv)
            return
        if cli.mode != "throughput":
            import serve_stress

            url = start_serve(cli.num_gpus, cpus, port, "stress", "/")
            if cli.mode == "hol":
                serve_stress.head_of_line(url, pool)
            elif cli.mode == "flood":
                serve_stress.flood(url, cli.seconds)
            else:
                serve_stress.soak(url, pool, cli.seconds)
            return
        torch.set_num_threads(cpus)
        if cli.num_gpus:
            gpu_url = start_serve(cli.num_gpus, 1, port, "gpu", "/")  # deleted before the CPU app starts
            gpu_encoder = InstructorEncoder.load(device="cuda")  # bf16 by default on CUDA
            gpu = measure(gpu_url, gpu_encoder, pool, cli.seconds)
            report(f"GPU replica (num_gpus={cli.num_gpus}, {gpu_encoder.dtype}) vs in-process GPU", gpu)
            serve.delete("gpu")
            del gpu_encoder
        cpu_url = start_serve(0, cpus, port, "cpu", "/")
        cpu_encoder = InstructorEncoder.load(device="cpu")
        cpu = measure(cpu_url, cpu_encoder, pool, cli.seconds)
        report(f"CPU replica ({cpus} threads) vs in-process CPU ({torch.get_num_threads()} threads)", cpu)
        if cli.num_gpus:
            ratio = gpu.rate("srv_100_4") / cpu.rate("srv_100_4")
            print(f"\nGPU vs CPU replica, 100-text requests x4 clients: {ratio:.1f}x texts/s")
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"benchmark took {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
