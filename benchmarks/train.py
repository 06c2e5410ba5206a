"""Training throughput: texts/s per worker with 1 and with 2 Ray Train CPU workers (same global batch).

Baseline: 1 worker. Prints texts/s per worker (median over steps after the first) for each run and
the ratio 2-worker / 1-worker, per worker and in total. Run in a loopback-only namespace:
``unshare -n sh -c 'ip link set lo up && exec "$@"' sh env PYTHONPATH=$PWD python benchmarks/train.py``
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

STEPS = int(os.environ.get("BENCH_STEPS", "6"))
BATCH = int(os.environ.get("BENCH_BATCH", "16"))
KEEP = Path(os.environ.get("BENCH_OUTPUT", "/tmp/instructor-bench-train"))


def main() -> None:
    import ray

    from training.build_sample import build_sample
    from training.config import TrainConfig
    from training.medi import save_medi
    from training.train import run

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = Path(tmp)
        os.environ["HOME"] = tmp
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(root / "ray"), log_to_driver=False)
        try:
            train, _ = build_sample(per_task=32, tasks=["wordnet_word_to_definition", "wordnet_synonyms"])
            data = save_medi(train, root / "sample.json")
            speeds: dict[int, float] = {}
            for workers in (1, 2):
                cfg = TrainConfig(
                    data=str(data),
                    output=str(root / f"out{workers}"),
                    num_workers=workers,
                    batch_size=BATCH,
                    steps=STEPS,
                    max_seq_length=32,
                    checkpoint_every=STEPS,
                    storage_path=str(root / "storage"),
                )
                result = run(cfg)
                speeds[workers] = statistics.median(r["texts_per_s_worker"] for r in result.state.history[1:])
                print(
                    f"{workers} worker(s): {speeds[workers]:.1f} texts/s per worker, "
                    f"{speeds[workers] * workers:.1f} texts/s total (global batch {BATCH}, {STEPS} steps)"
                )
                KEEP.mkdir(parents=True, exist_ok=True)
                curve = KEEP / f"loss_curve_{workers}w.png"
                shutil.copy(result.loss_curve, curve)
                print(f"loss curve: {curve}")
            ratio = speeds[2] / speeds[1]
            print(f"ratio 2 workers / 1 worker: per worker {ratio:.2f}x, total {2 * ratio:.2f}x")
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
