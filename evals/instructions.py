"""Which instruction a task gets on each side (query or document) in an evaluation.

Order of lookup in ``paper`` mode:

1. the paper's per-MTEB-task table (:func:`instructor_plugins.instructions.mteb_instructions`,
   the table of the evaluated model; instructor-large's for any other model, as upstream does);
2. this project's instructions for the offline tasks of :mod:`evals.tasks` (:data:`OFFLINE_INSTRUCTIONS`,
   written in the paper's unified format with :func:`~instructor_plugins.instructions.make_instruction`);
3. the preset for the task's mteb type (:data:`TASK_TYPE_PRESETS`, :func:`~instructor_plugins.instructions.preset`).

``none`` mode gives no instruction at all (the ablation). ``auto`` (the default of a run) follows
the model (:func:`resolve_mode`): ``paper`` for an instruction-trained model, ``none`` for one that
was not (such as the bundled all-MiniLM-L6-v2, which never saw instructions). The side comes from mteb's
``prompt_type``: ``document`` takes the document instruction; ``query`` and ``None`` (symmetric
tasks such as STS, classification, clustering) take the query one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from instructor_plugins.defaults import InstructionDefaults
from instructor_plugins.instructions import TaskInstructions, make_instruction, mteb_instructions, preset

__all__ = [
    "INSTRUCTION_MODES",
    "OFFLINE_INSTRUCTIONS",
    "TASK_TYPE_PRESETS",
    "InstructionChoice",
    "choose_instruction",
    "resolve_mode",
    "task_instructions",
]

InstructionMode = Literal["auto", "paper", "none"]
INSTRUCTION_MODES: tuple[str, ...] = ("auto", "paper", "none")
Source = Literal["paper", "offline", "preset", "none"]


def _same(instruction: str) -> TaskInstructions:
    return TaskInstructions(query=instruction, document=instruction)


# Not from the paper: our own instructions for the offline tasks (see evals/tasks.py).
OFFLINE_INSTRUCTIONS: dict[str, TaskInstructions] = {
    "LeeNewsSTS": _same(make_instruction("news article", "retrieving semantically similar articles")),
    "PangLeePolarityClassification": _same(
        make_instruction("movie review sentence", "classifying its sentiment as positive or negative")
    ),
    "MiniNewsgroupsClustering": _same(make_instruction("newsgroup post", "clustering by topic")),
    "ChatterbotQARetrieval": TaskInstructions(
        query=make_instruction("conversational question", "retrieving its answer"),
        document=make_instruction("conversational answer", "retrieval"),
    ),
    "WordNetDefinitionRetrieval": TaskInstructions(
        query=make_instruction("word", "retrieving its dictionary definition"),
        document=make_instruction("dictionary definition", "retrieval"),
    ),
}

# mteb task type -> preset name of instructor_plugins.instructions.preset
TASK_TYPE_PRESETS: dict[str, str] = {
    "Retrieval": "retrieval",
    "InstructionRetrieval": "retrieval",
    "Reranking": "reranking",
    "InstructionReranking": "reranking",
    "STS": "sts",
    "BitextMining": "sts",
    "Classification": "classification",
    "MultilabelClassification": "classification",
    "Clustering": "clustering",
    "PairClassification": "pair_classification",
    "Summarization": "summarization",
}


@dataclass(frozen=True)
class InstructionChoice:
    """The instruction for one side of one task, and where it came from."""

    instruction: str | None
    source: Source


def task_instructions(
    task_name: str, task_type: str, *, table_model: str | None = None
) -> tuple[TaskInstructions, Source]:
    """Both sides' instructions for a task in ``paper`` mode, with their source.

    Args:
        task_name: the mteb task name, e.g. ``"SciFact"``.
        task_type: the mteb task type, e.g. ``"Retrieval"``; used for the preset fallback.
        table_model: whose row of the paper table to use (``hkunlp/instructor-base``/``-large``/``-xl``);
            ``None`` or any other name uses instructor-large's.

    Raises:
        ValueError: the task is in no table and its type has no preset (names the valid types).
    """
    found = mteb_instructions(task_name, table_model)
    if found is not None:
        return found, "paper"
    if task_name in OFFLINE_INSTRUCTIONS:
        return OFFLINE_INSTRUCTIONS[task_name], "offline"
    if task_type not in TASK_TYPE_PRESETS:
        raise ValueError(
            f"no instruction for task {task_name!r} of type {task_type!r}: it is not in the paper's table and "
            f"the type has no preset; types with presets: {sorted(TASK_TYPE_PRESETS)}"
        )
    return preset(TASK_TYPE_PRESETS[task_type]), "preset"


def choose_instruction(
    task_name: str,
    task_type: str,
    prompt_type: str | None,
    *,
    mode: str = "paper",
    table_model: str | None = None,
) -> InstructionChoice:
    """The instruction for one side of a task.

    Args:
        task_name: mteb task name.
        task_type: mteb task type (``"Retrieval"``, ``"STS"``...).
        prompt_type: ``"query"``, ``"document"`` (mteb's ``PromptType`` values, which are ``str``) or ``None``.
        mode: ``"paper"`` or ``"none"``.
        table_model: see :func:`task_instructions`.

    >>> choose_instruction("ArguAna", "Retrieval", "document").instruction
    'Represent a Counter-argument: '
    >>> choose_instruction("ArguAna", "Retrieval", "query", mode="none")
    InstructionChoice(instruction=None, source='none')
    """
    if mode not in ("paper", "none"):
        raise ValueError(f"unknown instructions mode {mode!r}; valid: ['paper', 'none'] (resolve 'auto' first)")
    side = None if prompt_type is None else str(getattr(prompt_type, "value", prompt_type))
    if side not in (None, "query", "document"):
        raise ValueError(f"unknown prompt type {prompt_type!r}; valid: ['query', 'document', None]")
    if mode == "none":
        return InstructionChoice(None, "none")
    pair, source = task_instructions(task_name, task_type, table_model=table_model)
    return InstructionChoice(pair.document if side == "document" else pair.query, source)


def resolve_mode(mode: str, defaults: InstructionDefaults) -> str:
    """``auto`` -> ``paper`` for an instruction-trained model, else ``none``; other modes unchanged.

    >>> resolve_mode("auto", InstructionDefaults(instruction_trained=False))
    'none'
    >>> resolve_mode("paper", InstructionDefaults(instruction_trained=False))
    'paper'
    """
    if mode not in INSTRUCTION_MODES:
        raise ValueError(f"unknown instructions mode {mode!r}; valid: {list(INSTRUCTION_MODES)}")
    if mode != "auto":
        return mode
    return "paper" if defaults.instruction_trained else "none"
