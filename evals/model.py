"""The mteb encoder: INSTRUCTOR embeddings with the right instruction per task and side.

:class:`InstructorMTEBModel` implements mteb's encoder protocol (``mteb.models.AbsEncoder``)
over any :class:`~instructor_plugins.backends.EmbeddingBackend`: in process
(:class:`~instructor_plugins.backends.LocalBackend` around an
:class:`~instructor_plugins.model.InstructorEncoder`) or a Ray Serve endpoint
(``make_backend(endpoint=URL)``). For each ``encode`` call it picks the instruction from the
task name, the task type and mteb's ``prompt_type`` (see :mod:`evals.instructions`).

Texts repeated within one call (an STS task pairs each document with many others) are embedded
once and copied back; ``dedupe=False`` turns that off (the test suite checks both agree).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta
from mteb.types import PromptType

from evals.instructions import INSTRUCTION_MODES, InstructionChoice, choose_instruction, resolve_mode
from evals.meta import BUNDLED_ALIASES, get_model_meta, local_model_meta
from instructor_plugins.backends import EmbeddingBackend, LocalBackend, make_backend
from instructor_plugins.types import Encoder

__all__ = ["InstructorMTEBModel", "load_mteb_model", "model_meta", "unique_texts"]

logger = logging.getLogger(__name__)

TABLE_MODELS = ("hkunlp/instructor-base", "hkunlp/instructor-large", "hkunlp/instructor-xl")


def unique_texts(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in first-seen order and, per input, the index of its distinct text.

    >>> unique_texts(["a", "b", "a"])
    (['a', 'b'], array([0, 1, 0]))
    """
    index: dict[str, int] = {}
    inverse = [index.setdefault(t, len(index)) for t in texts]
    return list(index), np.asarray(inverse, dtype=np.int64)


def _log(message: str) -> None:
    logger.info(message)


class InstructorMTEBModel(AbsEncoder):
    """An mteb encoder that embeds with INSTRUCTOR-style instructions.

    Attributes:
        model: the embedding backend (``embed(texts, instruction)``).
        mteb_model_meta: the model's ``ModelMeta``; ``experiment_kwargs`` records the instructions mode.
        instructions: ``"paper"`` (per-task instructions) or ``"none"`` (ablation: no instructions).
        choices: every (task, side) -> instruction used so far, for reports and tests.
    """

    mteb_model_meta: ModelMeta

    def __init__(
        self,
        backend: EmbeddingBackend,
        meta: ModelMeta,
        *,
        instructions: str = "paper",
        table_model: str | None = None,
        dedupe: bool = True,
        log: Callable[[str], None] | None = _log,
    ) -> None:
        """Wrap ``backend``; ``table_model`` picks the paper table (default: the meta's name when it has one)."""
        if instructions not in ("paper", "none"):
            raise ValueError(f"unknown instructions mode {instructions!r}; valid: ['paper', 'none']")
        if table_model is None and meta.name in TABLE_MODELS:
            table_model = meta.name
        self.model = backend
        self.instructions = instructions
        self.table_model = table_model
        self.dedupe = dedupe
        self.log = log
        experiment = dict(meta.experiment_kwargs or {}) | {"instructions": instructions}
        self.mteb_model_meta = meta.model_copy(update={"experiment_kwargs": experiment})
        self.choices: dict[tuple[str, str], InstructionChoice] = {}

    def instruction_for(self, task_metadata: TaskMetadata, prompt_type: PromptType | None) -> InstructionChoice:
        """The instruction for ``task_metadata`` on the ``prompt_type`` side (logged once per side)."""
        choice = choose_instruction(
            task_metadata.name,
            str(task_metadata.type),
            prompt_type.value if prompt_type is not None else None,
            mode=self.instructions,
            table_model=self.table_model,
        )
        key = (task_metadata.name, prompt_type.value if prompt_type is not None else "symmetric")
        if key not in self.choices:
            self.choices[key] = choice
            if self.log is not None:
                self.log(f"[evals] {key[0]} ({task_metadata.type}, {key[1]}): {choice.source} {choice.instruction!r}")
        return choice

    def encode(
        self,
        inputs: Iterable[Mapping[str, Any]],
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Embed every ``text`` of ``inputs`` (mteb's batched dataloader) with the task's instruction.

        Returns:
            float32 ``(n, dim)`` in input order.
        """
        del hf_split, hf_subset, kwargs  # batch size and progress are the backend's settings
        texts = [str(t) for batch in inputs for t in batch["text"]]
        choice = self.instruction_for(task_metadata, prompt_type)
        if not self.dedupe:
            return np.asarray(self.model.embed(texts, choice.instruction), dtype=np.float32)
        distinct, inverse = unique_texts(texts)
        vectors = np.asarray(self.model.embed(distinct, choice.instruction), dtype=np.float32)
        return vectors[inverse] if len(texts) else vectors

    def __repr__(self) -> str:
        return f"InstructorMTEBModel(name={self.mteb_model_meta.name!r}, instructions={self.instructions!r})"


def load_mteb_model(
    model_name: str | None = None,
    revision: str | None = None,
    *,
    instructions: str = "auto",
    endpoint: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int = 32,
    show_progress: bool = False,
    encoder: Encoder | None = None,
    log: Callable[[str], None] | None = _log,
) -> InstructorMTEBModel:
    """Build the mteb model for ``model_name`` (also the loader of the :mod:`evals.meta` records).

    Args:
        model_name: ``None``/``"bundled"`` (the offline bundled model), ``hkunlp/instructor-*``, another
            hub id or a local checkpoint folder.
        revision: hub revision for hub ids (in-process only).
        instructions: ``"auto"`` (follow the model: ``paper`` when it is instruction-trained, else
            ``none``), ``"paper"`` or ``"none"``.
        endpoint: URL of the Ray Serve app (``make_backend(endpoint=...)``); the server's model is used,
            ``model_name`` only names the results. ``None`` embeds in this process.
        device: torch device for in-process encoding.
        dtype: ``"float32"``/``"bfloat16"``... for in-process encoding.
        batch_size: texts per forward pass (or per request).
        show_progress: progress bars while encoding.
        encoder: an already loaded ``InstructorEncoder`` (or compatible) to use in process.
        log: where per-task instruction lines go (``None``: silent).
    """
    if instructions not in INSTRUCTION_MODES:
        raise ValueError(f"unknown instructions mode {instructions!r}; valid: {list(INSTRUCTION_MODES)}")
    load_name = None if model_name is None or model_name in BUNDLED_ALIASES else model_name
    backend: Any
    if endpoint is not None:
        if encoder is not None:
            raise ValueError("pass either endpoint or encoder, not both")
        backend = make_backend(load_name, endpoint=endpoint, batch_size=batch_size, show_progress=show_progress)
    elif encoder is not None:
        backend = LocalBackend(encoder=encoder, batch_size=batch_size, show_progress=show_progress)
    else:
        from instructor_plugins.model import InstructorEncoder

        loaded = InstructorEncoder.load(load_name, device=device, dtype=dtype, revision=revision)
        backend = LocalBackend(encoder=loaded, batch_size=batch_size, show_progress=show_progress)
    meta = model_meta(model_name)
    if meta is None:
        assert model_name is not None  # None resolves to the bundled record
        local = getattr(backend, "encoder", None) if endpoint is None else None
        meta = local_model_meta(
            model_name,
            embed_dim=getattr(local, "dim", None),
            max_tokens=getattr(local, "max_seq_length", None),
        ).model_copy(update={"loader": load_mteb_model})
    mode = resolve_mode(instructions, backend.defaults)
    return InstructorMTEBModel(backend, meta, instructions=mode, log=log)


def model_meta(name: str | None) -> ModelMeta | None:
    """:func:`evals.meta.get_model_meta` with :func:`load_mteb_model` as the record's loader."""
    meta = get_model_meta(name)
    return None if meta is None else meta.model_copy(update={"loader": load_mteb_model})
