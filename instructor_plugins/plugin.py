"""What the LangChain and LlamaIndex classes share: backend creation, ``from_backend``, ``for_task``, instructions.

:class:`InstructorPlugin` is a mixin for the two pydantic classes. Each class names its two
instruction fields (LangChain: ``query_instruction``/``document_instruction``; LlamaIndex:
``query_instruction``/``text_instruction``) and returns its backend settings from
:meth:`InstructorPlugin._backend_settings`; everything else lives here once.

Instructions: a field left at ``None`` means "the model's recorded default"
(:class:`~instructor_plugins.defaults.InstructionDefaults`): the retrieval instructions for an
INSTRUCTOR checkpoint, none for a model that was not instruction-trained (the bundled
all-MiniLM-L6-v2). The fields read back what was passed (``None`` included), so a serialized
instance keeps following its model; :meth:`InstructorPlugin.instructions` gives the resolved pair.
An explicit instruction on a model that was not instruction-trained still applies, with one
``UserWarning`` per model and process.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from instructor_plugins.backends import EmbeddingBackend, make_backend
from instructor_plugins.defaults import InstructionDefaults
from instructor_plugins.instructions import TaskInstructions, preset

__all__ = ["BackendSlot", "InstructorPlugin", "drop_in_arguments", "to_lists"]

P = TypeVar("P", bound="InstructorPlugin")

_WARNED: set[str] = set()
_WARNED_LOCK = threading.Lock()


class BackendSlot:
    """The plugin's backend: built from the settings on first use, rebuilt when they change, or injected."""

    def __init__(self) -> None:
        self.backend: EmbeddingBackend | None = None
        self.settings: dict[str, Any] | None = None
        self.injected = False

    def get(self, settings: dict[str, Any]) -> EmbeddingBackend:
        """The backend for ``settings`` (an injected backend is kept whatever the settings)."""
        if self.backend is None or (not self.injected and settings != self.settings):
            self.backend = make_backend(**settings)
            self.settings = dict(settings)
        return self.backend

    def inject(self, backend: EmbeddingBackend) -> None:
        """Use ``backend`` from now on."""
        if not isinstance(backend, EmbeddingBackend):
            raise TypeError(
                f"backend must implement EmbeddingBackend (defaults, embed, aembed), got {type(backend).__name__}"
            )
        self.backend, self.injected = backend, True


def drop_in_arguments(data: dict[str, Any], name: str, mapping: Mapping[str, str]) -> dict[str, Any]:
    """Map a predecessor's options dict (e.g. LangChain's ``model_kwargs``) onto our fields.

    ``data[name]`` stays as given (it can be read back); each known key sets its field unless the
    field was also passed with another value.

    Raises:
        ValueError: a key we cannot honour (names it and the supported ones), or a conflict.
    """
    options = data.get(name)
    if options is None:
        return data
    if not isinstance(options, Mapping):
        raise ValueError(f"{name} must be a dict, got {type(options).__name__}")
    unsupported = sorted(set(options) - set(mapping))
    if unsupported:
        raise ValueError(f"{name} key(s) {unsupported} cannot be honoured here; supported: {sorted(mapping)}")
    out = dict(data)
    for key, field in mapping.items():
        if key not in options:
            continue
        if field in out and out[field] != options[key]:
            raise ValueError(f"{name}[{key!r}]={options[key]!r} conflicts with {field}={out[field]!r}; pass one")
        out[field] = options[key]
    return out


def _warn_untrained(model_key: str, side: str, instruction: str) -> None:
    with _WARNED_LOCK:
        if model_key in _WARNED:
            return
        _WARNED.add(model_key)
    warnings.warn(
        f"model {model_key} was not instruction-trained, but a {side} instruction {instruction!r} was given; "
        "it is applied, but such a model usually embeds best with none (pass '' or leave the field None)",
        UserWarning,
        stacklevel=4,
    )


class InstructorPlugin:
    """Mixin of the LangChain and LlamaIndex classes (see the module docstring)."""

    _QUERY_FIELD: ClassVar[str] = "query_instruction"
    _DOCUMENT_FIELD: ClassVar[str]
    _DOCUMENT_ALIASES: ClassVar[tuple[str, ...]] = ()
    _slot: BackendSlot

    @classmethod
    def for_task(cls: type[P], task: str, *, domain: str | None = None, **kwargs: Any) -> P:
        """Build an instance whose two instructions come from the task presets.

        Args:
            task: a preset name from :data:`instructor_plugins.instructions.PRESETS`
                (``"retrieval"``, ``"classification"``, ``"clustering"``, ``"sts"``, ...).
            domain: optional domain word(s), e.g. ``"Wikipedia"`` or ``"medical"``.
            **kwargs: any other field (model, batch size, endpoint, ...).

        Raises:
            ValueError: an unknown task (the message lists the valid ones).
            TypeError: ``kwargs`` also sets an instruction.
        """
        fields = {cls._QUERY_FIELD, cls._DOCUMENT_FIELD, *cls._DOCUMENT_ALIASES}
        clash = sorted(fields & kwargs.keys())
        if clash:
            raise TypeError(f"for_task sets both instructions itself; do not also pass {clash}")
        instructions = preset(task, domain=domain)
        kwargs[cls._QUERY_FIELD] = instructions.query
        kwargs[cls._DOCUMENT_FIELD] = instructions.document
        return cls(**kwargs)

    @classmethod
    def from_backend(cls: type[P], backend: EmbeddingBackend, **kwargs: Any) -> P:
        """Use an already built backend (e.g. one wrapping a Ray deployment handle, or a test encoder).

        The batch size, normalisation, device and progress fields are then the backend's business.
        """
        instance = cls(**kwargs)
        instance._slot.inject(backend)
        return instance

    def _backend_settings(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~instructor_plugins.backends.make_backend` from the fields."""
        raise NotImplementedError

    @property
    def embedding_backend(self) -> EmbeddingBackend:
        """What computes the vectors (in process, or a client of the server), built on first use.

        Built again when its fields change. (The ``backend`` field is where an in-process encoder runs:
        ``"torch"``, ``"onnx"`` or ``"openvino"``.)
        """
        return self._slot.get(self._backend_settings())

    @property
    def model_defaults(self) -> InstructionDefaults:
        """The model's instruction defaults (loads the model, or asks the server, on first use)."""
        return self.embedding_backend.defaults

    def _model_key(self) -> str:
        settings = self._backend_settings()
        where = f" at {settings['endpoint']}" if settings.get("endpoint") else ""
        return f"{settings.get('model') or 'bundled'}{where}"

    def _resolve(self, field: str, default: str, side: str) -> str:
        value: str | None = getattr(self, field)
        if value is None:
            return default
        if value and not self.model_defaults.instruction_trained:
            _warn_untrained(self._model_key(), side, value)
        return value

    async def ainstructions(self) -> TaskInstructions:
        """:meth:`instructions` off the event loop (the first call may load the model or ask the server)."""
        return await asyncio.to_thread(self.instructions)

    def instructions(self) -> TaskInstructions:
        """The instructions in use: the fields, or the model's defaults where a field is ``None``."""
        defaults = self.model_defaults
        return TaskInstructions(
            query=self._resolve(self._QUERY_FIELD, defaults.query, "query"),
            document=self._resolve(self._DOCUMENT_FIELD, defaults.document, "document"),
        )


def to_lists(vectors: np.ndarray | Sequence[Any]) -> list[list[float]]:
    """Rows as lists of Python floats, which LangChain's and LlamaIndex's stores and serializers expect."""
    result: list[list[float]] = np.asarray(vectors, dtype=np.float32).tolist()
    return result
