"""Prometheus metrics without Ray: the recording module, and ``/metrics`` of the HTTP app (ASGI in process)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from instructor_plugins.testing import HashEncoder
from ray_backend.serving.api import ServerLimits
from ray_backend.serving.app import create_app
from ray_backend.serving.metrics import METRICS, ServiceMetrics
from ray_backend.serving.service import EmbeddingService


def samples(text: bytes | str) -> dict[tuple[str, frozenset], float]:
    """``{(sample name, labels): value}`` of a Prometheus text exposition."""
    raw = text.decode() if isinstance(text, bytes) else text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(raw)
        for s in family.samples
    }


def value(scrape: dict, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    return scrape.get((name, frozenset(labels.items())), 0.0)


def test_every_series_is_recorded_with_the_replica_label() -> None:
    metrics = ServiceMetrics(replica="r1")
    metrics.request("/embed", 200, 0.02)
    metrics.request("/embed", 200, 0.3)
    metrics.request("/embed", 429, 0.001)
    metrics.batch(rows=5, tokens=70)
    metrics.queue_depth(12)
    metrics.model_loaded(3.5)
    s = samples(metrics.exposition())
    assert value(s, "instructor_requests_total", replica="r1", route="/embed", code="200") == 2
    assert value(s, "instructor_requests_total", replica="r1", route="/embed", code="429") == 1
    assert value(s, "instructor_request_duration_seconds_count", replica="r1", route="/embed") == 3
    assert value(s, "instructor_request_duration_seconds_bucket", replica="r1", route="/embed", le="0.025") == 2
    assert value(s, "instructor_batch_rows_sum", replica="r1") == 5
    assert value(s, "instructor_batch_tokens_bucket", replica="r1", le="64.0") == 0
    assert value(s, "instructor_batch_tokens_bucket", replica="r1", le="256.0") == 1
    assert value(s, "instructor_queue_depth", replica="r1") == 12
    assert value(s, "instructor_model_load_seconds", replica="r1") == 3.5
    assert {labels for _, labels in s if labels} <= {ls for _, ls in s if ("replica", "r1") in ls}


class FakeRayMetric:
    """Stands in for a ``ray.serve.metrics`` class: keeps its constructor arguments and every call."""

    made: list[FakeRayMetric] = []

    def __init__(self, name: str, description: str = "", boundaries: Any = None, tag_keys: Any = None) -> None:
        self.name, self.boundaries, self.tag_keys = name, boundaries, tag_keys
        self.calls: list[tuple[str, float, Any]] = []
        FakeRayMetric.made.append(self)

    def inc(self, value: float, tags: Any = None) -> None:
        self.calls.append(("inc", value, tags))

    def observe(self, value: float, tags: Any = None) -> None:
        self.calls.append(("observe", value, tags))

    def set(self, value: float, tags: Any = None) -> None:
        self.calls.append(("set", value, tags))


def test_ray_metrics_are_made_lazily_and_get_the_same_observations() -> None:
    FakeRayMetric.made = []
    fake = SimpleNamespace(Counter=FakeRayMetric, Histogram=FakeRayMetric, Gauge=FakeRayMetric)
    metrics = ServiceMetrics(replica="r2")
    metrics.model_loaded(2.0)  # before Ray's metrics exist: replayed when they are made
    assert not metrics.ray_enabled and not FakeRayMetric.made
    metrics.enable_ray(fake)  # type: ignore[arg-type]
    metrics.request("/v1/embeddings", 400, 0.01)
    metrics.batch(rows=3, tokens=40)
    by_name = {m.name: m for m in FakeRayMetric.made}
    assert set(by_name) == {spec.name for spec in METRICS}
    assert by_name["instructor_requests"].tag_keys == ("route", "code")  # Ray adds replica/deployment/app itself
    assert by_name["instructor_requests"].calls == [("inc", 1, {"route": "/v1/embeddings", "code": "400"})]
    assert by_name["instructor_request_duration_seconds"].calls == [("observe", 0.01, {"route": "/v1/embeddings"})]
    assert by_name["instructor_batch_rows"].calls == [("observe", 3, None)]
    assert by_name["instructor_batch_tokens"].boundaries[0] > 0  # Ray wants positive boundaries
    assert by_name["instructor_model_load_seconds"].calls == [("set", 2.0, None)]


async def test_metrics_route_counts_known_traffic_exactly_and_obeys_the_key() -> None:
    service = EmbeddingService(encoder=HashEncoder(), limits=ServerLimits(max_inputs=4), api_key="k")
    auth = {"Authorization": "Bearer k"}
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/metrics")).status_code == 401
        before = samples((await client.get("/metrics", headers=auth)).text)
        for i in range(3):
            ok = await client.post("/v1/embeddings", json={"input": [f"text {i}", "b"]}, headers=auth)
            assert ok.status_code == 200
        assert (await client.post("/v1/embeddings", json={"input": []}, headers=auth)).status_code == 400
        assert (await client.get("/nowhere/123", headers=auth)).status_code == 404
        assert (await client.get("/embed", headers=auth)).status_code == 405
        r = await client.get("/metrics", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = samples(r.text)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, replica="local", **labels) - value(before, name, replica="local", **labels)

    route = "/v1/embeddings"
    assert moved("instructor_requests_total", route=route, code="200") == 3
    assert moved("instructor_requests_total", route=route, code="400") == 1
    assert moved("instructor_requests_total", route="/metrics", code="401") == 0  # that one came before `before`
    assert moved("instructor_requests_total", route="unmatched", code="404") == 1  # no series per unknown path
    assert moved("instructor_requests_total", route="/embed", code="405") == 1
    assert moved("instructor_request_duration_seconds_count", route=route) == 4
    assert moved("instructor_batch_rows_sum") == 6  # 3 requests x 2 texts, nothing else encoded
    assert value(after, "instructor_queue_depth", replica="local") == 0
    assert value(after, "instructor_model_load_seconds", replica="local") > 0
