"""Replica robustness without Ray: sub-batches interleave, cancellation drops work, admission by wait time,
slow bodies, docs behind the key, the served model name, the bounded instruction cache."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest

from instructor_plugins.testing import HashEncoder
from ray_backend.serving.admission import Admission, estimate_tokens
from ray_backend.serving.api import ApiError, ServerLimits
from ray_backend.serving.app import create_app
from ray_backend.serving.batching import BatchPolicy, EmbedJob
from ray_backend.serving.service import EmbeddingService, pieces


def client_for(service: EmbeddingService) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://test")


def logged(service: EmbeddingService, delay: float = 0.0) -> list[EmbedJob]:
    """Route the service's jobs through a log (and an optional delay per job)."""
    log: list[EmbedJob] = []
    direct = service.submit

    async def submit(job: EmbedJob) -> np.ndarray:
        log.append(job)
        await asyncio.sleep(delay)
        return await direct(job)

    service.submit = submit
    return log


def test_pieces_bound_tokens_and_keep_order() -> None:
    ids = [[0] * n for n in (3, 3, 3, 10, 1, 1)]
    assert pieces(ids, 21, 6, 6) == [(0, 2, 6), (2, 3, 3), (3, 4, 10), (4, 6, 2)]
    assert pieces(None, 9, 4, 2) == [(0, 4, 9)]  # no tokenizer: one piece


async def test_big_request_runs_in_sub_batches_equal_to_one_encode_call(bundled_encoder) -> None:
    policy = BatchPolicy(sub_batch_rows=16, sub_batch_tokens=120)
    service = EmbeddingService(encoder=bundled_encoder, policy=policy)
    log = logged(service)
    texts = [f"sentence {i} about {'cats ' * (i % 7)}and dogs" for i in range(50)]
    instructions = ["Represent the query: " if i % 3 else "" for i in range(50)]
    vectors, tokens = await service.embed(texts, instructions)
    assert len(log) > 4 and all(job.rows <= 16 for job in log)
    assert all(job.tokens <= 120 for job in log if job.rows > 1)
    np.testing.assert_allclose(vectors, bundled_encoder.encode(texts, instructions), atol=1e-5)
    assert tokens == sum(len(row) for row in bundled_encoder.token_ids(texts, instructions))
    assert service.admission.pending_rows == 0 and service.admission.pending_tokens == 0


async def test_a_small_request_interleaves_with_a_big_one() -> None:
    service = EmbeddingService(encoder=HashEncoder(), policy=BatchPolicy(sub_batch_rows=4))
    log = logged(service, delay=0.01)
    big = asyncio.create_task(service.embed([f"big {i}" for i in range(40)], [""] * 40))
    while len(log) < 2:
        await asyncio.sleep(0.001)
    small, _ = await service.embed(["small"], [""])
    assert small.shape == (1, 16)
    order = [job.texts[0] for job in log]
    assert not big.done()  # the small request did not wait for the big one's 10 pieces
    await big
    assert order.index("small") < 4 and len(log) == 11


async def test_cancelling_a_request_drops_its_pieces_not_yet_run() -> None:
    service = EmbeddingService(encoder=HashEncoder(), policy=BatchPolicy(sub_batch_rows=4))
    log = logged(service, delay=0.02)
    task = asyncio.create_task(service.embed([f"t{i}" for i in range(400)], [""] * 400))
    while len(log) < 3:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert len(log) <= 4 and service.stats.rows <= 32 + 16  # warm-up batch (32 rows) + pieces that ran
    assert service.stats.cancelled == 1
    assert service.admission.pending_rows == 0 and service.admission.pending_tokens == 0


async def test_admission_refuses_by_expected_wait_with_retry_after() -> None:
    service = EmbeddingService(
        encoder=HashEncoder(), limits=ServerLimits(max_queue_wait_s=5.0), policy=BatchPolicy(sub_batch_tokens=64)
    )
    service.admission.seconds_per_token = 0.02  # 50 tokens/s
    gate = asyncio.Event()
    direct = service.submit

    async def held(job: EmbedJob) -> np.ndarray:
        await gate.wait()
        return await direct(job)

    service.submit = held
    async with client_for(service) as client:
        first = asyncio.create_task(client.post("/embed", json={"texts": ["word " * 100] * 3}))  # ~6 s of work
        while service.admission.pending_rows == 0:
            await asyncio.sleep(0.01)
        small = asyncio.create_task(client.post("/embed", json={"texts": ["a"]}))  # waits one 64-token piece
        while service.admission.pending_rows < 4:
            await asyncio.sleep(0.01)
        busy = await client.post("/embed", json={"texts": ["word " * 100] * 3})  # would wait ~6 s > 5 s
        assert busy.status_code == 429, busy.text
        assert "expected wait" in busy.json()["error"]["message"]
        assert int(busy.headers["retry-after"]) >= 1
        gate.set()
        assert (await first).status_code == 200 and (await small).status_code == 200
        assert (await client.post("/embed", json={"texts": ["word " * 100] * 3})).status_code == 200
        info = (await client.get("/info")).json()
    assert info["stats"]["refused"] == 1 and info["queue"]["pending_rows"] == 0


def test_admission_models_interleaving_a_small_request_passes_a_long_one() -> None:
    admission = Admission(max_pending_rows=10_000, max_queue_wait_s=10.0)
    admission.seconds_per_token = 0.001  # 1,000 tokens/s
    long = admission.admit(2048, 50_000)  # 50 s of work, admitted on an idle replica
    small = admission.admit(1, 20, quantum=1024)  # waits ~1 piece of the long one: 1.02 s
    assert admission.expected_wait_s(20, 1024) == pytest.approx((1024 + 20) * 0.001)
    admission.admit(100, 9_000, quantum=1024)  # waits 9 s of the long one + 20 tokens: admitted
    with pytest.raises(ApiError, match=r"expected wait 12\.0s"):
        admission.admit(100, 6_000, quantum=1024)  # 6 s of the long one, 6 s of the other, the small one
    admission.update(long, tokens=0)
    admission.release(small)
    assert admission.pending_rows == 2048 + 100 and admission.refused == 1


def test_admission_counters_and_the_idle_replica_admits_anything() -> None:
    admission = Admission(max_pending_rows=10, max_queue_wait_s=1.0)
    big = admission.admit(5, 1_000_000)  # idle: admitted whatever its size
    with pytest.raises(ApiError) as info:
        admission.admit(1, 5_000)  # waits 5,000 tokens of the first at 2,000 tokens/s: 2.5 s > 1 s
    assert info.value.status == 429 and info.value.retry_after is not None and info.value.retry_after >= 1
    admission.release(big)
    assert admission.pending_rows == 0 and admission.pending_tokens == 0
    admission.record(100, 5.0)  # a small batch is mostly overhead: ignored
    assert not admission.measured
    admission.record(1000, 2.0)
    assert admission.measured and admission.seconds_per_token == pytest.approx(0.002)
    assert estimate_tokens(["x" * 4000], ["i"], 512) == 512 + 8  # capped tokens + tokenizing 4,001 chars


async def test_a_body_shorter_than_its_content_length_gets_408() -> None:
    service = EmbeddingService(encoder=HashEncoder(), limits=ServerLimits(body_timeout_s=0.2))
    app = create_app(service)
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": b'{"texts": ', "more_body": True}]

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # the rest never comes
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/embed",
        "raw_path": b"/embed",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("test", 80),
        "client": ("test", 1),
        "root_path": "",
    }
    await asyncio.wait_for(app(scope, receive, send), 5)
    assert sent[0]["status"] == 408
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body["error"]["code"] == 408 and "got 10 of 100 bytes" in body["error"]["message"]


async def test_docs_are_off_with_a_key_and_on_without() -> None:
    async with client_for(EmbeddingService(encoder=HashEncoder(), api_key="k")) as client:
        for path in ("/docs", "/openapi.json", "/redoc"):
            r = await client.get(path, headers={"Authorization": "Bearer k"})
            assert r.status_code == 404 and r.json()["error"]["code"] == 404
    async with client_for(EmbeddingService(encoder=HashEncoder())) as client:
        assert (await client.get("/openapi.json")).status_code == 200


async def test_unknown_model_names_the_served_model_and_bad_dimensions_are_400() -> None:
    service = EmbeddingService(encoder=HashEncoder())
    async with client_for(service) as client:
        r = await client.post("/v1/embeddings", json={"input": "a", "model": "text-embedding-3-small"})
        assert r.status_code == 200 and r.json()["model"] == "hash-16"
        for dims in (0, -1, 17):
            bad = await client.post("/v1/embeddings", json={"input": "a", "dimensions": dims})
            assert bad.status_code == 400 and "valid: 1 to" in bad.json()["error"]["message"], dims


async def test_health_is_503_until_the_warm_up_batch_ran() -> None:
    service = EmbeddingService(encoder=HashEncoder())
    assert service.ready and service.warm and service.stats.batches == 1  # the warm-up batch
    service.warm = False
    async with client_for(service) as client:
        assert (await client.get("/health")).status_code == 503


def test_instruction_cache_is_capped_and_bounded_by_bytes(bundled_encoder, monkeypatch) -> None:
    import instructor_plugins.model as model_module

    monkeypatch.setattr(model_module, "_INSTRUCTION_CACHE_BYTES", 4096)
    encoder = bundled_encoder
    monkeypatch.setattr(encoder, "_instruction_lengths", model_module._instruction_cache())
    long = "represent " * 2000
    assert encoder.instruction_length(long) == encoder.max_seq_length
    first = "Represent the sentence number 0 " * 20
    for i in range(200):
        encoder.instruction_length(f"Represent the sentence number {i} " * 20)
        encoder.instruction_length(first)  # used every round: never the least recently used
    assert encoder._instruction_lengths.currsize <= 4096
    assert len(encoder._instruction_lengths) < 200
    assert model_module._instruction_key(first) in encoder._instruction_lengths
    assert model_module._instruction_key("Represent the sentence number 3 " * 20) not in encoder._instruction_lengths
    fresh = encoder.instruction_length("Represent the sentence number 3 " * 20)
    ids = encoder.tokenizer("Represent the sentence number 3 " * 20)["input_ids"]
    assert fresh == min(len(ids) - 1, encoder.max_seq_length)
    monkeypatch.setattr(encoder, "max_seq_length", 64)  # counts are capped at it: the setter empties the cache
    assert len(encoder._instruction_lengths) == 0 and encoder.instruction_length(long) == 64
