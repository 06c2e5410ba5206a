"""One check of a source's built tasks, shared by the ``tests/unit/test_source_*.py`` tests on real installed data.

Every source test builds the source's tasks from the files installed on this machine and checks the same things
of them: the task names, each task's category and source, at least 300 distinct pairs a task, every pair keyed
under the source's name and never pairing a text with itself, every text clean and within the source's length
bounds, and a label on every pair of a same-label task. :func:`check_tasks` makes those checks once, with each
source's own bounds passed in (a :class:`Text` a side); what only one source checks stays in its test.
:func:`installed` reads the source's files, or skips the test on a machine without them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import pytest

from training.recipe.sources import CATEGORIES, Pair, SourceUnavailable, TaskPairs

__all__ = ["CLEAN", "SAME_LABEL", "Text", "check_tasks", "check_text", "installed"]

Raw = TypeVar("Raw")

SAME_LABEL: tuple[str, ...] = ("classification", "clustering", "pair_classification")
"""The categories of same-label tasks: each of their pairs carries the label its two texts share."""


def installed(locate: Callable[[], Raw], missing: str = "") -> Raw:
    """The source's raw input on this machine, or skip the test.

    Args:
        locate: the source's ``locate`` (it raises :class:`SourceUnavailable` when the files are not there).
        missing: what the skip message says before the exception's own one line.
    """
    try:
        return locate()
    except SourceUnavailable as exc:
        pytest.skip(f"{missing}{exc}")


@dataclass(frozen=True)
class Text:
    """What every text of one side of a task's pairs must be.

    Attributes:
        min_len: the fewest characters it may have.
        max_len: the most characters it may have; ``None``: no upper bound.
        stripped: it has no white space at either end.
        banned: substrings it never contains (by default double spaces and newlines).
        banned_starts: prefixes it never starts with.
        pattern: a regular expression that :func:`re.search` never finds in it.
        ok: one more test of the text, for what a pattern cannot say; it must return true.
    """

    min_len: int = 10
    max_len: int | None = 400
    stripped: bool = True
    banned: tuple[str, ...] = ("  ", "\n")
    banned_starts: tuple[str, ...] = ()
    pattern: str | None = None
    ok: Callable[[str], bool] | None = None


CLEAN = Text()
"""10 to 400 characters, stripped, without double spaces or newlines."""


def check_text(text: str, rule: Text) -> None:
    """Assert that ``text`` is what ``rule`` asks (the failure message is the text)."""
    assert rule.min_len <= len(text), text
    assert rule.max_len is None or len(text) <= rule.max_len, text
    assert not rule.stripped or text == text.strip(), text
    assert not any(part in text for part in rule.banned), text
    assert not text.startswith(rule.banned_starts), text
    assert rule.pattern is None or not re.search(rule.pattern, text), text
    assert rule.ok is None or rule.ok(text), text


def check_tasks(
    tasks: Sequence[TaskPairs],
    source: str,
    names: Sequence[str] | int,
    *,
    categories: Sequence[str] | None = None,
    instruction: str = "",
    min_pairs: int = 300,
    query: Text | None = CLEAN,
    pos: Text | None = CLEAN,
    sides: Mapping[str, tuple[Text | None, Text | None]] | None = None,
    labelled: Collection[str] = SAME_LABEL,
    labels: Container[str] | None = None,
    each: Callable[[TaskPairs, Pair], None] | None = None,
) -> None:
    """Assert what every source's real tasks must be.

    Args:
        tasks: the tasks the source built from this machine's files.
        source: the source's name: every task's ``spec.source``, the prefix of its name (``source_``) and of
            every pair's key (``source:``).
        names: the task names in order, or how many tasks there are; either way no two share a name.
        categories: each task's category in order; every category is one of :data:`CATEGORIES` anyway.
        instruction: a substring of every task's query instruction.
        min_pairs: the fewest distinct (query, pos) pairs a task may have.
        query: what every query is; ``None``: not checked.
        pos: what every positive is; ``None``: not checked.
        sides: ``(query, pos)`` rules of the tasks so named, instead of ``query`` and ``pos``.
        labelled: the categories whose tasks have a label on every pair.
        labels: where given, every label of those tasks is in it.
        each: a further check of every pair of every task (what only this source asks).
    """
    got = [t.spec.name for t in tasks]
    assert len(got) == len(set(got)), got
    if isinstance(names, int):
        assert len(got) == names, got
    else:
        assert got == list(names)
    if categories is not None:
        assert [t.spec.category for t in tasks] == list(categories)
    for t in tasks:
        spec = t.spec
        assert spec.name.startswith(source + "_") and spec.source == source, spec
        assert spec.category in CATEGORIES and instruction in spec.query_instruction, spec
        assert len({(p.query, p.pos) for p in t.pairs}) >= min_pairs, spec.name
        query_rule, pos_rule = (sides or {}).get(spec.name, (query, pos))
        for p in t.pairs:
            assert p.key.startswith(source + ":") and p.query != p.pos, p
            for text, rule in ((p.query, query_rule), (p.pos, pos_rule)):
                if rule is not None:
                    check_text(text, rule)
            if spec.category in labelled:
                assert p.label and (labels is None or p.label in labels), p
            if each is not None:
                each(t, p)
