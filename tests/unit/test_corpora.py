from __future__ import annotations

import pytest

from instructor_plugins.corpora import chatterbot_pairs, gensim_test_file, parse_wordnet_data, wordnet_synsets


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


def test_parse_wordnet_data_reads_lemmas_pointers_and_lexname() -> None:
    lines = [
        "  1 This software and database is being provided to you, the LICENSEE, by  \n",
        "00019731 00 s 02 handy 0 ready_to_hand(p) 0 002 & 00019131 a 0000 + 04718999 n 0101 | easy to reach; "
        '"found a handy spot for the can opener"  \n',
    ]
    (synset,) = parse_wordnet_data(lines, "adj")
    assert synset.id == "00019731-a" and synset.pos == "adj" and synset.lexname == "adj.all"
    assert synset.lemmas == ("handy", "ready to hand(p)")
    assert synset.pointers == (("&", "00019131-a"), ("+", "04718999-n"))
    assert synset.gloss == 'easy to reach; "found a handy spot for the can opener"'
    assert synset.definition == "easy to reach"


def test_gensim_test_file() -> None:
    assert gensim_test_file("lee.cor").stat().st_size > 10_000
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        gensim_test_file("nope.txt")
