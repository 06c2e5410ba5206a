"""The Debian package index: package names, one-line summaries, long descriptions, sections, debtags.

Raw files: ``/var/lib/apt/lists/*_i18n_Translation-en.lz4`` (after ``apt-get update -o
Acquire::Languages=en``) and ``*_binary-amd64_Packages.lz4``, decompressed with
``/usr/lib/apt/apt-helper cat-file``. Packages whose long description is repeated (``foo`` and
``foo-data`` often share one) are kept once, and the split key is the description's first
paragraph, so sibling packages never straddle two splits.

Tasks: summary -> description, description -> summary, package name -> summary, same section
(symmetric), same debtags facet value (symmetric).
"""

from __future__ import annotations

import glob
import hashlib
import random
import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.splits import same_split_partner

__all__ = ["SOURCE", "DebianRaw", "build", "locate", "parse_records"]

LISTS = "/var/lib/apt/lists"
APT_HELPER = "/usr/lib/apt/apt-helper"
_MIN_DESCRIPTION = 80
# Sections whose name says nothing about the topic.
_VAGUE_SECTIONS = {"libs", "oldlibs", "misc", "libdevel", "metapackages", "localization", "debug", "introspection"}
# debtags facets that describe what a package is about.
_TOPIC_FACETS = ("field::", "works-with::", "use::", "game::", "works-with-format::")


@dataclass(frozen=True)
class DebianRaw:
    """The decompressed index texts."""

    translations: tuple[str, ...]
    packages: tuple[str, ...]


def parse_records(text: str) -> list[dict[str, str]]:
    r"""RFC 822 style records (``Field: value`` with indented continuation lines).

    >>> parse_records("Package: a\nDescription-en: x\n y\n .\n z\n\nPackage: b\n")[0]["Description-en"]
    'x\n y\n .\n z'
    """
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    field = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                records.append(current)
            current, field = {}, ""
        elif line[0] in " \t" and field:
            current[field] += "\n" + line
        else:
            field, _, value = line.partition(":")
            current[field] = value.strip()
    if current:
        records.append(current)
    return records


def _long_description(body: str) -> str:
    lines = []
    for line in body.splitlines()[1:]:
        line = line.strip()
        lines.append("" if line == "." else line)
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


def _packages(raw: DebianRaw) -> dict[str, tuple[str, str]]:
    """Package -> (summary, long description), first seen wins, repeated descriptions dropped."""
    out: dict[str, tuple[str, str]] = {}
    seen: set[str] = set()
    for text in raw.translations:
        for rec in parse_records(text):
            name, body = rec.get("Package"), rec.get("Description-en")
            if not name or not body or name in out:
                continue
            summary, description = body.splitlines()[0].strip(), _long_description(body)
            if len(description) < _MIN_DESCRIPTION or description in seen or summary in seen:
                continue
            seen.update((description, summary))
            out[name] = (summary, description)
    return out


def _metadata(raw: DebianRaw) -> dict[str, tuple[str, list[str]]]:
    """Package -> (section without the archive area, debtags)."""
    out: dict[str, tuple[str, list[str]]] = {}
    for text in raw.packages:
        for rec in parse_records(text):
            name = rec.get("Package")
            if name and name not in out:
                section = rec.get("Section", "").rsplit("/", 1)[-1]
                tags = [t.strip() for t in rec.get("Tag", "").replace("\n", " ").split(",") if t.strip()]
                out[name] = (section, tags)
    return out


def _key(description: str) -> str:
    first = description[:160]
    return "debian:" + hashlib.md5(first.encode()).hexdigest()[:12]


def build(raw: DebianRaw) -> list[TaskPairs]:
    """The Debian tasks (pure: the same index texts give the same pairs)."""
    packages = _packages(raw)
    meta = _metadata(raw)
    names = sorted(packages)
    domain = "Debian"
    s2d = task(
        "debian_summary_to_description",
        "debian",
        "retrieval",
        ("software package summary", "retrieving the full description of the package"),
        ("software package description", "retrieval"),
        domain=domain,
        category="retrieval",
    )
    d2s = task(
        "debian_description_to_summary",
        "debian",
        "summarization",
        ("software package description", "retrieving its one-line summary"),
        ("software package summary", "retrieval"),
        domain=domain,
        category="summarization",
    )
    n2s = task(
        "debian_name_to_summary",
        "debian",
        "retrieval",
        ("software package name", "retrieving what the package does"),
        ("software package summary", "retrieval"),
        domain=domain,
        category="retrieval",
    )
    section = task(
        "debian_same_section",
        "debian",
        "topic",
        ("software package summary", "classifying its topic"),
        domain=domain,
        category="classification",
    )
    tags = task(
        "debian_same_tag",
        "debian",
        "topic",
        ("software package description", "clustering by topic"),
        domain=domain,
        category="clustering",
    )
    out = {spec.name: TaskPairs(spec) for spec in (s2d, d2s, n2s, section, tags)}
    by_section: dict[str, list[str]] = defaultdict(list)
    by_tag: dict[str, list[str]] = defaultdict(list)
    chosen_tag: dict[str, str] = {}
    rng = random.Random(0)
    for name in names:
        summary, description = packages[name]
        key = _key(description)
        out[s2d.name].pairs.append(Pair(summary, description, key))
        out[d2s.name].pairs.append(Pair(description, summary, key))
        if len(name) > 3:
            out[n2s.name].pairs.append(Pair(name, summary, key))
        sec, tag_list = meta.get(name, ("", []))
        if sec and sec not in _VAGUE_SECTIONS:
            by_section[sec].append(name)
        topical = sorted(t for t in tag_list if t.startswith(_TOPIC_FACETS))
        if topical:
            chosen_tag[name] = rng.choice(topical)
            by_tag[chosen_tag[name]].append(name)
    for label, members in sorted(by_section.items()):
        for name, other in same_split_partner(members, lambda n: _key(packages[n][1]), rng):
            out[section.name].pairs.append(
                Pair(packages[name][0], packages[other][0], _key(packages[name][1]), label=label)
            )
    for label, members in sorted(by_tag.items()):
        for name, other in same_split_partner(members, lambda n: _key(packages[n][1]), rng):
            out[tags.name].pairs.append(
                Pair(packages[name][1], packages[other][1], _key(packages[name][1]), label=label)
            )
    return list(out.values())


def _cat(path: str) -> str:
    result = subprocess.run([APT_HELPER, "cat-file", path], check=True, capture_output=True)
    return result.stdout.decode("utf-8", errors="replace")


def locate(lists: str = LISTS) -> DebianRaw:
    """Decompress the English translation and package lists; :class:`SourceUnavailable` when absent."""
    translations = sorted(glob.glob(f"{lists}/*_i18n_Translation-en*"))
    packages = sorted(glob.glob(f"{lists}/*_binary-*_Packages*"))
    if not translations or shutil.which(APT_HELPER) is None and not glob.glob(APT_HELPER):
        raise SourceUnavailable(
            f"debian: no *_i18n_Translation-en lists in {lists} (run: apt-get update -o Acquire::Languages=en)"
        )
    return DebianRaw(tuple(_cat(p) for p in translations), tuple(_cat(p) for p in packages))


SOURCE = Source(
    name="debian",
    licence="Debian package descriptions: each package's own licence (DFSG-free, Debian main)",
    install="apt-get update -o Acquire::Languages=en",
    locate=locate,
    build=build,
    files=(f"{LISTS}/*_i18n_Translation-en*", f"{LISTS}/*_binary-*_Packages*"),
)
