"""gensim's test data (pip ``gensim``, LGPL-2.1 package): Pang & Lee polarity snippets, mini newsgroups.

Raw input: the labelled texts as :mod:`evals.offline_data` reads them. Tiny (200 texts each), so
useful as held-out tasks rather than training volume; each text is a split key.

Tasks: movie-review snippet -> another snippet of the same sentiment (symmetric); newsgroup post
-> another post of the same newsgroup (symmetric, topic).
"""

from __future__ import annotations

import random

from evals.offline_data import LabeledTexts, newsgroups, polarity
from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.splits import same_split_partner

__all__ = ["SOURCE", "build", "locate"]


def _same_label(data: LabeledTexts, out: TaskPairs, prefix: str) -> None:
    rng = random.Random(0)
    for label in sorted(set(data.labels)):
        members = [t for t, y in zip(data.texts, data.labels, strict=True) if y == label]
        for a, b in same_split_partner(members, lambda t: prefix + t, rng):
            out.pairs.append(Pair(a, b, prefix + a, label=data.label_names[label]))


def build(raw: dict[str, LabeledTexts]) -> list[TaskPairs]:
    """The gensim tasks from ``{"polarity": ..., "newsgroups": ...}`` (pure)."""
    out = []
    if "polarity" in raw:
        sentiment = TaskPairs(
            task(
                "polarity_same_sentiment",
                "gensim",
                "sentiment",
                ("movie review sentence", "classifying its sentiment"),
                category="classification",
            )
        )
        _same_label(raw["polarity"], sentiment, "polarity:")
        out.append(sentiment)
    if "newsgroups" in raw:
        topic = TaskPairs(
            task(
                "newsgroups_same_topic",
                "gensim",
                "topic",
                ("newsgroup post", "clustering by topic"),
                category="clustering",
            )
        )
        _same_label(raw["newsgroups"], topic, "newsgroups:")
        out.append(topic)
    return out


def locate() -> dict[str, LabeledTexts]:
    """The labelled texts; :class:`SourceUnavailable` when gensim's test data is not installed."""
    try:
        return {"polarity": polarity(), "newsgroups": newsgroups()}
    except (FileNotFoundError, ImportError) as exc:
        raise SourceUnavailable(f"gensim: {exc}") from exc


SOURCE = Source(
    name="gensim",
    licence="gensim test data (gensim is LGPL-2.1; the original data sets state no licence)",
    install="pip install gensim",
    locate=locate,
    build=build,
    python_packages=("gensim",),
)
