"""The Python language reference topics that ``help()`` shows (``pydoc_data.topics``, in every CPython).

Raw input: the dict ``pydoc_data.topics.topics`` (topic label -> plain text rendered from the
reference manual and a few library pages: statements, expressions, the data model, the built-in
types' methods). It ships with the interpreter itself, so no package is needed. Licence: PSF-2.0.

Cleaning: a topic's text is cut into sections at its reST-style underlined headings
(``*****``, ``=====``, ``-----``, ``~~~~~``) and into paragraphs at blank lines; only prose
paragraphs are kept (no ``>>>`` examples, grammar rules with ``::=`` or indented code, no
signature-like lines), at least 60 characters, whitespace squashed, cut near 400 characters at a
sentence end. A paragraph that appears in several topics (``specialnames`` repeats
``customization``...) is kept once, in the first topic in sorted order.

Split key: ``pydoc_topics:<topic>:<section heading>``, so every paragraph of a section lands in
the same split.

Tasks:

* ``pydoc_topics_paragraph_to_heading`` (summarization, asymmetric): a paragraph -> the heading
  of its section, after the topic's own heading when it is a subsection (``The "assert"
  statement``, ``Data model: Basic customization``); headings under 10 characters are left out;
* ``pydoc_topics_same_topic`` (clustering, same-label pairs): a paragraph -> a paragraph of
  another section of the same topic (label: the topic).

Left out (< 300 pairs): topic label -> its first paragraph (79 topics); method signature ->
description (about 230 ``str.split(...)``/``object.__len__(self)`` entries, many repeated).
"""

from __future__ import annotations

import re
from collections import defaultdict

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.splits import same_label_pairs

__all__ = ["SOURCE", "build", "cut", "locate", "paragraphs", "plain", "sections"]

_UNDERLINE = re.compile(r"^([*=\-~^])\1{2,}$")
_MAX = 400
_EMPHASIS = re.compile(r"(?<![\w*])\*{1,2}(?=[^\s*])([^*]+?)(?<=\S)\*{1,2}(?![\w*])")
_MIN = 60


def cut(text: str, limit: int = _MAX) -> str:
    """``text`` cut at the last sentence end before ``limit`` (at ``limit`` when there is none past 60).

    >>> cut("One sentence here. " * 30, 50)
    'One sentence here. One sentence here.'
    """
    if len(text) <= limit:
        return text
    end = max(text.rfind(". ", 0, limit), text.rfind("? ", 0, limit), text.rfind("! ", 0, limit))
    return text[: end + 1] if end > min(60, limit // 2) else text[:limit].rstrip()


def sections(text: str) -> list[tuple[str, list[str]]]:
    """``(heading, body lines)`` per underlined section of a topic, in order (text before the first heading dropped)."""
    lines = text.splitlines()
    out: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(lines):
        if (
            i + 1 < len(lines)
            and lines[i].strip()
            and not lines[i][:1].isspace()
            and _UNDERLINE.match(lines[i + 1].strip())
        ):
            out.append((lines[i].strip(), []))
            i += 2
            continue
        if out:
            out[-1][1].append(lines[i])
        i += 1
    return out


def _is_prose(block: list[str]) -> bool:
    text = " ".join(line.strip() for line in block)
    indents = {len(line) - len(line.lstrip()) for line in block[1:]}
    first = len(block[0]) - len(block[0].lstrip())
    return (
        len(text) >= _MIN
        and not text.startswith((">>>", "...", "*", "+", "|"))
        and "::=" not in text
        and bool(re.match(r"[A-Z\"(]", text))
        and text.rstrip().endswith((".", ":", ")", '"'))
        and all(i <= first for i in indents)  # no hanging code or list continuation deeper than the first line
    )


def paragraphs(body: list[str]) -> list[str]:
    """The prose paragraphs of a section body, whitespace squashed.

    >>> paragraphs(["", "Assert statements are a convenient way to insert debugging", "assertions:", "",
    ...             "   assert_stmt ::= 'assert' expression"])
    ['Assert statements are a convenient way to insert debugging assertions:']
    """
    blocks: list[list[str]] = [[]]
    for line in body:
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [plain(" ".join(b)) for b in blocks if b and _is_prose(b)]


def plain(text: str) -> str:
    """``text`` with ``*emphasis*`` marks removed and whitespace squashed (``**kwargs`` is kept).

    >>> plain("A *mapping*   maps **strong** keys, see f(**kwargs)")
    'A mapping maps strong keys, see f(**kwargs)'
    """
    return re.sub(r"\s+", " ", _EMPHASIS.sub(r"\1", text)).strip()


def build(raw: dict[str, str]) -> list[TaskPairs]:
    """The pydoc-topics tasks from ``{topic label: topic text}`` (pure; topics in sorted order)."""
    heading = TaskPairs(
        task(
            "pydoc_topics_paragraph_to_heading",
            "pydoc_topics",
            "section title",
            ("language reference paragraph", "retrieving the heading of its section"),
            ("language reference section heading", "summarizing a paragraph"),
            domain="Python",
            category="summarization",
        )
    )
    same = TaskPairs(
        task(
            "pydoc_topics_same_topic",
            "pydoc_topics",
            "topic",
            ("language reference paragraph", "clustering paragraphs by the language feature they document"),
            domain="Python",
            category="clustering",
        )
    )
    seen: set[str] = set()
    key_of: dict[str, str] = {}
    by_topic: dict[str, list[str]] = defaultdict(list)
    for topic in sorted(raw):
        parts = sections(raw[topic])
        for heading_text, body in parts:
            title = plain(heading_text)
            top = plain(parts[0][0])
            if title != top:  # "Ranges" alone says less than "Sequence Types — ...: Ranges"
                title = f"{top}: {title}"
            for paragraph in paragraphs(body):
                text = cut(paragraph)
                if text in seen or len(title) < 10:
                    continue
                seen.add(text)
                key_of[text] = f"pydoc_topics:{topic}:{title.lower()}"
                heading.pairs.append(Pair(text, title, key_of[text]))
                by_topic[topic].append(text)
    same.pairs.extend(same_label_pairs(by_topic, key_of.__getitem__))
    return [heading, same]


def locate() -> dict[str, str]:
    """``pydoc_data.topics.topics`` of the running interpreter.

    Raises:
        SourceUnavailable: the interpreter was built without ``pydoc_data`` (some minimal distributions).
    """
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:
        raise SourceUnavailable(f"pydoc_topics: {exc} (install a full CPython, e.g. apt-get install python3)") from exc
    return dict(topics)


SOURCE = Source(
    name="pydoc_topics",
    licence="PSF-2.0 (Python documentation, pydoc_data.topics of the running interpreter)",
    install="apt-get install python3 (pydoc_data ships with CPython)",
    locate=locate,
    build=build,
)
