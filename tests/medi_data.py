"""A small MEDI-format training set built in the test, from text every dev install has (no Debian package).

Three tasks, each with its own instructions in the paper's unified format:

- ``chatterbot_qa``: a chatterbot-corpus question -> its answer (the corpus is a dev dependency);
- ``python_name_to_summary``: a standard-library function's qualified name -> the first line of its docstring;
- ``python_summary_to_name``: that line -> the name.

Negatives are another item of the same task drawn at random. The rows are what ``training.medi`` reads; the
data only has to be real text with distinct tasks, so the Ray Train tests run wherever the dev extra is installed.
"""

from __future__ import annotations

import importlib
import inspect
import random
from collections.abc import Callable
from pathlib import Path

from instructor_plugins.corpora import chatterbot_pairs
from instructor_plugins.instructions import make_instruction
from training.medi import MediExample, save_medi

__all__ = ["TASKS", "medi_sample", "write_medi_sample"]

Pair = tuple[str, str]
_MODULES = (
    "base64 bisect calendar colorsys difflib fnmatch functools glob heapq itertools json math operator os os.path "
    "random re shlex shutil statistics string textwrap zlib"
).split()


def python_summaries() -> list[Pair]:
    """``(module.function, first docstring line)`` for public standard-library callables, sorted, one per line."""
    seen: dict[str, str] = {}
    for module_name in _MODULES:
        module = importlib.import_module(module_name)
        for name, obj in inspect.getmembers(module, callable):
            doc = inspect.getdoc(obj) if not name.startswith("_") else None
            summary = doc.strip().splitlines()[0].strip() if doc else ""
            if len(summary) > 15 and not summary.startswith(name) and summary not in seen:
                seen[summary] = f"{module_name}.{name}"
    return sorted((name, summary) for summary, name in seen.items())


def _chatterbot() -> list[Pair]:
    return [(p.question, p.answer) for p in {p.question: p for p in chatterbot_pairs()}.values()]


def _name_to_summary() -> list[Pair]:
    return python_summaries()


def _summary_to_name() -> list[Pair]:
    return [(summary, name) for name, summary in python_summaries()]


# task -> (pairs, query instruction, document instruction)
TASKS: dict[str, tuple[Callable[[], list[Pair]], str, str]] = {
    "chatterbot_qa": (
        _chatterbot,
        make_instruction("question", "retrieving the answer", domain="conversational"),
        make_instruction("answer", "retrieval", domain="conversational"),
    ),
    "python_name_to_summary": (
        _name_to_summary,
        make_instruction("function name", "retrieving its documentation", domain="Python"),
        make_instruction("documentation summary", "retrieval", domain="Python"),
    ),
    "python_summary_to_name": (
        _summary_to_name,
        make_instruction("documentation summary", "retrieving the function it describes", domain="Python"),
        make_instruction("function name", "retrieval", domain="Python"),
    ),
}


def medi_sample(per_task: int, tasks: int = 3, seed: int = 0) -> list[MediExample]:
    """``per_task`` examples of each of the first ``tasks`` tasks of :data:`TASKS`."""
    out = []
    for task in list(TASKS)[:tasks]:
        pairs_of, query_instruction, doc_instruction = TASKS[task]
        rng = random.Random(f"{seed}:{task}")
        pairs = pairs_of()
        for query, pos in rng.sample(pairs, per_task):
            neg = rng.choice([p for _, p in pairs if p != pos])
            out.append(MediExample((query_instruction, query), (doc_instruction, pos), (doc_instruction, neg), task))
    return out


def write_medi_sample(path: Path, per_task: int, tasks: int = 3, seed: int = 0) -> Path:
    """:func:`medi_sample` saved as MEDI JSON at ``path``."""
    return save_medi(medi_sample(per_task, tasks, seed), path)
