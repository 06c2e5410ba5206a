"""reranking.lexical_candidates: exact candidates on a tiny inline example."""

from __future__ import annotations

import pytest

from training.recipe.sources.reranking import lexical_candidates, tokens

DOCS = [
    "the cat sat on the mat",
    "a dog chased the cat",
    "stock markets fell sharply today",
    "the cat and the dog are friends",
    "quantum physics of black holes",
    "the cat sat on the mat",  # the same text as document 0: never a candidate against it
]
QUERIES = ["cat on a mat", "dog", "black holes in physics"]
POSITIVES = [0, 1, 4]


def test_candidates_are_the_positive_and_the_lexically_nearest() -> None:
    got = lexical_candidates(QUERIES, DOCS, POSITIVES, k=3)
    assert got == [[0, 3, 1], [1, 5, 3], [5, 0, 4]]  # seed 0, shuffled
    assert set(got[0]) == {0, 1, 3}  # 1 shares "cat" and "a", 3 shares "cat"; 5 duplicates the positive
    assert 3 in got[1]  # the other "dog" document; the third one is a seeded pick among the score-0 ties
    assert all(len(c) == 3 and c.count(p) == 1 for c, p in zip(got, POSITIVES, strict=True))
    assert lexical_candidates(QUERIES, DOCS, POSITIVES, k=3) == got  # deterministic
    assert lexical_candidates(QUERIES, DOCS, POSITIVES, k=3, seed=1) == [[3, 1, 0], [3, 1, 2], [4, 5, 2]]


def test_k_is_clipped_to_the_usable_documents() -> None:
    got = lexical_candidates(QUERIES, DOCS, POSITIVES, k=10)
    assert [sorted(c) for c in got] == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5]]
    assert lexical_candidates(QUERIES, DOCS, POSITIVES, k=1) == [[0], [1], [4]]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positives"):
        lexical_candidates(QUERIES, DOCS, [0, 1])
    with pytest.raises(ValueError, match="outside"):
        lexical_candidates(["x"], DOCS, [6])
    with pytest.raises(ValueError, match="k must"):
        lexical_candidates(["x"], DOCS, [0], k=0)


def test_tokens() -> None:
    assert tokens("Set 'tabstop' to 8, CTRL-W s") == ["set", "tabstop", "to", "8", "ctrl", "w", "s"]
