"""Task-homogeneous global batches, sliced across data-parallel workers.

The INSTRUCTOR paper builds every batch from a single task: in a mixed batch the model can tell
the positives from the in-batch negatives by their task (their instruction) alone. Here a *global*
batch (all workers together) comes from one task and worker ``r`` takes rows
``[r * B/W, (r + 1) * B/W)`` of it, so all workers train on the same task at every step, and
cross-device negatives stay within the task.

The plan is a pure function of ``(seed, epoch)``: each task's examples are shuffled and cut into
full batches (the remainder is dropped), then all batches of the epoch are shuffled. A global step
``s`` maps to ``(epoch, position) = divmod(s, steps_per_epoch)``, so a restarted worker resumes at
any step without replaying the ones before it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from functools import lru_cache

__all__ = ["TaskBatchSampler", "is_plain_batch", "stable_unit"]


def stable_unit(*parts: str) -> float:
    """A number in [0, 1) drawn from ``parts`` by hash: the same on every machine, worker and Python run.

    >>> stable_unit("a", "b") == stable_unit("a", "b") != stable_unit("a", "c")
    True
    """
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_plain_batch(seed: int, step: int, rate: float) -> bool:
    """Whether global step ``step`` trains without instructions under instruction dropout at ``rate``.

    A pure function of ``(seed, step)``, so every worker, and a resumed run, makes the same choice; over many
    steps the share of plain steps approaches ``rate`` (0: never, 1: always).

    >>> [is_plain_batch(0, s, 0.0) for s in range(3)], [is_plain_batch(0, s, 1.0) for s in range(3)]
    ([False, False, False], [True, True, True])
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    return stable_unit("plain", str(seed), str(step)) < rate


class TaskBatchSampler:
    """Deterministic, resumable plan of single-task global batches.

    Args:
        tasks: the task key of every example (index ``i`` is example ``i``).
        global_batch_size: examples per optimizer step over all workers.
        world_size: number of data-parallel workers; must divide ``global_batch_size``.
        seed: shuffling seed.

    Raises:
        ValueError: a bad size, or no task has ``global_batch_size`` examples.

    >>> s = TaskBatchSampler(["a"] * 4 + ["b"] * 4, global_batch_size=2, world_size=2, seed=0)
    >>> s.steps_per_epoch
    4
    >>> len(set(s.tasks_of(s.global_batch(0))))
    1
    """

    def __init__(self, tasks: Sequence[str], global_batch_size: int, world_size: int = 1, seed: int = 0) -> None:
        if global_batch_size < 1:
            raise ValueError(f"global_batch_size must be >= 1, got {global_batch_size}")
        if world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        if global_batch_size % world_size:
            raise ValueError(
                f"global_batch_size {global_batch_size} is not divisible by world_size {world_size}; "
                f"valid batch sizes are multiples of {world_size}"
            )
        self._tasks = list(tasks)
        self.global_batch_size = global_batch_size
        self.world_size = world_size
        self.local_batch_size = global_batch_size // world_size
        self.seed = seed
        groups: dict[str, list[int]] = {}
        for index, task in enumerate(self._tasks):
            groups.setdefault(task, []).append(index)
        self._groups = dict(sorted(groups.items()))
        self.dropped_tasks = sorted(t for t, g in self._groups.items() if len(g) < global_batch_size)
        self.steps_per_epoch = sum(len(g) // global_batch_size for g in self._groups.values())
        if self.steps_per_epoch == 0:
            sizes = {t: len(g) for t, g in self._groups.items()}
            raise ValueError(
                f"no task has global_batch_size={global_batch_size} examples (task sizes: {sizes}); "
                "use a smaller batch size"
            )
        self._plan = lru_cache(maxsize=2)(self._build_plan)

    @property
    def task_names(self) -> list[str]:
        """Task keys that contribute batches, sorted."""
        return [t for t in self._groups if t not in self.dropped_tasks]

    def _build_plan(self, epoch: int) -> tuple[tuple[int, ...], ...]:
        rng = random.Random(self.seed * 1_000_003 + epoch)
        batches: list[tuple[int, ...]] = []
        for indices in self._groups.values():
            order = list(indices)
            rng.shuffle(order)
            full = len(order) - len(order) % self.global_batch_size
            batches.extend(tuple(order[i : i + self.global_batch_size]) for i in range(0, full, self.global_batch_size))
        rng.shuffle(batches)
        return tuple(batches)

    def epoch_plan(self, epoch: int) -> tuple[tuple[int, ...], ...]:
        """All global batches of ``epoch``, in training order."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        return self._plan(epoch)

    def global_batch(self, step: int) -> tuple[int, ...]:
        """Example indices of global step ``step`` (counted from 0 over all epochs)."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        epoch, position = divmod(step, self.steps_per_epoch)
        return self.epoch_plan(epoch)[position]

    def worker_batch(self, step: int, rank: int) -> tuple[int, ...]:
        """Worker ``rank``'s slice of global step ``step``."""
        if not 0 <= rank < self.world_size:
            raise ValueError(f"rank must be in [0, {self.world_size}), got {rank}")
        start = rank * self.local_batch_size
        return self.global_batch(step)[start : start + self.local_batch_size]

    def task_of_step(self, step: int) -> str:
        """The single task of global step ``step``."""
        return self._tasks[self.global_batch(step)[0]]

    def tasks_of(self, indices: Sequence[int]) -> list[str]:
        """Task keys of the given example indices."""
        return [self._tasks[i] for i in indices]

    def iter_worker(self, rank: int, start_step: int, stop_step: int) -> Iterator[tuple[int, tuple[int, ...]]]:
        """``(step, indices)`` for worker ``rank`` from ``start_step`` (resume point) up to ``stop_step``."""
        for step in range(start_step, stop_step):
            yield step, self.worker_batch(step, rank)
