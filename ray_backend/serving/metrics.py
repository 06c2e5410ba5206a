"""Prometheus metrics of one replica (or one in-process server), recorded in one place.

Series (the Prometheus text at ``GET /metrics`` labels each with ``replica``; Ray's exporter adds
its own ``deployment``, ``replica`` and ``application`` tags and a ``ray_`` prefix):

==========================================  =========  ===================================================
``instructor_requests_total``               counter    HTTP requests by ``route`` (the route template,
                                                       ``unmatched`` for unknown paths) and ``code``
                                                       (499: the client went away before the answer)
``instructor_request_duration_seconds``     histogram  HTTP request latency by ``route``
``instructor_batch_rows``                   histogram  texts per encoded batch
``instructor_batch_tokens``                 histogram  tokens per encoded batch
``instructor_queue_depth``                  gauge      texts admitted and not yet embedded
``instructor_model_load_seconds``           gauge      seconds from the start of loading until the replica
                                                       was ready (model load and warm-up batch)
==========================================  =========  ===================================================

:class:`ServiceMetrics` writes every observation to a per-instance ``prometheus_client`` registry
(served as text by the app's own ``/metrics``) and, once :meth:`ServiceMetrics.enable_ray` was called
inside a Serve replica, to ``ray.serve.metrics`` objects as well (created there, lazily; nothing here
imports Ray at module level), which Ray's metrics agent exports for every replica of the node.

Why ``/metrics`` on the app's port is per replica and not aggregated: the Serve proxy routes a scrape
to one replica, and a deployment handle routes to one replica too, so no replica can ask all the
others. With one replica (the default) that replica's text is the whole picture; with several, each
scrape shows the replica that answered (its ``replica`` label says which), and Ray's export, which
has every replica, is the complete source.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "METRICS", "MetricSpec", "ServiceMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""Content type of :meth:`ServiceMetrics.exposition` (Prometheus text format 0.0.4)."""

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
_TOKEN_BUCKETS = (16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


@dataclass(frozen=True)
class MetricSpec:
    """One series family, declared once for both exporters.

    Attributes:
        name: Prometheus name without the ``_total`` suffix of counters.
        kind: ``counter``, ``histogram`` or ``gauge``.
        description: the HELP text.
        labels: label names besides ``replica``.
        buckets: histogram bucket upper bounds.
    """

    name: str
    kind: Literal["counter", "histogram", "gauge"]
    description: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("instructor_requests", "counter", "HTTP requests by route and status code", ("route", "code")),
    MetricSpec(
        "instructor_request_duration_seconds", "histogram", "HTTP request latency", ("route",), _LATENCY_BUCKETS
    ),
    MetricSpec("instructor_batch_rows", "histogram", "Texts per encoded batch", (), _ROW_BUCKETS),
    MetricSpec("instructor_batch_tokens", "histogram", "Tokens per encoded batch", (), _TOKEN_BUCKETS),
    MetricSpec("instructor_queue_depth", "gauge", "Texts admitted and not yet embedded"),
    MetricSpec("instructor_model_load_seconds", "gauge", "Seconds to load the model and run the warm-up batch"),
)
_SPECS = {spec.name: spec for spec in METRICS}


class ServiceMetrics:
    """Records one replica's observations (thread-safe; every method is a few microseconds).

    Args:
        replica: the value of the ``replica`` label of the Prometheus text.
    """

    def __init__(self, replica: str = "local") -> None:
        self.replica = replica
        self.registry = CollectorRegistry(auto_describe=True)
        self._prom: dict[str, Any] = {}
        for spec in METRICS:
            labels = ("replica", *spec.labels)
            if spec.kind == "counter":
                self._prom[spec.name] = Counter(spec.name, spec.description, labels, registry=self.registry)
            elif spec.kind == "histogram":
                self._prom[spec.name] = Histogram(
                    spec.name, spec.description, labels, registry=self.registry, buckets=spec.buckets
                )
            else:
                self._prom[spec.name] = Gauge(spec.name, spec.description, labels, registry=self.registry)
        self._ray: dict[str, Any] | None = None
        self._gauges: dict[str, float] = {}  # last values, replayed into Ray's gauges when they appear
        self._lock = threading.Lock()

    def enable_ray(self, module: ModuleType | None = None) -> None:
        """Also record into ``ray.serve.metrics`` objects, created now (call it inside the replica).

        Args:
            module: the module providing ``Counter``, ``Histogram`` and ``Gauge``; default ``ray.serve.metrics``.
        """
        if module is None:
            from ray.serve import metrics as ray_metrics

            module = ray_metrics
        made: dict[str, Any] = {}
        for spec in METRICS:
            if spec.kind == "counter":
                made[spec.name] = module.Counter(spec.name, description=spec.description, tag_keys=spec.labels)
            elif spec.kind == "histogram":
                made[spec.name] = module.Histogram(
                    spec.name,
                    description=spec.description,
                    boundaries=list(spec.buckets),
                    tag_keys=spec.labels or None,
                )
            else:
                made[spec.name] = module.Gauge(spec.name, description=spec.description)
        with self._lock:
            self._ray = made
            gauges = dict(self._gauges)
        for name, value in gauges.items():
            made[name].set(value)

    @property
    def ray_enabled(self) -> bool:
        """Whether observations also go to Ray's metrics."""
        return self._ray is not None

    def _record(self, name: str, value: float, labels: Sequence[str] = ()) -> None:
        spec = _SPECS[name]
        child = self._prom[name].labels(self.replica, *labels)
        if spec.kind == "counter":
            child.inc(value)
        elif spec.kind == "histogram":
            child.observe(value)
        else:
            child.set(value)
            with self._lock:
                self._gauges[name] = value
        ray_metric = None if self._ray is None else self._ray[name]
        if ray_metric is not None:
            tags = dict(zip(spec.labels, labels, strict=True)) or None
            if spec.kind == "counter":
                ray_metric.inc(value, tags=tags)
            elif spec.kind == "histogram":
                ray_metric.observe(value, tags=tags)
            else:
                ray_metric.set(value, tags=tags)

    def request(self, route: str, code: int, seconds: float) -> None:
        """One HTTP request answered with ``code`` after ``seconds``."""
        self._record("instructor_requests", 1, (route, str(code)))
        self._record("instructor_request_duration_seconds", seconds, (route,))

    def batch(self, rows: int, tokens: int) -> None:
        """One encoded batch of ``rows`` texts and ``tokens`` tokens."""
        self._record("instructor_batch_rows", rows)
        self._record("instructor_batch_tokens", tokens)

    def queue_depth(self, rows: int) -> None:
        """Texts admitted and not yet embedded, now."""
        self._record("instructor_queue_depth", rows)

    def model_loaded(self, seconds: float) -> None:
        """The replica became ready ``seconds`` after it started loading."""
        self._record("instructor_model_load_seconds", seconds)

    def exposition(self) -> bytes:
        """Every series as Prometheus text (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
