"""Loopback helpers shared by the demo, the CLI, benchmarks and tests: a free port, a health wait, the Ray address."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

__all__ = ["RayOptions", "free_port", "wait_healthy"]


@dataclass
class RayOptions:
    """Which Ray cluster a driver joins (the ``--address`` flag of ``instructor serve`` and ``batch``)."""

    address: str | None = None
    """Ray address to join (default: env RAY_ADDRESS, else start a local Ray)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, timeout: float = 180.0) -> None:
    """Poll ``{url}/health`` until it answers 200; ``TimeoutError`` after ``timeout`` seconds."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the Serve app at {url} did not become healthy in {timeout:.0f}s")
