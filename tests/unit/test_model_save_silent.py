"""Our own checkpoints load silently: the unused BERT pooler is saved back, so nothing is "newly initialized"."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from instructor_plugins.model import InstructorEncoder


def test_saved_checkpoint_loads_without_missing_weights_report(
    bundled_encoder: InstructorEncoder,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    bundled_encoder.save(tmp_path)
    capfd.readouterr()
    with caplog.at_level(logging.INFO):
        again = InstructorEncoder.load(tmp_path, device="cpu")
        from sentence_transformers import SentenceTransformer

        SentenceTransformer(str(tmp_path), device="cpu")
    out, err = capfd.readouterr()
    text = out + err + caplog.text
    assert "MISSING" not in text and "newly initialized" not in text
    texts = ["a saved model", "gives the same vectors"]
    np.testing.assert_allclose(again.encode(texts), bundled_encoder.encode(texts), atol=1e-6)
