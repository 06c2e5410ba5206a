"""ServeBackend / HandleBackend plumbing: payloads, retries with backoff, errors (no network)."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

from instructor_plugins.backends import HandleBackend, LocalBackend, ServeBackend, make_backend
from instructor_plugins.defaults import InstructionDefaults
from instructor_plugins.serve_client import ModelMismatchError, RetryBudget, ServeError
from instructor_plugins.testing import HashEncoder
from ray_backend.serving.app import create_app
from ray_backend.serving.service import EmbeddingService

ENC = HashEncoder(dim=8)


def ok_response(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    pairs = body.get("pairs") or [[body.get("instruction") or "", t] for t in body["texts"]]
    vectors = [base64.b64encode(ENC.vector(t, i).tobytes()).decode() for i, t in pairs]
    return httpx.Response(200, json={"embeddings": vectors, "encoding_format": "base64", "dim": 8})


INFO = {
    "model": "served-model",
    "dim": 8,
    "instruction_trained": True,
    "query_instruction": "q: ",
    "document_instruction": "d: ",
}


class Script:
    """A mock server answering from a list of planned outcomes, then OK (``GET /info`` always answers)."""

    def __init__(self, *plan: int | Exception) -> None:
        self.plan = list(plan)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/info":
            self.info_calls = getattr(self, "info_calls", 0) + 1
            return httpx.Response(200, json=INFO)
        self.requests.append(request)
        if self.plan:
            step = self.plan.pop(0)
            if isinstance(step, Exception):
                raise step
            return httpx.Response(step, json={"error": {"message": f"planned {step}", "code": step}})
        return ok_response(request)


def backend(script: Script, **kwargs) -> ServeBackend:
    kwargs.setdefault("backoff_s", 0.001)
    kwargs.setdefault("max_backoff_s", 0.002)
    return ServeBackend("http://server:8000/", transport=httpx.MockTransport(script), **kwargs)


def expected(texts: list[str], instructions: list[str]) -> np.ndarray:
    return np.stack([ENC.vector(t, i) for t, i in zip(texts, instructions, strict=True)])


def test_retries_connection_errors_429_502_503_504_then_succeeds() -> None:
    script = Script(httpx.ConnectError("refused"), 503, 429, 502, httpx.RemoteProtocolError("dropped"), 504)
    out = backend(script, max_retries=6).embed(["a", "b"], "q: ")
    np.testing.assert_array_equal(out, expected(["a", "b"], ["q: ", "q: "]))
    assert len(script.requests) == 7
    assert str(script.requests[0].url) == "http://server:8000/embed"


@pytest.mark.parametrize("failure", [500, httpx.ReadTimeout("slow")], ids=["500", "read-timeout"])
def test_the_apps_500s_and_read_timeouts_are_not_retried(failure: int | Exception) -> None:
    # The app's own (JSON) 500 is an answer; unbounded retries of 500s kept an overloaded replica
    # crashing. A read timeout means the server is still working: a retry would queue the work twice.
    script = Script(failure)
    with pytest.raises((ServeError, httpx.ReadTimeout)):
        backend(script).embed(["a"])
    assert len(script.requests) == 1


class ProxyScript(Script):
    """Answers with Ray Serve's plain-text 500 (the replica died mid-request) ``fails`` times, then OK."""

    def __init__(self, fails: int, before: tuple[int, ...] = ()) -> None:
        super().__init__(*before)
        self.fails = fails

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/info" and not self.plan and self.fails:
            self.requests.append(request)
            self.fails -= 1
            return httpx.Response(500, text="Internal Server Error")
        return super().__call__(request)


def test_a_proxys_500_for_a_lost_replica_is_retried_once() -> None:
    script = ProxyScript(fails=1)  # the node of the replica that had the request was lost
    out = backend(script, max_retries=8).embed(["a", "b"], "q: ")
    np.testing.assert_array_equal(out, expected(["a", "b"], ["q: ", "q: "]))
    assert len(script.requests) == 2
    again = ProxyScript(fails=5)  # a replica that keeps dying is not hammered: one retry, then the error
    with pytest.raises(ServeError, match="HTTP 500: Internal Server Error"):
        backend(again, max_retries=8).embed(["a"])
    assert len(again.requests) == 2
    late = ProxyScript(fails=1, before=(503,))  # only as a request's first failure
    with pytest.raises(ServeError, match="HTTP 500"):
        backend(late, max_retries=8).embed(["a"])
    assert len(late.requests) == 2


def test_the_retry_budget_caps_retries_across_requests() -> None:
    budget = RetryBudget(ratio=0.0, capacity=3)
    script = Script(*([503] * 100))
    client = backend(script, max_retries=10, retry_budget=budget)
    with pytest.raises(ServeError, match="503"):
        client.embed(["a"])
    assert len(script.requests) == 4  # 1 attempt + the 3 retries the budget holds
    with pytest.raises(ServeError, match="503"):
        client.embed(["b"])
    assert len(script.requests) == 5  # budget spent: no retry at all
    refill = RetryBudget(ratio=0.5, capacity=2)
    refill.tokens = 0
    refill.deposit()
    assert not refill.withdraw()
    refill.deposit()
    assert refill.withdraw() and refill.tokens == 0


def test_gives_up_after_max_retries_with_the_server_message() -> None:
    script = Script(*([503] * 10))
    with pytest.raises(ServeError, match="HTTP 503: planned 503") as info:
        backend(script, max_retries=2).embed(["a"])
    assert info.value.status == 503 and len(script.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 413, 422, 500])
def test_client_errors_are_not_retried(status: int) -> None:
    script = Script(status)
    with pytest.raises(ServeError) as info:
        backend(script).embed(["a"])
    assert info.value.status == status and len(script.requests) == 1


def test_chunks_keep_order_and_choose_payload_shape() -> None:
    script = Script()
    texts = [f"t{i}" for i in range(7)]
    instructions = ["q: " if i % 2 else "d: " for i in range(7)]
    out = backend(script, batch_size=3).embed(texts, instructions)
    np.testing.assert_array_equal(out, expected(texts, instructions))
    payloads = [json.loads(r.content) for r in script.requests]
    assert [len(p["pairs"]) for p in payloads[:2]] == [3, 3]  # mixed instructions: pairs
    assert payloads[2]["texts"] == ["t6"] and payloads[2]["instruction"] == "d: "  # one instruction: texts
    same = Script()
    backend(same).embed(["x", "y"], "q: ")
    assert json.loads(same.requests[0].content)["texts"] == ["x", "y"]


async def test_async_retries_and_bounded_concurrency() -> None:
    script = Script(503, httpx.ConnectError("refused"))
    texts = [f"t{i}" for i in range(10)]
    out = await backend(script, batch_size=2, max_concurrency=2).aembed(texts, "q: ")
    np.testing.assert_array_equal(out, expected(texts, ["q: "] * 10))
    assert len(script.requests) == 5 + 2


async def test_aembed_against_the_real_app_in_process() -> None:
    service = EmbeddingService(encoder=ENC)
    transport = httpx.ASGITransport(app=create_app(service))
    client = ServeBackend("http://test", transport=transport, batch_size=2)
    out = await client.aembed(["a", "b", "c"], ["x", "y", "z"])
    np.testing.assert_array_equal(out, expected(["a", "b", "c"], ["x", "y", "z"]))


def test_bearer_token_from_argument_or_env(monkeypatch) -> None:
    monkeypatch.setenv("INSTRUCTOR_API_KEY", "from-env")
    script = Script()
    backend(script).embed(["a"])
    backend(script, api_key="explicit").embed(["a"])
    assert [r.headers["authorization"] for r in script.requests] == ["Bearer from-env", "Bearer explicit"]


def test_empty_input_sends_nothing_and_keeps_the_dim() -> None:
    script = Script()
    assert backend(script).embed([]).shape == (0, 8)
    assert script.requests == []


def test_model_must_match_the_servers_and_defaults_come_from_info() -> None:
    script = Script()
    good = backend(script, model="served-model")
    assert good.embed(["a"]).shape == (1, 8)
    assert good.defaults == InstructionDefaults(True, "q: ", "d: ")
    assert script.info_calls == 1  # fetched once
    with pytest.raises(ModelMismatchError, match="runs model 'served-model', not model='hkunlp/instructor-large'"):
        backend(Script(), model="hkunlp/instructor-large").embed(["a"])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"endpoint": "127.0.0.1:8000"}, "http"),
        ({"endpoint": "http://x", "batch_size": 0}, "batch_size"),
        ({"endpoint": "http://x", "max_retries": -1}, "max_retries"),
    ],
)
def test_bad_client_options(kwargs: dict, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ServeBackend(**kwargs)


def test_make_backend_picks_the_client() -> None:
    assert isinstance(make_backend(endpoint=None), LocalBackend)
    remote = make_backend(endpoint="http://127.0.0.1:8000", batch_size=16, max_retries=1)
    assert isinstance(remote, ServeBackend) and remote.batch_size == 16 and remote.max_retries == 1
    with pytest.raises(ValueError, match="'device': 'cpu'} apply in process only"):
        make_backend(endpoint="http://127.0.0.1:8000", device="cpu")
    with pytest.raises(TypeError, match="DeploymentHandle"):
        make_backend(endpoint=object())


def test_handle_backend_calls_embed_pairs() -> None:
    class FakeResponse:
        def __init__(self, value):
            self.value = value

        def result(self):
            return self.value

    class FakeMethod:
        def remote(self, texts, instructions, normalize):
            return FakeResponse(expected(texts, instructions))

    class FakeHandle:
        embed_pairs = FakeMethod()

        def options(self, **_):
            return self

        def remote(self, *_):
            raise AssertionError("the route is embed_pairs")

    out = make_backend(endpoint=FakeHandle()).embed(["a", "b"], "q: ")
    np.testing.assert_array_equal(out, expected(["a", "b"], ["q: ", "q: "]))
    assert isinstance(make_backend(endpoint=FakeHandle()), HandleBackend)
