"""Hostile and unlucky load against one local Serve replica (``benchmarks/serve.py --mode ...``).

Each mode prints its figure next to a baseline measured in the same run:

- ``hol`` (head-of-line): p99 latency of 1-text requests while one 2,048-text request runs, against
  the p99 of the same 1-text requests on an idle replica. Target: <= 2 s on 2 cores.
- ``flood``: ``/health`` latency while clients send maximal bodies (``max_inputs`` texts filling
  ``max_body_bytes``, and 1 MB texts), against idle ``/health`` latency; counts 200/429/other
  answers and checks that the replica was not restarted. Target: never slower than 2 s, no restart.
- ``soak``: steady mixed load (1-32 texts, a few fixed instructions and some one-off ones) for
  ``--seconds``; prints the replica's RSS at the start (after warm-up and one minute of load
  would hide growth, so right after the first requests) and every minute, and the end/start ratio.

Only 127.0.0.1 is used; every mode is bounded in clients and time.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import httpx
import numpy as np

DOC = "Represent the answer for retrieval: "


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _one_text_latencies(
    url: str, pool: list[str], stop: threading.Event, clients: int = 2, refused: list[int] | None = None
) -> list[float]:
    """1-text requests from ``clients`` threads until ``stop``; latencies (s) of the answered ones.

    A 429 is counted in ``refused`` (the client waits its ``Retry-After``); other errors raise.
    """
    latencies: list[float] = []
    lock = threading.Lock()

    def run(c: int) -> None:
        with httpx.Client(timeout=120) as http:
            i = 0
            while not stop.is_set():
                t = time.perf_counter()
                r = http.post(f"{url}/embed", json={"texts": [pool[(c * 7919 + i) % len(pool)]], "instruction": DOC})
                if r.status_code == 429 and refused is not None:
                    refused.append(1)
                    time.sleep(float(r.headers.get("retry-after", "1")))
                    continue
                r.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - t)
                i += 1
                time.sleep(0.05)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join()
    return latencies


def head_of_line(url: str, pool: list[str], baseline_s: float = 15.0) -> None:
    """p99 of 1-text requests alone, then during one 2,048-text request."""
    stop = threading.Event()
    timer = threading.Timer(baseline_s, stop.set)
    timer.start()
    idle = _one_text_latencies(url, pool, stop)
    big = [pool[i % len(pool)] for i in range(2048)]
    stop = threading.Event()
    result: dict[str, Any] = {}

    def send_big() -> None:
        t = time.perf_counter()
        r = httpx.post(f"{url}/embed", json={"texts": big, "instruction": DOC}, timeout=600)
        result.update(status=r.status_code, seconds=time.perf_counter() - t, tokens=r.json().get("usage"))
        stop.set()

    sender = threading.Thread(target=send_big)
    sender.start()
    refused: list[int] = []
    during = _one_text_latencies(url, pool, stop, refused=refused)
    sender.join()
    print(f"1-text requests alone:            n={len(idle):4d}  p50 {_p(idle, 50):.3f}s  p99 {_p(idle, 99):.3f}s")
    print(
        f"1-text requests during 2,048-text: n={len(during):4d}  p50 {_p(during, 50):.3f}s  "
        f"p99 {_p(during, 99):.3f}s  max {max(during, default=float('nan')):.3f}s  refused (429) {len(refused)}"
    )
    print(f"the 2,048-text request: HTTP {result['status']} in {result['seconds']:.1f}s, usage {result['tokens']}")
    print(f"p99 ratio during/alone: {_p(during, 99) / _p(idle, 99):.1f}x   target p99 <= 2 s: ", end="")
    print("met" if _p(during, 99) <= 2.0 else "NOT met")


def _replica_id(url: str) -> str:
    return str(httpx.get(f"{url}/info", timeout=60).json()["replica"])


def flood(url: str, seconds: float, clients: int = 4) -> None:
    """``/health`` latency idle, then under ``clients`` senders of maximal bodies for ``seconds``."""
    info = httpx.get(f"{url}/info", timeout=60).json()
    limits = info["limits"]
    replica = info["replica"]
    per_text = max(1, limits["max_body_bytes"] // limits["max_inputs"] - 8)
    bodies = [
        {"texts": ["x" * per_text] * limits["max_inputs"]},  # max inputs, body filled
        {"texts": ["word " * (1_000_000 // 5)] * ((limits["max_body_bytes"] - 64) // 1_000_010)},  # 1 MB texts
    ]
    payloads = [httpx.Request("POST", "http://x", json=b).content for b in bodies]
    print(f"bodies: {[len(p) for p in payloads]} bytes (limit {limits['max_body_bytes']})")

    def probe(stop: threading.Event, out: list[float]) -> None:
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                t = time.perf_counter()
                http.get(f"{url}/health").raise_for_status()
                out.append(time.perf_counter() - t)
                time.sleep(0.2)

    idle: list[float] = []
    stop = threading.Event()
    threading.Timer(5, stop.set).start()
    probe(stop, idle)

    statuses: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def sender(c: int) -> None:
        with httpx.Client(timeout=30) as http:
            i = 0
            while not stop.is_set():
                body = payloads[(c + i) % len(payloads)]
                try:
                    code = str(
                        http.post(
                            f"{url}/embed", content=body, headers={"content-type": "application/json"}
                        ).status_code
                    )
                except httpx.TimeoutException:
                    code = "client timeout (30 s)"
                with lock:
                    statuses[code] = statuses.get(code, 0) + 1
                i += 1

    loaded: list[float] = []
    threads = [threading.Thread(target=sender, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    threading.Timer(seconds, stop.set).start()
    probe(stop, loaded)
    for t in threads:
        t.join()
    time.sleep(2)
    after = httpx.get(f"{url}/info", timeout=60).json()
    print(f"/health idle:      n={len(idle):4d}  p50 {_p(idle, 50):.3f}s  max {max(idle):.3f}s")
    print(f"/health in flood:  n={len(loaded):4d}  p50 {_p(loaded, 50):.3f}s  max {max(loaded):.3f}s")
    print(f"flood answers ({clients} clients, {seconds:.0f}s): {dict(sorted(statuses.items()))}")
    print(f"replica restarted: {'NO' if after['replica'] == replica else 'YES'}; stats {after['stats']}")
    print(f"max /health ratio flood/idle: {max(loaded) / max(idle):.1f}x   target <= 2 s: ", end="")
    print("met" if max(loaded) <= 2.0 else "NOT met")


def soak(url: str, pool: list[str], seconds: float, clients: int = 4) -> None:
    """Steady mixed load for ``seconds``; replica RSS at start, every minute, and at the end."""
    instructions = [
        "",
        DOC,
        "Represent the question for retrieving supporting answers: ",
        "Represent the sentence for classification: ",
    ]
    stop = threading.Event()
    done = [0]
    errors: dict[int, int] = {}
    lock = threading.Lock()

    def run(c: int) -> None:
        rng = random.Random(c)
        with httpx.Client(timeout=120) as http:
            while not stop.is_set():
                n = rng.choice([1, 1, 2, 4, 8, 16, 32])
                texts = [pool[rng.randrange(len(pool))] for _ in range(n)]
                one_off = rng.random() < 0.1
                instruction = f"Represent item {rng.randrange(10**9)} for retrieval: " if one_off else None
                body: dict[str, Any] = {"texts": texts, "instruction": instruction or rng.choice(instructions)}
                r = http.post(f"{url}/embed", json=body)
                with lock:
                    done[0] += n
                    if r.status_code != 200:
                        errors[r.status_code] = errors.get(r.status_code, 0) + 1

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    time.sleep(5)
    start = httpx.get(f"{url}/info", timeout=60).json()["rss_bytes"]
    began = time.monotonic()
    print(f"soak: {clients} clients, {seconds:.0f}s; replica RSS at start {start / 2**20:.0f} MB", flush=True)
    samples = [start]
    while time.monotonic() - began < seconds:
        time.sleep(min(60.0, max(0.0, seconds - (time.monotonic() - began))))
        rss = httpx.get(f"{url}/info", timeout=60).json()["rss_bytes"]
        samples.append(rss)
        print(f"  t={time.monotonic() - began:5.0f}s  RSS {rss / 2**20:.0f} MB  texts {done[0]}", flush=True)
    stop.set()
    for t in threads:
        t.join()
    end = samples[-1]
    print(f"replica RSS start {start / 2**20:.0f} MB -> end {end / 2**20:.0f} MB  ratio end/start {end / start:.2f}x")
    print(f"texts embedded {done[0]}, non-200 answers {errors or 'none'}")


if __name__ == "__main__":
    print("run these through benchmarks/serve.py --mode hol|flood|soak (it starts Ray and the replica)")
