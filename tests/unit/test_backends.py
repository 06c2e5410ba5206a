from __future__ import annotations

import numpy as np
import pytest

from instructor_plugins.backends import EmbeddingBackend, LocalBackend, make_backend, shared_encoder
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.testing import HashEncoder


def test_shared_encoder_is_one_per_model_device_dtype() -> None:
    a = shared_encoder(None, device="cpu")
    assert shared_encoder(None, device="cpu") is a
    assert isinstance(a, InstructorEncoder)


def test_local_backend_matches_encoder(bundled_encoder: InstructorEncoder) -> None:
    backend = make_backend(None, device="cpu")
    assert isinstance(backend, LocalBackend) and isinstance(backend, EmbeddingBackend)
    texts = ["What is AI?", "Artificial intelligence is a branch of computer science."]
    got = backend.embed(texts, "Represent the question: ")
    np.testing.assert_allclose(got, bundled_encoder.encode(texts, "Represent the question: "), atol=1e-6)


async def test_local_backend_async_equals_sync() -> None:
    backend = LocalBackend(encoder=HashEncoder(8))
    texts = ["a", "b", "c"]
    instructions = ["x: ", "y: ", None]
    np.testing.assert_array_equal(await backend.aembed(texts, instructions), backend.embed(texts, instructions))


def test_make_backend_rejects_remote_options_without_endpoint() -> None:
    with pytest.raises(TypeError, match="timeout"):
        make_backend(None, timeout=3)


def test_hash_encoder_is_deterministic_and_instruction_aware() -> None:
    enc = HashEncoder(16)
    a = enc.encode(["t", "t", "u"], ["i: ", "j: ", "i: "])
    assert a.shape == (3, 16) and a.dtype == np.float32
    np.testing.assert_array_equal(a[0], enc.encode("t", "i: ")[0])
    assert not np.allclose(a[0], a[1]) and not np.allclose(a[0], a[2])
    with pytest.raises(TypeError, match=r"texts\[0\]"):
        enc.encode([1])  # type: ignore[list-item]
