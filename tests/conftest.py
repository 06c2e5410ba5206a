"""Shared fixtures: the real bundled model (loaded once) and offline defaults."""

from __future__ import annotations

import os

# Tests never touch a model hub: fail fast instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from instructor_plugins.model import InstructorEncoder  # noqa: E402


@pytest.fixture(scope="session")
def bundled_encoder() -> InstructorEncoder:
    """The bundled all-MiniLM-L6-v2 on CPU, fp32, shared by every test of the session."""
    return InstructorEncoder.load(device="cpu")


@pytest.fixture(scope="module")
def s3_endpoint() -> object:
    """moto's S3 server on 127.0.0.1 with bucket ``test-bucket``; the AWS env points at it (module scope)."""
    from tests.s3 import s3_server

    with s3_server("test-bucket") as endpoint:
        yield endpoint
