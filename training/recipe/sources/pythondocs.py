"""The Python library reference, glossary and FAQ (Debian ``python3-doc``, HTML).

Raw files: ``/usr/share/doc/python3.*/html/library/*.html``, ``glossary.html`` and
``faq/*.html`` (Debian ``python3-doc``, which depends on ``python3.X-doc``; the newest
``python3.*`` directory). Licence: PSF-2.0. The library pages that ``pydoc_data.topics`` already
renders (``stdtypes``, ``string``, ``pdb``: the ``pydoc_topics`` source) are skipped, so the two
sources share no text.

Cleaning: each page's main ``<div class="body">``, less its inline tags (``<span>``, ``<code>``,
``<a>``...), is parsed with :mod:`html.parser` into a small tree of block elements; texts are the
elements' text without the ``¶`` permalinks, whitespace squashed, cut near 400
characters at a sentence end. API entries are Sphinx's ``<dl class="py function|method|class|...">``:
each ``<dt>`` signature, with its ``<dd>``'s leading ``<p>`` paragraphs as description.

Split keys: ``pythondocs:<object id>`` (``pythondocs:shutil.copyfileobj``) for API entries,
``pythondocs:<page>#<section id>`` for sections, ``pythondocs:glossary:<term>`` and
``pythondocs:faq:<question>``.

Tasks:

* ``pythondocs_signature_to_description`` (retrieval, API documentation, asymmetric): a
  signature (``shutil.copyfileobj(fsrc, fdst[, length])``) -> its description;
* ``pythondocs_paragraph_to_section_title`` (summarization, asymmetric): a section's first
  paragraph -> the section title, after the page title for subsections
  (``shutil — High-level file operations: Archiving operations``);
* ``pythondocs_same_module`` (clustering, same-label pairs): an API description -> the description
  of another object of the same library page (label: the page, e.g. ``shutil``);
* ``pythondocs_concept_to_explanation`` (retrieval, question answering, asymmetric): a glossary
  term or a FAQ question -> its definition or answer. The glossary alone (about 130 terms) and the
  FAQ alone (under 200 questions) are under 300 pairs each, so they make one task. Glossary terms are
  headwords (``iterator``): they are kept even under 10 characters (signatures under 10 are not).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.splits import same_label_pairs

__all__ = ["SKIP_PAGES", "SOURCE", "Element", "build", "cut", "locate", "parse_html", "text_of"]

ROOT = Path("/usr/share/doc")
SKIP_PAGES = frozenset({"library/stdtypes.html", "library/string.html", "library/pdb.html"})
_API_KINDS = frozenset(
    {"function", "method", "class", "exception", "data", "attribute", "classmethod", "staticmethod"}
    | {"decorator", "decoratormethod", "property", "coroutinefunction", "coroutinemethod", "abstractmethod"}
)
_VOID = frozenset({"br", "img", "hr", "input", "meta", "link", "col", "wbr", "area", "base", "source"})
_INLINE = re.compile(r"</?(?:span|code|em|strong|a|abbr|cite|kbd|var|sup|sub|dfn|samp)\b[^>]*>")
_MAX = 400
_MIN = 10


@dataclass
class Element:
    """An HTML element: tag, attributes and children (elements and text)."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Element | str] = field(default_factory=list)

    def classes(self) -> list[str]:
        """The ``class`` attribute's words."""
        return self.attrs.get("class", "").split()

    def elements(self, tag: str | None = None) -> list[Element]:
        """Direct child elements (with that tag, if given)."""
        return [c for c in self.children if isinstance(c, Element) and (tag is None or c.tag == tag)]

    def iter(self, tag: str) -> list[Element]:
        """Every descendant element with that tag, in document order."""
        out: list[Element] = []
        stack: list[Element] = [self]
        while stack:
            node = stack.pop()
            if node.tag == tag and node is not self:
                out.append(node)
            stack.extend(reversed(node.elements()))
        return out


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(html_text: str) -> Element:
    """A tree of the page's main body (``<div class="body" role="main">`` to the sidebar), or of all of it."""
    start = html_text.find('<div class="body" role="main">')
    end = html_text.find('<div class="sphinxsidebar"', max(start, 0))
    if start >= 0:
        html_text = html_text[start : end if end > start else len(html_text)]
    html_text = _INLINE.sub("", html_text)  # inline markup carries no structure; dropping it halves the parse
    builder = _TreeBuilder()
    builder.feed(html_text)
    builder.close()
    return builder.root


def text_of(node: Element | str) -> str:
    r"""The text of a node without permalink marks, whitespace squashed.

    >>> text_of(parse_html('<p>Copy <em>src</em>\n to <code>dst</code>.<a class="headerlink">¶</a></p>'))
    'Copy src to dst.'
    """
    parts: list[str] = []
    stack: list[Element | str] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
        elif "headerlink" not in item.classes():
            stack.extend(reversed(item.children))
    return re.sub(r"\s+", " ", "".join(parts).replace("¶", "")).strip()


def cut(text: str, limit: int = _MAX) -> str:
    """``text`` cut at the last sentence end before ``limit`` (at ``limit`` when there is none past 60).

    >>> cut("Return the value. Raise an error when it is missing.", 30)
    'Return the value.'
    """
    if len(text) <= limit:
        return text
    end = max(text.rfind(". ", 0, limit), text.rfind("? ", 0, limit), text.rfind("! ", 0, limit))
    return text[: end + 1] if end > min(60, limit // 2) else text[:limit].rstrip()


def _leading_paragraphs(node: Element, *, past_code: bool = False) -> str:
    """The text of a node's first run of direct ``<p>`` children (up to about 400 characters).

    With ``past_code``, paragraphs after a code block and the text of lists are taken too (a FAQ
    answer's "The syntax is as follows:" goes on after its example).
    """
    texts: list[str] = []
    for child in node.elements():
        if past_code and texts and child.tag in ("ul", "ol"):
            texts.append(text_of(child))
            continue
        if child.tag != "p" or "audit-hook" in child.classes():
            if texts and not past_code:
                break
            continue
        text = text_of(child)
        if text.startswith("Source code:"):
            continue
        texts.append(text)
        if sum(len(t) for t in texts) > _MAX:
            break
    return cut(" ".join(texts))


def api_entries(root: Element) -> list[tuple[str, list[str], str]]:
    """``(object id, signatures, description)`` of every Sphinx Python object entry of a page."""
    out = []
    for dl in root.iter("dl"):
        classes = dl.classes()
        if len(classes) < 2 or classes[0] != "py" or classes[1] not in _API_KINDS:
            continue
        dts, dds = dl.elements("dt"), dl.elements("dd")
        if not dts or not dds:
            continue
        ident = dts[0].attrs.get("id", "") or text_of(dts[0])
        out.append((ident, [text_of(dt) for dt in dts], _leading_paragraphs(dds[0])))
    return out


def section_entries(root: Element) -> list[tuple[str, str, str]]:
    """``(section id, title, first paragraph)`` of every section of a page; subsection titles follow the page title."""
    out = []
    page_title = ""
    for section in root.iter("section"):
        headings = [h for h in section.elements() if re.fullmatch(r"h[1-6]", h.tag)]
        if not headings:
            continue
        title = text_of(headings[0])
        if headings[0].tag == "h1":
            page_title = title
        elif page_title:
            title = f"{page_title}: {title}"
        out.append((section.attrs.get("id", ""), title, _leading_paragraphs(section)))
    return out


def glossary_entries(root: Element) -> list[tuple[str, str]]:
    """``(term, definition)`` of the glossary page."""
    out = []
    for dl in root.iter("dl"):
        if "glossary" not in dl.classes():
            continue
        term: str | None = None
        for child in dl.elements():
            if child.tag == "dt":
                term = text_of(child)
            elif child.tag == "dd" and term:
                out.append((term, _leading_paragraphs(child)))
                term = None
    return out


def faq_entries(root: Element) -> list[tuple[str, str]]:
    """``(question, answer)`` of a FAQ page: each section whose heading ends with ``?``."""
    return [(title, text) for _, title, text in _plain_sections(root) if title.endswith("?")]


def _plain_sections(root: Element) -> list[tuple[str, str, str]]:
    out = []
    for section in root.iter("section"):
        headings = [h for h in section.elements() if re.fullmatch(r"h[1-6]", h.tag)]
        if headings:
            text = _leading_paragraphs(section, past_code=True)
            out.append((section.attrs.get("id", ""), text_of(headings[0]), text))
    return out


def build(raw: dict[str, str]) -> list[TaskPairs]:
    """The python3-doc tasks from ``{path under html/: page HTML}`` (pure; pages in sorted path order)."""
    api = TaskPairs(
        task(
            "pythondocs_signature_to_description",
            "pythondocs",
            "API documentation",
            ("library reference signature", "retrieving the documentation of the function, class or attribute"),
            ("library reference description", "retrieval of API documentation"),
            domain="Python",
        )
    )
    titles = TaskPairs(
        task(
            "pythondocs_paragraph_to_section_title",
            "pythondocs",
            "section title",
            ("library reference paragraph", "retrieving the title of its section"),
            ("library reference section title", "summarizing a paragraph"),
            domain="Python",
            category="summarization",
        )
    )
    same = TaskPairs(
        task(
            "pythondocs_same_module",
            "pythondocs",
            "module",
            ("library reference description", "clustering descriptions by the module they document"),
            domain="Python",
            category="clustering",
        )
    )
    concepts = TaskPairs(
        task(
            "pythondocs_concept_to_explanation",
            "pythondocs",
            "question answering",
            ("glossary term or FAQ question", "retrieving its definition or answer"),
            ("glossary definition or FAQ answer", "answering a question about the language"),
            domain="Python",
        )
    )
    seen: set[str] = set()
    key_of: dict[str, str] = {}
    by_page: dict[str, list[str]] = defaultdict(list)
    for path in sorted(raw):
        if path in SKIP_PAGES:
            continue
        page = path.rsplit("/", 1)[-1].removesuffix(".html")
        root = parse_html(raw[path])
        if path.startswith("library/"):
            for ident, signatures, description in api_entries(root):
                if len(description) < _MIN or description in seen:
                    continue
                seen.add(description)
                key = "pythondocs:" + ident
                key_of[description] = key
                for signature in dict.fromkeys(signatures):
                    if len(signature) >= _MIN and signature != description:
                        api.pairs.append(Pair(cut(signature), description, key))
                by_page[page].append(description)
            for ident, title, paragraph in section_entries(root):
                if len(paragraph) < 40 or len(title) < _MIN or paragraph in seen:
                    continue
                seen.add(paragraph)
                titles.pairs.append(Pair(paragraph, title, f"pythondocs:{path}#{ident}"))
        elif path == "glossary.html":
            for term, definition in glossary_entries(root):
                if len(definition) >= _MIN and definition not in seen and re.search("[A-Za-z]", term):
                    seen.add(definition)
                    concepts.pairs.append(Pair(term, definition, "pythondocs:glossary:" + term.lower()))
        elif path.startswith("faq/"):
            for question, answer in faq_entries(root):
                if len(answer) >= _MIN and answer not in seen:
                    seen.add(answer)
                    concepts.pairs.append(Pair(question, answer, "pythondocs:faq:" + question.lower()))
    same.pairs.extend(same_label_pairs(by_page, key_of.__getitem__))
    return [api, titles, same, concepts]


def html_dir(root: Path = ROOT) -> Path | None:
    """The newest ``<root>/python3.*/html`` directory with a library reference, or ``None``."""
    found = [p.parent.parent for p in root.glob("python3*/html/library/index.html")]
    return max(found, key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name[6:].split(".")], default=None)


def locate(root: Path = ROOT) -> dict[str, str]:
    """``{path under html/: HTML}`` of the library reference, glossary and FAQ pages.

    Raises:
        SourceUnavailable: python3-doc is not installed.
    """
    directory = html_dir(root)
    if directory is None:
        raise SourceUnavailable(f"pythondocs: no {root}/python3*/html/library (apt-get install python3-doc)")
    paths = sorted(directory.glob("library/*.html")) + sorted(directory.glob("faq/*.html"))
    paths += [directory / "glossary.html"] if (directory / "glossary.html").is_file() else []
    return {
        p.relative_to(directory).as_posix(): p.read_text(encoding="utf-8", errors="replace")
        for p in paths
        if p.relative_to(directory).as_posix() not in SKIP_PAGES
    }


SOURCE = Source(
    name="pythondocs",
    licence="PSF-2.0 (Python documentation, Debian python3-doc)",
    install="apt-get install python3-doc",
    locate=locate,
    build=build,
    debian_packages=("python3-doc",),
)
