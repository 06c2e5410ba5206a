"""Offline text sources for the instruction-finetuning corpus: one small module per source.

Every source module exposes ``SOURCE`` (a :class:`Source`): its name, licence, the raw files it
reads (``locate()``, which raises :class:`SourceUnavailable` with one line naming what to install)
and a **pure function** ``build(raw) -> list[TaskPairs]`` from the raw text to MEDI pairs. A MEDI
row is a pair plus a hard negative; negatives are mined later with the base encoder
(:mod:`training.recipe.corpus`), because that needs a model.

Every task names its task type in both instructions, in the paper's unified format
("Represent the (domain) (text type) for (objective): "), so the model can learn what the
instruction asks for: ``definition``, ``synonym``, ``topic``, ``question answering``...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from instructor_plugins.instructions import make_instruction

__all__ = [
    "CATEGORIES",
    "DEFAULT_SOURCES",
    "NARROW_SOURCES",
    "WIDE_SOURCES",
    "SOURCES",
    "Pair",
    "Source",
    "SourceUnavailable",
    "TaskPairs",
    "TaskSpec",
    "get_source",
    "sources_help",
    "task",
]

Shape = Literal["asymmetric", "symmetric"]
Category = Literal[
    "retrieval", "reranking", "classification", "clustering", "sts", "pair_classification", "summarization"
]
CATEGORIES: tuple[str, ...] = (
    "retrieval",
    "reranking",
    "classification",
    "clustering",
    "sts",
    "pair_classification",
    "summarization",
)
"""The paper's task categories (MTEB's), which every task names as its ``category``."""


class SourceUnavailable(FileNotFoundError):
    """A source's raw files are not on this machine; the message is one line naming what to install."""


@dataclass(frozen=True)
class Pair:
    """A (query, positive) pair of one task.

    Attributes:
        query: the anchor text.
        pos: its positive text.
        key: the split unit (a package, a synset, a headword...): every pair sharing a key lands in
            the same split, so a split never sees another split's entry from another angle.
        label: for same-label tasks, the label the two texts share; a mined negative never has it.
        neg: a hard negative the source knows (an antonym); used instead of a mined one.
    """

    query: str
    pos: str
    key: str
    label: str | None = None
    neg: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    """One task: its name, shape, task type, the paper's category and the unified-format instructions of both sides.

    ``task_type`` is what the pair relation is (``definition``, ``translation``, ``code search``...);
    ``category`` is the paper's task category it trains (one of :data:`CATEGORIES`): a same-label task
    trains ``classification`` or ``clustering``, a symmetric paraphrase ``sts``, and so on.
    """

    name: str
    source: str
    shape: Shape
    task_type: str
    query_instruction: str
    document_instruction: str
    category: Category = "retrieval"

    def to_dict(self) -> dict[str, str]:
        """A plain dict for the manifest."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class TaskPairs:
    """A task and its pairs, in the source's own (deterministic) order."""

    spec: TaskSpec
    pairs: list[Pair] = field(default_factory=list)


def task(
    name: str,
    source: str,
    task_type: str,
    query: tuple[str, str | None],
    document: tuple[str, str | None] | None = None,
    *,
    domain: str | None = None,
    category: Category = "retrieval",
) -> TaskSpec:
    """A :class:`TaskSpec` from ``(text type, objective)`` parts; no ``document`` = symmetric.

    >>> task("t", "s", "synonym", ("word", "finding its synonyms")).document_instruction
    'Represent the word for finding its synonyms: '
    """
    doc = document or query
    return TaskSpec(
        name=name,
        source=source,
        shape="symmetric" if document is None else "asymmetric",
        task_type=task_type,
        query_instruction=make_instruction(query[0], query[1], domain),
        document_instruction=make_instruction(doc[0], doc[1], domain),
        category=_check_category(category),
    )


def _check_category(category: str) -> Category:
    if category not in CATEGORIES:
        raise ValueError(f"unknown task category {category!r}; valid: {list(CATEGORIES)}")
    return category  # type: ignore[return-value]


@dataclass(frozen=True)
class Source:
    """An offline text source.

    Attributes:
        name: short name (``debian``, ``wordnet``...).
        licence: the licence of the text, for the manifest.
        install: what to install when it is missing (one line).
        locate: returns the raw input (paths or text) or raises :class:`SourceUnavailable`.
        build: pure function from that raw input to the source's tasks.
        debian_packages: the Debian packages whose files it reads (their versions go to the manifest).
        python_packages: the Python distributions it reads (their versions go to the manifest).
        files: glob patterns of the files it reads outside those packages' records (sizes and
            modification dates go to the manifest), e.g. apt's package lists.
    """

    name: str
    licence: str
    install: str
    locate: Callable[[], Any]
    build: Callable[[Any], list[TaskPairs]]
    debian_packages: tuple[str, ...] = ()
    python_packages: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def tasks(self) -> list[TaskPairs]:
        """Locate the raw files and build the tasks."""
        return self.build(self.locate())


_TRAINING_MODULES = (
    "debian",
    "wordnet",
    "dictd",
    "chatterbot",
    "sentiment",
    "paraphrase",
    "pycode",
    "pydoc_topics",
    "pythondocs",
    "perldoc",
    "freedict",
    "devil",
    "elements",
    "emoji_names",
    "changelogs",
    "licences",
    "pypi_metadata",
)
_HELDOUT_MODULES = ("computing", "manpages", "vimhelp", "gensim_data")


def _registry() -> dict[str, Source]:
    import importlib

    modules = [importlib.import_module(f"{__name__}.{m}") for m in (*_TRAINING_MODULES, *_HELDOUT_MODULES)]
    return {m.SOURCE.name: m.SOURCE for m in modules}


NARROW_SOURCES: tuple[str, ...] = ("debian", "wordnet", "dictd", "chatterbot")
"""The corpus before the diversity work: 16 tasks from 4 sources (the diversity ablation's narrow arm)."""
WIDE_SOURCES: tuple[str, ...] = (
    *NARROW_SOURCES,
    "pycode",
    "pydoc_topics",
    "pythondocs",
    "perldoc",
    "freedict",
    "devil",
    "elements",
    "emoji",
    "changelogs",
    "licences",
    "pypi_metadata",
)
"""Every independent training source (the diversity ablation's wide arm): 15 sources, 40+ tasks of all the paper's
categories but reranking."""
SOURCES: tuple[str, ...] = (*WIDE_SOURCES, "sentiment", "paraphrase")
"""Every source a corpus may read (the valid names of ``--sources``). The held-out sources
(``training.recipe.heldout.HELDOUT_SOURCES``: computing, manpages, vimhelp, gensim) are not among them."""
DEFAULT_SOURCES: tuple[str, ...] = WIDE_SOURCES
"""The sources a corpus reads unless told otherwise. ``sentiment`` and ``paraphrase`` are opt-in: over four
seeds they raised the held-out polarity task and lowered Lee STS, and the mean held-out gain fell (README)."""


def sources_help() -> str:
    """The ``--sources`` help text, from :data:`SOURCES` and :data:`DEFAULT_SOURCES`."""
    opt_in = [s for s in SOURCES if s not in DEFAULT_SOURCES]
    return (
        f"Text sources of the corpus, any of: {', '.join(SOURCES)} ({', '.join(opt_in)}: opt-in, not in the "
        "default); a missing one is skipped with one log line and listed in the manifest."
    )


def get_source(name: str) -> Source:
    """The :class:`Source` called ``name``; ``ValueError`` lists the valid names."""
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown source {name!r}; valid: {sorted(registry)}")
    return registry[name]
