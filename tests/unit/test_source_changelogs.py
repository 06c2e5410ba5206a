"""Tests of the ``changelogs`` source (Debian changelog entries -> package)."""

from __future__ import annotations

from tests.source_checks import Text, check_tasks, installed
from training.recipe.sources import CATEGORIES, Pair
from training.recipe.sources.changelogs import SOURCE, ChangelogRaw, build, clean_entry, locate

# Excerpts of /usr/share/doc/bash/changelog.Debian.gz, /usr/share/doc/sed/changelog.Debian.gz and
# /var/lib/dpkg/status (Debian bookworm).
BASH = """bash (5.2-3) unstable; urgency=medium

  * Apply upstream patches 003 - 015.
  * Repack to get rid of non-source PDF (Bastian Germann). Closes: #1024598.
  * d/watch: Update to v4 and add repack options.
  * Enable all hardening flags (Christian Göttsche). Closes: #1021082.

 -- Matthias Klose <doko@debian.org>  Sat, 31 Dec 2022 11:32:01 +0100

bash (5.2-2) unstable; urgency=medium

  * Apply upstream patches 001 - 002.
    - Expanding unset arrays in an arithmetic context can cause a
      segmentation fault.

 -- Matthias Klose <doko@debian.org>  Mon, 24 Oct 2022 10:34:28 +0200

bash (5.2-1) unstable; urgency=medium

  * New upstream release.

 -- Matthias Klose <doko@debian.org>  Wed, 28 Sep 2022 16:50:07 +0200
"""
SED = """sed (4.8-1.1) unstable; urgency=medium

  * Non-maintainer upload.
  * d/copyright: Complete and convert to format 1.0. closes: #1019288.

  [ Clint Adams ]
  * Switch debhelper compat level to 13.
  * Bump Standards-Version to 4.6.0.
  * Set Rules-Requires-Root to no.

 -- Bastian Germann <bage@debian.org>  Wed, 21 Dec 2022 13:44:30 +0100

sed (4.8-1) unstable; urgency=medium

  * New upstream version.

 -- Clint Adams <clint@debian.org>  Tue, 31 Aug 2021 08:55:13 -0400

# Older entries have been removed from this changelog.
"""
STATUS = """Package: bash
Essential: yes
Status: install ok installed
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: sed
Status: install ok installed
Description: GNU stream editor for filtering/transforming text
 sed reads the specified files.
"""

_BASH_3 = (
    "Apply upstream patches 003 - 015. Repack to get rid of non-source PDF (Bastian Germann). "
    "d/watch: Update to v4 and add repack options. Enable all hardening flags (Christian Göttsche)."
)
_BASH_2 = (
    "Apply upstream patches 001 - 002. Expanding unset arrays in an arithmetic context can cause a segmentation fault."
)
_SED = (
    "d/copyright: Complete and convert to format 1.0. Switch debhelper compat level to 13. "
    "Set Rules-Requires-Root to no."
)


def test_build_on_excerpt() -> None:
    tasks = build(ChangelogRaw((("bash", BASH), ("sed", SED)), STATUS))
    to_package, same = tasks
    assert to_package.spec.name == "changelogs_entry_to_package"
    assert to_package.pairs == [
        Pair(_BASH_3, "GNU Bourne Again SHell", "changelogs:bash", label="bash"),
        Pair(_BASH_2, "GNU Bourne Again SHell", "changelogs:bash", label="bash"),
        Pair(_SED, "GNU stream editor for filtering/transforming text", "changelogs:sed", label="sed"),
    ]
    assert same.spec.category == "clustering" and same.spec.shape == "symmetric"
    assert same.pairs == [
        Pair(_BASH_3, _BASH_2, "changelogs:bash", label="bash"),
        Pair(_BASH_2, _BASH_3, "changelogs:bash", label="bash"),
    ]
    assert "Debian package changelog entry" in to_package.spec.query_instruction


def test_shared_changelog_read_once_under_source_name() -> None:
    # bash-doc's doc dir holds the same changelog: one package, the summary of the binary named like the source.
    tasks = build(ChangelogRaw((("bash-doc", BASH), ("bash", BASH)), STATUS))
    assert [p.pos for p in tasks[0].pairs] == ["GNU Bourne Again SHell"] * 2


def test_clean_entry_drops_boilerplate() -> None:
    assert clean_entry("  * New upstream release.\n  * Rebuild for libfoo2.\n  * Upload to unstable.\n") == ""
    assert clean_entry("  * Fix crash on empty input (LP: #12345).\n") == "Fix crash on empty input."


def test_real_changelogs() -> None:
    raw = installed(locate)
    tasks = build(raw)
    text = Text(banned=("  ",), pattern=r"[Cc]loses: *#\d|^\* ")
    check_tasks(tasks, "changelogs", 2, query=text, pos=text, labelled=CATEGORIES)
    assert SOURCE.name == "changelogs"
