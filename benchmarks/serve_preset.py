"""What Ray's throughput preset gives ``instructor serve``: 1-text req/s with and without it, same run.

``instructor serve`` under direct ingress starts Ray with ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` (see
``ray_backend/serving/ingress.py``, ``THROUGHPUT_ENV``); a user's own ``RAY_SERVE_THROUGHPUT_OPTIMIZED=0`` turns it
off. This starts the command both ways in turn, as a user runs it (its own process and Ray, one replica, the bundled
model), and loads each with the same client from this process: 8 clients that keep their connections, each sending
a 1-text request as soon as its last answer came back, for ``--seconds`` per round (the chatterbot answers of
``benchmarks/serve.py --mode peers``). Prints req/s and p50 per round and the ratio preset / Ray's defaults, with
the CPU it ran on.

    python benchmarks/serve_preset.py --rounds 4 --backend openvino     # in a loopback-only namespace
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from bursts import pct, steady  # benchmarks/bursts.py: the shared client loads
from serve_peers import SERVED_NAME, free_port, short_texts, wait_http_ready

CLIENTS = 8
VARIANTS = {"Ray's defaults": "0", "throughput preset": None}  # None: what `instructor serve` sets by itself


def start(backend: str, preset: str | None, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE_")}
    if preset is not None:
        env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = preset
    cmd = [sys.executable, "-m", "ray_backend.serve", "--backend", backend, "--port", str(port)]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def load(url: str, texts: list[str], seconds: float) -> tuple[float, float]:
    """(req/s, p50 ms) of :data:`CLIENTS` steady clients over ``seconds``."""
    clients = [httpx.Client() for _ in range(CLIENTS)]
    try:

        def one(c: int, i: int) -> None:
            body = {"model": SERVED_NAME, "input": [texts[i * 13 % len(texts)]]}
            clients[c].post(f"{url}/v1/embeddings", json=body, timeout=60).raise_for_status()

        wall, latencies = steady(CLIENTS, seconds, one)
    finally:
        for c in clients:
            c.close()
    return len(latencies) / wall, pct(latencies, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="rounds; each starts both variants in turn")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of load per variant and round")
    parser.add_argument("--backend", default="openvino", choices=["torch", "onnx", "openvino"])
    cli = parser.parse_args()

    from instructor_plugins.quantization import cpu_description

    print(f"CPU: {cpu_description()}; instructor serve --backend {cli.backend}, {CLIENTS} clients of 1-text requests")
    texts = short_texts()
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    logs = Path(tempfile.mkdtemp(prefix="serve-preset-"))
    for r in range(cli.rounds):
        for name, preset in VARIANTS.items():
            port = free_port()
            log = logs / f"{r}-{preset}.log"
            process = start(cli.backend, preset, port, log)
            try:
                url = f"http://127.0.0.1:{port}"
                wait_http_ready(f"{url}/health", process, log, "instructor serve", 300)
                load(url, texts, 3)  # warm
                rate, p50 = load(url, texts, cli.seconds)
            finally:
                process.terminate()
                process.wait(120)
            rates[name].append(rate)
            print(f"round {r}: {name:18s} {rate:7.1f} req/s, p50 {p50:6.1f} ms", flush=True)
    base, preset_rates = rates["Ray's defaults"], rates["throughput preset"]
    per_round = [p / b for p, b in zip(preset_rates, base, strict=True)]
    print(f"\npreset / Ray's defaults: {sum(preset_rates) / sum(base):.2f}x over {cli.rounds} rounds", end="")
    print(f" (per round {', '.join(f'{x:.2f}x' for x in per_round)}; logs in {logs})")


if __name__ == "__main__":
    main()
