"""Vectors computed by code other than ours, to compare our encoder and plugin classes against.

- **The official INSTRUCTOR package** (``InstructorEmbedding`` 1.0.1, which LangChain's
  ``HuggingFaceInstructEmbeddings`` and llama-index's ``InstructorEmbedding`` call with ``[instruction, text]``
  pairs): it no longer runs with today's libraries, so its vectors are checked in.
  ``tests/fixtures/instructor_t5/`` holds a tiny T5 checkpoint saved by that package (``official/``) and the
  package's own vectors for (instruction, text) rows covering its edge cases (``reference.json``), made by
  ``tests/fixtures/make_instructor_t5.py`` in a venv of its own.
- **sentence-transformers** on the same folder, for checkpoints it loads (the bundled MiniLM).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "instructor_t5"
OFFICIAL = FIXTURE / "official"
MIN_COSINE = 0.99999


def official_reference() -> dict[str, Any]:
    """``reference.json``: ``rows`` of ``instruction``, ``text``, ``vector`` (and token counts, a ``note``)."""
    reference: dict[str, Any] = json.loads((FIXTURE / "reference.json").read_text(encoding="utf-8"))
    return reference


def reference_vectors(reference: dict[str, Any]) -> np.ndarray:
    """The official package's vectors, one row per reference row."""
    return np.array([row["vector"] for row in reference["rows"]], dtype=np.float64)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def assert_rows_match(got: np.ndarray, reference: dict[str, Any], label: str) -> None:
    """Every row of ``got`` within :data:`MIN_COSINE` of the official package's vector for that row."""
    cos = cosine_rows(np.asarray(got, dtype=np.float64), reference_vectors(reference))
    bad = [
        f"{row['note']}: cos {c:.7f} (official masked {row['masked_tokens']} instruction tokens)"
        for row, c in zip(reference["rows"], cos, strict=True)
        if not c >= MIN_COSINE
    ]
    assert not bad, f"{label} differs from the official package on {len(bad)} rows:\n" + "\n".join(bad)


def sentence_transformers_vectors(
    path: str | Path, texts: list[str], instruction: str | None, include_prompt: bool | None = None
) -> np.ndarray:
    """sentence-transformers on the same folder, normalised; ``include_prompt`` None: as the folder says."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(path), device="cpu")
    if include_prompt is not None:  # the official INSTRUCTOR semantics: pool the text tokens only
        pooling = next(m for m in st if type(m).__name__ == "Pooling")
        pooling.include_prompt = include_prompt
    return np.asarray(st.encode(texts, prompt=instruction or None, batch_size=8, normalize_embeddings=True))
