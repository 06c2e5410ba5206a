"""LangChain embeddings with INSTRUCTOR instructions: :class:`InstructorEmbeddings`.

Queries and documents are embedded with two different instructions (INSTRUCTOR, arXiv
2212.09741)::

    from instructor_plugins.langchain import InstructorEmbeddings

    emb = InstructorEmbeddings()                                  # bundled model, in-process
    emb = InstructorEmbeddings.for_task("retrieval", domain="Wikipedia")
    emb = InstructorEmbeddings(endpoint="http://127.0.0.1:8000")  # the Ray Serve app

A drop-in for the ``langchain_community`` ``HuggingFaceInstructEmbeddings``: its documented
arguments work unchanged (``model_name``, ``model_kwargs`` with ``device`` / ``trust_remote_code``
/ ``revision``, ``encode_kwargs`` with ``batch_size`` / ``normalize_embeddings`` /
``show_progress_bar``, ``cache_folder``, ``query_instruction``, ``embed_instruction``) and read
back. Instructions left at ``None`` follow the model (see :mod:`instructor_plugins.plugin`).
Every instance in a process that loads the same model the same way shares one encoder.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, ClassVar, Literal

try:
    from langchain_core.embeddings import Embeddings
    from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr
except ImportError as exc:  # pragma: no cover - exercised by a test that hides langchain-core
    raise ImportError(
        'instructor_plugins.langchain needs langchain-core: pip install "instructor-plugins[langchain]"'
    ) from exc

from instructor_plugins.instructions import preset
from instructor_plugins.plugin import BackendSlot, InstructorPlugin, drop_in_arguments, to_lists

if TYPE_CHECKING:
    from langchain_classic.embeddings import CacheBackedEmbeddings
    from langchain_core.stores import ByteStore

__all__ = ["DEFAULT_DOCUMENT_INSTRUCTION", "DEFAULT_QUERY_INSTRUCTION", "InstructorEmbeddings"]

# The retrieval preset, which INSTRUCTOR checkpoints get by default (the old community class's defaults):
# "Represent the question for retrieving supporting documents: " / "Represent the document for retrieval: ".
DEFAULT_QUERY_INSTRUCTION = preset("retrieval").query
DEFAULT_DOCUMENT_INSTRUCTION = preset("retrieval").document

# HuggingFaceInstructEmbeddings' option dicts -> our fields.
MODEL_KWARGS = {
    "device": "device",
    "trust_remote_code": "trust_remote_code",
    "revision": "revision",
    "backend": "backend",
}
ENCODE_KWARGS = {"batch_size": "batch_size", "normalize_embeddings": "normalize", "show_progress_bar": "show_progress"}


class InstructorEmbeddings(InstructorPlugin, BaseModel, Embeddings):
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
    _DOCUMENT_FIELD: ClassVar[str] = "document_instruction"
    _DOCUMENT_ALIASES: ClassVar[tuple[str, ...]] = ("embed_instruction",)

    model: str | None = Field(default=None, validation_alias=AliasChoices("model", "model_name"))
    """Model to embed with: ``None`` for the bundled offline model, a local directory, or a hub id
    such as ``"hkunlp/instructor-large"``. ``model_name`` is accepted (and readable) as an alias.
    With ``endpoint``, the model the server must run (``None``: whatever it runs)."""

    query_instruction: str | None = None
    """Instruction put before every query (``embed_query``); ``""`` for none; ``None`` for the model's default."""

    document_instruction: str | None = Field(
        default=None,
        validation_alias=AliasChoices("document_instruction", "embed_instruction"),
    )
    """Instruction put before every document (``embed_documents``); ``""`` for none; ``None`` for the
    model's default. ``embed_instruction`` is accepted (and readable) as an alias."""

    batch_size: int = Field(default=32, gt=0)
    """Texts per forward pass (in-process) or per request (remote)."""

    normalize: bool = True
    """L2-normalise the vectors, so the dot product is the cosine similarity."""

    device: str | None = None
    """Device of the in-process encoder (``"cpu"``, ``"cuda"``, ``"cuda:1"``); ``None`` picks CUDA when present."""

    dtype: str | None = None
    """dtype of the in-process encoder (float32, bfloat16, float16); ``None``: fp32 on CPU, bf16 on CUDA."""

    backend: Literal["torch", "onnx", "openvino"] | None = None
    """Where the in-process encoder's transformer runs: ``"torch"`` (``None``), ``"onnx"`` (ONNX Runtime) or
    ``"openvino"`` (OpenVINO), both on CPU at float32, faster at cos >= 0.99999 to torch; ``pip install
    "instructor-plugins[onnx]"`` / ``"instructor-plugins[openvino]"``."""

    trust_remote_code: bool = False
    """Allow model code from the checkpoint (in-process)."""

    revision: str | None = None
    """Hub revision (branch, tag or commit) of a hub model (in-process)."""

    cache_folder: str | None = None
    """Hub cache folder for a hub model (in-process); ``None``: the Hugging Face cache."""

    show_progress: bool = False
    """Show a progress bar while embedding many texts."""

    endpoint: str | None = None
    """``None`` embeds in this process; a URL such as ``"http://127.0.0.1:8000"`` uses the Ray Serve app."""

    model_kwargs: dict[str, Any] | None = None
    """``HuggingFaceInstructEmbeddings`` compatibility: ``device``, ``trust_remote_code`` and ``revision``
    set those fields; other keys raise ``ValueError``."""

    encode_kwargs: dict[str, Any] | None = None
    """``HuggingFaceInstructEmbeddings`` compatibility: ``batch_size``, ``normalize_embeddings`` and
    ``show_progress_bar`` set ``batch_size``, ``normalize`` and ``show_progress``; other keys raise ``ValueError``."""

    _slot: BackendSlot = PrivateAttr(default_factory=BackendSlot)

    def __init__(self, **data: Any) -> None:
        """Accept our fields and ``HuggingFaceInstructEmbeddings``' arguments (see the module docstring)."""
        data = drop_in_arguments(data, "model_kwargs", MODEL_KWARGS)
        data = drop_in_arguments(data, "encode_kwargs", ENCODE_KWARGS)
        super().__init__(**data)

    @property
    def model_name(self) -> str | None:
        """The ``model`` field under its ``HuggingFaceInstructEmbeddings`` name."""
        return self.model

    @property
    def embed_instruction(self) -> str | None:
        """The ``document_instruction`` field under its ``HuggingFaceInstructEmbeddings`` name."""
        return self.document_instruction

    def _backend_settings(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "endpoint": self.endpoint,
            "device": self.device,
            "dtype": self.dtype,
            "backend": self.backend,
            "trust_remote_code": self.trust_remote_code,
            "revision": self.revision,
            "cache_folder": self.cache_folder,
            "batch_size": self.batch_size,
            "normalize": self.normalize,
            "show_progress": self.show_progress,
        }

    def cache_namespace(self, side: str) -> str:
        """The key prefix of :meth:`cached` for ``side`` (``"query"`` or ``"document"``).

        It hashes what made the vector: the model (``None`` is the bundled one), its revision, the endpoint
        (``None``: in-process), the resolved instruction of that side and ``normalize``. Loads the model (or
        asks the server) to resolve an instruction left at ``None``.

        Raises:
            ValueError: ``side`` is neither ``"query"`` nor ``"document"``.
        """
        if side not in ("query", "document"):
            raise ValueError(f"side must be 'query' or 'document', got {side!r}")
        instructions = self.instructions()
        made_by = {
            "model": self.model,
            "revision": self.revision,
            "endpoint": self.endpoint,
            "instruction": instructions.query if side == "query" else instructions.document,
            "normalize": self.normalize,
        }
        digest = hashlib.sha256(json.dumps(made_by, sort_keys=True).encode("utf-8")).hexdigest()[:32]
        return f"instructor:{digest}:"

    def cached(
        self, store: ByteStore, *, cache_queries: bool = True, batch_size: int | None = None
    ) -> CacheBackedEmbeddings:
        """These embeddings behind LangChain's ``CacheBackedEmbeddings``, keyed on what made each vector.

        The naive ``CacheBackedEmbeddings.from_bytes_store(emb, store, query_embedding_cache=True)`` keys on the
        text alone, so a query and a document with the same text get one vector, whichever was embedded first
        (and so do two instructions, or two models, sharing a store). Here each side's keys are prefixed by
        :meth:`cache_namespace` and hashed with SHA-256, so one ``store`` holds both sides without collisions.

        Args:
            store: any LangChain ``ByteStore`` (``InMemoryByteStore``, ``LocalFileStore``, Redis...).
            cache_queries: also cache :meth:`embed_query` vectors (LangChain caches documents only by default).
            batch_size: documents embedded between store updates (``None``: all at once).

        Raises:
            ImportError: ``langchain-classic`` (where LangChain 1.x keeps ``CacheBackedEmbeddings``) is missing.
        """
        try:
            from langchain_classic.embeddings import CacheBackedEmbeddings
            from langchain_classic.storage import EncoderBackedStore
        except ImportError as exc:
            raise ImportError(
                "InstructorEmbeddings.cached needs langchain-classic: pip install langchain-classic"
            ) from exc

        def side_store(side: str) -> EncoderBackedStore[str, list[float]]:
            prefix = self.cache_namespace(side)
            return EncoderBackedStore(
                store,
                lambda text: prefix + hashlib.sha256(text.encode("utf-8")).hexdigest(),
                lambda vector: json.dumps(vector).encode("utf-8"),
                lambda data: json.loads(data.decode("utf-8")),
            )

        return CacheBackedEmbeddings(
            self,
            side_store("document"),
            batch_size=batch_size,
            query_embedding_store=side_store("query") if cache_queries else None,
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents with the document instruction."""
        if not texts:
            return []
        return to_lists(self.embedding_backend.embed(texts, self.instructions().document))

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with the query instruction."""
        return to_lists(self.embedding_backend.embed([text], self.instructions().query))[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents`; the event loop keeps running while the model works."""
        if not texts:
            return []
        return to_lists(await self.embedding_backend.aembed(texts, (await self.ainstructions()).document))

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query`; the event loop keeps running while the model works."""
        return to_lists(await self.embedding_backend.aembed([text], (await self.ainstructions()).query))[0]
