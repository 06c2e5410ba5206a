"""TaskBatchSampler: single-task global batches, consistent worker slices, determinism, resume."""

from __future__ import annotations

import random

import pytest

from training.batching import TaskBatchSampler


def _tasks() -> list[str]:
    rng = random.Random(1)
    tasks = ["a"] * 37 + ["b"] * 20 + ["c"] * 9 + ["tiny"] * 3
    rng.shuffle(tasks)
    return tasks


@pytest.mark.parametrize("world", [1, 2, 4])
def test_global_batches_never_mix_tasks_and_workers_share_the_task(world):
    tasks = _tasks()
    s = TaskBatchSampler(tasks, global_batch_size=8, world_size=world, seed=5)
    for step in range(3 * s.steps_per_epoch):
        batch = s.global_batch(step)
        assert len(batch) == 8 and len(set(batch)) == 8
        assert len({tasks[i] for i in batch}) == 1
        slices = [s.worker_batch(step, r) for r in range(world)]
        assert [i for sl in slices for i in sl] == list(batch)  # slices partition the global batch
        assert {tasks[i] for sl in slices for i in sl} == {s.task_of_step(step)}


def test_epoch_covers_each_full_batch_once_and_drops_small_tasks():
    tasks = _tasks()
    s = TaskBatchSampler(tasks, global_batch_size=8, world_size=2, seed=0)
    assert s.steps_per_epoch == 37 // 8 + 20 // 8 + 9 // 8
    assert s.dropped_tasks == ["tiny"] and s.task_names == ["a", "b", "c"]
    seen = [i for b in s.epoch_plan(0) for i in b]
    assert len(seen) == len(set(seen)) == 8 * s.steps_per_epoch
    assert not {i for i, t in enumerate(tasks) if t == "tiny"} & set(seen)


def test_deterministic_for_seed_and_epoch_and_different_across_them():
    tasks = _tasks()
    plan = TaskBatchSampler(tasks, 8, 2, seed=3).epoch_plan(0)
    assert TaskBatchSampler(tasks, 8, 2, seed=3).epoch_plan(0) == plan
    assert TaskBatchSampler(tasks, 8, 2, seed=4).epoch_plan(0) != plan
    assert TaskBatchSampler(tasks, 8, 2, seed=3).epoch_plan(1) != plan
    # The world size does not change the global plan, only how it is sliced.
    assert TaskBatchSampler(tasks, 8, 4, seed=3).epoch_plan(0) == plan


def test_resume_from_a_step_continues_the_same_sequence():
    s = TaskBatchSampler(_tasks(), 8, 2, seed=7)
    full = list(s.iter_worker(1, 0, 20))
    resumed = list(TaskBatchSampler(_tasks(), 8, 2, seed=7).iter_worker(1, 11, 20))
    assert resumed == full[11:]
    assert [step for step, _ in resumed] == list(range(11, 20))


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="not divisible by world_size 3"):
        TaskBatchSampler(["a"] * 10, 8, 3)
    with pytest.raises(ValueError, match="no task has global_batch_size=16"):
        TaskBatchSampler(["a"] * 10, 16, 2)
    s = TaskBatchSampler(["a"] * 10, 4, 2)
    with pytest.raises(ValueError, match="rank"):
        s.worker_batch(0, 2)
    with pytest.raises(ValueError, match="step"):
        s.global_batch(-1)
