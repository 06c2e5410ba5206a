"""The vimhelp source: exact entries of an inline excerpt of Vim's help files, and counts on the installed ones."""

from __future__ import annotations

from collections import Counter

from tests.source_checks import Text, check_tasks, installed
from training.recipe.sources import vimhelp

OPTIONS = (
    "*options.txt*\tFor Vim version 9.0.  Last change: 2023 Feb 17\n"
    "\n"
    "\n"
    "\t\t  VIM REFERENCE MANUAL\t  by Bram Moolenaar\n"
    "\n"
    "\t\t\t\t\t\t*'tabpagemax'* *'tpm'*\n"
    "'tabpagemax' 'tpm'\tnumber\t(default 10)\n"
    "\t\t\tglobal\n"
    "\tMaximum number of tab pages to be opened by the |-p| command line\n"
    '\targument or the ":tab all" command. |tabpage|\n'
    "\n"
    "\n"
    "\t\t\t\t\t\t*'tabstop'* *'ts'*\n"
    "'tabstop' 'ts'\t\tnumber\t(default 8)\n"
    "\t\t\tlocal to buffer\n"
    "\tNumber of spaces that a <Tab> in the file counts for.  Also see\n"
    "\tthe |:retab| command, and the 'softtabstop' option.\n"
    "\n"
    " vim:tw=78:ts=8:noet:ft=help:norl:\n"
)
CHANGE = (
    "==============================================================================\n"
    "4.2 Substitute\t\t\t\t\t\t*:substitute*\n"
    "\t\t\t\t\t\t\t*:s* *:su*\n"
    ":[range]s[ubstitute]/{pattern}/{string}/[flags] [count]\n"
    "\t\t\tFor each line in [range] replace a match of {pattern}\n"
    "\t\t\twith {string}.\n"
    "\t\t\t\t\t\t\t*E939*\n"
    "\t\t\t[count] must be a positive number.  Also see\n"
    "\t\t\t|cmdline-ranges|.\n"
    "\n"
    ":[range]&[&][flags] [count]\t\t\t\t\t*:&*\n"
    "\t\t\tRepeat last :substitute with same search pattern and\n"
    "\t\t\tsubstitute string, but without the same flags.  Example: >\n"
    "\t\t\t\t:&&\n"
    "<\t\t\tKeeps the flags. ~\n"
    "disabled by setting it.  *not-a-tag-line*\n"
    "------------------------------------------------------------------------------\n"
    "*x*  too short\n"
)
WINDOWS = (
    "CTRL-W s\t\t\t\t\t\t*CTRL-W_s*\n"
    "CTRL-W S\t\t\t\t\t\t*CTRL-W_S*\n"
    ":[N]sp[lit] [++opt] [+cmd] [file]\t\t\t*:sp* *:split*\n"
    "\t\tSplit current window in two.  The result is two viewports on\n"
    "\t\tthe same file.\n"
    "\n"
    "\t\t\t\t\t\t\t*:setl* *:setlocal*\n"
    ':setl[ocal][!] ...\tLike ":set" but set only the value local to the\n'
    "\t\t\tcurrent buffer or window.\n"
)
TAGS = (
    "'tabpagemax'\toptions.txt\t/*'tabpagemax'*\n"
    "'tabstop'\toptions.txt\t/*'tabstop'*\n"
    "'tpm'\toptions.txt\t/*'tpm'*\n"
    "'ts'\toptions.txt\t/*'ts'*\n"
    ":&\tchange.txt\t/*:&*\n"
    ":s\tchange.txt\t/*:s*\n"
    ":setl\twindows.txt\t/*:setl*\n"
    ":setlocal\twindows.txt\t/*:setlocal*\n"
    ":sp\twindows.txt\t/*:sp*\n"
    ":split\twindows.txt\t/*:split*\n"
    ":su\tchange.txt\t/*:su*\n"
    ":substitute\tchange.txt\t/*:substitute*\n"
    "CTRL-W_S\twindows.txt\t/*CTRL-W_S*\n"
    "CTRL-W_s\twindows.txt\t/*CTRL-W_s*\n"
    "E939\tchange.txt\t/*E939*\n"
    "not-a-tag-line\tchange.txt\t/*not-a-tag-line*\n"
    "options.txt\toptions.txt\t/*options.txt*\n"
    "x\tchange.txt\t/*x*\n"
)
RAW = vimhelp.VimRaw(
    files={"options.txt": OPTIONS, "change.txt": CHANGE, "windows.txt": WINDOWS}, tags=vimhelp.parse_tags(TAGS)
)

TABPAGEMAX = (
    "'tabpagemax' 'tpm' number (default 10) global Maximum number of tab pages to be opened by the -p command "
    'line argument or the ":tab all" command. tabpage'
)
TABSTOP = (
    "'tabstop' 'ts' number (default 8) local to buffer Number of spaces that a <Tab> in the file counts for. "
    "Also see the :retab command, and the 'softtabstop' option."
)
SUBSTITUTE = (
    "4.2 Substitute :[range]s[ubstitute]/{pattern}/{string}/[flags] [count] For each line in [range] replace a "
    "match of {pattern} with {string}. [count] must be a positive number. Also see cmdline-ranges."
)
AMPERSAND = (
    ":[range]&[&][flags] [count] Repeat last :substitute with same search pattern and substitute string, but "
    "without the same flags. Example: :&& Keeps the flags. disabled by setting it."
)
SPLIT = (
    "CTRL-W s CTRL-W S :[N]sp[lit] [++opt] [+cmd] [file] Split current window in two. The result is two "
    "viewports on the same file."
)
SETLOCAL = ':setl[ocal][!] ... Like ":set" but set only the value local to the current buffer or window.'


def test_entries_of_an_inline_excerpt() -> None:
    assert vimhelp.entries(RAW) == [
        (":substitute", SUBSTITUTE, "change.txt"),
        (":&", AMPERSAND, "change.txt"),
        ("'tabpagemax'", TABPAGEMAX, "options.txt"),
        ("'tabstop'", TABSTOP, "options.txt"),
        ("CTRL-W_s", SPLIT, "windows.txt"),
        (":setlocal", SETLOCAL, "windows.txt"),
    ]
    assert vimhelp.labelled_entries(RAW)[0] == ("vimhelp::substitute", SUBSTITUTE, "change.txt")


def test_build_on_an_inline_excerpt() -> None:
    tag_to_text, same_file = vimhelp.build(RAW)
    assert tag_to_text.spec.name == "vimhelp_tag_to_text"
    assert (tag_to_text.spec.category, tag_to_text.spec.shape) == ("retrieval", "asymmetric")
    assert "Vim editor" in tag_to_text.spec.query_instruction
    assert [(p.query, p.pos, p.key) for p in tag_to_text.pairs] == [
        (":substitute", SUBSTITUTE, "vimhelp::substitute"),
        (":&", AMPERSAND, "vimhelp::&"),
        ("'tabpagemax'", TABPAGEMAX, "vimhelp:'tabpagemax'"),
        ("'tabstop'", TABSTOP, "vimhelp:'tabstop'"),
        ("CTRL-W s", SPLIT, "vimhelp:CTRL-W_s"),
        (":setlocal", SETLOCAL, "vimhelp::setlocal"),
    ]
    assert (same_file.spec.category, same_file.spec.shape) == ("pair_classification", "symmetric")
    label_of = {text: file for _, text, file in vimhelp.entries(RAW)}
    key_of = {text: "vimhelp:" + tag for tag, text, _ in vimhelp.entries(RAW)}
    for p in same_file.pairs:
        assert label_of[p.query] == label_of[p.pos] == p.label
        assert p.key == key_of[p.query] and p.query != p.pos
    assert vimhelp.build(RAW) == vimhelp.build(RAW)


def test_helpers() -> None:
    assert vimhelp.render_tag("CTRL-W_CTRL-S") == "CTRL-W CTRL-S"
    assert vimhelp.render_tag("v_CTRL-C") == "Visual mode CTRL-C"
    assert vimhelp.render_tag("c_no_tab_space_error") == "c_no_tab_space_error"
    assert vimhelp.render_tag("'tabstop'") == "'tabstop'"
    # '<' outside an example is text (the :< command), not an example end marker
    assert vimhelp.clean_lines(["<{motion}\t\tShift {motion} lines"]) == "<{motion} Shift {motion} lines"


def test_installed_help_files() -> None:
    raw = installed(vimhelp.locate)
    tasks = vimhelp.build(raw)
    check_tasks(
        tasks,
        "vimhelp",
        ["vimhelp_tag_to_text", "vimhelp_same_file"],
        query=Text(min_len=0, banned=("  ", "\t")),
        pos=Text(min_len=30, banned=("  ", "\t"), pattern=r"\|[^ |]+\|"),
    )
    tag_to_text = tasks[0]
    tags = [p.key.removeprefix("vimhelp:") for p in tag_to_text.pairs]
    assert sum(t.startswith("'") for t in tags) >= 300  # options
    assert sum(t.startswith(":") for t in tags) >= 300  # ex commands
    rows = vimhelp.labelled_entries(raw)
    sizes = Counter(label for _, _, label in rows)
    assert len(rows) >= 3000 and sizes["options.txt"] >= 300 and sizes["builtin.txt"] >= 300
    assert len({k for k, _, _ in rows}) == len(rows)
