"""Length buckets at inference: ``encode`` in up to 4 sub-batches of similar length vs one padded block per batch.

The same encoder, the same texts, in the same process, the two settings in turn (``encoder.max_buckets`` 1 and
None = the CPU default), best of ``--repeats`` rounds each. Three workloads of real short texts (the chatterbot
answers of ``benchmarks/serve.py --mode peers``, one word to 400 characters):

- a server's small batches: random 4-row batches (what one replica gets under 1-text load), batch 16;
- 100-text requests of random texts, batch 16 (the server's rows per forward pass);
- a sorted corpus: 512 WordNet noun glosses at batch 32 (``benchmarks/encode.py``'s texts), where sorted batches
  are already alike.

Prints texts/s and the ratio buckets / one block per runtime, with the CPU it ran on, and the largest difference
between the two settings' vectors.

    python benchmarks/buckets.py --backends torch onnx openvino --repeats 3
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
from encode import load_texts  # benchmarks/encode.py
from serve_peers import short_texts  # benchmarks/serve_peers.py

INSTRUCTION = "Represent the sentence: "


def workloads() -> dict[str, tuple[list[list[str]], int]]:
    """Name -> (the calls' texts, batch size)."""
    chat = short_texts()
    rng = random.Random(0)
    glosses, _ = load_texts(512)
    return {
        "random 4-row batches": ([rng.sample(chat, 4) for _ in range(60)], 16),
        "100-text requests": ([rng.sample(chat, 100) for _ in range(4)], 16),
        "512 sorted glosses": ([glosses], 32),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx", "openvino"])
    parser.add_argument("--quantize", choices=["int8"], default=None, help="also pass quantize=")
    parser.add_argument("--repeats", type=int, default=3)
    cli = parser.parse_args()

    from instructor_plugins.model import InstructorEncoder
    from instructor_plugins.quantization import cpu_description
    from instructor_plugins.runtimes import backend_available

    print(f"CPU: {cpu_description()}")
    loads = workloads()
    print(f"{'runtime':22s} {'workload':22s} {'one block':>10s} {'buckets':>10s} {'ratio':>6s} {'max |diff|':>10s}")
    for backend in cli.backends:
        if backend != "torch" and not backend_available(backend):
            print(f"{backend}: skipped (its extra is not installed)")
            continue
        encoder = InstructorEncoder.load(device="cpu", backend=backend, quantize=cli.quantize)
        label = backend + (f" {cli.quantize}" if cli.quantize else "")
        for name, (calls, batch_size) in loads.items():
            best: dict[int | None, float] = {1: 0.0, None: 0.0}
            vectors: dict[int | None, np.ndarray] = {}
            for _ in range(cli.repeats):
                for setting in (1, None):
                    encoder.max_buckets = setting
                    start = time.perf_counter()
                    out = [encoder.encode(texts, INSTRUCTION, batch_size=batch_size) for texts in calls]
                    rate = sum(map(len, calls)) / (time.perf_counter() - start)
                    best[setting] = max(best[setting], rate)
                    vectors[setting] = np.concatenate(out)
            diff = float(np.abs(vectors[None] - vectors[1]).max())
            ratio = best[None] / best[1]
            print(f"{label:22s} {name:22s} {best[1]:10.1f} {best[None]:10.1f} {ratio:5.2f}x {diff:10.1e}", flush=True)
        encoder.max_buckets = None
    print("texts/s, best of", cli.repeats, "rounds; ratio = buckets / one block")


if __name__ == "__main__":
    main()
