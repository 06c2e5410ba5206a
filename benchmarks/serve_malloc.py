"""What ``MALLOC_MMAP_THRESHOLD_=65536`` costs a CPU replica: served throughput with and without it, same run.

Two apps of the bundled model with the default thread count (CPUs / 1 replica), one with
``malloc_mmap_threshold=65536`` and one with glibc's default (``None``), measured in alternating
rounds by :func:`serve.measure` (the workloads of ``benchmarks/serve.py``, each against the
in-process encoder in the same slices). Prints texts/s, 1-text req/s and p50, and the ratio
glibc-default / fixed-threshold.

    python benchmarks/serve_malloc.py --seconds 120      # in a loopback-only namespace on shared machines

RSS growth (what the threshold is for) is measured by ``benchmarks/serve.py --mode soak``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
from typing import Any

import serve as bench  # benchmarks/serve.py: the workloads and the in-process baseline

VARIANTS: dict[str, int | None] = {"mmap 64 KiB": 65536, "glibc default": None}


def deploy(name: str, threshold: int | None, threads: int, port: int) -> str:
    from ray import serve

    from ray_backend.serve import build_app

    # num_cpus=0 so both apps fit on the node; the threads are what the default sizing gives 1 replica.
    args: dict[str, Any] = {"num_cpus": 0, "torch_threads": threads, "malloc_mmap_threshold": threshold}
    prefix = "/" + name.replace(" ", "-")
    serve.run(build_app(args), name=prefix.strip("/"), route_prefix=prefix)
    return bench.wait_healthy(f"http://127.0.0.1:{port}{prefix}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="time budget, split over 2 rounds x 2 variants")
    cli = parser.parse_args()

    import ray
    import torch
    from ray import serve

    from instructor_plugins.model import InstructorEncoder
    from ray_backend.net import init_local_ray

    cpus = os.cpu_count() or 2
    tmp = tempfile.mkdtemp(prefix="ray-bench-")
    init_local_ray(num_cpus=cpus, _temp_dir=tmp, log_to_driver=False, _system_config={"worker_niceness": 0})
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        urls = {name: deploy(name, threshold, cpus, port) for name, threshold in VARIANTS.items()}
        torch.set_num_threads(cpus)
        encoder = InstructorEncoder.load(device="cpu")
        pool = bench.texts_pool()
        totals: dict[str, list[bench.Totals]] = {name: [] for name in VARIANTS}
        for _ in range(2):
            for name, url in urls.items():
                totals[name].append(bench.measure(url, encoder, pool, cli.seconds / 4))
        rates: dict[str, tuple[float, float, float, float]] = {}
        for name, runs in totals.items():
            merged = bench.Totals()
            for r in runs:
                for key in r.seconds:
                    merged.add(key, r.seconds[key], r.units[key], r.latencies[key])
            bench.report(f"replica with {name} ({cpus} torch threads)", merged)
            rates[name] = (
                merged.rate("srv_100_4"),
                merged.rate("srv_1_8"),
                bench.pct(merged.latencies["srv_1_8"], 50),
                merged.rate("srv_100_4") / merged.rate("in_100"),
            )
        (base_name, base), (other_name, other) = rates.items()
        print(
            f"\n{other_name} / {base_name}: 100-text x4 clients {other[0] / base[0]:.2f}x texts/s, "
            f"1-text x8 clients {other[1] / base[1]:.2f}x req/s, p50 {other[2]:.0f} vs {base[2]:.0f} ms; "
            f"served/in-process {other[3]:.2f} vs {base[3]:.2f}"
        )
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
