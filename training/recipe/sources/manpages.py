"""Man pages (Debian ``manpages`` and ``manpages-dev``): NAME line -> DESCRIPTION.

Raw files: ``/usr/share/man/man[1-8]/*.gz`` (English pages only; ``.so`` redirects and mdoc pages
are skipped). The roff is reduced to plain text: font macros keep their words, other requests
and escapes are dropped. Each page name is a split key.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task

__all__ = ["SOURCE", "build", "locate", "parse_page", "roff_to_text"]

ROOT = Path("/usr/share/man")
PACKAGES = ("manpages", "manpages-dev")
_FONT_MACROS = re.compile(r"^\.(B|I|BR|RB|IR|RI|BI|IB|SM|SB)\s+(.*)$")
_ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\\(em|\\\(en"), " - "),
    (re.compile(r"\\\((aq|cq|oq)"), "'"),
    (re.compile(r"\\\((dq|lq|rq)"), '"'),
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), " "),
    (re.compile(r"\\[-]"), "-"),
    (re.compile(r"\\[&|^%:]"), ""),
    (re.compile(r"\\e"), "\\\\"),
    (re.compile(r"\\s[-+]?\d"), ""),
    (re.compile(r"\\ "), " "),
]
_MAX_DESCRIPTION = 500


def roff_to_text(lines: list[str]) -> str:
    r"""Plain text of roff source lines.

    >>> roff_to_text([".B chmod", "changes \\fBmode\\fP bits", ".PP", "of files"])
    'chmod changes mode bits of files'
    """
    words = []
    for line in lines:
        match = _FONT_MACROS.match(line)
        if match:
            line = match.group(2).replace('"', "")
        elif line.startswith((".", "'")):
            continue
        for pattern, repl in _ESCAPES:
            line = pattern.sub(repl, line)
        words.append(line)
    return re.sub(r"\s+", " ", " ".join(words)).strip()


def parse_page(source: str) -> tuple[str, str] | None:
    """``(NAME line, DESCRIPTION text)`` of a man(7) page, or ``None`` (no such sections, redirect, mdoc)."""
    if source.lstrip().startswith(".so ") or "\n.Sh " in source:
        return None
    sections: dict[str, list[str]] = {}
    current = None
    for line in source.splitlines():
        if line.startswith(".SH"):
            current = line[3:].strip().strip('"').upper()
            sections.setdefault(current, [])
        elif current is not None:
            sections[current].append(line)
    name = roff_to_text(sections.get("NAME", []))
    description = roff_to_text(sections.get("DESCRIPTION", []))
    if " - " not in name or len(description) < 60:
        return None
    if len(description) > _MAX_DESCRIPTION:
        cut = description.rfind(". ", 0, _MAX_DESCRIPTION)
        description = description[: cut + 1] if cut > 60 else description[:_MAX_DESCRIPTION]
    return name, description


def build(raw: dict[str, str]) -> list[TaskPairs]:
    """The man-page task from ``{page file name: roff source}`` (pure; pages in sorted name order)."""
    pages = TaskPairs(
        task(
            "manpage_name_to_description",
            "manpages",
            "retrieval",
            ("Linux manual page name line", "retrieving its description"),
            ("Linux manual page description", "retrieval"),
            category="retrieval",
        )
    )
    seen: set[str] = set()
    for name in sorted(raw):
        parsed = parse_page(raw[name])
        if parsed is None or parsed[1] in seen or parsed[0] in seen:
            continue
        seen.update(parsed)
        pages.pairs.append(Pair(parsed[0], parsed[1], "man:" + name.split(".", 1)[0]))
    return [pages]


def _package_pages(packages: tuple[str, ...], dpkg_info: Path) -> list[Path]:
    paths = []
    for package in packages:
        listing = dpkg_info / f"{package}.list"
        if listing.is_file():
            paths += [
                Path(line) for line in listing.read_text().splitlines() if re.search(r"/man/man[1-8]/.*\.gz$", line)
            ]
    return sorted(p for p in paths if p.is_file())


def locate(
    root: Path = ROOT, packages: tuple[str, ...] = PACKAGES, dpkg_info: Path = Path("/var/lib/dpkg/info")
) -> dict[str, str]:
    """Roff sources of the English man pages of Debian's ``manpages`` and ``manpages-dev``.

    Only those two packages' pages (listed by dpkg), so the task does not depend on what else a
    machine has installed; without dpkg's lists, every page under ``root``.

    Raises:
        SourceUnavailable: no page found.
    """
    paths = _package_pages(packages, dpkg_info) if dpkg_info.is_dir() else []
    if not paths and not dpkg_info.is_dir():
        paths = sorted(p for p in root.glob("man[1-8]/*.gz") if p.is_file())
    if not paths:
        raise SourceUnavailable(f"manpages: no pages in {root}/man[1-8] (apt-get install manpages manpages-dev)")
    return {p.name: gzip.decompress(p.read_bytes()).decode("utf-8", errors="replace") for p in paths}


SOURCE = Source(
    name="manpages",
    licence="Linux man-pages project: mostly GPL-2+/BSD/MIT-style 'verbatim' licences (Debian manpages, manpages-dev)",
    install="apt-get install manpages manpages-dev",
    locate=locate,
    build=build,
    debian_packages=PACKAGES,
)
