"""Real-text rows (:mod:`tests.offline_text`) and writers for the batch-embedding tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tests.offline_text import text_rows

INSTRUCTION = "Represent the text for retrieval: "


def offline_rows(n: int) -> list[dict[str, Any]]:
    """``n`` rows ``{"id", "text", "name"}`` of real text that needs no optional package (:mod:`tests.offline_text`)."""
    return [{"id": row_id, "text": text, "name": name} for row_id, text, name in text_rows(n)]


def write_rows(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write rows as JSONL, Parquet or CSV (by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(list(rows)), path)
    elif path.suffix == ".csv":
        pacsv.write_csv(pa.Table.from_pylist(list(rows)), path)
    else:
        raise ValueError(f"unsupported suffix {path.suffix!r}")
    return path


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def vectors(table: pa.Table) -> np.ndarray:
    """The ``embedding`` column of an output table as a float32 matrix."""
    column = table["embedding"].combine_chunks()
    return column.flatten().to_numpy().reshape(len(column), column.type.list_size)
