"""The Serve app on local Ray: served == in-process, errors, auth, live reconfigure, handles, replica fault.

One Serve instance per module, three apps: the bundled model at ``/`` (numerics), a hash-fake app
with a bearer key at ``/secure`` (auth), and a two-replica hash-fake app at ``/fault`` (fault test).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from instructor_plugins.backends import HandleBackend, ServeBackend
from instructor_plugins.corpora import chatterbot_pairs
from instructor_plugins.testing import HashEncoder

pytestmark = pytest.mark.integration

serve = pytest.importorskip("ray.serve")
from ray_backend.net import free_port, wait_healthy  # noqa: E402
from ray_backend.serve import APP_NAME, DEPLOYMENT_NAME, build_app  # noqa: E402

QUERY = "Represent the question for retrieving supporting answers: "
DOC = "Represent the answer for retrieval: "
MAIN_ARGS = {"num_cpus": 1, "max_inputs": 64, "max_body_bytes": 65536, "batch_wait_timeout_s": 0.02}

HASH_FACTORY = "instructor_plugins.testing:hash_encoder"


@pytest.fixture(scope="module")
def base(ray_local: str) -> Iterator[str]:
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    url = f"http://127.0.0.1:{port}"
    try:
        serve.run(build_app(MAIN_ARGS), name=APP_NAME, route_prefix="/")
        secure = build_app(
            {"encoder_factory": "instructor_plugins.testing:hash_encoder", "num_cpus": 0, "api_key": "s3cret"}
        )
        serve.run(secure, name="secure", route_prefix="/secure")
        fault = build_app(
            {"encoder_factory": "instructor_plugins.testing:hash_encoder", "num_cpus": 0.5, "num_replicas": 2}
        )
        serve.run(fault, name="fault", route_prefix="/fault")
        for prefix in ("", "/secure", "/fault"):
            wait_healthy(url + prefix)
        yield url
    finally:
        serve.shutdown()


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return [p.answer for p in chatterbot_pairs()[:24]]


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_embed_route_equals_in_process(base: str, bundled_encoder, corpus: list[str]) -> None:
    r = httpx.post(f"{base}/embed", json={"texts": corpus, "instruction": DOC}, timeout=60)
    assert r.status_code == 200, r.text
    served = np.array(r.json()["embeddings"], dtype=np.float32)
    assert cos_rows(served, bundled_encoder.encode(corpus, DOC)).min() >= 0.99999
    pairs = [[QUERY if i % 2 else DOC, t] for i, t in enumerate(corpus[:6])]
    r = httpx.post(f"{base}/embed", json={"pairs": pairs}, timeout=60)
    expected = bundled_encoder.encode([t for _, t in pairs], [i for i, _ in pairs])
    assert cos_rows(np.array(r.json()["embeddings"], dtype=np.float32), expected).min() >= 0.99999


def test_openai_route_equals_in_process(base: str, bundled_encoder, corpus: list[str]) -> None:
    r = httpx.post(f"{base}/v1/embeddings", json={"input": corpus[:5], "instruction": QUERY}, timeout=60)
    body = r.json()
    served = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    assert cos_rows(served, bundled_encoder.encode(corpus[:5], QUERY)).min() >= 0.99999
    assert body["usage"]["prompt_tokens"] == bundled_encoder.tokenize(corpus[:5], [QUERY] * 5).num_tokens
    single = httpx.post(f"{base}/v1/embeddings", json={"input": corpus[0]}, timeout=60).json()
    assert cos_rows(np.array([single["data"][0]["embedding"]]), bundled_encoder.encode([corpus[0]]))[0] >= 0.99999


def test_plugin_classes_over_the_endpoint(base: str, bundled_encoder, corpus: list[str]) -> None:
    from instructor_plugins.langchain import InstructorEmbeddings
    from instructor_plugins.llama_index import InstructorEmbedding

    lc = InstructorEmbeddings(endpoint=base, query_instruction=QUERY, document_instruction=DOC, batch_size=5)
    docs = np.array(lc.embed_documents(corpus[:12]), dtype=np.float32)
    assert cos_rows(docs, bundled_encoder.encode(corpus[:12], DOC)).min() >= 0.99999
    query = np.array([lc.embed_query("What is your name?")], dtype=np.float32)
    assert cos_rows(query, bundled_encoder.encode(["What is your name?"], QUERY))[0] >= 0.99999

    li = InstructorEmbedding(endpoint=base, query_instruction=QUERY, text_instruction=DOC)
    texts = np.array(li.get_text_embedding_batch(corpus[:4]), dtype=np.float32)
    assert cos_rows(texts, bundled_encoder.encode(corpus[:4], DOC)).min() >= 0.99999
    q = np.array([li.get_query_embedding("Who are you?")], dtype=np.float32)
    assert cos_rows(q, bundled_encoder.encode(["Who are you?"], QUERY))[0] >= 0.99999


async def test_async_plugin_over_the_endpoint(base: str, bundled_encoder, corpus: list[str]) -> None:
    from instructor_plugins.langchain import InstructorEmbeddings

    lc = InstructorEmbeddings(endpoint=base, document_instruction=DOC, batch_size=4)
    docs = np.array(await lc.aembed_documents(corpus[:10]), dtype=np.float32)
    assert cos_rows(docs, bundled_encoder.encode(corpus[:10], DOC)).min() >= 0.99999


def test_concurrent_requests_each_get_their_own_instruction(base: str, bundled_encoder, corpus: list[str]) -> None:
    instructions = [f"Represent the {topic} sentence for retrieval: " for topic in ("a", "b", "c", "d", "e", "f")]
    texts = corpus[:3]
    client = ServeBackend(base)

    def one(instruction: str) -> np.ndarray:
        return client.embed(texts, instruction)

    with ThreadPoolExecutor(len(instructions)) as pool:
        served = list(pool.map(one, instructions))
    for instruction, got in zip(instructions, served, strict=True):
        assert cos_rows(got, bundled_encoder.encode(texts, instruction)).min() >= 0.99999
    assert cos_rows(served[0], served[1]).max() < 0.9999  # different instructions, different vectors


@pytest.mark.parametrize(
    ("path", "raw", "status"),
    [
        ("/embed", b"{oops", 422),
        ("/embed", b'{"texts": [1]}', 422),
        ("/v1/embeddings", b'{"input": "a", "encoding_format": "hex"}', 422),
        ("/embed", b'{"texts": []}', 400),
        ("/v1/embeddings", b'{"input": []}', 400),
        ("/v1/embeddings", b'{"input": "a", "dimensions": 1000}', 400),
        ("/embed", b'{"texts": [' + b",".join([b'"a"'] * 65) + b"]}", 413),
        ("/embed", b'{"texts": ["' + b"z" * 70000 + b'"]}', 413),
    ],
)
def test_bad_input_gets_json_errors_and_the_server_keeps_serving(base: str, path: str, raw: bytes, status: int) -> None:
    r = httpx.post(base + path, content=raw, headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == status
    ok = httpx.post(f"{base}/embed", json={"texts": ["still here"]}, timeout=60)
    assert ok.status_code == 200


def test_auth_on_and_off(base: str) -> None:
    secure = f"{base}/secure"
    assert httpx.post(f"{secure}/embed", json={"texts": ["a"]}).status_code == 401
    wrong = httpx.post(f"{secure}/embed", json={"texts": ["a"]}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    vectors = ServeBackend(secure, api_key="s3cret").embed(["a"], "q: ")
    np.testing.assert_array_equal(vectors[0], HashEncoder().vector("a", "q: "))
    assert httpx.get(f"{base}/info").json()["auth"] is False  # the main app has no key
    assert httpx.post(f"{base}/embed", json={"texts": ["a"]}, timeout=60).status_code == 200


def test_info_and_live_reconfigure(base: str) -> None:
    # Serve calls reconfigure(user_config) on a config update (serve deploy); here we call the same method
    # through a handle, since imperative serve.run redeploys instead of updating in place.
    before = httpx.get(f"{base}/info").json()
    assert before["dim"] == 384 and before["replicas"] == 1 and before["batch"]["max_batch_rows"] == 256
    assert before["omp_wait_policy"] == "PASSIVE" and before["stats"]["rows"] > 0
    handle = serve.get_deployment_handle(DEPLOYMENT_NAME, app_name=APP_NAME)
    handle.reconfigure.remote({"max_batch_rows": 8, "max_batch_tokens": 500}).result()
    try:
        after = httpx.get(f"{base}/info").json()
        assert after["batch"]["max_batch_rows"] == 8 and after["batch"]["max_batch_tokens"] == 500
        assert after["batch"]["batch_wait_timeout_s"] == MAIN_ARGS["batch_wait_timeout_s"]  # unchanged keys stay
        assert after["replica"] == before["replica"]  # changed in place, not redeployed
        texts = [f"sentence number {i}" for i in range(20)]
        r = httpx.post(f"{base}/embed", json={"texts": texts}, timeout=60)
        assert np.array(r.json()["embeddings"]).shape == (20, 384)
        with pytest.raises(ValueError, match="unknown batch option"):
            handle.reconfigure.remote({"max_batch_size": 3}).result()
    finally:
        handle.reconfigure.remote({"max_batch_rows": 256, "max_batch_tokens": 16384}).result()


def test_deployment_handle_backend(base: str, bundled_encoder, corpus: list[str]) -> None:
    handle = serve.get_deployment_handle(DEPLOYMENT_NAME, app_name=APP_NAME)
    vectors = HandleBackend(handle).embed(corpus[:4], DOC)
    assert cos_rows(vectors, bundled_encoder.encode(corpus[:4], DOC)).min() >= 0.99999


def replica_actors(app: str) -> list[str]:
    import ray

    prefix = f"SERVE_REPLICA::{app}#"
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix))


def test_killing_a_replica_mid_load_loses_no_request(base: str) -> None:
    import ray

    url = f"{base}/fault"
    fake = HashEncoder()
    client = ServeBackend(url, batch_size=4, timeout=20, max_retries=10, backoff_s=0.1, max_backoff_s=1.0)
    before = replica_actors("fault")
    assert len(before) == 2
    done = threading.Event()
    completed: list[int] = []

    def worker(w: int) -> list[tuple[list[str], np.ndarray]]:
        results = []
        for i in range(20):
            texts = [f"w{w} r{i} t{j}" for j in range(4)]
            results.append((texts, client.embed(texts, f"instruction {w}")))
            completed.append(1)
            time.sleep(0.02)
        return results

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(worker, w) for w in range(4)]
        while len(completed) < 10:
            time.sleep(0.01)
        ray.kill(ray.get_actor(before[0], namespace="serve"), no_restart=True)
        results = [(w, f.result(timeout=120)) for w, f in enumerate(futures)]
    done.set()
    assert sum(len(r) for _, r in results) == 80
    for w, rows in results:
        for texts, vectors in rows:
            expected = np.stack([fake.vector(t, f"instruction {w}") for t in texts])
            np.testing.assert_array_equal(vectors, expected)

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        now = replica_actors("fault")
        status = serve.status().applications["fault"].deployments[DEPLOYMENT_NAME]
        if len(now) == 2 and before[0] not in now and status.replica_states.get("RUNNING", 0) == 2:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"Serve did not bring the replica back: {replica_actors('fault')}")
