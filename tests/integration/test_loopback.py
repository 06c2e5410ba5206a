"""Loopback by default: `python -m ray_backend.serve` on a machine that also has a routed non-loopback
interface opens no listening socket beyond 127.0.0.1.

The test builds such a machine: a fresh network namespace (``unshare -n``, needs root) with ``lo``
and a veth interface holding 10.123.0.1/24 with a default route through it (without our helper,
Ray picks that address and binds GCS, raylet, workers and the replica's gRPC server to ``*``).
It starts the CLI there with its defaults (one replica: direct ingress, so the replica itself
listens on ``--port`` and Ray Serve's proxy on a free port), waits for ``/health``, lists listening
TCP sockets with ``ss -ltnp`` and stops the CLI with SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRIPT = r"""
set -e
ip link set lo up
ip link add veth0 type veth peer name veth1
ip addr add 10.123.0.1/24 dev veth0
ip link set veth0 up
ip link set veth1 up
ip route add default via 10.123.0.2 dev veth0
"$PY" -m ray_backend.serve --encoder-factory instructor_plugins.testing:hash_encoder --num-cpus 0 \
  --port 8431 > "$HOME/serve.log" 2>&1 &
pid=$!
"$PY" -c "from ray_backend.net import wait_healthy; wait_healthy('http://127.0.0.1:8431', 150)" \
  || { cat "$HOME/serve.log"; kill -TERM $pid; exit 3; }
ss -ltnpH
kill -TERM $pid
wait $pid && echo "cli exit 0" || echo "cli exit $?"
"""

LOOPBACK_PREFIXES = ("127.", "[::ffff:127.", "[::1]")


def _can_build_namespace() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip") or not shutil.which("ss"):
        return False
    probe = "ip link add veth0 type veth peer name veth1"
    return subprocess.run(["unshare", "-n", "sh", "-c", probe], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_build_namespace(), reason="needs root, unshare, ip (veth) and ss")
def test_the_serve_cli_listens_on_loopback_only() -> None:
    home = tempfile.mkdtemp(prefix="rayhome-", dir="/tmp")
    env = dict(os.environ, HOME=home, PY=sys.executable, RAY_USAGE_STATS_ENABLED="0", HF_HUB_OFFLINE="1")
    env.pop("RAY_ADDRESS", None)
    try:
        done = subprocess.run(
            ["unshare", "-n", "sh", "-c", SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            cwd=Path(__file__).resolve().parents[2],
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sockets = [line for line in done.stdout.splitlines() if line.startswith("LISTEN")]
    listening = [line.split()[3] for line in sockets]
    on_port = [line for line in sockets if line.split()[3].endswith(":8431")]
    assert on_port and "ServeRepli" in on_port[0], done.stdout  # the replica itself answers on --port
    assert any("ProxyActor" in line for line in sockets), done.stdout  # and the proxy runs beside it
    assert len(listening) > 5, done.stdout  # GCS, raylet, workers, proxy, replica were all there
    assert "cli exit 0" in done.stdout, done.stdout  # SIGTERM: a clean stop
    beyond = [addr for addr in listening if not addr.startswith(LOOPBACK_PREFIXES)]
    assert not beyond, f"listening beyond loopback: {beyond}\n{done.stdout}"
