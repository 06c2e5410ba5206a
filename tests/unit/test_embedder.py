"""InstructorBatchEmbedder without Ray: every batch format, per-row and fixed instructions, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from instructor_plugins.model import InstructorEncoder
from ray_backend.batch.embedder import InstructorBatchEmbedder

TEXTS = ["Mary Shelley wrote Frankenstein.", "Where was Frankenstein written?", "The Rhine flows through Basel."]
TASKS = ["Represent the document: ", "Represent the question: ", "Represent the document: "]


@pytest.fixture(scope="module")
def embedder() -> InstructorBatchEmbedder:
    return InstructorBatchEmbedder(instruction_column="task", device="cpu")


def test_every_batch_format_gets_the_encoder_vectors(
    embedder: InstructorBatchEmbedder, bundled_encoder: InstructorEncoder
) -> None:
    expected = bundled_encoder.encode(TEXTS, TASKS)
    arrow = embedder(pa.table({"text": TEXTS, "task": TASKS}))
    assert arrow.column_names == ["text", "task", "embedding"]
    assert arrow.schema.field("embedding").type == pa.list_(pa.float32(), bundled_encoder.dim)
    np.testing.assert_allclose(np.stack(arrow["embedding"].to_numpy(zero_copy_only=False)), expected, atol=1e-6)
    numpy = embedder({"text": np.array(TEXTS, dtype=object), "task": np.array(TASKS, dtype=object)})
    assert numpy["embedding"].dtype == np.float32
    np.testing.assert_allclose(numpy["embedding"], expected, atol=1e-6)
    frame = embedder(pd.DataFrame({"text": TEXTS, "task": TASKS}))
    np.testing.assert_allclose(np.stack(frame["embedding"]), expected, atol=1e-6)
    empty = embedder(pa.table({"text": pa.array([], pa.string()), "task": pa.array([], pa.string())}))
    assert empty.num_rows == 0 and empty.schema.field("embedding").type.list_size == bundled_encoder.dim


def test_fixed_instruction_equals_per_row_with_the_same_instruction(embedder: InstructorBatchEmbedder) -> None:
    fixed = InstructorBatchEmbedder(instruction="Represent the document: ", output_column="vec", device="cpu")
    same = ["Represent the document: "] * len(TEXTS)
    a = fixed({"text": np.array(TEXTS, dtype=object)})["vec"]
    b = embedder({"text": np.array(TEXTS, dtype=object), "task": np.array(same, dtype=object)})["embedding"]
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_errors_name_the_problem(embedder: InstructorBatchEmbedder) -> None:
    with pytest.raises(ValueError, match="either instruction .* or instruction_column .*, not both"):
        InstructorBatchEmbedder(instruction="x: ", instruction_column="task")
    with pytest.raises(ValueError, match="output_column 'text' would overwrite an input column"):
        InstructorBatchEmbedder(output_column="text")
    with pytest.raises(KeyError, match=r"column 'task' not in the batch; columns present: \['text'\]"):
        embedder(pa.table({"text": TEXTS}))
    with pytest.raises(ValueError, match=r"column 'text' must hold strings; row 1 of this batch holds None"):
        embedder(pa.table({"text": ["a", None], "task": ["x", "y"]}))
    with pytest.raises(ValueError, match="encoder_factory must look like 'module:callable'"):
        InstructorBatchEmbedder(encoder_factory="nocolon")
