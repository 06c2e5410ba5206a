"""Concurrent client calls and their latencies: shared by ``serve.py``, ``serve_peers.py`` and ``serve_malloc.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def burst(clients: int, calls: int, work: Callable[[int, int], Any]) -> tuple[float, list[float]]:
    """``calls`` calls of ``work(client, i)`` spread over ``clients`` threads; (wall seconds, latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(calls))

    def run(c: int) -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t = time.perf_counter()
            work(c, i)
            with lock:
                latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    if clients == 1:  # inline: the in-process baseline keeps one thread (and one OpenMP team), as the replica does
        run(0)
        return time.perf_counter() - start, latencies
    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")
