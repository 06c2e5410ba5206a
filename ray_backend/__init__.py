"""Ray shells around the encoder, two products and what they share.

- Serving: the Serve app ``ray_backend.serve`` (``build_app``, ``python -m ray_backend.serve``), built from the
  plain pieces in :mod:`ray_backend.serving`.
- Batch: ``python -m ray_backend.batch`` and :class:`~ray_backend.batch.InstructorBatchEmbedder`
  (:mod:`ray_backend.batch`).
- Shared: :mod:`ray_backend.net` (starting or joining Ray, ports, health), :mod:`ray_backend.loading` (the encoder),
  :mod:`ray_backend.demo` (``make demo``).
"""
