"""Throughput of InstructorEncoder vs sentence-transformers on the same model, texts and settings.

Baseline: sentence-transformers ``encode(texts, prompt=instruction)`` with ``include_prompt=False``
pooling (the reference INSTRUCTOR math), on the bundled all-MiniLM-L6-v2, fp32, batch 32, same
process. Two cases:

- plain: one instruction for all texts;
- mixed: 4 instructions interleaved; ours in one call, sentence-transformers grouped by instruction
  (it takes one prompt per call) and reassembled.

Runs alternate A/B and the best of ``--repeats`` is kept for each side, since the machine is shared.
Prints texts/s and the ratio ours / baseline.

Then the CPU backends (one instruction; every side pools as the checkpoint says, so all compute the
same vectors): ours with ``backend="torch"``, ``backend="onnx"`` and ``quantize="int8"`` (each int8 method where this
CPU class allows it) against sentence-transformers' ``torch``, ``onnx``, ``openvino`` and their qint8
exports (``onnx`` dynamic int8 with this CPU's config, ``openvino`` static int8). The ONNX/OpenVINO
peers need ``optimum``, whose ``transformers`` pin conflicts with ours, so they run in the peers venv
(``make bench-peers`` builds it; ``INSTRUCTOR_PEER_VENV``, default ``.venv-peers``) in a child process
(``benchmarks/st_peer.py``), timed there, one run at a time in turn with ours. Each row: texts/s,
ratio to the fastest exact peer (cos >= 0.99999 to our fp32: OpenVINO at its default precision runs bf16
on CPUs that have it, so it is shown but not exact) and to the fastest qint8 peer, min per-row cosine to
our torch fp32 on the benchmark texts and on the short probe texts, where int8 is weakest. A peer that
cannot run is skipped with one line that says why. ``--no-backends`` skips this part.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from instructor_plugins.checkpoint import bundled_model_dir
from instructor_plugins.corpora import gensim_test_file, wordnet_synsets
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.runtimes import backend_available

INSTRUCTIONS = [
    "Represent the dictionary definition for retrieval: ",
    "Represent the sentence for classifying its topic: ",
    "Represent the sentence for clustering: ",
    "Represent the question for retrieving supporting documents: ",
]


def load_texts(n: int) -> tuple[list[str], str]:
    try:
        return [s.gloss for s in wordnet_synsets("noun", limit=n)], "WordNet noun glosses"
    except FileNotFoundError:
        lines = gensim_test_file("lee_background.cor").read_text(encoding="latin-1").splitlines()
        sentences = [s.strip() + "." for line in lines for s in line.split(". ") if s.strip()]
        return (sentences * (n // len(sentences) + 1))[:n], "gensim lee_background sentences"


def best_time(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-backends", action="store_true", help="skip the CPU backends table")
    parser.add_argument("--no-instructor-math", action="store_true", help="skip the include_prompt=False cases")
    args = parser.parse_args()
    from instructor_plugins.quantization import cpu_description, cpu_isa

    print(f"CPU: {cpu_description()} (ISA class {cpu_isa()})")
    texts, source = load_texts(args.n)
    if not args.no_instructor_math:
        instructor_math(args, texts, source)
    if not args.no_backends:
        backends(args, texts, source)


def instructor_math(args: argparse.Namespace, texts: list[str], source: str) -> None:
    """Ours vs sentence-transformers (torch) with the INSTRUCTOR pooling, one and four instructions."""

    from sentence_transformers import SentenceTransformer

    ours = InstructorEncoder.load(device="cpu", dtype="float32")
    st = SentenceTransformer(str(bundled_model_dir()), device="cpu")
    next(m for m in st if type(m).__name__ == "Pooling").include_prompt = False
    print(f"{len(texts)} texts ({source}), batch {args.batch_size}, fp32, torch threads {torch.get_num_threads()}")

    mixed = [INSTRUCTIONS[i % len(INSTRUCTIONS)] for i in range(len(texts))]

    def st_grouped() -> np.ndarray:
        out = np.empty((len(texts), ours.dim), dtype=np.float32)
        for instruction in INSTRUCTIONS:
            rows = [i for i, ins in enumerate(mixed) if ins == instruction]
            out[rows] = st.encode([texts[i] for i in rows], prompt=instruction, batch_size=args.batch_size)
        return out

    cases: dict[str, tuple[Callable[[], np.ndarray], Callable[[], np.ndarray]]] = {
        "plain": (
            lambda: ours.encode(texts, INSTRUCTIONS[0], batch_size=args.batch_size),
            lambda: st.encode(texts, prompt=INSTRUCTIONS[0], batch_size=args.batch_size),
        ),
        "mixed (4 instructions)": (lambda: ours.encode(texts, mixed, batch_size=args.batch_size), st_grouped),
    }
    ours.encode(texts[:64], INSTRUCTIONS[0])  # warm-up both
    st.encode(texts[:64], prompt=INSTRUCTIONS[0])
    for name, (ours_fn, st_fn) in cases.items():
        t_ours = t_st = float("inf")
        for _ in range(args.repeats):  # alternate so both sides see the same machine load
            t, a = best_time(ours_fn, 1)
            t_ours = min(t_ours, t)
            t, b = best_time(st_fn, 1)
            t_st = min(t_st, t)
        cos = float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
        print(
            f"{name:24s} ours {len(texts) / t_ours:7.1f} texts/s | sentence-transformers {len(texts) / t_st:7.1f} "
            f"texts/s | ratio {t_st / t_ours:.2f}x | min cosine {cos:.6f}"
        )


class StPeer:
    """sentence-transformers' backends in the peers venv (``benchmarks/st_peer.py``), one request per line."""

    def __init__(self, python: str, log: Path) -> None:
        script = Path(__file__).with_name("st_peer.py")
        self.log = log
        with log.open("w") as stderr:
            self.proc = subprocess.Popen(
                [python, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, stderr=stderr
            )

    def ask(self, request: dict[str, object]) -> dict[str, object]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            tail = self.log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"the peer process ended (exit {self.proc.wait()}); its log ends:\n{tail}")
        reply: dict[str, object] = json.loads(line)
        return reply

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def backends(args: argparse.Namespace, texts: list[str], source: str) -> None:
    """Our CPU backends against sentence-transformers' torch, onnx, openvino and qint8 exports."""
    from instructor_plugins import quantization

    instruction = INSTRUCTIONS[0]
    isa = quantization.cpu_isa()
    print(f"\nCPU backends: {len(texts)} texts ({source}), one instruction, batch {args.batch_size}, fp32 unless int8")
    ours: dict[str, InstructorEncoder] = {
        "ours torch": InstructorEncoder.load(device="cpu"),
        "ours onnx": InstructorEncoder.load(device="cpu", backend="onnx"),
    }
    if backend_available("openvino"):
        ours["ours openvino"] = InstructorEncoder.load(device="cpu", backend="openvino")
    else:
        print('ours openvino: skipped, openvino is not installed (pip install "instructor-plugins[openvino]")')
    if isa in quantization.INT8_ISAS:
        ours["ours torch int8"] = InstructorEncoder.load(device="cpu", backend="torch", quantize="int8")
    else:
        print(f"ours torch int8: refused on this CPU class ({quantization.unsupported_reason(isa)})")
    if backend_available("openvino", int8=True):
        try:
            ours["ours openvino int8"] = InstructorEncoder.load(device="cpu", backend="openvino", quantize="int8")
        except quantization.Int8Unsupported as exc:
            print(f"ours openvino int8: {exc}")
    else:
        print(
            'ours openvino int8: skipped, openvino/nncf are not installed (pip install "instructor-plugins[openvino]")'
        )
    try:  # ONNX Runtime's per-token int8 (instructor_plugins.ort_int8; the method quantize= picks on AVX2)
        ours["ours onnx int8"] = InstructorEncoder.load(device="cpu", backend="onnx", quantize="int8")
    except quantization.Int8Unsupported as exc:
        print(f"ours onnx int8: {exc}")
    for enc in ours.values():
        enc.encode(texts[:64], instruction, batch_size=args.batch_size)
    work = Path(tempfile.mkdtemp(prefix="encode-bench-"))
    peer: StPeer | None = None
    peer_names: list[str] = []
    python = os.path.join(os.environ.get("INSTRUCTOR_PEER_VENV", ".venv-peers"), "bin", "python")
    if not os.path.exists(python):
        print(f"sentence-transformers onnx/openvino peers: skipped, no peers venv at {python} (make bench-peers)")
    else:
        (work / "texts.txt").write_text("\n\x00\n".join(texts), encoding="utf-8")
        peer = StPeer(python, work / "st_peer.log")
        st_isa = isa if isa in ("avx2", "avx512", "avx512_vnni") else "avx2"
        setup = peer.ask(
            {
                "cmd": "setup",
                "model": str(bundled_model_dir()),
                "texts": str(work / "texts.txt"),
                "prompt": instruction,
                "batch_size": args.batch_size,
                "isa": st_isa,
                "out": str(work),
            }
        )
        peer_names = list(setup["ready"])  # type: ignore[call-overload]
        for name, reason in dict(setup["skipped"]).items():  # type: ignore[call-overload]
            print(f"{name}: skipped ({reason})")
    best: dict[str, float] = {}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):  # in turn, so every candidate sees the same machine load
        for name, enc in ours.items():
            seconds, vectors[name] = best_time(
                lambda enc=enc: enc.encode(texts, instruction, batch_size=args.batch_size), 1
            )
            best[name] = min(best.get(name, float("inf")), seconds)
        for name in peer_names:
            assert peer is not None
            reply = peer.ask({"cmd": "run", "name": name})
            best[name] = min(best.get(name, float("inf")), float(reply["seconds"]))  # type: ignore[arg-type]
            vectors[name] = np.load(str(reply["vectors"]))
    # The int8 bound is per text, and short texts stress int8 most: every candidate also embeds the short probe
    # texts (a few words, a greeting, numbers, code) with the same instruction.
    short = [t for _, t in quantization.PROBE]
    short_vectors = {name: enc.encode(short, instruction) for name, enc in ours.items()}
    for name in peer_names:
        assert peer is not None
        short_vectors[name] = np.load(str(peer.ask({"cmd": "run", "name": name, "texts": short})["vectors"]))
    if peer is not None:
        peer.close()
    reference = vectors["ours torch"]
    # exact: fp32 vectors (cos >= 0.99999 to ours on both text sets); bf16 or int8 runs are not
    exact_peers = [
        n
        for n in peer_names
        if "qint8" not in n
        and min(min_cosine(vectors[n], reference), min_cosine(short_vectors[n], short_vectors["ours torch"])) >= 0.99999
    ]
    int8_peers = [n for n in peer_names if "qint8" in n]
    fastest_exact = min(exact_peers, key=lambda n: best[n], default=None)
    fastest_int8 = min(int8_peers, key=lambda n: best[n], default=None)
    print(
        f"{'candidate':32s} {'texts/s':>8s} {'vs fastest exact peer':>22s} {'vs fastest qint8 peer':>22s} "
        "min cos  short"
    )
    for name in [*ours, *peer_names]:
        rate = len(texts) / best[name]
        vs_exact = f"{best[fastest_exact] / best[name]:.2f}x" if fastest_exact else "-"
        vs_int8 = f"{best[fastest_int8] / best[name]:.2f}x" if fastest_int8 else "-"
        cos, cos_short = (
            min_cosine(vectors[name], reference),
            min_cosine(short_vectors[name], short_vectors["ours torch"]),
        )
        print(f"{name:32s} {rate:8.1f} {vs_exact:>22s} {vs_int8:>22s} {cos:.6f} {cos_short:.6f}")
    print(f"fastest exact peer (cos >= 0.99999): {fastest_exact}; fastest qint8 peer: {fastest_int8}")
    print("min cos: to ours torch fp32 on the benchmark texts; short: on the short probe texts (8 texts)")


if __name__ == "__main__":
    main()
