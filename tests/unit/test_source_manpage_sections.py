"""manpage_sections: exact labelled pages of an inline roff excerpt, and label sizes on the installed pages."""

from __future__ import annotations

from collections import Counter

from tests.source_checks import Text, check_text, installed
from training.recipe.sources import manpage_sections

CHMOD = r""".\" SPDX-License-Identifier: Linux-man-pages-copyleft
.TH chmod 2 2023-02-05 "Linux man-pages 6.03"
.SH NAME
chmod, fchmod, fchmodat \- change permissions of a file
.SH SYNOPSIS
.nf
.B #include <sys/stat.h>
.fi
.SH DESCRIPTION
The
.BR chmod ()
and
.BR fchmod ()
system calls change a file's mode bits.
(The file mode consists of the file permission bits plus the set-user-ID,
set-group-ID, and sticky bits.)
"""
XATTR = r""".TH xattr 7 2023-02-05 "Linux man-pages 6.03"
.SH NAME
xattr \- Extended attributes
.SH DESCRIPTION
Extended attributes are name:value pairs associated permanently with
files and directories, similar to the environment strings associated with a process.
"""
SELECT = r""".TH select 2 2023-02-05 "Linux man-pages 6.03"
.SH NAME
select, pselect, FD_CLR, FD_ISSET, FD_SET, FD_ZERO \- synchronous I/O multiplexing
.SH DESCRIPTION
.BR select ()
allows a program to monitor multiple file descriptors,
waiting until one or more of the file descriptors become "ready".
"""
CASINH = r""".TH casinh 3 2022-12-15 "Linux man-pages 6.03"
.SH NAME
casinh, casinhf, casinhl \- complex arc sine hyperbolic
.SH DESCRIPTION
These functions calculate the complex arc hyperbolic sine of
.IR z .
If \fIy\ =\ casinh(z)\fP, then \fIz\ =\ csinh(y)\fP.
"""
RAW = {
    "chmod.2.gz": CHMOD,
    "FD_CLR.3.gz": SELECT,  # a link to select.2: the .TH line gives its page and section
    "select.2.gz": SELECT,
    "xattr.7.gz": XATTR,
    "casinh.3.gz": CASINH,
    "redirect.3.gz": ".so man3/casinh.3\n",
}


def test_labelled_pages_of_an_inline_excerpt() -> None:
    assert manpage_sections.labelled_pages(RAW, min_per_label=1) == [
        ("manpages:select.2", "synchronous I/O multiplexing", "2"),
        ("manpages:casinh.3", "complex arc sine hyperbolic", "3"),
        ("manpages:chmod.2", "change permissions of a file", "2"),
        ("manpages:xattr.7", "Extended attributes", "7"),
    ]
    assert manpage_sections.labelled_pages(RAW, min_per_label=2) == [
        ("manpages:select.2", "synchronous I/O multiplexing", "2"),
        ("manpages:chmod.2", "change permissions of a file", "2"),
    ]
    described = manpage_sections.labelled_pages(RAW, field="description", min_per_label=1)
    assert described == [
        (
            "manpages:select.2",
            "select () allows a program to monitor multiple file descriptors, waiting until one or more of the "
            'file descriptors become "ready".',
            "2",
        ),
        (
            "manpages:casinh.3",
            "These functions calculate the complex arc hyperbolic sine of z . If y = casinh(z), then z = csinh(y).",
            "3",
        ),
        (
            "manpages:chmod.2",
            "The chmod () and fchmod () system calls change a file's mode bits. (The file mode consists of the file "
            "permission bits plus the set-user-ID, set-group-ID, and sticky bits.)",
            "2",
        ),
        (
            "manpages:xattr.7",
            "Extended attributes are name:value pairs associated permanently with files and directories, similar "
            "to the environment strings associated with a process.",
            "7",
        ),
    ]


def test_page_section() -> None:
    assert manpage_sections.page_section("size_t.3type.gz") == ("size_t", "3type")
    assert manpage_sections.page_section("FD_CLR.3.gz", SELECT) == ("select", "2")
    assert manpage_sections.page_section("README") is None


# a page's name or description: 10 to 400 characters, no roff escape left, its white space folded
PAGE_TEXT = Text(banned=("\\",), ok=lambda text: text == " ".join(text.split()))


def test_installed_pages() -> None:
    raw = installed(manpage_sections.locate)
    for field in ("name", "description"):
        rows = manpage_sections.labelled_pages(raw, field=field)  # type: ignore[arg-type]
        sizes = Counter(label for _, _, label in rows)
        assert len(rows) >= 900, field
        assert sizes["2"] >= 200 and sizes["3"] >= 300 and sizes["7"] >= 100, sizes
        assert all(n >= 5 for n in sizes.values())
        assert len({k for k, _, _ in rows}) == len(rows) == len({t for _, t, _ in rows})
        for key, text, label in rows:
            assert key.startswith("manpages:") and key.rsplit(".", 1)[1].startswith(label)
            check_text(text, PAGE_TEXT)
