"""Opt-in instruction dropout (``plain_batches``): which steps train without instructions, and what they train on."""

from __future__ import annotations

import pytest

from tests.medi_data import write_medi_sample
from training.batching import TaskBatchSampler, is_plain_batch
from training.config import TrainConfig
from training.medi import load_medi
from training.recipe.pipeline import RecipeConfig
from training.worker import step_batch


def test_the_draw_depends_on_seed_and_step_only_and_meets_the_rate():
    steps = range(4000)
    for rate in (0.25, 0.5):
        draws = [is_plain_batch(3, s, rate) for s in steps]
        assert draws == [is_plain_batch(3, s, rate) for s in steps]  # same on every worker and after a resume
        assert abs(sum(draws) / len(draws) - rate) < 0.03
    assert [is_plain_batch(3, s, 0.5) for s in steps] != [is_plain_batch(4, s, 0.5) for s in steps]
    # a higher rate keeps every plain step of a lower one (one draw per step, compared with the rate)
    assert all(is_plain_batch(0, s, 0.5) for s in steps if is_plain_batch(0, s, 0.25))
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\]"):
        is_plain_batch(0, 0, 1.5)


def test_a_plain_step_trains_what_the_ablation_trains_and_the_others_what_the_instructed_run_trains(tmp_path):
    data = write_medi_sample(tmp_path / "medi.json", per_task=16)
    instructed, ablation = load_medi(data), load_medi(data, blank_instructions=True)
    assert all(e.query[0] and e.pos[0] for e in instructed)  # the sample has instructions to drop
    sampler = TaskBatchSampler([e.task for e in instructed], 8, 1, seed=0)
    cfg = TrainConfig(data=str(data), output=str(tmp_path / "o"), batch_size=8, num_workers=1, plain_batches=0.5)
    flags = []
    for step in range(2 * sampler.steps_per_epoch):
        indices = sampler.worker_batch(step, 0)
        batch, plain = step_batch(instructed, indices, cfg, step)
        assert plain == is_plain_batch(0, step, 0.5)
        assert batch == [(ablation if plain else instructed)[i] for i in indices]
        flags.append(plain)
    assert any(flags) and not all(flags)
    for rate, want in ((0.0, instructed), (1.0, ablation)):
        every = TrainConfig(data=str(data), output="o", batch_size=8, num_workers=1, plain_batches=rate)
        assert all(step_batch(instructed, [0, 1], every, s)[0] == want[:2] for s in range(20))


def test_settings_are_checked_kept_on_resume_and_reach_only_the_instructed_run(tmp_path):
    with pytest.raises(ValueError, match="plain_batches must be a share"):
        TrainConfig(data="d", output="o", plain_batches=-0.1)
    cfg = TrainConfig(data="d", output="o", plain_batches=0.5)
    with pytest.raises(ValueError, match="different batch plan.*plain_batches: 0.0 -> 0.5"):
        cfg.check_resumable_from({**cfg.to_dict(), "plain_batches": 0.0})
    recipe = RecipeConfig(output=str(tmp_path), plain_batches=0.5)
    assert recipe.train_config(no_instructions=False).plain_batches == 0.5
    assert recipe.train_config(no_instructions=True).plain_batches == 0.0  # the ablation has none to drop
    with pytest.raises(ValueError, match="plain_batches must be a share"):
        RecipeConfig(output=str(tmp_path), plain_batches=2.0)
