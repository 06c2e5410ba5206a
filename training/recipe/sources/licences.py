"""Software licence texts: a paragraph of a licence -> the licence's name.

Raw files: ``/usr/share/common-licenses/*`` (Debian ``base-files``: the full texts of GPL, LGPL,
Apache, MPL, GFDL...; the file name is the licence; symlinks such as ``GPL -> GPL-3`` skipped),
the machine-readable (DEP-5) copyright files ``/usr/share/doc/*/copyright`` of the installed
Debian packages (a ``License: <short name>`` field followed by the licence text, `` .`` lines
separating paragraphs), and the LICENSE / COPYING file of each installed Python distribution
(``importlib.metadata``; its name from a single-licence ``License-Expression`` or its one
``License ::`` classifier). Licence: the licence texts themselves are freely redistributable
verbatim (each licence's own terms; Debian main).

Cleaning: only licences in :data:`LICENCES` (SPDX/Debian short names, aliases folded:
``BSD-3-Clause`` = ``BSD-3-clause``, ``MIT`` = ``Expat``, ``GPL-2.0+`` = ``GPL-2+``...), optionally
``with <X> exception``; dual-licence fields (``X or Y``) are skipped. Paragraphs are squashed, cut
to about 400 characters at a sentence boundary; those under 40 characters or 6 words, copyright
lines, bare URLs and lead-ins ending in ":" are dropped. A Python licence file over 17,000
characters bundles third-party licences and is skipped. The same paragraph text appears in many
files: it is kept once, under the name most files give it (dropped unless 80 % of them agree: the
GPL's "This program is distributed in the hope..." is both GPL-2 and GPL-2+). Near-duplicates of
one licence (the same BSD clause with another copyright holder: same first or last 150 letters)
are kept once. At most 120 paragraphs per licence.

Split key: ``licences:<licence>:<hash of the paragraph>``: one paragraph text is in one split.

Tasks: licence paragraph -> "<short name> (<full name>)" (retrieval; the licence is the label);
licence paragraph -> another paragraph of the same licence (clustering, same-label).
"""

from __future__ import annotations

import email.message
import functools
import glob
import hashlib
import importlib.metadata
import os
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import cast

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.splits import same_split_partner

__all__ = [
    "LICENCES",
    "SOURCE",
    "LicenceRaw",
    "build",
    "canonical",
    "dep5_licences",
    "locate",
    "paragraphs",
]

COMMON = "/usr/share/common-licenses"
DOC = "/usr/share/doc"
_MAX_CHARS = 400
_MIN_CHARS = 40
_AGREEMENT = 0.8
_MAX_PER_LICENCE = 120
_MAX_FILE = 17000  # a longer Python licence file bundles third-party licences

LICENCES: dict[str, str] = {
    "GPL-1": "GNU General Public License, version 1",
    "GPL-1+": "GNU General Public License, version 1 or later",
    "GPL-2": "GNU General Public License, version 2",
    "GPL-2+": "GNU General Public License, version 2 or later",
    "GPL-3": "GNU General Public License, version 3",
    "GPL-3+": "GNU General Public License, version 3 or later",
    "LGPL-2": "GNU Library General Public License, version 2",
    "LGPL-2+": "GNU Library General Public License, version 2 or later",
    "LGPL-2.1": "GNU Lesser General Public License, version 2.1",
    "LGPL-2.1+": "GNU Lesser General Public License, version 2.1 or later",
    "LGPL-3": "GNU Lesser General Public License, version 3",
    "LGPL-3+": "GNU Lesser General Public License, version 3 or later",
    "AGPL-3": "GNU Affero General Public License, version 3",
    "AGPL-3+": "GNU Affero General Public License, version 3 or later",
    "GFDL-1.2": "GNU Free Documentation License, version 1.2",
    "GFDL-1.2+": "GNU Free Documentation License, version 1.2 or later",
    "GFDL-1.3": "GNU Free Documentation License, version 1.3",
    "GFDL-1.3+": "GNU Free Documentation License, version 1.3 or later",
    "GFDL-1.1+": "GNU Free Documentation License, version 1.1 or later",
    "Apache-1.1": "Apache License, version 1.1",
    "Apache-2.0": "Apache License, version 2.0",
    "Artistic-1.0": "Artistic License, version 1.0 (Perl)",
    "Artistic-2.0": "Artistic License, version 2.0",
    "BSD-2-clause": 'BSD 2-clause "Simplified" License',
    "BSD-3-clause": 'BSD 3-clause "New" or "Revised" License',
    "BSD-4-clause": 'BSD 4-clause "Original" License, with the advertising clause',
    "0BSD": "BSD Zero Clause License",
    "Expat": "MIT License, Expat variant",
    "X11": "X11 License, MIT variant with the name-use clause",
    "ISC": "ISC License",
    "Zlib": "zlib/libpng License",
    "libpng": "libpng License",
    "CC0-1.0": "Creative Commons Zero 1.0 Universal public domain dedication",
    "CC-BY-3.0": "Creative Commons Attribution 3.0",
    "CC-BY-4.0": "Creative Commons Attribution 4.0 International",
    "CC-BY-SA-2.5": "Creative Commons Attribution-ShareAlike 2.5",
    "CC-BY-SA-3.0": "Creative Commons Attribution-ShareAlike 3.0",
    "CC-BY-SA-4.0": "Creative Commons Attribution-ShareAlike 4.0 International",
    "MPL-1.1": "Mozilla Public License, version 1.1",
    "MPL-2.0": "Mozilla Public License, version 2.0",
    "EPL-1.0": "Eclipse Public License, version 1.0",
    "EPL-2.0": "Eclipse Public License, version 2.0",
    "OFL-1.1": "SIL Open Font License, version 1.1",
    "PSF-2.0": "Python Software Foundation License, version 2",
    "BSL-1.0": "Boost Software License, version 1.0",
    "Unicode-DFS": "Unicode Data Files and Software License",
    "FTL": "FreeType Project License",
    "OpenSSL": "OpenSSL and SSLeay License",
    "curl": "curl License",
    "FSFAP": "FSF All Permissive License",
    "FSFUL": "FSF Unlimited License",
    "FSFULLR": "FSF Unlimited License, with License Retention",
    "AFL-2.0": "Academic Free License, version 2.0",
    "AFL-2.1": "Academic Free License, version 2.1",
    "public-domain": "dedicated to the public domain",
}
"""Canonical short name -> full name of every licence this source keeps."""

_ALIASES: dict[str, str] = {
    "gpl-2.0": "GPL-2",
    "gpl-2.0+": "GPL-2+",
    "gpl-2.0-only": "GPL-2",
    "gpl-2.0-or-later": "GPL-2+",
    "gplv2": "GPL-2",
    "gplv2+": "GPL-2+",
    "gpl-3.0": "GPL-3",
    "gpl-3.0+": "GPL-3+",
    "gpl-3.0-only": "GPL-3",
    "gpl-3.0-or-later": "GPL-3+",
    "gplv3": "GPL-3",
    "gplv3+": "GPL-3+",
    "lgpl-2.0": "LGPL-2",
    "lgpl-2.0+": "LGPL-2+",
    "lgpl-2.1-only": "LGPL-2.1",
    "lgpl-2.1-or-later": "LGPL-2.1+",
    "lgpl-3.0": "LGPL-3",
    "lgpl-3.0+": "LGPL-3+",
    "lgpl-3.0-only": "LGPL-3",
    "lgpl-3.0-or-later": "LGPL-3+",
    "agpl-3.0": "AGPL-3",
    "agpl-3.0+": "AGPL-3+",
    "agpl-3.0-or-later": "AGPL-3+",
    "apache-2": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache2": "Apache-2.0",
    "artistic": "Artistic-1.0",
    "artistic-1": "Artistic-1.0",
    "artistic-2": "Artistic-2.0",
    "bsd": "BSD-3-clause",  # /usr/share/common-licenses/BSD
    "bsd-2-clause": "BSD-2-clause",
    "bsd-3-clause": "BSD-3-clause",
    "bsd-4-clause": "BSD-4-clause",
    "mit": "Expat",
    "mit/x11": "X11",
    "expat": "Expat",
    "x11": "X11",
    "zlib": "Zlib",
    "cc0": "CC0-1.0",
    "python": "PSF-2.0",
    "psf": "PSF-2.0",
    "boost-1.0": "BSL-1.0",
    "unicode": "Unicode-DFS",
    "unicode-dfs-2016": "Unicode-DFS",
    "public domain": "public-domain",
    "gfdl-1.2": "GFDL-1.2",
    "gfdl-1.3": "GFDL-1.3",
}
_LOWER = {name.lower(): name for name in LICENCES} | _ALIASES
_CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "Expat",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2",
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3",
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3",
}
_LICENCE_FILE = re.compile(r"(?:LICEN[CS]E|COPYING)(?:\.(?:txt|md|rst))?", re.IGNORECASE)


@dataclass(frozen=True)
class LicenceRaw:
    """The raw texts.

    Attributes:
        named: ``(licence name as written, licence text)`` from common-licenses and Python distributions.
        copyright_files: the text of every copyright file under ``/usr/share/doc``.
    """

    named: tuple[tuple[str, str], ...]
    copyright_files: tuple[str, ...]


def canonical(name: str) -> str | None:
    """The canonical short name of a licence as written, or ``None`` when it is not one this source keeps.

    >>> canonical("BSD-3-Clause"), canonical("GPL-2.0+ with Autoconf exception"), canonical("GPL-2 or MIT")
    ('BSD-3-clause', 'GPL-2+ with Autoconf exception', None)
    """
    name = re.sub(r"\s+", " ", name).strip()
    match = re.fullmatch(r"(\S+?)(?: with ([\w.-]+) exception)?", name, re.IGNORECASE)
    if not match:
        return None
    base = _LOWER.get(match.group(1).lower())
    if base is None:
        return None
    exception = match.group(2)
    return f"{base} with {exception[0].upper()}{exception[1:]} exception" if exception else base


def _full_name(name: str) -> str:
    base, _, exception = name.partition(" with ")
    full = LICENCES[base]
    return f"{name} ({full}, with the {exception})" if exception else f"{name} ({full})"


def _cut(text: str) -> str:
    if len(text) <= _MAX_CHARS:
        return text
    cut = max(text.rfind(". ", 0, _MAX_CHARS), text.rfind("; ", 0, _MAX_CHARS))
    return text[: cut + 1] if cut > _MAX_CHARS // 3 else text[:_MAX_CHARS].rsplit(" ", 1)[0]


def paragraphs(text: str) -> list[str]:
    r"""The clean paragraphs of a licence text (blank lines or DEP-5 `` .`` lines separate them).

    >>> paragraphs("Copyright (c) 2020 Jane Doe\n\nPermission to use, copy, modify, and/or\n distribute it.\n")
    ['Permission to use, copy, modify, and/or distribute it.']
    """
    out = []
    for block in re.split(r"\n[ \t]*\.?[ \t]*(?:\n|$)", text):
        block = re.sub(r"``(.*?)''", r'"\1"', block, flags=re.DOTALL)
        para = re.sub(r"\s+", " ", re.sub(r"[`*#=_]{2,}|^\s*[-=*#]+\s*$", " ", block, flags=re.MULTILINE))
        para = para.strip().lstrip(".,;:-* ")
        if (
            len(para) < _MIN_CHARS
            or len(para.split()) < 6
            or para.endswith(":")
            or re.search(r"https?://\S+$", para)
            and len(para.split()) < 10
            or re.match(r"(?i)(copyright\b|\(c\)|©)", para)
            and len(para) < 200
        ):
            continue
        out.append(_cut(para))
    return out


def dep5_licences(text: str) -> list[tuple[str, str]]:
    r"""``(licence name, licence text)`` of every DEP-5 stanza whose ``License:`` field has a text body.

    >>> dep5_licences("Format: https://x\n\nFiles: *\nLicense: ISC\n Permission to use.\n .\n THE SOFTWARE\n")
    [('ISC', 'Permission to use.\n.\nTHE SOFTWARE')]
    """
    if not text.startswith("Format:"):
        return []
    out = []
    for stanza in re.split(r"\n[ \t]*\n", text):
        lines = stanza.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("License:"):
                continue
            body = []
            for cont in lines[i + 1 :]:
                if not cont[:1].isspace():
                    break
                body.append(cont.strip())
            if body:
                out.append((line[len("License:") :].strip(), "\n".join(body)))
    return out


def _labelled(raw: LicenceRaw) -> dict[str, list[str]]:
    """Licence -> its distinct paragraphs (each paragraph under the name most files give it)."""
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    order: list[str] = []
    sources = list(raw.named) + [item for text in raw.copyright_files for item in dep5_licences(text)]
    for written, text in sources:
        name = canonical(written)
        if name is None:
            continue
        for para in paragraphs(text):
            if para not in votes:
                order.append(para)
            votes[para][name] += 1
    by_licence: dict[str, list[str]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for para in order:
        (name, count), total = votes[para].most_common(1)[0], sum(votes[para].values())
        if count < _AGREEMENT * total:
            continue
        letters = re.sub(r"[^a-z0-9]", "", para.lower())
        head, tail = (name, "h" + letters[:150]), (name, "t" + letters[-150:])
        if head in seen or tail in seen or len(by_licence[name]) >= _MAX_PER_LICENCE:
            continue
        seen.update((head, tail))
        by_licence[name].append(para)
    return by_licence


def _key(name: str, para: str) -> str:
    return f"licences:{name}:" + hashlib.sha1(para.encode()).hexdigest()[:12]


def build(raw: LicenceRaw) -> list[TaskPairs]:
    """The licence tasks (pure)."""
    domain = "software licence"
    to_name = TaskPairs(
        task(
            "licences_paragraph_to_name",
            "licences",
            "licence identification",
            ("text paragraph", "retrieving the name of its licence"),
            ("name", "retrieval"),
            domain=domain,
        )
    )
    same = TaskPairs(
        task(
            "licences_same_licence",
            "licences",
            "licence identification",
            ("text paragraph", "clustering by the licence it belongs to"),
            domain=domain,
            category="clustering",
        )
    )
    rng = random.Random(0)
    for name, paras in sorted(_labelled(raw).items()):
        full = _full_name(name)
        to_name.pairs.extend(Pair(p, full, _key(name, p), label=name) for p in paras)
        for a, b in same_split_partner(paras, functools.partial(_key, name), rng):
            same.pairs.append(Pair(a, b, _key(name, a), label=name))
    return [to_name, same]


def _python_licences() -> list[tuple[str, str]]:
    out = []
    for dist in sorted(importlib.metadata.distributions(), key=lambda d: str(d.metadata["Name"]).lower()):
        meta = cast(email.message.Message, dist.metadata)  # PackageMetadata is a Message at runtime
        expression = meta.get("License-Expression") or ""
        classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
        name = canonical(expression) if expression else None
        if name is None and len(classifiers) == 1:
            name = _CLASSIFIERS.get(classifiers[0])
        files = [f for f in dist.files or [] if ".dist-info" in str(f) and _LICENCE_FILE.fullmatch(f.name)]
        if name is None or len(files) != 1:
            continue
        path = dist.locate_file(files[0])
        if os.path.isfile(str(path)) and os.path.getsize(str(path)) <= _MAX_FILE:
            with open(str(path), encoding="utf-8", errors="replace") as f:
                out.append((name, f.read()))
    return out


def locate(common: str = COMMON, doc: str = DOC) -> LicenceRaw:
    """The licence texts on this machine; :class:`SourceUnavailable` without Debian's common-licenses."""
    paths = sorted(p for p in glob.glob(f"{common}/*") if os.path.isfile(p) and not os.path.islink(p))
    if not paths:
        raise SourceUnavailable(f"licences: no licence texts in {common} (apt-get install base-files)")
    named = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            named.append((os.path.basename(path), f.read()))
    copyright_files = []
    for path in sorted(glob.glob(f"{doc}/*/copyright")):
        if os.path.islink(path) or os.path.islink(os.path.dirname(path)):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            copyright_files.append(f.read())
    return LicenceRaw(tuple(named) + tuple(_python_licences()), tuple(copyright_files))


SOURCE = Source(
    name="licences",
    licence="licence texts: verbatim copying permitted by each licence; Debian copyright files (Debian main)",
    install="apt-get install base-files",
    locate=locate,
    build=build,
    debian_packages=("base-files",),
    files=(f"{COMMON}/*", f"{DOC}/*/copyright", "<python>/site-packages/*.dist-info/LICEN[CS]E*"),
)
