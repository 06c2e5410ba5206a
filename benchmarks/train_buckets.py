"""Training step time with length buckets (``TrainConfig.length_buckets``, default 3) against one padded block.

Baseline: the same training steps with ``max_buckets = 1`` (every row of a batch padded to the
longest row), in the same process, alternating candidate and baseline batch by batch. One batch
of ``--batch-size`` triples per task, as training builds them (one task per batch): queries,
positives, negatives, each ``instruction + text`` cut to ``--max-seq-length`` tokens. Prints per
task and in total the seconds per step (forward + backward), the ratio baseline / buckets, and
the padded tokens each way.

Data: ``--data`` names a MEDI file or the recipe's ``DIR/corpus/dataset`` (``make finetune``
writes one); without it, the offline sample of :mod:`training.build_sample` (5 tasks).

    python benchmarks/train_buckets.py [--data runs/finetune/corpus/dataset] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from instructor_plugins.buckets import length_buckets, padded_tokens  # noqa: E402
from instructor_plugins.model import InstructorEncoder  # noqa: E402
from training.loss import contrastive_loss  # noqa: E402
from training.medi import MediExample, load_medi  # noqa: E402
from training.step import plain_step, triple_features  # noqa: E402


def task_batches(examples: list[MediExample], batch_size: int) -> dict[str, list[MediExample]]:
    """The first ``batch_size`` examples of every task that has that many."""
    by_task: dict[str, list[MediExample]] = {}
    for example in examples:
        by_task.setdefault(example.task, []).append(example)
    return {task: rows[:batch_size] for task, rows in sorted(by_task.items()) if len(rows) >= batch_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="MEDI file or datasets folder (default: the offline sample)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--buckets", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per task and setting (best kept)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if args.data:
        examples = load_medi(args.data)
    else:
        from training.build_sample import build_sample

        examples, _ = build_sample(per_task=args.batch_size)
    encoder = InstructorEncoder.load(device="cpu")
    encoder.max_seq_length = args.max_seq_length
    model = copy.deepcopy(encoder.module).train()
    total = {1: 0.0, args.buckets: 0.0}
    tokens = {1: 0, args.buckets: 0}
    print(f"{'task':38s} {'plain s':>8s} {'bucket s':>8s} {'ratio':>6s} {'pad tokens':>11s} {'bucketed':>9s}")
    for task, batch in task_batches(examples, args.batch_size).items():
        features = triple_features(encoder, batch)
        lengths = features.attention_mask.sum(dim=1).tolist()
        best = {1: float("inf"), args.buckets: float("inf")}
        for _ in range(args.repeats):
            for buckets in (1, args.buckets):  # alternate: the machine may be shared
                model.max_buckets = buckets
                model.zero_grad(set_to_none=True)
                start = time.perf_counter()
                plain_step(model, features, contrastive_loss)
                best[buckets] = min(best[buckets], time.perf_counter() - start)
        plain_tokens = padded_tokens(lengths, [list(range(len(lengths)))])
        bucket_tokens = padded_tokens(lengths, length_buckets(lengths, args.buckets))
        for buckets, value in best.items():
            total[buckets] += value
        tokens[1] += plain_tokens
        tokens[args.buckets] += bucket_tokens
        ratio = best[1] / best[args.buckets]
        print(
            f"{task:38s} {best[1]:8.2f} {best[args.buckets]:8.2f} {ratio:5.2f}x {plain_tokens:11d} {bucket_tokens:9d}"
        )
    print(
        f"{'all tasks (one step each)':38s} {total[1]:8.2f} {total[args.buckets]:8.2f} "
        f"{total[1] / total[args.buckets]:5.2f}x {tokens[1]:11d} {tokens[args.buckets]:9d}"
    )
    print(f"length buckets ({args.buckets}) vs one padded block: {total[1] / total[args.buckets]:.2f}x faster per step")


if __name__ == "__main__":
    main()
