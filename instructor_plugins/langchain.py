"""LangChain embeddings with INSTRUCTOR instructions: :class:`InstructorEmbeddings`.

Queries and documents are embedded with two different instructions (INSTRUCTOR, arXiv
2212.09741)::

    from instructor_plugins.langchain import InstructorEmbeddings

    emb = InstructorEmbeddings()                                  # bundled model, in-process
    emb = InstructorEmbeddings.for_task("retrieval", domain="Wikipedia")
    emb = InstructorEmbeddings(endpoint="http://127.0.0.1:8000")  # the Ray Serve app

Code written for the old ``langchain_community`` ``HuggingFaceInstructEmbeddings`` keeps working:
``embed_instruction`` is accepted for ``document_instruction`` and ``model_name`` for ``model``.
Every instance in a process that names the same model and device shares one encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from langchain_core.embeddings import Embeddings
    from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr
except ImportError as exc:  # pragma: no cover - exercised by a test that hides langchain-core
    raise ImportError(
        'instructor_plugins.langchain needs langchain-core: pip install "instructor-plugins[langchain]"'
    ) from exc

from instructor_plugins.backends import EmbeddingBackend, make_backend
from instructor_plugins.instructions import preset

__all__ = ["DEFAULT_DOCUMENT_INSTRUCTION", "DEFAULT_QUERY_INSTRUCTION", "InstructorEmbeddings"]

# The retrieval preset: "Represent the question for retrieving supporting documents: " and
# "Represent the document for retrieval: " (the old community class's defaults).
DEFAULT_QUERY_INSTRUCTION = preset("retrieval").query
DEFAULT_DOCUMENT_INSTRUCTION = preset("retrieval").document


class InstructorEmbeddings(BaseModel, Embeddings):
    """INSTRUCTOR embeddings for LangChain: one instruction for queries, another for documents.

    Unknown keyword arguments raise a ``ValidationError`` (``extra="forbid"``), so a misspelt
    field fails at construction instead of being ignored.
    """

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        protected_namespaces=(),
        use_attribute_docstrings=True,
        validate_assignment=True,
    )

    model: str | None = Field(default=None, validation_alias=AliasChoices("model", "model_name"))
    """Model to embed with: ``None`` for the bundled offline model, a local directory, or a hub id
    such as ``"hkunlp/instructor-large"``. ``model_name`` is accepted as an alias."""

    query_instruction: str = DEFAULT_QUERY_INSTRUCTION
    """Instruction put before every query (``embed_query``); ``""`` for none."""

    document_instruction: str = Field(
        default=DEFAULT_DOCUMENT_INSTRUCTION,
        validation_alias=AliasChoices("document_instruction", "embed_instruction"),
    )
    """Instruction put before every document (``embed_documents``); ``""`` for none.
    ``embed_instruction`` is accepted as an alias."""

    batch_size: int = Field(default=32, gt=0)
    """Texts per forward pass (in-process) or per request (remote)."""

    normalize: bool = True
    """L2-normalise the vectors, so the dot product is the cosine similarity."""

    device: str | None = None
    """Device of the in-process encoder (``"cpu"``, ``"cuda"``, ``"cuda:1"``); ``None`` picks CUDA when present."""

    show_progress: bool = False
    """Show a progress bar while embedding many texts."""

    endpoint: str | None = None
    """``None`` embeds in this process; a URL such as ``"http://127.0.0.1:8000"`` uses the Ray Serve app."""

    _backend: EmbeddingBackend | None = PrivateAttr(default=None)
    _backend_key: tuple[Any, ...] | None = PrivateAttr(default=None)

    @classmethod
    def for_task(cls, task: str, *, domain: str | None = None, **kwargs: Any) -> InstructorEmbeddings:
        """Build an instance whose two instructions come from the task presets.

        Args:
            task: a preset name from :data:`instructor_plugins.instructions.PRESETS`
                (``"retrieval"``, ``"classification"``, ``"clustering"``, ``"sts"``, ...).
            domain: optional domain word(s), e.g. ``"Wikipedia"`` or ``"medical"``.
            **kwargs: any other field (``model``, ``batch_size``, ``endpoint``, ...).

        Raises:
            ValueError: an unknown task (the message lists the valid ones).
            TypeError: ``kwargs`` also sets an instruction.

        >>> InstructorEmbeddings.for_task("sts").query_instruction
        'Represent the sentence for retrieving duplicate sentences: '
        """
        clash = sorted({"query_instruction", "document_instruction", "embed_instruction"} & kwargs.keys())
        if clash:
            raise TypeError(f"for_task sets both instructions itself; do not also pass {clash}")
        instructions = preset(task, domain=domain)
        return cls(query_instruction=instructions.query, document_instruction=instructions.document, **kwargs)

    @classmethod
    def from_backend(cls, backend: EmbeddingBackend, **kwargs: Any) -> InstructorEmbeddings:
        """Use an already built backend (e.g. one wrapping a Ray deployment handle or a test encoder).

        The ``batch_size``, ``normalize``, ``device`` and ``show_progress`` fields are then the
        backend's business and are not applied.
        """
        if not isinstance(backend, EmbeddingBackend):
            raise TypeError(f"backend must implement EmbeddingBackend (embed, aembed), got {type(backend).__name__}")
        instance = cls(**kwargs)
        instance._backend = backend
        return instance

    @property
    def backend(self) -> EmbeddingBackend:
        """The backend that computes vectors, built on first use and again if its fields change."""
        key = (self.model, self.endpoint, self.device, self.batch_size, self.normalize, self.show_progress)
        if self._backend is None or (self._backend_key is not None and self._backend_key != key):
            self._backend = make_backend(
                self.model,
                endpoint=self.endpoint,
                device=self.device,
                batch_size=self.batch_size,
                normalize=self.normalize,
                show_progress=self.show_progress,
            )
            self._backend_key = key
        return self._backend

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents with :attr:`document_instruction`."""
        return self._embed(texts, self.document_instruction)

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with :attr:`query_instruction`."""
        return self._embed([text], self.query_instruction)[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents`; the event loop keeps running while the model works."""
        if not texts:
            return []
        vectors = await self.backend.aembed(texts, self.document_instruction)
        return _to_lists(vectors)

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query`; the event loop keeps running while the model works."""
        vectors = await self.backend.aembed([text], self.query_instruction)
        return _to_lists(vectors)[0]

    def _embed(self, texts: Sequence[str], instruction: str) -> list[list[float]]:
        if not texts:
            return []
        return _to_lists(self.backend.embed(texts, instruction))


def _to_lists(vectors: np.ndarray) -> list[list[float]]:
    # Python floats, which LangChain's vector stores and serializers expect.
    result: list[list[float]] = np.asarray(vectors, dtype=np.float32).tolist()
    return result
