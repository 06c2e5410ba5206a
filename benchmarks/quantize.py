"""int8 CPU encoding: fp32 vs torch dynamic int8 vs ONNX Runtime (fp32 and int8), in the same process.

How ``quantize="int8"`` was chosen. Every candidate runs the same :class:`InstructorEncoder`
tokenization, instruction masks and pooling (INSTRUCTOR pools over the text tokens only); only the
transformer that produces the token embeddings differs:

- ``fp32``: the plain encoder (baseline);
- ``torch int8``: ``InstructorEncoder.load(quantize="int8")``, torch dynamic quantization of the
  Linear layers (:mod:`instructor_plugins.quantization`);
- ``openvino fp32`` / ``openvino int8 gN``: ``backend="openvino"`` and its int8 model (int8 weights, asymmetric
  or with ``sym`` symmetric, activations quantized at run time per token and N features; ``quantize="int8"``
  where OpenVINO is installed), one row per ``--ov-group-sizes`` value and ``--ov-weights`` mode;
- ``onnx fp32`` / ``onnx int8 (quantize_dynamic)``: ``InstructorEncoder.load(backend="onnx")`` (the transformer
  exported to ONNX, run by ONNX Runtime) and its export quantized by ``onnxruntime.quantization.quantize_dynamic``
  (one activation scale per call); ``onnx int8 per-token (ours)``: ``backend="onnx", quantize="int8"``
  (:mod:`instructor_plugins.ort_int8`: per-token activation scales, SmoothQuant, 7-bit weights, first token float;
  the int8 method on AVX2). Skipped with one line when ``onnxruntime``/``onnx`` are not installed.

Texts: real short texts, WordNet noun glosses and chatterbot answers, half of the rows with a
retrieval instruction and half without. Runs alternate between candidates and the best of
``--repeats`` is kept for each, since the machine may be shared. Prints texts/s, the ratio against
fp32 and the smallest per-row cosine against fp32, on the benchmark texts and on the load-time probe's short
texts (where int8 is weakest), and names the CPU and its int8 kernel class.

Where ``quantize="int8"`` is refused (AVX2, AVX-512 without VNNI) it says so and measures the int8 model
anyway, with the 7-bit activations those kernels need: the figures behind the refusal. To run the AVX2
kernels on a bigger CPU::

    ATEN_CPU_CAPABILITY=avx2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/quantize.py

    python benchmarks/quantize.py [--n 1024] [--batch-size 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import time
from collections.abc import Callable
from typing import cast

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# As in Serve replicas (ServeArgs.omp_wait_policy): idle OpenMP threads sleep. Without it, on a busy machine,
# int8 kernels alternating with float32 ones ran slower than fp32 (spinning thread teams).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from instructor_plugins.corpora import chatterbot_pairs, wordnet_synsets  # noqa: E402
from instructor_plugins.model import InstructorEncoder  # noqa: E402

INSTRUCTION = "Represent the sentence for retrieval: "


def load_texts(n: int) -> list[str]:
    """``n`` real short texts: WordNet noun glosses and chatterbot answers, interleaved (<= 400 chars)."""
    answers = sorted({p.answer for p in chatterbot_pairs()})
    try:
        glosses = [s.gloss for s in wordnet_synsets("noun", limit=n)]
    except FileNotFoundError:
        glosses = []
    texts = [t for pair in zip(glosses, answers, strict=False) for t in pair] + answers[len(glosses) :]
    texts = [t for t in texts if len(t) <= 400]
    return (texts * (n // max(len(texts), 1) + 1))[:n]


def onnx_encoders() -> dict[str, InstructorEncoder]:
    """``backend="onnx"`` (fp32, ONNX Runtime) and the same export quantized by ``onnxruntime.quantization``."""

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from instructor_plugins.runtimes import OrtTransformer

    fp32 = InstructorEncoder.load(device="cpu", backend="onnx")
    exported = cast(OrtTransformer, fp32.module.encoder)
    int8_path = exported.path.with_name("model.int8.onnx")
    if not int8_path.is_file():
        quantize_dynamic(str(exported.path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
    int8 = copy.copy(fp32)
    int8.module = copy.copy(fp32.module)
    int8.module._modules = dict(fp32.module._modules)  # share the Dense head; replace only the transformer
    int8.module.encoder = OrtTransformer(int8_path, exported.config, torch.get_num_threads())
    # ours: per-token activation scales, SmoothQuant, 7-bit weights, first token float (instructor_plugins.ort_int8)
    per_token = InstructorEncoder.load(device="cpu", backend="onnx", quantize="auto")
    found = {"onnx fp32": fp32, "onnx int8 (quantize_dynamic)": int8}
    if per_token.quantize == "int8":
        found["onnx int8 per-token (ours)"] = per_token
    else:
        print(f"onnx int8 per-token skipped: {per_token.quantization.reason if per_token.quantization else '?'}")
    return found


def openvino_encoders(group_sizes: list[int], weights: list[str]) -> dict[str, InstructorEncoder]:
    """``backend="openvino"`` (fp32) and its int8 model at each run-time activation group size (``quantize="int8"``
    uses :data:`~instructor_plugins.runtimes.OV_INT8_GROUP_SIZE`); skipped with one line where OpenVINO's int8
    cannot run (no VNNI)."""
    from instructor_plugins.runtimes import OV_INT8_GROUP_SIZE, OvTransformer, ov_int8_supported

    fp32 = InstructorEncoder.load(device="cpu", backend="openvino")
    exported = cast(OvTransformer, fp32.module.encoder)
    found = {"openvino fp32": fp32}
    reason = ov_int8_supported()
    if reason:
        print(f"openvino int8 skipped: {reason}")
        return found
    for mode in weights:
        for size in group_sizes:
            int8 = copy.copy(fp32)
            int8.module = copy.copy(fp32.module)
            int8.module._modules = dict(fp32.module._modules)  # share the Dense head; replace only the transformer
            int8.module.encoder = OvTransformer(
                exported.path,
                exported.config,
                torch.get_num_threads(),
                int8=True,
                group_size=size,
                asymmetric=mode == "asym",
            )
            default = size == OV_INT8_GROUP_SIZE and mode == "asym"
            found[f"openvino int8 {mode} g{size}" + (" (default)" if default else "")] = int8
    return found


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1024, help="texts per run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--ov-group-sizes", type=int, nargs="*", default=[64, 128], help="OpenVINO int8 activation group sizes"
    )
    parser.add_argument(
        "--ov-weights",
        nargs="*",
        choices=["asym", "sym"],
        default=["asym", "sym"],
        help="OpenVINO int8 weight modes (zero point per channel or none)",
    )
    args = parser.parse_args()

    texts = load_texts(args.n)
    instructions = [INSTRUCTION if i % 2 else "" for i in range(len(texts))]
    from instructor_plugins import quantization

    isa = quantization.cpu_isa()
    print(f"CPU: {quantization.cpu_description()}")
    fp32 = InstructorEncoder.load(device="cpu")
    candidates: dict[str, InstructorEncoder] = {"fp32": fp32}
    if isa in quantization.INT8_ISAS:
        candidates["torch int8"] = InstructorEncoder.load(device="cpu", backend="torch", quantize="int8")
    else:  # measure what int8 would give here (why it is refused): 7-bit activations, as these kernels need
        print(f"quantize='int8' is refused here ({quantization.unsupported_reason(isa)}); measured anyway:")
        quantization.INT8_ISAS[isa] = quantization.Int8Method(activation_bits=7, speedup=0.0, min_cos=0.0)
        forced = InstructorEncoder.load(device="cpu")
        quantization.quantize_int8(forced.module.encoder, isa)
        candidates["torch int8 (refused here)"] = forced
    try:
        candidates |= onnx_encoders()
    except ImportError as exc:
        print(f"ONNX Runtime candidates skipped: {exc} (pip install onnxruntime onnx)")
    try:
        candidates |= openvino_encoders(args.ov_group_sizes, args.ov_weights)
    except ImportError as exc:
        print(f'OpenVINO candidates skipped: {exc} (pip install "instructor-plugins[openvino]")')
    print(
        f"{len(texts)} texts (WordNet glosses, chatterbot answers; mean {np.mean([len(t) for t in texts]):.0f} chars), "
        f"half with an instruction, batch {args.batch_size}, torch threads {torch.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    runs: dict[str, Callable[[], np.ndarray]] = {
        name: (lambda enc=enc: enc.encode(texts, instructions, batch_size=args.batch_size))
        for name, enc in candidates.items()
    }
    for run in runs.values():  # warm-up
        run()
    best = dict.fromkeys(runs, float("inf"))
    vectors: dict[str, np.ndarray] = {}
    order = list(runs)
    for round_ in range(args.repeats):  # alternate so every candidate sees the same machine load, in a new order
        random.Random(round_).shuffle(order)
        for name in order:
            run = runs[name]
            start = time.perf_counter()
            vectors[name] = run()
            best[name] = min(best[name], time.perf_counter() - start)
    probe_texts = [text for _, text in quantization.PROBE]
    probe_instructions = [instruction for instruction, _ in quantization.PROBE]
    probe = {name: enc.encode(probe_texts, probe_instructions) for name, enc in candidates.items()}
    for name in runs:
        print(
            f"{name:36s} {len(texts) / best[name]:7.1f} texts/s   ratio vs fp32 {best['fp32'] / best[name]:.2f}x   "
            f"min cosine vs fp32 {min_cosine(vectors[name], vectors['fp32']):.5f}   "
            f"probe {min_cosine(probe[name], probe['fp32']):.5f}"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
