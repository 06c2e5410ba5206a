"""The ONNX export without softmax's NaN guard against the export as torch writes it, in the same process.

``backend="onnx"`` (and the per-token int8 graph built from it) runs the export rewritten by
:func:`instructor_plugins.onnx_graph.drop_nan_guards`. This exports the bundled model twice, once as torch writes it
(the baseline) and once as the library keeps it, builds the per-token int8 graph (:mod:`instructor_plugins.ort_int8`)
from each, and times ONNX Runtime on the same pre-tokenized batches (real texts: chatterbot answers and texts of every
length, one instruction), candidates in a new order each round, best of ``--repeats``. Prints texts/s, the ratio
against the export with the guard, whether the output is bit-identical to it, and the CPU.

    python benchmarks/onnx_export.py [--repeats 9] [--batch-size 32] [--unsorted]

``--unsorted`` keeps the texts in a shuffled order, so long texts pad whole batches (the guard's cost grows with the
square of the length).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from instructor_plugins import ort_int8, quantization, runtimes  # noqa: E402
from instructor_plugins.corpora import chatterbot_pairs  # noqa: E402
from instructor_plugins.model import InstructorEncoder  # noqa: E402

INSTRUCTION = "Represent the document for retrieval: "


def texts(shuffled: bool) -> list[str]:
    """512 chatterbot answers and 64 longer ones (every length up to paragraphs), sorted by length unless shuffled."""
    answers = sorted({p.answer for p in chatterbot_pairs()}, key=len)
    chosen = answers[:: max(1, len(answers) // 512)][:512] + answers[-64:]
    random.Random(0).shuffle(chosen)
    return chosen if shuffled else sorted(chosen, key=len)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--unsorted", action="store_true", help="do not sort the texts by length")
    args = parser.parse_args()
    try:
        import onnxruntime as ort
    except ImportError:
        raise SystemExit('onnxruntime is not installed: pip install "instructor-plugins[onnx]"') from None

    print(f"CPU: {quantization.cpu_description()}")
    encoder = InstructorEncoder.load(device="cpu")
    sample = encoder.tokenize(["a sample"], [""])
    work = Path(tempfile.mkdtemp(prefix="onnx-export-bench-"))
    kept = runtimes.export_onnx(encoder.module.encoder, (sample.input_ids, sample.attention_mask), work / "kept")
    raw = runtimes.export_onnx(  # the baseline: the export as torch writes it
        encoder.module.encoder, (sample.input_ids, sample.attention_mask), work / "raw", keep_nan_guards=True
    )
    models = {"fp32, torch's export (baseline)": raw, "fp32, without the NaN guard (ours)": kept}
    for label, path in (("int8 per token, on torch's export", raw), ("int8 per token, without the guard (ours)", kept)):
        int8 = path.with_name("int8.onnx")
        maxima = ort_int8.channel_maxima(path, ort_int8.calibration_feeds(encoder.tokenize))
        ort_int8.quantize_per_token(path, int8, maxima)
        models[label] = int8
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, min(os.cpu_count() or 1, 2))
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sessions = {
        name: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for name, p in models.items()
    }
    chosen = texts(args.unsorted)
    feeds = []
    for start in range(0, len(chosen), args.batch_size):
        chunk = chosen[start : start + args.batch_size]
        batch = encoder.tokenize(chunk, [INSTRUCTION] * len(chunk))
        feeds.append({"input_ids": batch.input_ids.numpy(), "attention_mask": batch.attention_mask.numpy()})
    outputs = {name: [s.run(None, f)[0] for f in feeds] for name, s in sessions.items()}
    names = list(sessions)
    best = dict.fromkeys(names, float("inf"))
    for round_ in range(args.repeats):
        order = names[:]
        random.Random(round_).shuffle(order)
        for name in order:
            start = time.perf_counter()
            for feed in feeds:
                sessions[name].run(None, feed)
            best[name] = min(best[name], time.perf_counter() - start)
    print(
        f"{len(chosen)} texts ({'shuffled' if args.unsorted else 'sorted by length'}), batch {args.batch_size}, "
        f"ONNX Runtime {ort.__version__}, {options.intra_op_num_threads} threads, best of {args.repeats}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    for name in names:
        base = names[0] if name.startswith("fp32") else names[2]
        same = all(np.array_equal(a, b) for a, b in zip(outputs[base], outputs[name], strict=True))
        ratio = best[base] / best[name]
        print(f"{name:42s} {len(chosen) / best[name]:8.1f} texts/s   ratio vs its baseline {ratio:.2f}x   same: {same}")


if __name__ == "__main__":
    main()
