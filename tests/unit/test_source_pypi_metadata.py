"""Tests of the ``pypi_metadata`` source (README paragraph -> package summary)."""

from __future__ import annotations

import pytest

import training.recipe.sources.pypi_metadata as pypi_metadata
from tests.source_checks import Text, check_tasks, installed
from training.recipe.sources import Pair
from training.recipe.sources.pypi_metadata import SOURCE, Dist, build, locate, prose_paragraphs

# The start of Markdown 3.x's long description (METADATA body, Markdown with reference-style badges).
MARKDOWN = """[Python-Markdown][]
===================

[![Build Status][build-button]][build]
[![BSD License][bsdlicense-button]][bsdlicense]

[build-button]: https://github.com/Python-Markdown/markdown/actions/workflows/tox.yml/badge.svg
[build]: https://github.com/Python-Markdown/markdown/actions/workflows/tox.yml

This is a Python implementation of John Gruber's [Markdown][].
It is almost completely compliant with the reference implementation,
though there are a few known issues. See [Features][] for information
on what exactly is supported and what is not.

Installation
------------

```bash
pip install markdown
```

Python-Markdown is released under the BSD License, see LICENSE.md for details.
"""
# The start of tabulate's long description (reStructuredText-like plain text).
TABULATE = """python-tabulate
===============

Pretty-print tabular data in Python, a library and a command-line
utility.

The main use cases of the library are:

-   printing small tables without hassle: just one function call,
    formatting is guided by the data itself
"""
_MD = (
    "This is a Python implementation of John Gruber's Markdown. It is almost completely compliant with the reference "
    "implementation, though there are a few known issues. See Features for information on what exactly is supported "
    "and what is not."
)


def _raw() -> list[Dist]:
    return [
        Dist("Markdown", "Python implementation of John Gruber's Markdown.", MARKDOWN),
        Dist("tabulate", "Pretty-print tabular data", TABULATE),
        Dist("markdown", "a second copy of Markdown", MARKDOWN),
    ]


def test_prose_paragraphs() -> None:
    assert prose_paragraphs(MARKDOWN) == [_MD]
    assert prose_paragraphs(TABULATE) == ["Pretty-print tabular data in Python, a library and a command-line utility."]


def test_build_on_excerpt(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build(_raw()) == []  # under 300 pairs: left out
    monkeypatch.setattr(pypi_metadata, "MIN_PAIRS", 1)
    (tp,) = build(_raw())
    assert tp.spec.name == "pypi_metadata_readme_to_summary" and tp.spec.category == "summarization"
    assert "Python package README paragraph" in tp.spec.query_instruction
    assert tp.pairs == [
        Pair(_MD, "Python implementation of John Gruber's Markdown.", "pypi_metadata:markdown", label="markdown"),
        Pair(
            "Pretty-print tabular data in Python, a library and a command-line utility.",
            "Pretty-print tabular data",
            "pypi_metadata:tabulate",
            label="tabulate",
        ),
    ]


def test_real_metadata() -> None:
    raw = installed(locate)
    tasks = build(raw)
    if not tasks:
        pytest.skip(f"only {len(raw)} distributions installed: under 300 pairs")
    check_tasks(
        tasks,
        "pypi_metadata",
        ["pypi_metadata_readme_to_summary"],
        query=Text(min_len=50, stripped=False, banned=("  ",), pattern=r"\]\(|\[!\[|</?\w+>|```|\*\*|^#|\.\. \w+::"),
        pos=Text(min_len=10, max_len=None, stripped=False, banned=()),
    )
    assert SOURCE.name == "pypi_metadata"
