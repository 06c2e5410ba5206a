"""LlamaIndex embeddings with INSTRUCTOR instructions: :class:`InstructorEmbedding`.

::

    from llama_index.core import Settings
    from instructor_plugins.llama_index import InstructorEmbedding

    Settings.embed_model = InstructorEmbedding()                      # bundled model, in-process
    Settings.embed_model = InstructorEmbedding.for_task("retrieval", domain="Wikipedia")
    Settings.embed_model = InstructorEmbedding(endpoint="http://127.0.0.1:8000")  # Ray Serve app

A drop-in for ``llama-index-embeddings-instructor``'s class of the same name: its documented
arguments (``model_name``, ``query_instruction=None``, ``text_instruction=None``,
``cache_folder``, ``device``, ``embed_batch_size``) work unchanged; ``None`` instructions mean the
model's defaults (see :mod:`instructor_plugins.plugin`). LlamaIndex's base class batches texts by
``embed_batch_size`` and calls the hooks implemented here. Every instance in a process that loads
the same model the same way shares one encoder.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
    from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
except ImportError as exc:  # pragma: no cover - exercised by a test that hides llama-index-core
    raise ImportError(
        'instructor_plugins.llama_index needs llama-index-core: pip install "instructor-plugins[llamaindex]"'
    ) from exc

from instructor_plugins.plugin import BackendSlot, InstructorPlugin, to_lists

__all__ = ["InstructorEmbedding"]


class InstructorEmbedding(InstructorPlugin, BaseEmbedding):
    """INSTRUCTOR embeddings for LlamaIndex: one instruction for queries, another for texts.

    Unknown keyword arguments raise a ``ValidationError`` (``extra="forbid"``).
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), use_attribute_docstrings=True)
    _DOCUMENT_FIELD: ClassVar[str] = "text_instruction"

    model_name: str | None = None  # type: ignore[assignment]
    """Model to embed with: ``None`` for the bundled offline model, a local directory, or a hub id
    such as ``"hkunlp/instructor-large"``. With ``endpoint``, the model the server must run."""

    query_instruction: str | None = None
    """Instruction put before every query; ``""`` for none; ``None`` for the model's default."""

    text_instruction: str | None = None
    """Instruction put before every indexed text (node); ``""`` for none; ``None`` for the model's default."""

    embed_batch_size: int = Field(default=32, gt=0, le=2048)
    """Texts per call to the backend (forward pass in-process, request remotely)."""

    normalize: bool = True
    """L2-normalise the vectors, so the dot product is the cosine similarity."""

    device: str | None = None
    """Device of the in-process encoder (``"cpu"``, ``"cuda"``, ...); ``None`` picks CUDA when present."""

    dtype: str | None = None
    """dtype of the in-process encoder (float32, bfloat16, float16); ``None``: fp32 on CPU, bf16 on CUDA."""

    backend: Literal["torch", "onnx", "openvino"] | None = None
    """Where the in-process encoder's transformer runs: ``"torch"`` (``None``), ``"onnx"`` (ONNX Runtime) or
    ``"openvino"`` (OpenVINO), both on CPU at float32, faster at cos >= 0.99999 to torch; ``pip install
    "instructor-plugins[onnx]"`` / ``"instructor-plugins[openvino]"``."""

    cache_folder: str | None = None
    """Hub cache folder for a hub model (in-process); ``None``: the Hugging Face cache."""

    endpoint: str | None = None
    """``None`` embeds in this process; a URL such as ``"http://127.0.0.1:8000"`` uses the Ray Serve app."""

    _slot: BackendSlot = PrivateAttr(default_factory=BackendSlot)

    @classmethod
    def class_name(cls) -> str:
        """Name LlamaIndex stores when it serializes this component (not the predecessor's)."""
        return "InstructorPluginsEmbedding"

    def _backend_settings(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "endpoint": self.endpoint,
            "device": self.device,
            "dtype": self.dtype,
            "backend": self.backend,
            "cache_folder": self.cache_folder,
            "batch_size": self.embed_batch_size,
            "normalize": self.normalize,
        }

    def _get_query_embedding(self, query: str) -> Embedding:
        return to_lists(self.embedding_backend.embed([query], self.instructions().query))[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return to_lists(await self.embedding_backend.aembed([query], (await self.ainstructions()).query))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aget_text_embeddings([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        if not texts:
            return []
        return to_lists(self.embedding_backend.embed(texts, self.instructions().document))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        if not texts:
            return []
        return to_lists(await self.embedding_backend.aembed(texts, (await self.ainstructions()).document))
