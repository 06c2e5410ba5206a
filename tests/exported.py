"""Shared checks of the exported backends' tests (ONNX Runtime, OpenVINO) and of the int8 CPU-class tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from instructor_plugins.corpora import chatterbot_pairs, wordnet_synsets
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.runtimes import MIN_EXACT_COS

ROOT = Path(__file__).resolve().parents[1]
T5_FIXTURE = ROOT / "tests" / "fixtures" / "instructor_t5" / "official"
"""A tiny INSTRUCTOR T5 checkpoint written by the official package (bias-free Linear layers, no [CLS])."""
INSTRUCTIONS = ["Represent the question for retrieving supporting answers: ", "", "Represent the sentence: "]
"""Mixed instructions, taken in turn (one row without)."""


def every_length_texts() -> list[str]:
    """Real texts of every length: chatterbot answers from one word to paragraphs, WordNet glosses, an empty one."""
    answers = sorted({p.answer for p in chatterbot_pairs()}, key=len)
    try:
        glosses = [s.gloss for s in wordnet_synsets("noun", limit=48)]
    except FileNotFoundError:
        glosses = []
    return ["", *answers[:: max(1, len(answers) // 120)], *glosses]


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row cosine of two ``(n, d)`` arrays."""
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def assert_exact_to_torch(
    exported: InstructorEncoder, torch_encoder: InstructorEncoder, texts: list[str], instructions: list[str]
) -> None:
    """``exported`` gives torch's vectors, normalised and not (cos >= MIN_EXACT_COS, max abs difference < 1e-4)."""
    for normalize in (True, False):
        want = torch_encoder.encode(texts, instructions, batch_size=16, normalize=normalize)
        got = exported.encode(texts, instructions, batch_size=16, normalize=normalize)
        assert got.shape == want.shape == (len(texts), torch_encoder.dim) and got.dtype == np.float32
        assert cos_rows(got, want).min() >= MIN_EXACT_COS
        assert np.abs(got - want).max() < 1e-4
    assert not np.allclose(np.linalg.norm(got, axis=1), 1.0)  # normalize=False reached the exported path too


def run_json_script(code: str, env: dict[str, str]) -> dict[str, Any]:
    """Run ``code`` in a fresh Python with ``env`` added (e.g. kernel ISA caps); its last stdout line, as JSON."""
    full = os.environ | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"} | env
    done = subprocess.run([sys.executable, "-c", code], env=full, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
