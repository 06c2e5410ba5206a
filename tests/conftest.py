"""Shared fixtures: the real bundled model (loaded once), a tiny one for plumbing, and offline defaults."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Tests never touch a model hub: fail fast instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

# Under pytest-xdist (make test) each worker process takes its share of the cores: N workers with torch's default
# of one thread a core would run N times as many threads as cores. The exported backends follow torch's count.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

from instructor_plugins.model import InstructorEncoder  # noqa: E402


@pytest.fixture(scope="session")
def bundled_encoder() -> InstructorEncoder:
    """The bundled all-MiniLM-L6-v2 on CPU, fp32, shared by every test of the session."""
    return InstructorEncoder.load(device="cpu")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT checkpoint in the bundled model's layout (``tests.tiny_bert``), for plumbing tests of training."""
    from tests.tiny_bert import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def s3_endpoint() -> object:
    """moto's S3 server on 127.0.0.1 with bucket ``test-bucket``; the AWS env points at it (module scope)."""
    from tests.s3 import s3_server

    with s3_server("test-bucket") as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh ``$INSTRUCTOR_EXPORT_CACHE`` for one test module (the exported backends' files), then the old one."""
    path = tmp_path_factory.mktemp("export-cache")
    old = os.environ.get("INSTRUCTOR_EXPORT_CACHE")
    os.environ["INSTRUCTOR_EXPORT_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("INSTRUCTOR_EXPORT_CACHE", None)
    else:
        os.environ["INSTRUCTOR_EXPORT_CACHE"] = old
