"""The Serve app on local Ray: served == in-process, errors, auth, live reconfigure, handles, faults.

One Serve instance per module, four apps: the bundled model at ``/`` with the default sizing (it
takes the test Ray's CPUs; numerics, bad inputs, cancellation, metrics), a hash-fake app with a
bearer key at ``/secure`` (auth), and two bundled-model apps for readiness under load with clients
that never retry: two replicas at ``/fault`` (one is killed) and one at ``/scale`` (scaled to two).

The module's Ray runs with direct ingress on (as ``instructor serve`` starts it for one replica):
every request below goes through Ray Serve's proxy, and the numerics tests also go straight to the
``/`` app's replica, which is deployed first and so gets the first port of the range.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
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
from ray_backend.serving.ingress import direct_ingress_env  # noqa: E402

QUERY = "Represent the question for retrieving supporting answers: "
DOC = "Represent the answer for retrieval: "
HASH = "instructor_plugins.testing:hash_encoder"
MAIN_ARGS = {  # no num_cpus: the default sizing, as the CLI deploys it (the other apps reserve 0 CPUs)
    "max_inputs": 64,
    "max_body_bytes": 65536,
    "batch_wait_timeout_s": 0.02,
    "body_timeout_s": 2.0,
}

HASH_FACTORY = "instructor_plugins.testing:hash_encoder"


DIRECT_PORTS = 32  # ports for the ingress replicas of every app this module deploys, replacements included


def _free_port_block(n: int) -> int:
    """The first of ``n`` consecutive ports that are free on 127.0.0.1 right now."""
    for _ in range(50):
        first = free_port()
        if first + n > 65535:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for port in range(first, first + n):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {n} consecutive free ports")


@pytest.fixture(scope="module")
def direct_port(ray_home: str) -> Iterator[int]:
    """Direct ingress for this module's Ray: set before Ray starts, as ``instructor serve`` does."""
    first = _free_port_block(DIRECT_PORTS)
    saved = dict(os.environ)
    os.environ.update(direct_ingress_env(first, DIRECT_PORTS))
    try:
        yield first
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def ray_local(direct_port: int, ray_local: str) -> str:  # the conftest's, started after direct_port
    return ray_local


@pytest.fixture(scope="module")
def base(ray_local: str) -> Iterator[str]:
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    url = f"http://127.0.0.1:{port}"
    try:
        serve.run(build_app(MAIN_ARGS), name=APP_NAME, route_prefix="/")
        secure = build_app(
            {
                "encoder_factory": "instructor_plugins.testing:hash_encoder",
                "num_cpus": 0,
                "api_key": "s3cret",
                "malloc_mmap_threshold": 65536,
            }
        )
        serve.run(secure, name="secure", route_prefix="/secure")
        fault = build_app({"num_cpus": 0, "num_replicas": 2})  # the real model: loading takes seconds
        serve.run(fault, name="fault", route_prefix="/fault")
        serve.run(build_app({"num_cpus": 0, "num_replicas": 1}), name="scale", route_prefix="/scale")
        for prefix in ("", "/secure", "/fault", "/scale"):
            wait_healthy(url + prefix)
        yield url
    finally:
        serve.shutdown()


@pytest.fixture(params=["proxy", "direct"])
def entry(request: pytest.FixtureRequest, base: str, direct_port: int) -> str:
    """The `/` app's URL through Ray Serve's proxy, and straight at its replica (direct ingress)."""
    if request.param == "proxy":
        return base
    url = f"http://127.0.0.1:{direct_port}"
    replica = httpx.get(f"{base}/info", timeout=30).json()["replica"]
    assert httpx.get(f"{url}/info", timeout=30).json()["replica"] == replica  # the same replica, no proxy
    return url


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return [p.answer for p in chatterbot_pairs()[:24]]


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_embed_route_equals_in_process(entry: str, bundled_encoder, corpus: list[str]) -> None:
    r = httpx.post(f"{entry}/embed", json={"texts": corpus, "instruction": DOC}, timeout=60)
    assert r.status_code == 200, r.text
    served = np.array(r.json()["embeddings"], dtype=np.float32)
    assert cos_rows(served, bundled_encoder.encode(corpus, DOC)).min() >= 0.99999
    pairs = [[QUERY if i % 2 else DOC, t] for i, t in enumerate(corpus[:6])]
    r = httpx.post(f"{entry}/embed", json={"pairs": pairs}, timeout=60)
    expected = bundled_encoder.encode([t for _, t in pairs], [i for i, _ in pairs])
    assert cos_rows(np.array(r.json()["embeddings"], dtype=np.float32), expected).min() >= 0.99999


def test_openai_route_equals_in_process(entry: str, bundled_encoder, corpus: list[str]) -> None:
    r = httpx.post(f"{entry}/v1/embeddings", json={"input": corpus[:5], "instruction": QUERY}, timeout=60)
    body = r.json()
    served = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    assert cos_rows(served, bundled_encoder.encode(corpus[:5], QUERY)).min() >= 0.99999
    assert body["usage"]["prompt_tokens"] == bundled_encoder.tokenize(corpus[:5], [QUERY] * 5).num_tokens
    single = httpx.post(f"{entry}/v1/embeddings", json={"input": corpus[0]}, timeout=60).json()
    assert cos_rows(np.array([single["data"][0]["embedding"]]), bundled_encoder.encode([corpus[0]]))[0] >= 0.99999


def test_plugin_classes_over_the_endpoint(entry: str, bundled_encoder, corpus: list[str]) -> None:
    from instructor_plugins.langchain import InstructorEmbeddings
    from instructor_plugins.llama_index import InstructorEmbedding

    lc = InstructorEmbeddings(endpoint=entry, query_instruction=QUERY, document_instruction=DOC, batch_size=5)
    docs = np.array(lc.embed_documents(corpus[:12]), dtype=np.float32)
    assert cos_rows(docs, bundled_encoder.encode(corpus[:12], DOC)).min() >= 0.99999
    query = np.array([lc.embed_query("What is your name?")], dtype=np.float32)
    assert cos_rows(query, bundled_encoder.encode(["What is your name?"], QUERY))[0] >= 0.99999

    li = InstructorEmbedding(endpoint=entry, query_instruction=QUERY, text_instruction=DOC)
    texts = np.array(li.get_text_embedding_batch(corpus[:4]), dtype=np.float32)
    assert cos_rows(texts, bundled_encoder.encode(corpus[:4], DOC)).min() >= 0.99999
    q = np.array([li.get_query_embedding("Who are you?")], dtype=np.float32)
    assert cos_rows(q, bundled_encoder.encode(["Who are you?"], QUERY))[0] >= 0.99999


async def test_async_plugin_over_the_endpoint(entry: str, bundled_encoder, corpus: list[str]) -> None:
    from instructor_plugins.langchain import InstructorEmbeddings

    lc = InstructorEmbeddings(endpoint=entry, document_instruction=DOC, batch_size=4)
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


DEEP = b"[" * 20000 + b"]" * 20000
BAD_INPUTS = [  # (path, raw body, status): 30 classes of malformed or hostile bodies
    ("/embed", b"{oops", 422),
    ("/embed", b"", 422),
    ("/embed", b"\xff\xfe{}", 422),
    ("/embed", b"[1, 2]", 422),
    ("/embed", b"{}", 422),
    ("/embed", b'{"texts": [1]}', 422),
    ("/embed", b'{"texts": "not a list"}', 422),
    ("/embed", b'{"texts": null}', 422),
    ("/embed", b'{"texts": ["a"], "typo": 1}', 422),
    ("/embed", b'{"texts": ["a"], "pairs": [["i", "t"]]}', 422),
    ("/embed", b'{"pairs": [["only-one"]]}', 422),
    ("/embed", b'{"pairs": [["i", "t"]], "instruction": "x"}', 422),
    ("/embed", b'{"texts": ["a"], "normalize": "yes"}', 422),
    ("/v1/embeddings", b'{"input": "a", "encoding_format": "hex"}', 422),
    ("/v1/embeddings", b'{"input": [[1, 2]]}', 422),
    ("/embed", b'{"texts": ["lone \\ud800 surrogate"]}', 422),
    ("/embed", b'{"texts": ["a"], "instruction": "\\udfff"}', 422),
    ("/embed", b'{"pairs": [["\\ud83d", "half an emoji"]]}', 422),
    ("/v1/embeddings", b'{"input": "a", "instruction": "x\\udc00"}', 422),
    ("/embed", DEEP, 422),
    ("/v1/embeddings", b'{"input": "a", "dimensions": ' + b"9" * 5000 + b"}", 422),
    ("/v1/embeddings", b'{"input": "a", "dimensions": 1e999}', 422),
    ("/v1/embeddings", b'{"input": "a", "dimensions": NaN}', 422),
    ("/embed", b'{"texts": []}', 400),
    ("/v1/embeddings", b'{"input": []}', 400),
    ("/v1/embeddings", b'{"input": "a", "dimensions": 1000}', 400),
    ("/v1/embeddings", b'{"input": "a", "dimensions": 0}', 400),
    ("/v1/embeddings", b'{"input": "a", "dimensions": -4}', 400),
    ("/embed", b'{"texts": [' + b",".join([b'"a"'] * 65) + b"]}", 413),
    ("/embed", b'{"texts": ["' + b"z" * 70000 + b'"]}', 413),
]


def good_request_works(base: str) -> None:
    ok = httpx.post(f"{base}/embed", json={"texts": ["still here"]}, timeout=60)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(("path", "raw", "status"), BAD_INPUTS, ids=[f"{i}" for i in range(len(BAD_INPUTS))])
def test_bad_input_gets_json_errors_and_the_server_keeps_serving(
    entry: str, path: str, raw: bytes, status: int
) -> None:
    r = httpx.post(entry + path, content=raw, headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == status
    good_request_works(entry)


def raw_exchange(base: str, request: bytes) -> tuple[int, dict, float]:
    """Send raw bytes (no client-side checks); the status, JSON body and seconds to the answer."""
    port = int(base.rsplit(":", 1)[1])
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while True:
            head, sep, body = answer.partition(b"\r\n\r\n")
            length = [int(h.split(b":")[1]) for h in head.lower().split(b"\r\n") if h.startswith(b"content-length")]
            if sep and length and len(body) >= length[0]:
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.partition(b"\r\n\r\n")[2]), time.monotonic() - started


def test_bad_requests_beyond_the_body(entry: str) -> None:
    """Short body vs Content-Length, huge declared length, wrong method, unknown route: JSON 4xx each."""
    head = "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n"
    status, body, seconds = raw_exchange(entry, head.format(100).encode() + b'{"texts": ')
    assert status == 408 and body["error"]["code"] == 408 and seconds < 20  # body_timeout_s=2, not forever
    good_request_works(entry)
    status, body, _ = raw_exchange(entry, head.format(99_999_999).encode() + b"{}")
    assert status == 413 and body["error"]["code"] == 413
    good_request_works(entry)
    for method, path, status in (("GET", "/embed", 405), ("POST", "/nowhere", 404), ("DELETE", "/health", 405)):
        r = httpx.request(method, entry + path, timeout=60)
        assert r.status_code == status and r.json()["error"]["code"] == status
        good_request_works(entry)
    r = httpx.post(f"{entry}/v1/embeddings", json={"input": "a", "model": "text-embedding-3-small"}, timeout=60)
    assert r.status_code == 200 and r.json()["model"] != "text-embedding-3-small"  # answered by the served model
    good_request_works(entry)


def test_auth_on_and_off(base: str) -> None:
    secure = f"{base}/secure"
    assert httpx.post(f"{secure}/embed", json={"texts": ["a"]}).status_code == 401
    wrong = httpx.post(f"{secure}/embed", json={"texts": ["a"]}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    vectors = ServeBackend(secure, api_key="s3cret").embed(["a"], "q: ")
    np.testing.assert_array_equal(vectors[0], HashEncoder().vector("a", "q: "))
    assert httpx.get(f"{base}/info").json()["auth"] is False  # the main app has no key
    assert httpx.get(f"{secure}/metrics").status_code == 401  # /metrics is behind the key like /info
    info = httpx.get(f"{secure}/info", headers={"Authorization": "Bearer s3cret"}).json()
    assert info["malloc_mmap_threshold"] == "65536"  # the RSS bound, when asked for, travels to the replica
    assert (
        "instructor_requests_total" in httpx.get(f"{secure}/metrics", headers={"Authorization": "Bearer s3cret"}).text
    )
    assert httpx.post(f"{base}/embed", json={"texts": ["a"]}, timeout=60).status_code == 200


def test_info_and_live_reconfigure(base: str) -> None:
    # Serve calls reconfigure(user_config) on a config update (serve deploy); here we call the same method
    # through a handle, since imperative serve.run redeploys instead of updating in place.
    before = httpx.get(f"{base}/info").json()
    assert before["dim"] == 384 and before["replicas"] == 1 and before["batch"]["max_batch_rows"] == 256
    assert before["omp_wait_policy"] == "PASSIVE" and before["stats"]["rows"] > 0
    assert before["malloc_mmap_threshold"] is None  # the default: glibc's own
    import ray

    cpus = ray.cluster_resources()["CPU"]  # the default sizing: one replica takes the node's CPUs
    assert before["sizing"] == {
        "num_cpus": cpus,
        "torch_threads": int(cpus),
        "source": "share",
        "node_cpus": cpus,
        "replicas": 1,
    }
    assert before["torch_threads"] == int(cpus)  # read live from torch inside the replica
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
    # The handle path gets the same input checks as HTTP: a lone surrogate is a clean ApiError, not a crash.
    with pytest.raises(Exception, match="lone UTF-16 surrogate"):
        HandleBackend(handle).embed(["a\ud800"], DOC)
    assert HandleBackend(handle).embed(corpus[:1], DOC).shape == (1, bundled_encoder.dim)


def replica_actors(app: str) -> list[str]:
    import ray

    prefix = f"SERVE_REPLICA::{app}#"
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix))


def running_replicas(app: str) -> int:
    status = serve.status().applications[app].deployments[DEPLOYMENT_NAME]
    return int(status.replica_states.get("RUNNING", 0))


class Load:
    """Clients that never retry, each sending 2-text requests back to back; every outcome is kept."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url = url
        self.stop = threading.Event()
        self.outcomes: list[tuple[float, float, int, str]] = []  # start, end, status (0: no answer), detail
        self.threads = [threading.Thread(target=self._client, args=(c,), daemon=True) for c in range(clients)]

    def _client(self, c: int) -> None:
        with httpx.Client(timeout=60) as http:
            i = 0
            while not self.stop.is_set():
                start = time.monotonic()
                try:
                    r = http.post(f"{self.url}/embed", json={"texts": [f"client {c} request {i}", "second"]})
                    status, detail = r.status_code, r.text[:200]
                except httpx.HTTPError as exc:
                    status, detail = 0, repr(exc)
                self.outcomes.append((start, time.monotonic(), status, detail))
                i += 1

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def failures(self) -> list[tuple[float, float, int, str]]:
        return [o for o in self.outcomes if o[2] != 200]


def test_killing_one_of_two_replicas_under_load_fails_only_requests_in_flight(base: str) -> None:
    import ray

    before = replica_actors("fault")
    assert len(before) == 2
    with Load(f"{base}/fault") as load:
        time.sleep(2)
        killed_at = time.monotonic()
        ray.kill(ray.get_actor(before[0], namespace="serve"), no_restart=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now = replica_actors("fault")
            if len(now) == 2 and before[0] not in now and running_replicas("fault") == 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"Serve did not bring the replica back: {replica_actors('fault')}")
        replaced_at = time.monotonic()
        time.sleep(3)  # the replacement takes traffic
    failures = load.failures()
    late = [f for f in failures if f[0] > killed_at]
    print(
        f"kill 1 of 2: {len(load.outcomes)} requests, {len(failures)} failed (started before the kill: "
        f"{len(failures) - len(late)}), replacement running after {replaced_at - killed_at:.1f}s: {failures}"
    )
    assert not late, f"requests started after the kill failed: {late}"
    assert len(failures) <= len(load.threads)  # at most one in flight per client
    assert sum(1 for o in load.outcomes if o[0] > replaced_at) > 0


def test_scaling_one_to_two_replicas_under_load_fails_nothing(base: str) -> None:
    assert running_replicas("scale") == 1
    with Load(f"{base}/scale") as load:
        time.sleep(1.5)
        serve.run(build_app({"num_cpus": 0, "num_replicas": 2}), name="scale", route_prefix="/scale")
        deadline = time.monotonic() + 120
        while running_replicas("scale") != 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
    assert running_replicas("scale") == 2
    print(f"scale 1->2: {len(load.outcomes)} requests, {len(load.failures())} failed")
    assert load.outcomes and not load.failures(), load.failures()


def test_a_client_that_gives_up_cancels_its_remaining_work(entry: str) -> None:
    before = httpx.get(f"{entry}/info", timeout=30).json()["stats"]
    texts = [f"long text {i} " + "word " * 180 for i in range(64)]  # 58 KB, ~12k tokens: seconds of CPU
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{entry}/embed", json={"texts": texts}, timeout=httpx.Timeout(60, read=1.0))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = httpx.get(f"{entry}/info", timeout=30).json()
        if info["queue"]["pending_rows"] == 0 and info["stats"]["cancelled"] > before["cancelled"]:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the abandoned request was not cancelled: {info}")
    embedded = info["stats"]["rows"] - before["rows"]
    assert embedded < len(texts), f"all {embedded} rows of the abandoned request were embedded"
    good_request_works(entry)


def test_the_api_key_travels_with_the_deployment(base: str, tmp_path, monkeypatch) -> None:
    # The replicas' environment has no INSTRUCTOR_API_KEY (Ray started before it was set); build_app
    # resolves the deployer's key and ships it, as it does for `--address` deployments.
    monkeypatch.setenv("INSTRUCTOR_API_KEY", "from-env")
    serve.run(build_app({"encoder_factory": HASH, "num_cpus": 0}), name="envauth", route_prefix="/envauth")
    monkeypatch.delenv("INSTRUCTOR_API_KEY")
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    serve.run(
        build_app({"encoder_factory": HASH, "num_cpus": 0, "api_key_file": str(key_file)}),
        name="fileauth",
        route_prefix="/fileauth",
    )
    try:
        for prefix, key in (("/envauth", "from-env"), ("/fileauth", "from-file")):
            url = base + prefix
            assert httpx.post(f"{url}/embed", json={"texts": ["a"]}).status_code == 401
            ok = httpx.post(f"{url}/embed", json={"texts": ["a"]}, headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200
            info = httpx.get(f"{url}/info", headers={"Authorization": f"Bearer {key}"}).json()
            assert info["auth"] is True
            for path in ("/docs", "/openapi.json"):
                assert httpx.get(url + path, headers={"Authorization": f"Bearer {key}"}).status_code == 404
    finally:
        serve.delete("envauth")
        serve.delete("fileauth")


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(f"{url}/metrics", timeout=30)
    assert r.status_code == 200, r.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_metrics_move_by_exactly_the_known_traffic(base: str) -> None:
    replica = httpx.get(f"{base}/info", timeout=30).json()["replica"]
    route = "/v1/embeddings"

    def series(scraped: dict, name: str, **labels: str) -> float:
        return scraped.get((name, frozenset({"replica": replica, **labels}.items())), 0.0)

    before = scrape(base)  # one replica: every scrape answers for it
    for i in range(3):
        r = httpx.post(f"{base}{route}", json={"input": [f"metrics text {i}", "and another"]}, timeout=60)
        assert r.status_code == 200, r.text
    assert httpx.post(f"{base}{route}", json={"input": []}, timeout=60).status_code == 400
    after = scrape(base)

    def moved(name: str, **labels: str) -> float:
        return series(after, name, **labels) - series(before, name, **labels)

    assert moved("instructor_requests_total", route=route, code="200") == 3
    assert moved("instructor_requests_total", route=route, code="400") == 1
    assert moved("instructor_request_duration_seconds_count", route=route) == 4
    assert moved("instructor_batch_rows_sum") == 6  # the rows of the 3 good requests, nothing else
    assert series(after, "instructor_queue_depth") == 0
    assert series(after, "instructor_model_load_seconds") > 0
