r"""Man pages labelled by their manual section, for classification and clustering evaluation (HELD-OUT).

Raw input: the same as :mod:`training.recipe.sources.manpages` (``{page file name: roff source}`` of the
English pages of Debian ``manpages`` and ``manpages-dev``, from its ``locate``); each page is parsed
with its ``parse_page`` (``.so`` redirects, mdoc pages and pages without NAME / DESCRIPTION are
skipped). The text is the NAME line's description (what follows `` - ``: ``chmod, fchmod - change
permissions of a file`` -> ``change permissions of a file``), or, with ``field="description"``, the
DESCRIPTION text cut to <= 400 characters at a sentence end; roff leftovers (``\~``, words with a
backslash) are removed. Page and section come from the page's ``.TH`` line (an alias file such as
``FD_CLR.3.gz``, a link to ``select.2``, is the same page, read once). The label is the manual section's
number (``3type`` and ``3const`` count as ``3``); sections with fewer than ``min_per_label`` pages and
repeated texts are left out. The key is ``manpages:<page>.<section>`` (``manpages:chmod.2``).

No ``SOURCE`` and no tasks: :func:`labelled_pages` is a pure helper for the evaluation tasks.
Licence: Linux man-pages project (mostly GPL-2+/BSD/MIT-style 'verbatim' licences).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

from training.recipe.sources.manpages import locate, parse_page

__all__ = ["labelled_pages", "locate", "page_section"]

_MAX_TEXT = 400
_MIN_TEXT = 10


_TH = re.compile(r'^\.TH\s+"?([^"\s]+)"?\s+"?([1-9][a-z]*)', re.MULTILINE)


def page_section(file_name: str, source: str = "") -> tuple[str, str] | None:
    """``(page, section)`` from the page's ``.TH`` line, else from its file name; ``None`` when neither has one.

    The ``.TH`` line wins because an alias file (``FD_CLR.3.gz``, a link to ``select.2``) carries
    the section of the page it shows.

    >>> page_section("FD_CLR.3.gz", '.TH select 2 2023-03-30 "Linux man-pages 6.03"')
    ('select', '2')
    >>> page_section("size_t.3type.gz"), page_section("README")
    (('size_t', '3type'), None)
    """
    match = _TH.search(source) or re.match(r"^(.+)\.([1-9][a-z]*)(?:\.gz)?$", file_name)
    return (match.group(1), match.group(2)) if match else None


def _clean(text: str) -> str:
    text = text.replace("\\~", " ")
    text = re.sub(r"\S*\\\S*", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _cut(text: str) -> str:
    if len(text) <= _MAX_TEXT:
        return text
    cut = text.rfind(". ", 0, _MAX_TEXT)
    return text[: cut + 1] if cut > _MAX_TEXT // 3 else text[:_MAX_TEXT].rsplit(" ", 1)[0]


def labelled_pages(
    raw: dict[str, str], field: Literal["name", "description"] = "name", min_per_label: int = 5
) -> list[tuple[str, str, str]]:
    """``(key, text, section number)`` of every parsed page, pages in file-name order (pure).

    Args:
        raw: ``{page file name: roff source}``, as :func:`training.recipe.sources.manpages.locate` returns.
        field: ``"name"`` for the NAME line's description, ``"description"`` for the DESCRIPTION text.
        min_per_label: sections with fewer pages are left out (a label of one page clusters nothing).

    Returns:
        ``("manpages:<page>.<section>", text, "<section number>")`` tuples.
    """
    rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for name in sorted(raw):
        section = page_section(name, raw[name])
        parsed = parse_page(raw[name])
        if section is None or parsed is None:
            continue
        name_line, description = parsed
        text = _clean(name_line.split(" - ", 1)[1]) if field == "name" else _cut(_clean(description))
        key = f"manpages:{section[0]}.{section[1]}"
        if len(text) < _MIN_TEXT or text in seen or key in seen:
            continue
        seen.update((text, key))
        rows.append((key, text, section[1][0]))
    sizes = Counter(label for _, _, label in rows)
    return [row for row in rows if sizes[row[2]] >= min_per_label]
