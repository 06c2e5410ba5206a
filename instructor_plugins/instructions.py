"""Instructions in the INSTRUCTOR paper's unified format, task presets, and the per-MTEB-task table.

The unified format (arXiv 2212.09741, section 2.3) is::

    Represent the (domain) (text type) for (task objective):

with the domain and the objective optional. Retrieval embeds queries and documents with two
different instructions; symmetric tasks (STS, clustering, classification) use one for both sides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "PRESETS",
    "TaskInstructions",
    "make_instruction",
    "mteb_instructions",
    "preset",
]


def make_instruction(text_type: str, objective: str | None = None, domain: str | None = None) -> str:
    """Build ``"Represent the (domain) (text type) for (objective): "``.

    >>> make_instruction("question", "retrieving supporting documents", domain="Wikipedia")
    'Represent the Wikipedia question for retrieving supporting documents: '
    >>> make_instruction("sentence")
    'Represent the sentence: '
    """
    if not isinstance(text_type, str) or not text_type.strip():
        raise ValueError(f"text_type must be a non-empty string, got {text_type!r}")
    words = ["Represent the"]
    if domain:
        words.append(domain.strip())
    words.append(text_type.strip())
    if objective:
        words.append(f"for {objective.strip()}")
    return " ".join(words) + ": "


@dataclass(frozen=True)
class TaskInstructions:
    """The query-side and document-side instruction of a task (equal for symmetric tasks)."""

    query: str
    document: str

    @property
    def symmetric(self) -> bool:
        """True when both sides use the same instruction."""
        return self.query == self.document


def _symmetric(text_type: str, objective: str | None = None) -> tuple[tuple[str, str | None], tuple[str, str | None]]:
    return (text_type, objective), (text_type, objective)


# task -> ((query text type, objective), (document text type, objective)); the domain is filled in.
_PRESET_PARTS: dict[str, tuple[tuple[str, str | None], tuple[str, str | None]]] = {
    "retrieval": (("question", "retrieving supporting documents"), ("document", "retrieval")),
    "classification": _symmetric("sentence", "classifying its topic"),
    "clustering": _symmetric("sentence", "clustering"),
    "sts": _symmetric("sentence", "retrieving duplicate sentences"),
    "pair_classification": _symmetric("sentence", "retrieving duplicate sentences"),
    "reranking": (("question", "retrieving relevant documents"), ("document", "retrieval")),
    "summarization": (("summary", "retrieving semantically similar summaries"), ("summary", None)),
    "qa": (("question", "retrieving the answer"), ("answer", "retrieval")),
}
_ALIASES = {"semantic_similarity": "sts", "similarity": "sts", "search": "retrieval", "rerank": "reranking"}
PRESETS: tuple[str, ...] = tuple(_PRESET_PARTS)


def preset(task: str, *, domain: str | None = None) -> TaskInstructions:
    """Query and document instructions for a task type, optionally for a domain.

    Args:
        task: one of :data:`PRESETS` (``retrieval``, ``classification``, ``clustering``, ``sts``,
            ``pair_classification``, ``reranking``, ``summarization``, ``qa``), case-insensitive;
            MTEB type names such as ``"Retrieval"`` or ``"STS"`` work too.
        domain: e.g. ``"Wikipedia"``, ``"medical"``, ``"financial"``.

    >>> preset("retrieval", domain="Wikipedia").query
    'Represent the Wikipedia question for retrieving supporting documents: '
    """
    key = task.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key == "pairclassification":
        key = "pair_classification"
    if key not in _PRESET_PARTS:
        raise ValueError(f"unknown task {task!r}; valid: {list(PRESETS)}")
    (q_type, q_obj), (d_type, d_obj) = _PRESET_PARTS[key]
    return TaskInstructions(
        query=make_instruction(q_type, q_obj, domain),
        document=make_instruction(d_type, d_obj, domain),
    )


@cache
def _table() -> dict[str, Any]:
    text = resources.files("instructor_plugins").joinpath("data/mteb_instructions.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


DEFAULT_TABLE_MODEL = "hkunlp/instructor-large"


def mteb_instructions(task_name: str, model: str | None = None) -> TaskInstructions | None:
    """The paper's instructions for an MTEB task, or ``None`` if the paper has none for it.

    The table (``instructor_plugins/data/mteb_instructions.json``) is the official evaluation
    code's ``DEFINITIONS`` for instructor-base, -large and -xl; any other model uses the
    instructor-large table, as the official code does. The strings are kept exactly as published.
    """
    models: dict[str, dict[str, dict[str, str]]] = _table()["models"]
    table = models.get(model or DEFAULT_TABLE_MODEL, models[DEFAULT_TABLE_MODEL])
    entry = table.get(task_name)
    if entry is None:
        return None
    return TaskInstructions(query=entry["query"], document=entry["document"])


def mteb_task_names(model: str | None = None) -> list[str]:
    """Task names that the paper's table covers for ``model`` (default instructor-large)."""
    models: dict[str, dict[str, Any]] = _table()["models"]
    return sorted(models.get(model or DEFAULT_TABLE_MODEL, models[DEFAULT_TABLE_MODEL]))
