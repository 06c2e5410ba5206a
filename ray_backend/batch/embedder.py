"""Embed a user's own ``ray.data.Dataset``: a callable class for ``map_batches`` that adds an embedding column.

Example::

    import ray
    from ray_backend.batch.embedder import InstructorBatchEmbedder

    ds = ray.data.read_parquet("s3://bucket/docs/")
    ds = ds.map_batches(
        InstructorBatchEmbedder,
        fn_constructor_kwargs={"instruction": "Represent the document for retrieval: "},
        compute=ray.data.ActorPoolStrategy(size=4),
        num_gpus=1,  # one GPU per actor: the encoder runs bf16 on CUDA
        batch_size=256,
    )
    ds.write_parquet("s3://bucket/vectors/")

Ray Data builds one instance per actor (the model loads once per actor) and calls it on batches in
any of its batch formats (``"pyarrow"``, ``"pandas"`` or ``"numpy"``); the batch comes back in the same
format with one more column, ``embedding`` by default: ``fixed_size_list<float32>[dim]`` for Arrow,
a ``(rows, dim)`` float32 array for NumPy, one array per row for pandas. Instructions are either one
fixed ``instruction`` for every row or a per-row ``instruction_column``. Unlike the
``python -m ray_backend.batch`` job this adds no exactly-once bookkeeping: the dataset's own reads and
writes decide that.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa

from instructor_plugins.types import Encoder

__all__ = ["InstructorBatchEmbedder", "load_encoder"]

logger = logging.getLogger(__name__)


def load_encoder(
    model: str | None = None,
    *,
    device: str | None = None,
    dtype: str | None = None,
    encoder_factory: str | None = None,
    num_threads: int | None = None,
) -> Encoder:
    """An encoder for one actor, loaded as the Serve replicas load theirs (:func:`ray_backend.loading.load_encoder`).

    ``encoder_factory`` is an import path ``"module:callable"`` of ``callable(model, *, device, dtype)``
    (e.g. ``"instructor_plugins.testing:hash_encoder"``); without it ``InstructorEncoder.load(model)``.
    ``device`` defaults to CUDA when a GPU is visible to this process (the actor's ``num_gpus``), else CPU.
    """
    import torch

    from ray_backend.loading import load_encoder as load

    if encoder_factory is not None and ":" not in encoder_factory:
        raise ValueError(f"encoder_factory must look like 'module:callable', got {encoder_factory!r}")
    if num_threads:
        torch.set_num_threads(max(1, int(num_threads)))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return load(model, device=device, dtype=dtype, factory=encoder_factory)


class InstructorBatchEmbedder:
    """Callable class for ``Dataset.map_batches``: embeds ``text_column`` into ``output_column``.

    Args:
        model: model path or hub id; ``None`` = the bundled offline model.
        text_column: column with the texts.
        instruction: one instruction for every row (``""`` or ``None`` for none).
        instruction_column: column with each row's instruction (instead of ``instruction``).
        output_column: name of the added vector column.
        batch_size: texts per forward pass.
        normalize: L2-normalise the vectors.
        device: ``"cuda"`` / ``"cpu"``; default CUDA when the actor has a GPU.
        dtype: model dtype (default fp32 on CPU, bf16 on GPU).
        encoder_factory: ``module:callable`` of ``callable(model, *, device, dtype)`` returning an encoder.
        num_threads: torch CPU threads per actor (match the actor's ``num_cpus``).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        text_column: str = "text",
        instruction: str | None = None,
        instruction_column: str | None = None,
        output_column: str = "embedding",
        batch_size: int = 32,
        normalize: bool = True,
        device: str | None = None,
        dtype: str | None = None,
        encoder_factory: str | None = None,
        num_threads: int | None = None,
    ) -> None:
        if instruction and instruction_column:
            raise ValueError(
                f"pass either instruction ({instruction!r}) or instruction_column ({instruction_column!r}), not both"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if output_column in (text_column, instruction_column):
            raise ValueError(f"output_column {output_column!r} would overwrite an input column; pick another name")
        self.text_column = text_column
        self.instruction = instruction or None
        self.instruction_column = instruction_column
        self.output_column = output_column
        self.batch_size = batch_size
        self.normalize = normalize
        self.encoder = load_encoder(
            model, device=device, dtype=dtype, encoder_factory=encoder_factory, num_threads=num_threads
        )

    def _column(self, batch: Any, name: str) -> list[Any]:
        try:
            values = batch[name]
        except KeyError:
            columns = list(batch.column_names if isinstance(batch, pa.Table) else batch.keys())
            raise KeyError(f"column {name!r} not in the batch; columns present: {columns}") from None
        out = values.to_pylist() if hasattr(values, "to_pylist") else list(values.tolist())
        bad = [i for i, v in enumerate(out) if not isinstance(v, str)]
        if bad:
            raise ValueError(
                f"column {name!r} must hold strings; row {bad[0]} of this batch holds {out[bad[0]]!r} "
                f"({len(bad)} such rows); filter or fill them first"
            )
        return out

    def embed(self, batch: Any) -> np.ndarray:
        """The ``(rows, dim)`` float32 vectors of one batch."""
        texts = self._column(batch, self.text_column)
        instruction: str | list[str] | None = self.instruction
        if self.instruction_column:
            instruction = self._column(batch, self.instruction_column)
        if not texts:
            return np.zeros((0, int(getattr(self.encoder, "dim", 0))), dtype=np.float32)
        vectors = self.encoder.encode(texts, instruction, batch_size=self.batch_size, normalize=self.normalize)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __call__(self, batch: Any) -> Any:
        """The batch with the vector column added, in the batch's own format."""
        vectors = self.embed(batch)
        if isinstance(batch, pa.Table):
            flat = pa.array(vectors.reshape(-1), type=pa.float32())
            return batch.append_column(self.output_column, pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]))
        if isinstance(batch, dict):
            return batch | {self.output_column: vectors}
        out = batch.copy()  # pandas
        out[self.output_column] = list(vectors)
        return out
