"""The pieces of the Ray Serve embedding app; :mod:`ray_backend.serve` assembles them (``build_app``, the CLI).

Plain Python, testable without Ray, from the HTTP edge inwards:

- :mod:`ray_backend.serving.app`: the FastAPI routes.
- :mod:`ray_backend.serving.api`: request and response shapes, limits, the JSON errors.
- :mod:`ray_backend.serving.admission`: admission by expected wait (429 + ``Retry-After``).
- :mod:`ray_backend.serving.service`: :class:`~ray_backend.serving.service.EmbeddingService`, loading,
  warm-up, tokenizing and sub-batches.
- :mod:`ray_backend.serving.batching`: the batch policy and mixed-instruction batches.
- :mod:`ray_backend.serving.metrics`: Prometheus metrics.
- :mod:`ray_backend.serving.sizing`: replica sizing (threads, replicas per node).
- :mod:`ray_backend.serving.ingress`: how HTTP reaches the replicas (proxy or direct ingress).
"""
