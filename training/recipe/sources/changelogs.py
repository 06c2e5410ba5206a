"""Debian changelogs of the installed packages: what changed in one upload -> which package it was.

Raw files: ``/usr/share/doc/*/changelog.Debian.gz`` (gzip; written by every Debian package,
part of the base system) and ``/var/lib/dpkg/status`` (dpkg's database, for each binary package's
one-line summary, the first line of its ``Description:``). Binary packages built from one source
ship the same changelog; a changelog is read once per source package (its first line names it).
Licence: each package's own (Debian main, DFSG-free).

Cleaning: an entry is the bullet lines of one version stanza (``pkg (1.0-1) unstable; ...`` up
to the `` -- maintainer`` trailer), with ``[ Name ]`` author headers, bullet markers, bug
references (``Closes: #123``, ``LP: #123``) and boilerplate bullets ("New upstream release",
"Rebuild", "Bump Standards-Version", "Non-maintainer upload"...) removed, whitespace squashed and
cut to about 400 characters at a sentence boundary. Entries under 40 characters or 6 words, and
entries already seen (in any package), are dropped. At most :data:`MAX_ENTRIES` entries per
package (a seeded sample), so glibc's hundreds of uploads do not crowd out small packages.

Split key: ``changelogs:<source package>``: every entry of one package lands in one split.

Tasks: changelog entry -> the package's one-line summary (retrieval, the summary's package is the
label); changelog entry -> another entry of the same package (clustering, label = the package).
"""

from __future__ import annotations

import glob
import gzip
import os
import random
import re
from collections import defaultdict
from dataclasses import dataclass

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task

__all__ = ["MAX_ENTRIES", "SOURCE", "ChangelogRaw", "build", "clean_entry", "locate", "parse_changelog", "summaries"]

DOC = "/usr/share/doc"
STATUS = "/var/lib/dpkg/status"
MAX_ENTRIES = 12
_MAX_CHARS = 400
_MIN_CHARS = 40
_MIN_WORDS = 6
_HEADER = re.compile(r"^([a-z0-9][a-z0-9+.-]*) \(([^)\s]+)\) [^;]*;", re.MULTILINE)
_BUGS = re.compile(r"\(?\b(?:closes|lp)\s*:?\s*(?:(?:bug)?#?\d+[,\s]*(?:and\s*)?)+\)?\.?", re.IGNORECASE)
_BOILERPLATE = re.compile(
    r"^(?:"
    r"new upstream (?:stable |bugfix |patch |point |minor |major )?(?:release|version|snapshot|upload)\b.{0,30}"
    r"|(?:no[- ]change )?rebuil[dt]\b.*"
    r"|(?:source[- ]only |team |non[- ]maintainer )?upload\b.{0,40}"
    r"|(?:team|source-only|non-maintainer) upload.*"
    r"|(?:bump(?:ed)?|update[ds]?) (?:to )?(?:debian )?(?:policy|standards[- ]version|debhelper|dh compat|compat).*"
    r"|standards[- ]version:?.*"
    r"|initial (?:debian )?release.*"
    r"|(?:upload|release|uploading|releasing) to (?:unstable|experimental|sid|bookworm|trixie)\b.*"
    r"|(?:d/|debian/)?(?:watch|copyright|control|changelog|salsa-ci\.yml|gbp\.conf)\b:?.{0,20}"
    r"|(?:update|new) (?:of |the )?(?:translations?|po files?)\b.{0,20}"
    r"|(?:version|release) \S+\.?"
    r")$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ChangelogRaw:
    """The raw texts: ``(binary package of the doc dir, changelog text)`` per distinct changelog, and dpkg's status."""

    changelogs: tuple[tuple[str, str], ...]
    status: str


def summaries(status: str) -> dict[str, str]:
    r"""Binary package -> the first line of its ``Description:`` in dpkg's status file.

    >>> summaries("Package: bash\nStatus: install ok installed\nDescription: GNU Bourne Again SHell\n more\n")
    {'bash': 'GNU Bourne Again SHell'}
    """
    out: dict[str, str] = {}
    for record in re.split(r"\n\s*\n", status):
        name = re.search(r"^Package:\s*(\S+)", record, re.MULTILINE)
        summary = re.search(r"^Description:\s*(.+)$", record, re.MULTILINE)
        if name and summary and name.group(1) not in out:
            out[name.group(1)] = summary.group(1).strip()
    return out


def _cut(text: str, limit: int = _MAX_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = max(text.rfind(". ", 0, limit), text.rfind("; ", 0, limit))
    return text[: cut + 1] if cut > limit // 3 else text[:limit].rsplit(" ", 1)[0]


def clean_entry(body: str) -> str:
    r"""One stanza's bullet lines as one clean text ('' when nothing but boilerplate is left).

    >>> clean_entry("  * New upstream release.\n  * Fix the build with GCC 13 on armel.  Closes: #1034\n")
    'Fix the build with GCC 13 on armel.'
    """
    bullets: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if not stripped or re.fullmatch(r"\[.*\]", stripped):
            continue
        marker = re.match(r"^(?:[*+-]\s+)+", stripped)
        if marker or not bullets:
            bullets.append(stripped[marker.end() :] if marker else stripped)
        else:
            bullets[-1] += " " + stripped
    kept = []
    for bullet in bullets:
        text = re.sub(r"\s+", " ", _BUGS.sub(" ", bullet)).strip(" ,;")
        text = re.sub(r"\s+([.,;:])", r"\1", text)
        if len(text) < 3 or _BOILERPLATE.match(text):
            continue
        kept.append(text if text[-1] in ".!?:)" else text + ".")
    return _cut(" ".join(kept))


def parse_changelog(text: str) -> tuple[str, list[str]]:
    """``(source package, [clean entry per stanza])`` of one changelog, newest first, empties dropped."""
    headers = list(_HEADER.finditer(text))
    if not headers:
        return "", []
    entries = []
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        body = text[header.end() : end]
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = re.split(r"^ -- ", body, maxsplit=1, flags=re.MULTILINE)[0]
        entry = clean_entry(body)
        if entry:
            entries.append(entry)
    return headers[0].group(1), entries


def build(raw: ChangelogRaw) -> list[TaskPairs]:
    """The changelog tasks (pure)."""
    domain = "Debian package"
    to_package = TaskPairs(
        task(
            "changelogs_entry_to_package",
            "changelogs",
            "package changelog",
            ("changelog entry", "retrieving the package it belongs to"),
            ("summary", "retrieval"),
            domain=domain,
        )
    )
    same = TaskPairs(
        task(
            "changelogs_same_package",
            "changelogs",
            "package changelog",
            ("changelog entry", "clustering by the package it belongs to"),
            domain=domain,
            category="clustering",
        )
    )
    summary_of = summaries(raw.status)
    binaries: dict[str, list[str]] = defaultdict(list)
    entries_of: dict[str, list[str]] = {}
    for binary, text in raw.changelogs:
        source, entries = parse_changelog(text)
        if not source:
            continue
        binaries[source].append(binary)
        entries_of.setdefault(source, entries)
    rng = random.Random(0)
    seen: set[str] = set()
    for source in sorted(entries_of):
        named = sorted(binaries[source], key=lambda b: (b != source, len(b), b))
        summary = next((summary_of[b] for b in named if summary_of.get(b)), "")
        entries = []
        for entry in entries_of[source]:
            if entry in seen or len(entry) < _MIN_CHARS or len(entry.split()) < _MIN_WORDS:
                continue
            seen.add(entry)
            entries.append(entry)
        if len(entries) > MAX_ENTRIES:
            picked = set(rng.sample(range(len(entries)), MAX_ENTRIES))
            entries = [e for i, e in enumerate(entries) if i in picked]
        key = "changelogs:" + source
        if len(summary) >= 10:
            to_package.pairs.extend(Pair(e, summary, key, label=source) for e in entries)
        if len(entries) >= 2:
            for i, entry in enumerate(entries):
                other = entries[(i + 1 + rng.randrange(len(entries) - 1)) % len(entries)]
                same.pairs.append(Pair(entry, other, key, label=source))
    return [to_package, same]


def locate(doc: str = DOC, status: str = STATUS) -> ChangelogRaw:
    """Every distinct changelog and dpkg's status; :class:`SourceUnavailable` when there are none."""
    paths = sorted(glob.glob(f"{doc}/*/changelog.Debian.gz"))
    if not paths or not os.path.isfile(status):
        raise SourceUnavailable(
            f"changelogs: no {doc}/*/changelog.Debian.gz or {status} (a Debian system with /usr/share/doc kept)"
        )
    seen: set[str] = set()
    changelogs = []
    for path in paths:
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            changelogs.append((os.path.basename(os.path.dirname(path)), f.read()))
    with open(status, encoding="utf-8", errors="replace") as f:
        return ChangelogRaw(tuple(changelogs), f.read())


SOURCE = Source(
    name="changelogs",
    licence="Debian changelogs: each package's own licence (Debian main, DFSG-free)",
    install="a Debian system whose dpkg keeps /usr/share/doc (no path-exclude for changelogs)",
    locate=locate,
    build=build,
    debian_packages=("dpkg",),
    files=(f"{DOC}/*/changelog.Debian.gz", STATUS),
)
