"""Tests of the ``licences`` source (licence paragraphs -> licence name)."""

from __future__ import annotations

import re

from tests.source_checks import Text, check_tasks, installed
from training.recipe.sources import CATEGORIES
from training.recipe.sources.licences import SOURCE, LicenceRaw, build, canonical, dep5_licences, locate, paragraphs

# /usr/share/doc/base-passwd/copyright and /usr/share/doc/libcommons-io-java/copyright (Debian bookworm).
BASE_PASSWD = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: base-passwd
Upstream-Contact: Colin Watson <cjwatson@debian.org>

Files: *
Copyright: Copyright 1999-2002 Wichert Akkerman <wichert@deephackmode.org>
 Copyright 2002, 2003, 2004 Colin Watson <cjwatson@debian.org>
License: GPL-2

Files:
 passwd.master
 group.master
License: public-domain
Copyright: PD; Originally written by Ian Murdock <imurdock@debian.org> and
 Bruce Perens <bruce@pixar.com>.

License: GPL-2
 On Debian and Debian-based systems, a copy of the GNU General Public
 License version 2 is available in /usr/share/common-licenses/GPL-2.
"""
COMMONS_IO = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: Apache Commons IO
Source: http://svn.apache.org/repos/asf/commons/proper/io/

Files: *
Copyright: 2002-2021, The Apache Software Foundation
License: Apache-2.0

License: Apache-2.0
 On Debian systems, the full text of the Apache-2.0 license
 can be found in the file '/usr/share/common-licenses/Apache-2.0'
"""
# /usr/share/common-licenses/BSD (base-files), first paragraphs.
BSD = """Copyright (c) The Regents of the University of California.
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions
are met:
1. Redistributions of source code must retain the above copyright
   notice, this list of conditions and the following disclaimer.

THIS SOFTWARE IS PROVIDED BY THE REGENTS AND CONTRIBUTORS ``AS IS'' AND
ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE
ARE DISCLAIMED.
"""
_GPL2 = (
    "On Debian and Debian-based systems, a copy of the GNU General Public License version 2 is available in "
    "/usr/share/common-licenses/GPL-2."
)
_APACHE = (
    "On Debian systems, the full text of the Apache-2.0 license can be found in the file "
    "'/usr/share/common-licenses/Apache-2.0'"
)
_BSD_1 = (
    "Redistribution and use in source and binary forms, with or without modification, are permitted provided that "
    "the following conditions are met: 1. Redistributions of source code must retain the above copyright notice, "
    "this list of conditions and the following disclaimer."
)
_BSD_2 = (
    'THIS SOFTWARE IS PROVIDED BY THE REGENTS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS OR IMPLIED WARRANTIES, '
    "INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE "
    "ARE DISCLAIMED."
)


def test_build_on_excerpt() -> None:
    to_name, same = build(LicenceRaw((("BSD", BSD),), (BASE_PASSWD, COMMONS_IO)))
    assert to_name.spec.name == "licences_paragraph_to_name" and to_name.spec.category == "retrieval"
    got = [(p.query, p.pos, p.label) for p in to_name.pairs]
    assert got == [
        (_APACHE, "Apache-2.0 (Apache License, version 2.0)", "Apache-2.0"),
        (_BSD_1, 'BSD-3-clause (BSD 3-clause "New" or "Revised" License)', "BSD-3-clause"),
        (_BSD_2, 'BSD-3-clause (BSD 3-clause "New" or "Revised" License)', "BSD-3-clause"),
        (_GPL2, "GPL-2 (GNU General Public License, version 2)", "GPL-2"),
    ]
    keys = [p.key for p in to_name.pairs]
    assert all(re.fullmatch(r"licences:[\w.+-]+:[0-9a-f]{12}", k) for k in keys) and len(set(keys)) == 4
    assert keys[0].startswith("licences:Apache-2.0:")
    assert same.spec.category == "clustering" and same.spec.shape == "symmetric"
    for p in same.pairs:  # only BSD has two paragraphs; a pair exists when both land in one split
        assert {p.query, p.pos} == {_BSD_1, _BSD_2} and p.label == "BSD-3-clause"


def test_disputed_paragraph_is_dropped() -> None:
    # The same paragraph under GPL-2 in one file and GPL-2+ in another: no name gets 80 % of the votes.
    other = BASE_PASSWD.replace("License: GPL-2\n On", "License: GPL-2+\n On")
    to_name, _ = build(LicenceRaw((), (BASE_PASSWD, other)))
    assert to_name.pairs == []


def test_parsers() -> None:
    assert canonical("MIT") == "Expat" and canonical("Apache-2.0 or MIT") is None
    assert canonical("GPL-2+ with autoconf exception") == "GPL-2+ with Autoconf exception"
    assert dep5_licences(COMMONS_IO) == [
        (
            "Apache-2.0",
            "On Debian systems, the full text of the Apache-2.0 license\ncan be found in the file "
            "'/usr/share/common-licenses/Apache-2.0'",
        )
    ]
    assert paragraphs("Copyright (c) 2020 Jane Doe\n\nSee https://example.org\n") == []


def test_real_licences() -> None:
    raw = installed(locate)
    tasks = build(raw)
    paragraph = Text(min_len=40, stripped=False, banned=("  ", "``"))
    check_tasks(tasks, "licences", 2, query=paragraph, pos=None, labelled=CATEGORIES)
    queries = [p.query for p in tasks[0].pairs]
    assert len(queries) == len(set(queries))  # one paragraph, one name, one key
    assert SOURCE.name == "licences"
