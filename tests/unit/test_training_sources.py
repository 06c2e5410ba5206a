"""The offline sources: each build() is a pure function of real-format raw text, splits are deterministic."""

from __future__ import annotations

import doctest
import random
import sys
from pathlib import Path

import pytest

from instructor_plugins.corpora import QAPair
from training.recipe.sources import (
    DEFAULT_SOURCES,
    SOURCES,
    SourceUnavailable,
    chatterbot,
    computing,
    debian,
    dictd,
    get_source,
    manpages,
    paraphrase,
    sentiment,
    task,
    wordnet,
)
from training.recipe.sources.splits import SPLITS, same_label_pairs, same_split_partner, split_of

TRANSLATION = """Package: foo
Description-md5: 1
Description-en: frobnicates widgets
 Foo frobnicates widgets of every shape and size, and reports what it
 did on standard output.
 .
 This is a long description of a package.

Package: foo-data
Description-md5: 2
Description-en: frobnicates widgets (data)
 Foo frobnicates widgets of every shape and size, and reports what it
 did on standard output.
 .
 This is a long description of a package.

Package: bar
Description-md5: 3
Description-en: plays chess
 Bar is a chess engine that plays at grandmaster strength against any UCI
 compatible interface and analyses games.

Package: tiny
Description-md5: 4
Description-en: short one
 Too short.
"""
PACKAGES = """Package: foo
Section: utils
Tag: field::mathematics, role::program

Package: bar
Section: games
Tag: game::board:chess, use::gameplaying
"""


def test_debian_parses_index_and_drops_repeats_and_short() -> None:
    raw = debian.DebianRaw((TRANSLATION,), (PACKAGES,))
    tasks = {t.spec.name: t for t in debian.build(raw)}
    s2d = tasks["debian_summary_to_description"].pairs
    assert [p.query for p in s2d] == ["plays chess", "frobnicates widgets"]  # sorted names; foo-data repeats foo
    assert s2d[1].pos.startswith("Foo frobnicates widgets") and "\n" not in s2d[1].pos
    assert tasks["debian_description_to_summary"].pairs[0] == type(s2d[0])(s2d[0].pos, s2d[0].query, s2d[0].key)
    assert debian.build(raw) == debian.build(raw)


def test_debian_missing_lists_is_a_clear_skip(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="Acquire::Languages=en"):
        debian.locate(str(tmp_path))


def test_dictd_reads_entries_by_offset() -> None:
    data = b"VAX\n  Virtual Address eXtension (DEC)\n"
    index = f"00databaseinfo\tA\tB\nvax\tA\t{dictd._B64[len(data) // 64]}{dictd._B64[len(data) % 64]}\nVAX\tA\tB\n"
    entries = dictd.entries(index, data)
    assert len(entries) == 1  # two headwords, one offset
    tasks = dictd.build({"vera": entries})
    assert [(p.query, p.pos) for p in tasks[0].pairs] == [("VAX", "Virtual Address eXtension (DEC)")]


def test_gcide_definition_strips_markup() -> None:
    entry = (
        "Pig \\Pig\\, n. [Cf. D. big.]\n   1. The young of swine; a hog. --Chaucer.\n"
        "   [1913 Webster]\n   2. (Zool.) Any wild swine.\n"
    )
    assert dictd.gcide_definition(entry) == ("Pig", "The young of swine; a hog.")


def test_computing_definition_drops_tags() -> None:
    entry = "FL\n\n   <language> Function Level, John Backus's successor to {FP}.\n\n   (1994-10-20)\n"
    assert computing.computing_definition(entry) == ("FL", "Function Level, John Backus's successor to FP.")
    assert computing.computing_definition("FL\n\n   <language> Function Level.\n") is None


def test_manpage_name_and_description() -> None:
    page = (
        ".TH CHMOD 2\n.SH NAME\nchmod \\- change permissions of a file\n.SH DESCRIPTION\n.BR chmod ()\n"
        "changes the \\fBmode\\fP bits of the file given in pathname, which is dereferenced.\n.SH SEE ALSO\nx\n"
    )
    name, description = manpages.parse_page(page)  # type: ignore[misc]
    assert name == "chmod - change permissions of a file"
    assert description.startswith("chmod () changes the mode bits")
    assert manpages.parse_page(".so man2/chmod.2\n") is None


def test_wordnet_parses_pointers() -> None:
    lines = (
        "00001740 03 n 01 entity 0 000 | that which is perceived to exist\n"
        "00002137 03 n 02 abstraction 0 abstract_entity 0 001 @ 00001740 n 0000 | a general concept; "
        '"the abstraction of a concept from its instances"\n'
    )
    synsets = wordnet.parse_data(lines, "noun")
    assert synsets[1].lemmas == ("abstraction", "abstract entity")
    assert synsets[1].hypernyms == ("00001740-n",)
    assert synsets[1].examples == ("the abstraction of a concept from its instances",)
    tasks = {t.spec.name: t.pairs for t in wordnet.build({"noun": lines})}
    assert [(p.query, p.pos) for p in tasks["wordnet_hypernym"]] == [("abstraction", "entity")]
    assert [(p.query, p.pos) for p in tasks["wordnet_synonyms"]] == [("abstraction", "abstract entity")]


def test_chatterbot_same_category_stays_in_split() -> None:
    raw = [QAPair(f"question {i}?", f"answer {i}", "ai" if i % 2 else "food") for i in range(60)]
    tasks = {t.spec.name: t.pairs for t in chatterbot.build(raw)}
    assert len(tasks["chatterbot_question_to_answer"]) == 60
    category = {q.question: q.category for q in raw}
    assert len(tasks["chatterbot_same_category"]) >= 20
    for p in tasks["chatterbot_same_category"]:
        assert split_of("chatterbot:" + p.query.lower()) == split_of("chatterbot:" + p.pos.lower())
        assert category[p.query] == category[p.pos] == p.label and p.query != p.pos


def test_splits_are_deterministic_and_roughly_five_percent() -> None:
    keys = [f"k{i}" for i in range(4000)]
    splits = [split_of(k) for k in keys]
    assert splits == [split_of(k) for k in keys]
    assert set(splits) == set(SPLITS)
    assert 0.03 < splits.count("test") / len(keys) < 0.07


def test_same_split_partner_never_pairs_a_key_with_itself() -> None:
    members = [f"m{i}" for i in range(200)]
    pairs = same_split_partner(members, lambda m: m, random.Random(0))
    assert pairs and all(a != b and split_of(a) == split_of(b) for a, b in pairs)


def test_same_label_pairs_label_each_partner_and_share_one_rng() -> None:
    groups = {"b": [f"b{i}" for i in range(60)], "a": [f"a{i}" for i in range(60)]}
    pairs = same_label_pairs(groups, lambda m: "k:" + m)
    assert [p.label for p in pairs] == sorted(p.label for p in pairs)  # labels in sorted order
    assert all(p.key == "k:" + p.query and p.label == p.query[0] == p.pos[0] for p in pairs)
    rng = random.Random(0)  # the same as one rng over the labels in order
    expected = [(a, b) for label in ("a", "b") for a, b in same_split_partner(groups[label], lambda m: "k:" + m, rng)]
    assert [(p.query, p.pos) for p in pairs] == expected


def test_instructions_name_the_task_type() -> None:
    spec = task("t", "s", "definition", ("word", "retrieving its dictionary definition"), ("definition", "retrieval"))
    assert spec.shape == "asymmetric"
    assert spec.query_instruction == "Represent the word for retrieving its dictionary definition: "


def test_unknown_source_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid"):
        get_source("nope")
    assert {get_source(name).name for name in SOURCES} == set(SOURCES)


def _synset_line(offset: int, word: str, gloss: str) -> str:
    return f"{offset:08d} 03 n 01 {word} 0 000 | {gloss}\n"


def test_sentiment_pairs_sentences_of_one_vader_label_within_a_split() -> None:
    pytest.importorskip("vaderSentiment")
    lines = "".join(
        _synset_line(i, f"w{i}", f'a gloss; "{text} number {i}"')
        for i, text in enumerate(
            ["what a wonderful and happy day"] * 40
            + ["a terrible and horrible accident"] * 40
            + ["the box is on the table"] * 40
        )
    )
    (same,) = sentiment.build({"noun": lines})
    assert same.spec.shape == "symmetric" and same.spec.task_type == "sentiment"
    assert same.spec.query_instruction == "Represent the sentence for classifying its sentiment: "
    assert {p.label for p in same.pairs} == {"positive", "negative"}
    assert len(same.pairs) >= 60  # nearly every non-neutral sentence finds a partner in its split
    for p in same.pairs:
        assert "box" not in p.query + p.pos  # neutral sentences are not used
        assert p.label == ("positive" if "wonderful" in p.query else "negative")
        assert ("wonderful" in p.pos) == (p.label == "positive")
        partner = int(p.pos.rsplit(" ", 1)[1])
        assert split_of(p.key) == split_of(f"{partner:08d}-n") and p.key != f"{partner:08d}-n"
    assert sentiment.label_of(0.5) == "positive" and sentiment.label_of(-0.49) is None


def test_sentiment_without_vader_is_a_clear_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vaderSentiment", None)
    with pytest.raises(SourceUnavailable, match="pip install vaderSentiment"):
        sentiment.locate()


def test_paraphrase_pairs_two_dictionaries_on_one_sense_words_only() -> None:
    wn = (
        _synset_line(1, "janitor", "someone employed to clean and maintain a building")
        + _synset_line(2, "bank", "sloping land beside a body of water")
        + _synset_line(3, "bank", "a financial institution that accepts deposits")
        + _synset_line(4, "thousandth", "the ordinal number of one thousand in counting order")
        + _synset_line(5, "walkway", "a walkway made of wooden boards")
    )
    gcide = [
        ("Janitor", 'Janitor \\Jan"i*tor\\, n.\n   1. A door-keeper of a large house or hall; a porter. -- Milton\n'),
        ("Bank", "Bank \\Bank\\, n.\n   1. A mound, pile, or ridge of earth, raised above the surrounding level.\n"),
        (
            "thousandth",
            "thousandth \\thousandth\\ adj.\n   1. coming next after the nine hundred ninety-ninth Syn: 1000th\n",
        ),
        ("Walkway", 'Walkway \\Walk"way\\, n.\n   1. A walkway made of wooden boards, at the seaside.\n'),
    ]
    (same,) = paraphrase.build({"gcide": gcide, "wordnet": {"noun": wn}})
    assert same.spec.shape == "symmetric" and "semantically similar" in same.spec.query_instruction
    # bank: two WordNet senses; thousandth: GCIDE copied WordNet (Syn:); walkway: a copy, not a paraphrase
    assert [(p.key, sorted([p.query, p.pos])) for p in same.pairs] == [
        (
            "00000001-n",
            ["A door-keeper of a large house or hall; a porter.", "someone employed to clean and maintain a building"],
        )
    ]


@pytest.mark.parametrize("name", ["sentiment", "paraphrase"])
def test_new_sources_on_the_installed_text(name: str) -> None:
    try:
        (tp,) = get_source(name).tasks()
    except SourceUnavailable as exc:
        pytest.skip(str(exc))
    if name == "sentiment":
        labels = [p.label for p in tp.pairs]
        assert labels.count("positive") > 2000 and labels.count("negative") > 2000
    else:
        assert len(tp.pairs) > 10000
        assert all("Syn:" not in p.query + p.pos and paraphrase.overlap(p.query, p.pos) < 0.5 for p in tp.pairs)
        assert len({p.key for p in tp.pairs}) == len(tp.pairs)  # one pair per word sense


@pytest.mark.parametrize("module", [sentiment, paraphrase, dictd])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


def test_sentiment_and_paraphrase_are_opt_in() -> None:
    from training.recipe import RecipeConfig
    from training.recipe.corpus import CorpusConfig

    assert set(SOURCES) - set(DEFAULT_SOURCES) == {"sentiment", "paraphrase"}
    assert CorpusConfig("x").sources == RecipeConfig("x").sources == DEFAULT_SOURCES
    assert CorpusConfig("x", sources=(*DEFAULT_SOURCES, "sentiment")).sources[-1] == "sentiment"
