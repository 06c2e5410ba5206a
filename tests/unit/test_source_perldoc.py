"""The perldoc source: POD parsing on inline excerpts of perl-doc's files, and counts on the installed files."""

from __future__ import annotations

from dataclasses import replace

from tests.source_checks import Text, check_tasks, installed
from training.recipe.sources.perldoc import SOURCE, build, locate, pod_items, strip_pod

FAQ4 = """=head1 NAME

perlfaq4 - Data Manipulation

=head1 VERSION

version 5.20210520

=head1 DESCRIPTION

This section of the FAQ answers questions related to manipulating
numbers, dates, strings, arrays, hashes, and miscellaneous data issues.

=head1 Data: Numbers

=head2 Why is int() broken?

Your C<int()> is most probably working just fine. It's the numbers that
aren't quite what you think.

For example, this

    print int(0.6/0.2-2), "\\n";

=head2 Why isn't my octal data interpreted correctly?

(contributed by brian d foy)

You're probably trying to convert a string to a number, which Perl only
converts as a decimal number. See L<perlfunc/oct>.
"""

FAQ5 = """=head1 NAME

perlfaq5 - Files and Formats

=head1 DESCRIPTION

This section deals with I/O and the "f" issues: filehandles, flushing,
formats, and footers.

=head2 How do I flush/unbuffer an output filehandle? Why must I do this?
X<flush> X<buffer> X<unbuffer> X<autoflush>

(contributed by brian d foy)

You might like to read Mark Jason Dominus's "Suffering From Buffering"
at L<http://perl.plover.com/FAQs/Buffering.html> .

=head2 How do I change, delete, or insert a line in a file?

(contributed by brian d foy)

The basic idea of inserting, changing, or deleting a line from a text
file involves reading and printing the file to the point you want to
make the change.
"""

FUNC = """=head2 Perl Functions by Category
X<function>

=over 4

=item Functions for SCALARs or strings
X<scalar> X<string> X<string, functions>

L<C<chomp>|/chomp VARIABLE>, L<C<chop>|/chop VARIABLE>

=back

=head2 Alphabetical Listing of Perl Functions

=over

=item abs VALUE
X<abs> X<absolute>

=item abs

=for Pod::Functions absolute value function

Returns the absolute value of its argument.
If VALUE is omitted, uses L<C<$_>|perlvar/$_>.

=item chdir EXPR
X<chdir>
X<cd>
X<directory, change>

=item chdir FILEHANDLE

=for Pod::Functions change your current working directory

Changes the working directory to EXPR, if possible. If EXPR is omitted,
changes to the directory specified by C<$ENV{HOME}>, if set.

=over 4

=item *

Nested lists belong to the body.

=back

    chdir "/tmp" or die;

=back

=cut
"""

DIAG = """=head1 DESCRIPTION

These messages are classified as follows (listed in increasing order of
desperation):

=over 4

=item accept() on closed socket %s

(W closed) You tried to do an accept on a closed socket.  Did you forget
to check the return value of your socket() call?  See
L<perlfunc/accept>.

=item '%c' allowed only after types %s in %s

(F) The modifiers '!', '<' and '>' are allowed in pack() or unpack() only
after certain types.  See L<perlfunc/pack>.

=item Quantifier follows nothing in regex; marked by S<<-- HERE> in m/%s/

(F) You started a regular expression with a quantifier.  Backslash it if
you meant it literally.

=back
"""


def _by_name(tasks):
    return {t.spec.name: t for t in tasks}


def test_strip_pod_codes():
    assert strip_pod("Use C<< $x->y >> or L<perlfunc/open>, B<I<this>>X<index> E<lt>here") == (
        "Use $x->y or open in perlfunc, this <here"
    )
    assert (
        strip_pod("C<<<FOO> and C<$<> and S<<-- HERE> and L<text|perlvar/$_>") == "<<FOO and $< and <-- HERE and text"
    )


def test_pod_items_groups_items_and_skips_nested_lists():
    items = pod_items(FUNC, "=head2 Alphabetical Listing")
    assert [i.items for i in items] == [
        ["abs VALUE\nX<abs> X<absolute>", "abs"],
        ["chdir EXPR\nX<chdir>\nX<cd>\nX<directory, change>", "chdir FILEHANDLE"],
    ]
    assert [i.summary for i in items] == ["absolute value function", "change your current working directory"]


def test_build_on_excerpts():
    tasks = _by_name(build({"perlfaq4.pod": FAQ4, "perlfaq5.pod": FAQ5, "perlfunc.pod": FUNC, "perldiag.pod": DIAG}))
    qa = tasks["perldoc_faq_question_to_answer"].pairs
    assert [(p.query, p.pos, p.key) for p in qa] == [
        (
            "Why is int() broken?",
            "Your int() is most probably working just fine. It's the numbers that aren't quite what you think. "
            "For example, this",
            "perldoc:faq:why is int() broken?",
        ),
        (
            "Why isn't my octal data interpreted correctly?",
            "You're probably trying to convert a string to a number, which Perl only "
            "converts as a decimal number. See oct in perlfunc.",
            "perldoc:faq:why isn't my octal data interpreted correctly?",
        ),
        (
            "How do I flush/unbuffer an output filehandle? Why must I do this?",
            'You might like to read Mark Jason Dominus\'s "Suffering From Buffering" '
            "at http://perl.plover.com/FAQs/Buffering.html .",
            "perldoc:faq:how do i flush/unbuffer an output filehandle? why must i do this?",
        ),
        (
            "How do I change, delete, or insert a line in a file?",
            "The basic idea of inserting, changing, or deleting a line from a text file "
            "involves reading and printing the file to the point you want to make the change.",
            "perldoc:faq:how do i change, delete, or insert a line in a file?",
        ),
    ]
    questions = {p.query: p.key for p in qa}
    for p in tasks["perldoc_faq_same_section"].pairs:
        assert p.label in ("perlfaq4 - Data Manipulation", "perlfaq5 - Files and Formats")
        assert p.key == questions[p.query] != questions[p.pos]
        assert (p.query in FAQ4) == (p.pos in FAQ4) == p.label.startswith("perlfaq4")
    usage = tasks["perldoc_function_usage_to_description"].pairs
    abs_doc = "Returns the absolute value of its argument. If VALUE is omitted, uses $_."
    chdir_doc = (
        "Changes the working directory to EXPR, if possible. If EXPR is omitted, changes to the directory "
        "specified by $ENV{HOME}, if set. Nested lists belong to the body."
    )
    assert [(p.query, p.pos, p.key) for p in usage] == [
        ("abs VALUE", abs_doc, "perldoc:func:abs"),
        ("chdir EXPR", chdir_doc, "perldoc:func:chdir"),
        ("chdir FILEHANDLE", chdir_doc, "perldoc:func:chdir"),
    ]
    diag = tasks["perldoc_diagnostic_to_explanation"].pairs
    assert [(p.query, p.pos, p.key) for p in diag] == [
        (
            "accept() on closed socket %s",
            "You tried to do an accept on a closed socket. Did you forget to check the return value of your "
            "socket() call? See accept in perlfunc.",
            "perldoc:diag:accept() on closed socket %s",
        ),
        (
            "'%c' allowed only after types %s in %s",
            "The modifiers '!', '<' and '>' are allowed in pack() or unpack() only after certain types. "
            "See pack in perlfunc.",
            "perldoc:diag:'%c' allowed only after types %s in %s",
        ),
        (
            "Quantifier follows nothing in regex; marked by <-- HERE in m/%s/",
            "You started a regular expression with a quantifier. Backslash it if you meant it literally.",
            "perldoc:diag:quantifier follows nothing in regex; marked by <-- here in m/%s/",
        ),
    ]
    severity = {p.query: "F" if p.query[0] in "'Q" else "W" for p in diag}
    for p in tasks["perldoc_diagnostic_same_severity"].pairs:
        assert p.label == severity[p.query] == severity[p.pos]


def test_real_files():
    raw = installed(locate, "perl-doc is not installed: ")
    tasks = SOURCE.build(raw)
    # no POD formatting code left, no POD command
    text = Text(min_len=10, banned=("  ", "\n"), banned_starts=("=",), pattern=r"\b[IBCLEFSXZ]<\S")
    check_tasks(
        tasks,
        "perldoc",
        5,
        instruction="Perl",
        query=text,
        pos=text,
        # only perlfunc usage lines (``fork``) may be under 10 characters
        sides={"perldoc_function_usage_to_description": (replace(text, min_len=0), text)},
    )
