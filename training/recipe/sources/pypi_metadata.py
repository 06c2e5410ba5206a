"""Python package metadata of the installed distributions: README paragraphs and one-line summaries.

Raw input: the core metadata (``METADATA`` / ``PKG-INFO``) of every distribution that
``importlib.metadata.distributions()`` finds in the running interpreter (the project's venv) and in
Debian's ``/usr/lib/python3/dist-packages``: ``Name``, ``Summary``, ``Classifier`` and the long
description (the message body or the ``Description`` field). Licence: each distribution's own
(the metadata of open-source packages on PyPI / Debian main).

Cleaning: the long description's Markdown / reStructuredText markup is stripped: headings,
badges and images, HTML tags, code blocks, tables, directives, link targets (link texts kept),
emphasis and inline code markers. A "real" paragraph is prose: at least 8 words and 50
characters, mostly letters, not an install / usage line, not about the project (contributing,
licence, funding, GitHub...), not the summary again, cut to about
400 characters at a sentence boundary. Distributions are kept once per normalized name
(PEP 503), and the first with a given summary wins (``foo`` and ``foo-core`` often share one).

Split key: ``pypi_metadata:<normalized name>``.

Tasks: README paragraph -> the package's one-line summary (summarization, up to
:data:`MAX_PARAGRAPHS` prose paragraphs from the start of each README, the package is the label;
left out when under :data:`MIN_PAIRS` pairs). Not built: summary -> another summary with the same
``Topic ::`` classifier (only ~150 pairs from the ~270 distributions of the project's venv), and
summary -> first paragraph alone (~240 pairs); both are under 300.
"""

from __future__ import annotations

import email.message
import importlib.metadata
import re
import sys
from dataclasses import dataclass
from typing import cast

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task

__all__ = ["MAX_PARAGRAPHS", "MIN_PAIRS", "SOURCE", "Dist", "build", "locate", "prose_paragraphs", "strip_markup"]

DEBIAN_DIST_PACKAGES = "/usr/lib/python3/dist-packages"
MAX_PARAGRAPHS = 3
MIN_PAIRS = 300
_MAX_CHARS = 400
_MIN_WORDS = 8
_MIN_CHARS = 50
# Paragraphs about the project rather than what the package does.
_OFF_TOPIC = re.compile(
    r"(?i)contribut|licen[cs]e[ds]?\b|sponsor|funding|donat|changelog|issue tracker|pull request|github|"
    r"mailing list|code of conduct|released under|copyright|maintainers?\b|security (?:issue|vulnerabilit)|"
    r"stack overflow|gitter|discord|slack\b|matrix\.org"
)


@dataclass(frozen=True)
class Dist:
    """One distribution's metadata fields."""

    name: str
    summary: str
    description: str
    classifiers: tuple[str, ...] = ()


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def strip_markup(text: str) -> str:
    r"""Markdown / reStructuredText / HTML text -> plain text, blank lines between blocks kept.

    >>> strip_markup("# Title\n\n[![ci](https://x/b.svg)](https://x) **Fast** `json` [docs](https://d).\n")
    '\n\n  Fast json docs.\n'
    """
    text = text.replace("\r\n", "\n")
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.DOTALL | re.MULTILINE)  # fenced code
    text = re.sub(r"<(pre|code|table|picture|svg)\b.*?</\1>", " ", text, flags=re.DOTALL | re.IGNORECASE)
    text = re.sub(r"::\s*\n(?:[ \t]*\n)*(?:(?:[ \t]+\S[^\n]*)?\n)+", ".\n\n", text)  # rst literal blocks
    text = re.sub(r"^\.\. [^\n]*\n(?:(?:[ \t]+[^\n]*|[ \t]*)\n)*", "\n", text, flags=re.MULTILINE)  # rst directives
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)  # images
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # markdown links
    text = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"^\s*\[[^\]]+\]:\s*\S+.*$", "", text, flags=re.MULTILINE)  # link definitions
    text = re.sub(r"`([^`<]+?)\s*<[^>]+>`_{1,2}", r"\1", text)  # rst links
    text = re.sub(r":[a-z:]+:`([^`]+)`", r"\1", text)  # rst roles
    text = re.sub(r"(?<!\S):[a-z][a-z0-9_+-]*:(?!\S)", " ", text)  # emoji shortcodes
    text = re.sub(r"<[^>\n]+>", " ", text)  # html tags
    text = re.sub(r"^#{1,6}\s.*$", "", text, flags=re.MULTILINE)  # markdown headings
    text = re.sub(r"^.+\n[=\-~^\"'`#*+]{3,}\s*$", "", text, flags=re.MULTILINE)  # rst headings
    text = re.sub(r"^[=\-~^\"'`#*+|]{3,}\s*$", "", text, flags=re.MULTILINE)  # over-lines, rules
    text = re.sub(r"^\s*\|.*\|\s*$", "", text, flags=re.MULTILINE)  # tables
    text = re.sub(r"\*\*|__|``|`|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w)|\|[\w -]+\|_?", "", text)
    text = re.sub(r"(?<=\w)__?(?=[\s.,;:)]|$)", "", text, flags=re.MULTILINE)  # rst references: name_
    text = re.sub(r"(?<![\w\\])_(?=\S)|(?<=\S)_(?!\w)", "", text)  # _emphasis_
    text = re.sub(r"\[([^\]\n]+)\](?!\()", r"\1", text)  # [reference] links
    return text.strip(" \t")


def _cut(text: str) -> str:
    if len(text) <= _MAX_CHARS:
        return text
    cut = text.rfind(". ", 0, _MAX_CHARS)
    return text[: cut + 1] if cut > _MAX_CHARS // 3 else text[:_MAX_CHARS].rsplit(" ", 1)[0]


def prose_paragraphs(description: str, summary: str = "") -> list[str]:
    r"""The prose paragraphs of a long description, in order, clean and cut.

    >>> text = "Fast JSON\n=========\n\n.. image:: x.svg\n\nA *fast* JSON parser in C, with a pure Python fallback.\n"
    >>> prose_paragraphs(text)
    ['A fast JSON parser in C, with a pure Python fallback.']
    """
    out = []
    for block in re.split(r"\n[ \t]*\n", strip_markup(description)):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if not lines or re.match(r"^([-*+>#]|\d+[.)]|\$|>>>|pip |conda |python3? |\.\. )", lines[0]):
            continue
        para = re.sub(r"\s+", " ", " ".join(lines)).strip()
        letters = sum(ch.isalpha() or ch.isspace() for ch in para)
        if (
            len(para) < _MIN_CHARS
            or len(para.split()) < _MIN_WORDS
            or letters < 0.8 * len(para)
            or re.search(r"(?i)\bpip install\b|\binstall(?:ation)? (?:with|via|using)\b", para)
            or para.endswith(":")
            or _OFF_TOPIC.search(para)
            or para.lower().strip(". ") == summary.lower().strip(". ")
        ):
            continue
        out.append(_cut(para))
    return out


def build(raw: list[Dist]) -> list[TaskPairs]:
    """The PyPI metadata tasks (pure); a task with under :data:`MIN_PAIRS` pairs is left out."""
    domain = "Python package"
    para_to_summary = TaskPairs(
        task(
            "pypi_metadata_readme_to_summary",
            "pypi_metadata",
            "package summary",
            ("README paragraph", "retrieving the package's one-line summary"),
            ("one-line summary", "retrieval"),
            domain=domain,
            category="summarization",
        )
    )
    seen_names: set[str] = set()
    seen_summaries: set[str] = set()
    for dist in sorted(raw, key=lambda d: (_normalize(d.name), d.summary)):
        name = _normalize(dist.name)
        summary = re.sub(r"\s+", " ", strip_markup(dist.summary)).strip()
        if name in seen_names or len(summary) < 10 or summary.lower() in seen_summaries:
            continue
        seen_names.add(name)
        seen_summaries.add(summary.lower())
        key = "pypi_metadata:" + name
        for para in prose_paragraphs(dist.description, summary)[:MAX_PARAGRAPHS]:
            para_to_summary.pairs.append(Pair(para, summary, key, label=name))
    return [para_to_summary] if len(para_to_summary.pairs) >= MIN_PAIRS else []


def locate(extra_path: str = DEBIAN_DIST_PACKAGES) -> list[Dist]:
    """The metadata of every installed distribution; :class:`SourceUnavailable` when none has a summary."""
    path = [*sys.path, extra_path]
    out = []
    for dist in importlib.metadata.distributions(path=path):
        meta = cast(email.message.Message, dist.metadata)  # PackageMetadata is a Message at runtime
        body = meta.get_payload()
        description = body if isinstance(body, str) and body.strip() else str(meta.get("Description") or "")
        out.append(
            Dist(
                name=str(meta.get("Name") or ""),
                summary=str(meta.get("Summary") or ""),
                description=description,
                classifiers=tuple(meta.get_all("Classifier") or ()),
            )
        )
    if not any(d.summary for d in out):
        raise SourceUnavailable("pypi_metadata: no installed Python distributions with metadata (pip install ...)")
    return sorted(out, key=lambda d: (_normalize(d.name), d.summary))


SOURCE = Source(
    name="pypi_metadata",
    licence="each distribution's own licence (open-source Python packages, PyPI / Debian main)",
    install="pip install the project's dependencies (the venv's distributions are the raw input)",
    locate=locate,
    build=build,
    files=("<python>/site-packages/*.dist-info/METADATA", f"{DEBIAN_DIST_PACKAGES}/*.*-info"),
)
