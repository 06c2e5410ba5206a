"""Kept for the documented import path ``from ray_backend.embedder import InstructorBatchEmbedder``.

The class lives in :mod:`ray_backend.batch.embedder` (also exported by :mod:`ray_backend.batch`).
"""

from __future__ import annotations

from ray_backend.batch.embedder import InstructorBatchEmbedder, load_encoder

__all__ = ["InstructorBatchEmbedder", "load_encoder"]
