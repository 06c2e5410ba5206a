"""chatterbot-corpus (BSD-3-Clause, pip ``chatterbot-corpus``): conversational questions and answers.

Raw input: the corpus's (question, first answer, category) pairs
(:func:`instructor_plugins.corpora.chatterbot_pairs`). Each question is a split key.

Tasks: question -> answer (question answering); question -> another question of the same
category (symmetric, topic).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from instructor_plugins.corpora import QAPair, chatterbot_pairs
from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.splits import same_label_pairs

__all__ = ["SOURCE", "build", "locate"]


def build(raw: Sequence[QAPair]) -> list[TaskPairs]:
    """The chatterbot tasks (pure)."""
    qa = TaskPairs(
        task(
            "chatterbot_question_to_answer",
            "chatterbot",
            "question answering",
            ("conversational question", "retrieving its answer"),
            ("conversational answer", "retrieval"),
            category="retrieval",
        )
    )
    same = TaskPairs(
        task(
            "chatterbot_same_category",
            "chatterbot",
            "topic",
            ("conversational question", "classifying its topic"),
            category="classification",
        )
    )
    first = {p.question: p for p in raw}  # a question asked twice keeps its first answer
    by_category: dict[str, list[str]] = defaultdict(list)
    for question, p in first.items():
        qa.pairs.append(Pair(question, p.answer, "chatterbot:" + question.lower()))
        by_category[p.category].append(question)
    same.pairs.extend(same_label_pairs(by_category, lambda q: "chatterbot:" + q.lower()))
    return [qa, same]


def locate() -> list[QAPair]:
    """The corpus pairs; :class:`SourceUnavailable` when chatterbot-corpus is not installed."""
    try:
        return chatterbot_pairs()
    except (FileNotFoundError, ImportError) as exc:
        raise SourceUnavailable(f"chatterbot: {exc}") from exc


SOURCE = Source(
    name="chatterbot",
    licence="BSD-3-Clause (chatterbot-corpus)",
    install="pip install chatterbot-corpus",
    locate=locate,
    build=build,
    python_packages=("chatterbot-corpus",),
)
