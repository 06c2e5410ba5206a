"""The HTTP app without Ray: routes, errors, auth, load shedding (ASGI in process)."""

from __future__ import annotations

import asyncio
import base64
import threading

import httpx
import numpy as np
import pytest

import ray_backend.serving.service as service_module
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.testing import HashEncoder
from ray_backend.serving.api import ServerLimits
from ray_backend.serving.app import create_app
from ray_backend.serving.service import EmbeddingService


def client_for(service: EmbeddingService, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(service), raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


async def test_openai_route_matches_in_process_encoder_with_true_usage(bundled_encoder) -> None:
    service = EmbeddingService(encoder=bundled_encoder)
    texts = ["How do I reset my password?", "The cat sat on the mat."]
    instruction = "Represent the question for retrieving answers: "
    async with client_for(service) as client:
        r = await client.post("/v1/embeddings", json={"input": texts, "instruction": instruction, "model": "m"})
        r64 = await client.post(
            "/v1/embeddings", json={"input": texts, "instruction": instruction, "encoding_format": "base64"}
        )
    assert r.status_code == 200, r.text
    body = r.json()
    served = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    expected = bundled_encoder.encode(texts, instruction)
    assert cos_rows(served, expected).min() >= 0.99999
    assert (
        [d["index"] for d in body["data"]] == [0, 1]
        and body["model"] == service.model_name != "m"
        and body["object"] == "list"
    )
    assert body["usage"]["prompt_tokens"] == bundled_encoder.tokenize(texts, [instruction] * 2).num_tokens
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"]
    b64 = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in r64.json()["data"]])
    np.testing.assert_array_equal(b64, served)


async def test_normalize_false_over_http_gives_the_encoders_raw_vectors(bundled_encoder) -> None:
    service = EmbeddingService(encoder=bundled_encoder)
    texts = ["How do I reset my password?", "cats"]
    async with client_for(service) as client:
        raw = await client.post(
            "/embed", json={"texts": texts, "instruction": "Represent the query: ", "normalize": False}
        )
        unit = await client.post("/embed", json={"texts": texts, "instruction": "Represent the query: "})
    assert raw.status_code == unit.status_code == 200, raw.text
    served_raw = np.array(raw.json()["embeddings"], dtype=np.float32)
    served_unit = np.array(unit.json()["embeddings"], dtype=np.float32)
    expected = bundled_encoder.encode(texts, "Represent the query: ", normalize=False)
    np.testing.assert_allclose(served_raw, expected, rtol=1e-5, atol=1e-5)
    assert np.all(np.abs(np.linalg.norm(served_raw, axis=1) - 1.0) > 0.01)  # not unit length
    np.testing.assert_allclose(np.linalg.norm(served_unit, axis=1), 1.0, atol=1e-5)


async def test_embed_pairs_mix_instructions_per_row(bundled_encoder) -> None:
    service = EmbeddingService(encoder=bundled_encoder)
    pairs = [["Represent the query: ", "cats"], ["Represent the document: ", "cats"], ["", "cats"]]
    async with client_for(service) as client:
        r = await client.post("/embed", json={"pairs": pairs})
    served = np.array(r.json()["embeddings"], dtype=np.float32)
    expected = np.concatenate([bundled_encoder.encode([t], i) for i, t in pairs])
    assert cos_rows(served, expected).min() >= 0.99999
    assert r.json()["dim"] == bundled_encoder.dim
    assert cos_rows(served[:1], served[1:2])[0] < 0.9999  # the instruction changed the vector


async def test_errors_are_json_and_the_server_keeps_serving() -> None:
    service = EmbeddingService(encoder=HashEncoder(), limits=ServerLimits(max_inputs=4, max_body_bytes=1000))
    cases = [
        ("/embed", b"{", 422),
        ("/embed", b'{"texts": [1, 2]}', 422),
        ("/v1/embeddings", b'{"input": null}', 422),
        ("/embed", b'{"texts": []}', 400),
        ("/v1/embeddings", b'{"input": ""}', 200),
        ("/v1/embeddings", b'{"input": ["a","b","c","d","e"]}', 413),
        ("/embed", b'{"texts": ["' + b"y" * 2000 + b'"]}', 413),
        ("/v1/embeddings", b'{"input": "a", "dimensions": 17}', 400),
    ]
    async with client_for(service) as client:
        for path, raw, status in cases:
            r = await client.post(path, content=raw, headers={"content-type": "application/json"})
            assert r.status_code == status, (path, raw, r.text)
            if status != 200:
                assert r.json()["error"]["code"] == status and r.json()["error"]["message"]
        unknown = await client.get("/nope")
        assert unknown.status_code == 404 and "error" in unknown.json()
        ok = await client.post("/v1/embeddings", json={"input": ["a", "b"], "dimensions": 4})
    assert ok.status_code == 200
    assert len(ok.json()["data"][0]["embedding"]) == 4


async def test_health_is_503_until_the_model_is_loaded(monkeypatch) -> None:
    release = threading.Event()

    def slow_load(model, **_):
        release.wait(10)
        return HashEncoder()

    monkeypatch.setattr(service_module, "load_encoder", slow_load)
    service = EmbeddingService("fake")
    async with client_for(service) as client:
        assert (await client.get("/health")).status_code == 503
        early = await client.post("/embed", json={"texts": ["a"]})
        assert early.status_code == 503 and early.headers["retry-after"] == "1"
        release.set()
        assert await asyncio.to_thread(service.wait_ready, 10)
        assert (await client.get("/health")).json()["status"] == "ok"
        info = (await client.get("/info")).json()
    assert info["dim"] == 16 and info["replicas"] == 1 and info["auth"] is False


async def test_load_failure_is_reported_not_hidden(monkeypatch) -> None:
    def broken(model, **_):
        raise OSError("no such model")

    monkeypatch.setattr(service_module, "load_encoder", broken)
    service = EmbeddingService("missing")
    service.wait_ready(10)
    async with client_for(service) as client:
        assert (await client.get("/health")).json()["status"] == "failed"
        r = await client.post("/embed", json={"texts": ["a"]})
    assert r.status_code == 503 and "no such model" in r.json()["error"]["message"]


async def test_overload_answers_429_with_retry_after_then_recovers() -> None:
    service = EmbeddingService(encoder=HashEncoder(), limits=ServerLimits(max_pending_rows=3))
    gate = asyncio.Event()
    direct = service.submit

    async def held(job):
        await gate.wait()
        return await direct(job)

    service.submit = held
    async with client_for(service) as client:
        first = asyncio.create_task(client.post("/embed", json={"texts": ["a", "b"]}))
        while service.admission.pending_rows == 0:
            await asyncio.sleep(0.01)
        busy = await client.post("/embed", json={"texts": ["c", "d"]})
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
        assert "busy" in busy.json()["error"]["message"]
        gate.set()
        assert (await first).status_code == 200
        assert (await client.post("/embed", json={"texts": ["c", "d"]})).status_code == 200


async def test_bearer_auth_when_a_key_is_set() -> None:
    service = EmbeddingService(encoder=HashEncoder(), api_key="s3cret")
    async with client_for(service) as client:
        assert (await client.get("/health")).status_code == 200  # probes stay open
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            r = await client.post("/embed", json={"texts": ["a"]}, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert r.json()["error"]["type"] == "authentication_error"
        assert (await client.get("/info")).status_code == 401
        good = await client.post("/embed", json={"texts": ["a"]}, headers={"Authorization": "Bearer s3cret"})
    assert good.status_code == 200


async def test_encoder_crash_is_a_json_500_and_the_next_request_works() -> None:
    encoder = HashEncoder()
    service = EmbeddingService(encoder=encoder)
    original = encoder.encode_token_ids
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return original(*args, **kwargs)

    encoder.encode_token_ids = flaky  # type: ignore[method-assign]
    # Starlette answers the 500 and then re-raises for the server's log; the transport must not raise it here.
    async with client_for(service, raise_app_exceptions=False) as client:
        bad = await client.post("/embed", json={"texts": ["a"]})
        good = await client.post("/embed", json={"texts": ["a"]})
    assert bad.status_code == 500 and bad.json()["error"]["type"] == "server_error"
    assert good.status_code == 200
    assert service.admission.pending_rows == 0


@pytest.mark.parametrize("model", [None, "hash:8"])
def test_encoder_factory_import_path(model: str | None) -> None:
    service = EmbeddingService(model, encoder_factory="instructor_plugins.testing:hash_encoder", background=False)
    info = service.info()
    assert info["dim"] == (8 if model else 16)
    assert (info["instruction_trained"], info["query_instruction"], info["document_instruction"]) == (False, "", "")


@pytest.mark.parametrize(
    ("factory", "error"),
    [("instructor_plugins.testing", "module:callable"), ("instructor_plugins.testing:nope", "cannot import")],
)
def test_bad_encoder_factory_is_named(factory: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        EmbeddingService(encoder_factory=factory, background=False)


def test_the_model_name_hash_is_no_longer_magic() -> None:
    from instructor_plugins.checkpoint import ModelLoadError

    with pytest.raises(ModelLoadError):
        EmbeddingService("hash", background=False)


async def test_instructions_given_at_start_override_the_model_and_info_says_how_it_pools() -> None:
    from ray_backend.serve import _parse_cli

    args = _parse_cli(["--query-instruction", "query: ", "--document-instruction", "passage: "], "serve")[0]
    assert (args.query_instruction, args.document_instruction) == ("query: ", "passage: ")
    # A fresh encoder: the service sets the defaults on the encoder it serves.
    service = EmbeddingService(
        encoder=InstructorEncoder.load(device="cpu"),
        query_instruction=args.query_instruction,
        document_instruction=args.document_instruction,
    )
    async with client_for(service) as client:
        info = (await client.get("/info")).json()
    assert info["instruction_trained"] is True  # instructions given by the operator are meant to be used
    assert (info["query_instruction"], info["document_instruction"]) == ("query: ", "passage: ")
    model_info = info["model_info"]
    assert model_info["defaults_source"] == "given"
    # The bundled MiniLM's pooling config has no include_prompt: sentence-transformers then pools the prompt.
    assert model_info["pooling"]["modes"] == ["mean"] and model_info["pooling"]["include_prompt"] is True
    assert model_info["family"] == "sentence-transformers"


def test_the_model_own_defaults_stay_when_none_are_given(bundled_encoder) -> None:
    before = bundled_encoder.defaults
    service = EmbeddingService(encoder=bundled_encoder)
    assert service.info()["instruction_trained"] is False and bundled_encoder.defaults == before
    assert service.info()["model_info"]["defaults_source"] == "not instruction-trained"
