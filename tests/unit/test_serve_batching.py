from __future__ import annotations

import itertools

import numpy as np
import pytest

from instructor_plugins.testing import HashEncoder
from ray_backend.serving.batching import BatchPolicy, EmbedJob, batch_cost, run_jobs


def job(rows: int, tokens: int, policy: BatchPolicy, normalize: bool = True) -> EmbedJob:
    return EmbedJob([f"t{i}" for i in range(rows)], [""] * rows, tokens, normalize=normalize, policy=policy)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_batch_rows": 0}, {"max_batch_tokens": -1}, {"encode_batch_size": 1.5}, {"batch_wait_timeout_s": -0.1}],
)
def test_policy_rejects_bad_values(kwargs: dict) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        BatchPolicy(**kwargs)


def test_from_config_overlays_and_rejects_unknown_keys() -> None:
    base = BatchPolicy(max_batch_rows=8)
    assert BatchPolicy.from_config({"max_batch_tokens": 100}, base) == BatchPolicy(8, 100)
    with pytest.raises(ValueError, match=r"max_batch_size.*valid: \["):
        BatchPolicy.from_config({"max_batch_size": 3})


def test_cost_fits_iff_both_limits_hold() -> None:
    policy = BatchPolicy(max_batch_rows=5, max_batch_tokens=40)
    for sizes in itertools.product([(1, 5), (2, 30), (3, 10), (1, 1)], repeat=3):
        jobs = [job(r, t, policy) for r, t in sizes]
        rows = sum(r for r, _ in sizes)
        tokens = sum(t for _, t in sizes)
        assert (batch_cost(jobs) <= policy.scaled_limit) == (rows <= 5 and tokens <= 40)


def test_single_oversized_job_still_fits_alone() -> None:
    policy = BatchPolicy(max_batch_rows=4, max_batch_tokens=10)
    big = job(100, 5000, policy)
    assert batch_cost([big]) == policy.scaled_limit
    assert batch_cost([big, job(1, 1, policy)]) > policy.scaled_limit
    assert batch_cost([]) == 0


def test_a_solo_piece_shares_its_batch_with_no_one() -> None:
    policy = BatchPolicy(max_batch_rows=64, max_batch_tokens=1000)
    piece = EmbedJob(["a", "b"], ["", ""], 20, policy=policy, solo=True)
    assert batch_cost([piece]) <= policy.scaled_limit
    assert batch_cost([piece, job(1, 1, policy)]) > policy.scaled_limit
    assert batch_cost([job(1, 1, policy), piece]) > policy.scaled_limit


def test_job_rejects_mismatched_instructions() -> None:
    with pytest.raises(ValueError, match="2 instructions for 1 texts"):
        EmbedJob(["a"], ["x", "y"], 3)


def test_run_jobs_splits_back_in_order_with_mixed_normalize() -> None:
    enc = HashEncoder(dim=8)
    policy = BatchPolicy()
    jobs = [
        EmbedJob(["a", "b"], ["q: ", "d: "], 4, policy=policy),
        EmbedJob(["c"], [""], 2, normalize=False, policy=policy),
        EmbedJob(["d", "e", "f"], ["q: "] * 3, 6, policy=policy),
    ]
    out = run_jobs(enc, jobs)
    assert [o.shape for o in out] == [(2, 8), (1, 8), (3, 8)]
    for j, vectors in zip(jobs, out, strict=True):
        expected = np.stack([enc.vector(t, i) for t, i in zip(j.texts, j.instructions, strict=True)])
        np.testing.assert_array_equal(vectors, expected)
    assert len(enc.calls) == 2  # one encode per normalize setting, not one per job


def test_one_batch_of_mixed_instructions_equals_each_request_alone(bundled_encoder) -> None:
    # The served path (all requests concatenated, one encode) against the plain path (one encode per request).
    policy = BatchPolicy()
    requests = [
        (["What is a cat?", "Cats purr."], "Represent the question for retrieving answers: "),
        (["A dog barks at night and the neighbours complain about it."], "Represent the document for retrieval: "),
        (["purr", "bark", "meow"], ""),
    ]
    jobs = [EmbedJob(texts, [ins] * len(texts), 10, policy=policy) for texts, ins in requests]
    batched = run_jobs(bundled_encoder, jobs, batch_size=4)
    for (texts, ins), got in zip(requests, batched, strict=True):
        alone = bundled_encoder.encode(texts, ins)
        np.testing.assert_allclose(got, alone, atol=2e-5)


def test_pre_tokenized_jobs_equal_text_jobs(bundled_encoder) -> None:
    # The replica tokenizes once to count tokens; the batch must then give what encoding the texts gives.
    policy = BatchPolicy()
    requests = [
        (["What is a cat?", "Cats purr."], "Represent the question for retrieving answers: "),
        (["A dog barks at night and the neighbours complain about it.", ""], ""),
    ]
    plain = [EmbedJob(texts, [ins] * len(texts), 10, policy=policy) for texts, ins in requests]
    tokenized = [
        EmbedJob(texts, [ins] * len(texts), 10, policy=policy, token_ids=bundled_encoder.token_ids(texts, [ins] * 2))
        for texts, ins in requests
    ]
    for a, b in zip(run_jobs(bundled_encoder, plain), run_jobs(bundled_encoder, tokenized), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_mixed_normalize_in_one_batch_through_the_real_encoder(bundled_encoder) -> None:
    """The hash fake ignores ``normalize``; the real encoder does not: each job gets its own setting back."""
    policy = BatchPolicy()
    jobs = [
        EmbedJob(["a river bank", "What is AI?"], ["Represent the query: ", ""], 12, policy=policy),
        EmbedJob(
            ["a river bank", "The cat sat on the mat."],
            ["Represent the query: ", ""],
            14,
            normalize=False,
            policy=policy,
        ),
    ]
    normalized, raw = run_jobs(bundled_encoder, jobs)
    np.testing.assert_allclose(normalized, bundled_encoder.encode(jobs[0].texts, jobs[0].instructions), atol=1e-5)
    np.testing.assert_allclose(
        raw, bundled_encoder.encode(jobs[1].texts, jobs[1].instructions, normalize=False), atol=1e-5
    )
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0, atol=1e-5)
    assert np.all(np.abs(np.linalg.norm(raw, axis=1) - 1.0) > 0.01)  # really not normalized
    np.testing.assert_allclose(raw[0] / np.linalg.norm(raw[0]), normalized[0], atol=1e-5)  # same row, same direction
