"""Our server vs a peer (infinity-emb) on the same model, machine and client: ``serve.py --mode peers``.

Servers, all on 127.0.0.1, all serving the bundled all-MiniLM-L6-v2 through the OpenAI route
``POST /v1/embeddings`` (no instruction: the peer has none):

- ours with the CLI defaults (``build_app`` with default :class:`~ray_backend.serve.ServeArgs`);
- ours with ``quantize="auto"`` (int8 where it keeps cos >= 0.99: OpenVINO's where installed, else torch's; else
  fp32; otherwise the defaults);
- ours with ``backend="onnx"`` and ``backend="openvino"`` (the transformer run by ONNX Runtime / OpenVINO at
  float32; otherwise the defaults);
- infinity-emb, when its venv is found (``--peer-venv``, env ``INSTRUCTOR_PEER_VENV``, default
  ``.venv-peers``; ``make bench-peers`` creates it), started as
  ``infinity_emb v2 --model-id DIR --served-model-name NAME --url-prefix /v1 --host 127.0.0.1
  --port PORT --device cpu --engine ENGINE`` and stopped at the end, once per engine: ``torch`` against
  our defaults and ``--quantize auto``, ``optimum`` (ONNX Runtime) against our ``--backend onnx`` and ``openvino``.
  Absent: one line says so; an engine that does not start is skipped with its log's first line.
  ``INSTRUCTOR_PEER_ENGINES=optimum`` runs one engine's phases only.

The identical client workload per slice: 4 concurrent requests of 100 real short texts (chatterbot
answers of at most 400 characters) -> bulk texts/s; then 8 clients sending one-text requests back to back
for 3 seconds (a steady load: each client waits for its answer, then sends the next) -> req/s, p50 and p99.
Each server keeps the same 8 clients, and their connections, over all its slices. Slices alternate
between ours and the peer (each of our variants is measured against the peer in its own phase), so
load from other processes hits both alike; each phase is bounded by ``--seconds``. Prints the
figures and the ratios ours / infinity. It also checks that
the served int8 vectors equal in-process int8 encoding of the same batch (cos >= 0.99999) and that
the peer serves the same model (cos to our fp32). For the 1-text phases it also prints our replica's own
counters (``/info`` ``stats``: rows per batch, milliseconds encoding per batch, share of the time encoding) and
the same-size batch encoded in this process with the same model arguments, nothing else running there:
what the replica's serving work costs its encoding.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bursts import burst, steady  # benchmarks/bursts.py: the shared client loads

PEER_VENV_ENV = "INSTRUCTOR_PEER_VENV"
SERVED_NAME = "all-MiniLM-L6-v2"
BULK_CLIENTS, BULK_TEXTS = 4, 100
ONE_CLIENTS, ONE_SECONDS = 8, 3.0
MAX_CHARS = 400


def short_texts() -> list[str]:
    """Distinct chatterbot answers of at most :data:`MAX_CHARS` characters, sorted."""
    from instructor_plugins.corpora import chatterbot_pairs

    return sorted({p.answer for p in chatterbot_pairs() if 0 < len(p.answer) <= MAX_CHARS})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def embed(client: httpx.Client, url: str, texts: list[str]) -> np.ndarray:
    """POST ``texts`` to the OpenAI route at ``url``; the vectors in input order."""
    response = client.post(f"{url}/v1/embeddings", json={"model": SERVED_NAME, "input": texts}, timeout=300)
    response.raise_for_status()
    data = sorted(response.json()["data"], key=lambda d: d["index"])
    return np.asarray([d["embedding"] for d in data], dtype=np.float32)


@dataclass
class Figures:
    """Bulk texts and seconds, 1-text requests and seconds, 1-text latencies; summed over slices."""

    bulk_texts: int = 0
    bulk_s: float = 0.0
    one_requests: int = 0
    one_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    #: our replica's own counters (``/info`` ``stats``) over the 1-text phases: batches, rows, seconds encoding
    one_batches: int = 0
    one_rows: int = 0
    one_encode_s: float = 0.0

    @property
    def bulk_rate(self) -> float:
        return self.bulk_texts / self.bulk_s

    @property
    def one_rate(self) -> float:
        return self.one_requests / self.one_s

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000)


def _parallel(clients: list[httpx.Client], calls: int, work: Callable[[httpx.Client, int], Any]) -> tuple[float, list]:
    """``calls`` calls of ``work(client, i)`` over one thread per client; (wall seconds, latencies)."""
    return burst(len(clients), calls, lambda c, i: work(clients[c], i))


def replica_stats(client: httpx.Client, url: str) -> dict[str, Any] | None:
    """Our replica's counters (``/info`` ``stats``); ``None`` for a server without them (the peer)."""
    response = client.get(f"{url}/info", timeout=30)
    stats = response.json().get("stats") if response.status_code == 200 else None
    return stats if isinstance(stats, dict) else None


def run_slice(url: str, clients: list[httpx.Client], texts: list[str], k: int, figures: Figures) -> None:
    """One slice of the workload against ``url``; the texts depend on ``k`` only (identical for every server)."""
    n = len(texts)
    lists = [[texts[(k * 400 + j * BULK_TEXTS + i) % n] for i in range(BULK_TEXTS)] for j in range(BULK_CLIENTS)]
    seconds, _ = _parallel(clients[:BULK_CLIENTS], BULK_CLIENTS, lambda c, i: embed(c, url, lists[i]))
    figures.bulk_texts += BULK_CLIENTS * BULK_TEXTS
    figures.bulk_s += seconds
    before = replica_stats(clients[0], url)
    seconds, latencies = steady(
        len(clients), ONE_SECONDS, lambda c, i: embed(clients[c], url, [texts[(k * 97 + i * 13) % n]])
    )
    after = replica_stats(clients[0], url)
    if before is not None and after is not None:
        figures.one_batches += after["batches"] - before["batches"]
        figures.one_rows += after["rows"] - before["rows"]
        figures.one_encode_s += after["encode_s"] - before["encode_s"]
    figures.one_requests += len(latencies)
    figures.one_s += seconds
    figures.latencies.extend(latencies)


def compare(ours: str, peer: str | None, texts: list[str], budget_s: float) -> tuple[Figures, Figures | None]:
    """Alternate slices ours / peer until ``budget_s`` is spent (at least 2 slices each).

    Each server keeps its own :data:`ONE_CLIENTS` clients (and their connections) over all its slices, as an
    application's client does; a connection is opened once per client, not per slice.
    """
    mine, theirs = Figures(), Figures() if peer else None
    with contextlib.ExitStack() as stack:
        pools = {
            url: [stack.enter_context(httpx.Client()) for _ in range(ONE_CLIENTS)] for url in filter(None, (ours, peer))
        }
        for url, clients in pools.items():  # warm both
            embed(clients[0], url, texts[:BULK_TEXTS])
        deadline, k = time.perf_counter() + budget_s, 0
        while k < 2 or time.perf_counter() < deadline:
            run_slice(ours, pools[ours], texts, k, mine)
            if peer and theirs is not None:
                run_slice(peer, pools[peer], texts, k, theirs)
            k += 1
    print(f"  {k} slices per server", flush=True)
    return mine, theirs


def peer_command(venv: Path) -> Path | None:
    """The ``infinity_emb`` executable of ``venv``, or None when it is not installed there."""
    exe = venv / "bin" / "infinity_emb"
    return exe if exe.is_file() and os.access(exe, os.X_OK) else None


def onnx_model_dir(bin_dir: Path, model_dir: Path) -> Path:
    """A copy of ``model_dir`` with ``model.onnx`` at its root, as infinity-emb's ``--engine optimum`` wants it.

    Exported by optimum's own ``optimum-cli export onnx --task feature-extraction --library-name transformers``
    (``last_hidden_state`` out: infinity pools it itself), the export the hub's model repos ship. infinity 0.0.78
    hands optimum the file as found under ``--model-id``, so it is started from that folder with ``--model-id .``.
    """
    target = Path(tempfile.mkdtemp(prefix="infinity-onnx-"))
    shutil.copytree(model_dir, target, dirs_exist_ok=True)
    cmd = [str(bin_dir / "optimum-cli"), "export", "onnx", "--model", str(target), "--task", "feature-extraction"]
    cmd += ["--library-name", "transformers", str(target / "export")]
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    (target / "export" / "model.onnx").rename(target / "model.onnx")
    shutil.rmtree(target / "export")
    return target


def wait_http_ready(url: str, process: subprocess.Popen[bytes], log: Path, name: str, timeout_s: float) -> None:
    """Poll ``GET url`` until it answers 200 while ``process`` runs.

    Raises:
        RuntimeError: the process exited or did not get ready in time (with its log's tail).
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{name} did not get ready (exit {process.poll()}); log tail:\n{tail}")


class InfinityPeer:
    """infinity-emb on a free loopback port, serving ``model_dir``; a context manager that stops it."""

    def __init__(self, exe: Path, model_dir: Path, engine: str = "torch") -> None:
        self.engine = engine
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="infinity-", suffix=".log", delete=False)  # noqa: SIM115
        cwd, model_id = None, str(model_dir)
        if engine == "optimum":
            cwd, model_id = str(onnx_model_dir(exe.parent, model_dir)), "."
            exe = exe.resolve()  # started from the model folder
        args = [str(exe), "v2", "--model-id", model_id, "--served-model-name", SERVED_NAME]
        args += ["--url-prefix", "/v1", "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--device", "cpu", "--engine", engine]
        if engine == "optimum":  # its default ("auto") pools the first token there; the model's pooling is the mean
            args += ["--pooling-method", "mean"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0", "DO_NOT_TRACK": "1"}
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd)

    def wait_ready(self, timeout_s: float = 240) -> None:
        """Poll ``GET /v1/models`` until it answers 200.

        Raises:
            RuntimeError: the peer exited or did not get ready in time (with its log's tail).
        """
        wait_http_ready(f"{self.url}/v1/models", self.process, Path(self.log.name), "infinity-emb", timeout_s)

    def __enter__(self) -> InfinityPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()
        os.unlink(self.log.name)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def inprocess_batch_ms(args: dict[str, Any], texts: list[str], rows: int, repeats: int = 40) -> float:
    """Median milliseconds of encoding ``rows`` of the 1-text phases' texts in this process (same model args)."""
    from instructor_plugins.model import InstructorEncoder

    encoder = InstructorEncoder.load(device="cpu", **args)
    ones = [texts[(i * 13) % len(texts)] for i in range(256)]
    times = []
    for i in range(repeats):
        batch = [ones[(i + j) % len(ones)] for j in range(rows)]
        start = time.perf_counter()
        encoder.encode(batch)
        times.append(time.perf_counter() - start)
    return float(np.median(times[2:]) * 1000)


def report(label: str, ours: Figures, peer: Figures | None, inprocess_ms: float | None = None) -> None:
    print(f"\n== {label}")
    rows = [("ours", ours)] + ([("infinity-emb", peer)] if peer else [])
    print(f"{'server':14s} {'bulk texts/s':>12s} {'1-text req/s':>12s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for name, f in rows:
        print(f"{name:14s} {f.bulk_rate:12.1f} {f.one_rate:12.1f} {f.pct(50):8.1f} {f.pct(99):8.1f}")
    if ours.one_batches:
        print(
            f"ours, 1-text phases: {ours.one_rows / ours.one_batches:.2f} rows per batch, "
            f"{ours.one_encode_s / ours.one_batches * 1000:.1f} ms encoding per batch, "
            f"encoding {ours.one_encode_s / ours.one_s:.0%} of the time"
            + (f"; in this process, alone: {inprocess_ms:.1f} ms per batch of that size" if inprocess_ms else "")
        )
    if peer:
        print(
            f"{'ours/infinity':14s} {ours.bulk_rate / peer.bulk_rate:11.2f}x {ours.one_rate / peer.one_rate:11.2f}x "
            f"{ours.pct(50) / peer.pct(50):7.2f}x {ours.pct(99) / peer.pct(99):7.2f}x   (latency: lower is better)"
        )


#: (our configuration, its serve arguments, which are also InstructorEncoder.load arguments, the infinity-emb engine
#: it is compared with): our defaults and int8 against
#: infinity's torch engine; our exported exact CPU paths (ONNX Runtime, OpenVINO) against infinity's ONNX engine
#: (optimum).
RUNS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("fp32 (CLI defaults)", {}, "torch"),
    ("--quantize auto", {"quantize": "auto"}, "torch"),
    ("--backend onnx", {"backend": "onnx"}, "optimum"),
    ("--backend openvino", {"backend": "openvino"}, "optimum"),
)


def main(port: int, budget_s: float, venv: Path) -> None:
    """Run the comparison on a Serve instance already started on ``port`` (see ``serve.py``)."""
    from ray import serve

    from instructor_plugins.checkpoint import bundled_model_dir
    from instructor_plugins.model import InstructorEncoder
    from ray_backend.serve import build_app

    texts = short_texts()
    exe = peer_command(venv)
    if exe is None:
        print(f"infinity-emb: not found in {venv} (make bench-peers installs it): peer skipped", flush=True)
    results = {}
    inprocess: dict[str, float] = {}
    wanted = os.environ.get("INSTRUCTOR_PEER_ENGINES", "torch,optimum").split(",")
    for engine in [e for e in dict.fromkeys(e for _, _, e in RUNS) if e in wanted]:
        # The peer starts first and loads while our replicas do.
        with InfinityPeer(exe, bundled_model_dir(), engine) if exe else contextlib.nullcontext() as peer:
            ready = False
            for name, args, run_engine in RUNS:
                if run_engine != engine:
                    continue
                serve.run(build_app(args), name="peers", route_prefix="/")
                url = f"http://127.0.0.1:{port}"
                if peer is not None and not ready:
                    try:
                        peer.wait_ready()
                        ready = True
                    except RuntimeError as exc:
                        print(f"infinity-emb --engine {engine}: skipped ({str(exc).splitlines()[0]})", flush=True)
                        peer = None
                info = httpx.get(f"{url}/info", timeout=30).json()
                threads = f"torch threads {info['torch_threads']}, " if "torch_threads" in info else ""
                runtime = (info.get("runtime") or {}).get("backend", "torch")
                print(f"\nours, {name}: {threads}quantize {info.get('quantize')}, backend {runtime}", flush=True)
                with httpx.Client() as c:
                    # 16 texts: one sub-batch and one forward pass on both sides. int8 activation scales are per
                    # forward pass, so the check compares the same batch (other batches agree within cos 0.99).
                    served = embed(c, url, texts[:16])
                    if args:
                        local = InstructorEncoder.load(device="cpu", **args).encode(texts[:16])
                        cos = min_cosine(served, local)
                        verdict = "equal" if cos >= 0.99999 else "DIFFERENT"
                        print(f"served {name} vs in-process (same batch): min cosine {cos:.6f} ({verdict})", flush=True)
                    if peer is not None:
                        cos = min_cosine(served, embed(c, peer.url, texts[:16]))
                        print(f"infinity-emb --engine {engine} vs ours: min cosine {cos:.6f} (same model)", flush=True)
                results[name] = (engine, *compare(url, peer.url if peer else None, texts, budget_s))
                serve.delete("peers")
                mine = results[name][1]
                if mine.one_batches:
                    rows = max(1, round(mine.one_rows / mine.one_batches))
                    inprocess[name] = inprocess_batch_ms(args, texts, rows)
    for name, (engine, ours, theirs) in results.items():
        label = f"ours {name} vs infinity-emb 0.0.78 --engine {engine} (same client, same slices)"
        report(label, ours, theirs, inprocess.get(name))
    print(f"\nload average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
