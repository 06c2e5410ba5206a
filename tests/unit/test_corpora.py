from __future__ import annotations

import pytest

from instructor_plugins.corpora import chatterbot_pairs, gensim_test_file, wordnet_synsets


def test_chatterbot_pairs_are_real_qa() -> None:
    pairs = chatterbot_pairs()
    assert len(pairs) > 1500
    assert all(p.question and p.answer for p in pairs)
    assert len({p.category for p in pairs}) >= 15
    assert any(p.question == "What is AI?" for p in pairs)


def test_wordnet_synsets() -> None:
    try:
        nouns = wordnet_synsets("noun", limit=2000)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    assert len(nouns) == 2000
    assert len({s.id for s in nouns}) == 2000
    assert all(s.lemmas and s.gloss for s in nouns)
    with pytest.raises(ValueError, match="noun"):
        wordnet_synsets("pronoun")


def test_gensim_test_file() -> None:
    assert gensim_test_file("lee.cor").stat().st_size > 10_000
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        gensim_test_file("nope.txt")
