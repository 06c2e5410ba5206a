"""LlamaIndex embeddings with INSTRUCTOR instructions: :class:`InstructorEmbedding`.

::

    from llama_index.core import Settings
    from instructor_plugins.llama_index import InstructorEmbedding

    Settings.embed_model = InstructorEmbedding()                      # bundled model, in-process
    Settings.embed_model = InstructorEmbedding.for_task("retrieval", domain="Wikipedia")
    Settings.embed_model = InstructorEmbedding(endpoint="http://127.0.0.1:8000")  # Ray Serve app

LlamaIndex's base class batches texts by ``embed_batch_size`` and calls the hooks implemented
here; queries get ``query_instruction``, indexed texts get ``text_instruction``. Every instance in
a process that names the same model and device shares one encoder.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
    from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
except ImportError as exc:  # pragma: no cover - exercised by a test that hides llama-index-core
    raise ImportError(
        'instructor_plugins.llama_index needs llama-index-core: pip install "instructor-plugins[llamaindex]"'
    ) from exc

from instructor_plugins.backends import EmbeddingBackend, make_backend
from instructor_plugins.instructions import preset

__all__ = ["InstructorEmbedding"]

_RETRIEVAL = preset("retrieval")


class InstructorEmbedding(BaseEmbedding):
    """INSTRUCTOR embeddings for LlamaIndex: one instruction for queries, another for texts.

    Unknown keyword arguments raise a ``ValidationError`` (``extra="forbid"``).
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), use_attribute_docstrings=True)

    model_name: str | None = None  # type: ignore[assignment]
    """Model to embed with: ``None`` for the bundled offline model, a local directory, or a hub id
    such as ``"hkunlp/instructor-large"``."""

    query_instruction: str = _RETRIEVAL.query
    """Instruction put before every query; ``""`` for none."""

    text_instruction: str = _RETRIEVAL.document
    """Instruction put before every indexed text (node); ``""`` for none."""

    embed_batch_size: int = Field(default=32, gt=0, le=2048)
    """Texts per call to the backend (forward pass in-process, request remotely)."""

    normalize: bool = True
    """L2-normalise the vectors, so the dot product is the cosine similarity."""

    device: str | None = None
    """Device of the in-process encoder (``"cpu"``, ``"cuda"``, ...); ``None`` picks CUDA when present."""

    endpoint: str | None = None
    """``None`` embeds in this process; a URL such as ``"http://127.0.0.1:8000"`` uses the Ray Serve app."""

    _backend: EmbeddingBackend | None = PrivateAttr(default=None)
    _backend_key: tuple[Any, ...] | None = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        """Name LlamaIndex stores when it serializes this component."""
        return "InstructorEmbedding"

    @classmethod
    def for_task(cls, task: str, *, domain: str | None = None, **kwargs: Any) -> InstructorEmbedding:
        """Build an instance whose two instructions come from the task presets.

        Args:
            task: a preset name from :data:`instructor_plugins.instructions.PRESETS`
                (``"retrieval"``, ``"classification"``, ``"clustering"``, ``"sts"``, ...).
            domain: optional domain word(s), e.g. ``"Wikipedia"``.
            **kwargs: any other field (``model_name``, ``embed_batch_size``, ``endpoint``, ...).

        Raises:
            ValueError: an unknown task (the message lists the valid ones).
            TypeError: ``kwargs`` also sets an instruction.
        """
        clash = sorted({"query_instruction", "text_instruction"} & kwargs.keys())
        if clash:
            raise TypeError(f"for_task sets both instructions itself; do not also pass {clash}")
        instructions = preset(task, domain=domain)
        return cls(query_instruction=instructions.query, text_instruction=instructions.document, **kwargs)

    @classmethod
    def from_backend(cls, backend: EmbeddingBackend, **kwargs: Any) -> InstructorEmbedding:
        """Use an already built backend (e.g. a Ray deployment handle wrapper or a test encoder)."""
        if not isinstance(backend, EmbeddingBackend):
            raise TypeError(f"backend must implement EmbeddingBackend (embed, aembed), got {type(backend).__name__}")
        instance = cls(**kwargs)
        instance._backend = backend
        return instance

    @property
    def backend(self) -> EmbeddingBackend:
        """The backend that computes vectors, built on first use and again if its fields change."""
        key = (self.model_name, self.endpoint, self.device, self.embed_batch_size, self.normalize)
        if self._backend is None or (self._backend_key is not None and self._backend_key != key):
            self._backend = make_backend(
                self.model_name,
                endpoint=self.endpoint,
                device=self.device,
                batch_size=self.embed_batch_size,
                normalize=self.normalize,
            )
            self._backend_key = key
        return self._backend

    def _get_query_embedding(self, query: str) -> Embedding:
        return _to_lists(self.backend.embed([query], self.query_instruction))[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return _to_lists(await self.backend.aembed([query], self.query_instruction))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aget_text_embeddings([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        if not texts:
            return []
        return _to_lists(self.backend.embed(texts, self.text_instruction))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        if not texts:
            return []
        return _to_lists(await self.backend.aembed(texts, self.text_instruction))


def _to_lists(vectors: np.ndarray) -> list[list[float]]:
    result: list[list[float]] = np.asarray(vectors, dtype=np.float32).tolist()
    return result
