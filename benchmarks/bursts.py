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
    else:
        _in_threads(clients, run)
    return time.perf_counter() - start, latencies


def _in_threads(clients: int, run: Callable[[int], None]) -> None:
    """``run(c)`` for each client ``c`` on a thread of its own; returns when all have."""
    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def steady(clients: int, seconds: float, work: Callable[[int, int], Any]) -> tuple[float, list[float]]:
    """Each of ``clients`` threads calls ``work(client, i)`` back to back until ``seconds`` have passed (the
    call under way then finishes); ``i`` counts calls over all threads. (wall seconds, latencies): one latency
    per call, so ``len(latencies) / wall`` is the rate a steady load got.
    """
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(1 << 62))
    start = time.perf_counter()
    deadline = start + seconds

    def run(c: int) -> None:
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter)
            t = time.perf_counter()
            work(c, i)
            with lock:
                latencies.append(time.perf_counter() - t)

    _in_threads(clients, run)
    return time.perf_counter() - start, latencies


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")
