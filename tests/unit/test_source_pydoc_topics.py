"""The pydoc_topics source: parsing an inline excerpt of ``pydoc_data.topics`` and counts on the interpreter's own."""

from __future__ import annotations

from tests.source_checks import Text, check_tasks, installed
from training.recipe.sources.pydoc_topics import SOURCE, build, locate, paragraphs, sections

TOPICS = {
    "pass": (
        'The "pass" statement\n********************\n\n   pass_stmt ::= "pass"\n\n"pass" is a null operation — '
        "when it is executed, nothing happens. It\nis useful as a placeholder when a statement is required "
        "syntactically,\nbut no code needs to be executed, for example:\n\n   def f(arg): pass    # a function "
        "that does nothing (yet)\n\n   class C: pass       # a class with no methods (yet)\n"
    ),
    "typesmapping": (
        'Mapping Types — "dict"\n**********************\n\nA *mapping* object maps *hashable* values to arbitrary '
        "objects.\nMappings are mutable objects.  There is currently only one standard\nmapping type, the "
        "*dictionary*.\n\nclass dict(**kwargs)\n\n   Return a new dictionary initialized from an optional "
        "positional\n   argument and a possibly empty set of keyword arguments.\n\n      >>> a = dict(one=1, "
        "two=2, three=3)\n\nDictionary view objects\n=======================\n\nThe objects returned by "
        '"dict.keys()", "dict.values()" and\n"dict.items()" are *view objects*.  They provide a dynamic view on '
        "the\ndictionary’s entries.\n"
    ),
}

PASS = (
    '"pass" is a null operation — when it is executed, nothing happens. It is useful as a placeholder when a '
    "statement is required syntactically, but no code needs to be executed, for example:"
)
MAPPING = (
    "A mapping object maps hashable values to arbitrary objects. Mappings are mutable objects. There is currently "
    "only one standard mapping type, the dictionary."
)
RETURN = (
    "Return a new dictionary initialized from an optional positional argument and a possibly empty set of "
    "keyword arguments."
)
VIEW = (
    'The objects returned by "dict.keys()", "dict.values()" and "dict.items()" are view objects. They provide '
    "a dynamic view on the dictionary’s entries."
)
TOPIC_TEXT = Text(banned=("  ", "\n", ">>>", "::="), banned_starts=("*", "-", "="))
"""A paragraph or heading of the real topics: clean, without grammar rules, examples or reST underlines."""


def test_sections_and_paragraphs():
    parts = sections(TOPICS["typesmapping"])
    assert [title for title, _ in parts] == ['Mapping Types — "dict"', "Dictionary view objects"]
    assert paragraphs(parts[0][1]) == [MAPPING, RETURN]  # the signature line and the >>> example are dropped


def test_build_on_excerpt():
    heading, same = build(TOPICS)
    assert [(p.query, p.pos, p.key) for p in heading.pairs] == [
        (PASS, 'The "pass" statement', 'pydoc_topics:pass:the "pass" statement'),
        (MAPPING, 'Mapping Types — "dict"', 'pydoc_topics:typesmapping:mapping types — "dict"'),
        (RETURN, 'Mapping Types — "dict"', 'pydoc_topics:typesmapping:mapping types — "dict"'),
        (
            VIEW,
            'Mapping Types — "dict": Dictionary view objects',
            'pydoc_topics:typesmapping:mapping types — "dict": dictionary view objects',
        ),
    ]
    keys = {p.query: p.key for p in heading.pairs}
    for p in same.pairs:  # partners come from another section of the same topic
        assert p.label == "typesmapping" and keys[p.query] != keys[p.pos] and p.key == keys[p.query]


def test_real_topics():
    raw = installed(locate, "no pydoc_data in this interpreter: ")
    tasks = SOURCE.build(raw)
    check_tasks(
        tasks,
        "pydoc_topics",
        ["pydoc_topics_paragraph_to_heading", "pydoc_topics_same_topic"],
        categories=["summarization", "clustering"],
        instruction="Python",
        query=TOPIC_TEXT,
        pos=TOPIC_TEXT,
        labels=raw,
    )
