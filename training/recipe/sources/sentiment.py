"""Sentence sentiment: WordNet's example sentences labelled by VADER (MIT, pip ``vaderSentiment``).

Raw input: WordNet's ``data.*`` texts, as :mod:`training.recipe.sources.wordnet` reads them. Each example
sentence gets VADER's compound score (a rule-based scorer over a lexicon of 7,500 human-rated words,
with negation and intensifiers). A sentence at or above ``+THRESHOLD`` is positive, at or below
``-THRESHOLD`` negative; the rest are not used. Each synset is one split key, as in the WordNet
tasks, so a sentence lands in the same split here and in ``wordnet_example_to_sense``.

Task: sentence -> another sentence of the same sentiment (symmetric, sentiment). Mined negatives
never share the label, so a query's negative is the nearest sentence of the *other* sentiment:
the model must separate sentiment from topic.

The labels are distant supervision (VADER's, not a person's). No movie review is used: the
held-out Pang & Lee polarity task stays unseen.
"""

from __future__ import annotations

from collections.abc import Callable

from training.recipe.sources import Source, SourceUnavailable, TaskPairs, task, wordnet
from training.recipe.sources.splits import same_label_pairs

__all__ = ["SOURCE", "THRESHOLD", "build", "label_of", "locate"]

THRESHOLD = 0.5
"""|VADER compound| a sentence needs to count as positive or negative."""


def _vader() -> Callable[[str], float]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return lambda text: float(analyzer.polarity_scores(text)["compound"])


def label_of(score: float, threshold: float = THRESHOLD) -> str | None:
    """``positive``, ``negative`` or ``None`` (too neutral to use) for a compound score.

    >>> label_of(0.7), label_of(-0.5), label_of(0.2)
    ('positive', 'negative', None)
    """
    if score >= threshold:
        return "positive"
    if score <= -threshold:
        return "negative"
    return None


def build(raw: dict[str, str]) -> list[TaskPairs]:
    """The sentiment task from ``{pos: WordNet data file text}`` (pure: VADER is deterministic)."""
    spec = task(
        "wordnet_same_sentiment",
        "sentiment",
        "sentiment",
        ("sentence", "classifying its sentiment"),
        category="classification",
    )
    same = TaskPairs(spec)
    score = _vader()
    key_of: dict[str, str] = {}
    by_label: dict[str, list[str]] = {"negative": [], "positive": []}
    for synset in wordnet.synsets_of(raw):
        for sentence in synset.examples:
            if sentence in key_of:
                continue
            label = label_of(score(sentence))
            if label is not None:
                key_of[sentence] = synset.id
                by_label[label].append(sentence)
    same.pairs.extend(same_label_pairs(by_label, key_of.__getitem__))
    return [same]


def locate() -> dict[str, str]:
    """WordNet's data texts; :class:`SourceUnavailable` when WordNet or vaderSentiment is missing."""
    try:
        import vaderSentiment  # noqa: F401
    except ImportError as exc:
        raise SourceUnavailable("sentiment: vaderSentiment is not installed (pip install vaderSentiment)") from exc
    try:
        return wordnet.locate()
    except SourceUnavailable as exc:
        raise SourceUnavailable(f"sentiment: {exc}") from exc


SOURCE = Source(
    name="sentiment",
    licence="WordNet 3.0 license (sentences); labels by VADER (MIT)",
    install="apt-get install wordnet-base; pip install vaderSentiment",
    locate=locate,
    build=build,
    debian_packages=("wordnet-base",),
    python_packages=("vaderSentiment",),
)
