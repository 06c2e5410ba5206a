"""Vim's help files (Debian ``vim-runtime``): help tag -> help text, and help texts grouped by help file.

HELD-OUT evaluation source: the training corpus never reads it.

Raw files: ``/usr/share/vim/vim*/doc/*.txt`` and the ``tags`` index there (tag -> help file), from
Debian ``vim-runtime``. A help entry starts at a tag line (a line that ends with ``*tag*`` tags, the
tags ``:helptags`` indexes: after white space or at the line start, followed by white space or the
line end, and listed in ``tags`` for that file); consecutive tag lines make one entry. The entry's text
is the tag lines' own text (a heading, a command's usage line) and the following lines up to the next
tag line or section rule (``====`` / ``----``). Lines whose only tags are error numbers (``*E939*``)
do not start an entry: they sit inside the entry they belong to. The entry's tag is its first tag,
or a longer spelling of it among the entry's tags (``:setl`` -> ``:setlocal``); file tags
(``*options.txt*``) start no entry.

Cleaning: ``|link|`` -> ``link``, ``*tag*`` removed, backticks removed, example markers (a trailing
`` >`` that opens an example, a leading ``<`` that closes one) and trailing ``~`` heading markers
removed, the ``vim:`` modeline dropped, white space squashed, cut to <= 400 characters at a sentence
end where possible; entries shorter than 30 characters and repeated texts are left out. Tags are
rendered a little more readable for the query (``CTRL-W_s`` -> ``CTRL-W s``, ``i_CTRL-R`` ->
``Insert mode CTRL-R``). The split key is ``vimhelp:<tag>``.

Tasks: ``vimhelp_tag_to_text`` (retrieval, asymmetric: help tag -> its entry text) and
``vimhelp_same_file`` (pair_classification, symmetric: entry text -> another entry text of the same
help file, label = the file name such as ``options.txt``). :func:`labelled_entries` gives every
entry as ``(key, text, help file)`` for classification and clustering evaluation.

Licence: the Vim licence (charityware, GPL-compatible).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.splits import same_label_pairs

__all__ = [
    "SOURCE",
    "VimRaw",
    "build",
    "clean_lines",
    "entries",
    "labelled_entries",
    "locate",
    "parse_tags",
    "render_tag",
]

ROOT = Path("/usr/share/vim")
DOMAIN = "Vim editor"
_MAX_TEXT = 400
_MIN_TEXT = 30
# A *tag* as :helptags accepts it: at the line start or after a blank, no blank or | inside, then a blank or EOL.
_TAG = re.compile(r"(?:(?<=[ \t])|^)\*([^ \t|*]+)\*(?=[ \t]|$)")
_ERROR_TAG = re.compile(r"^E\d+$")
_RULE = re.compile(r"^\s*(?:={3,}|-{3,})\s*$")
_MODELINE = re.compile(r"^\s*vim:.*:\s*$")
_LINK = re.compile(r"\|([^ \t|]+)\|")
_EXAMPLE_START = re.compile(r"(?:^| )>[a-z0-9]*$")
_MODES = {"i": "Insert mode", "v": "Visual mode", "c": "Command-line mode"}


@dataclass(frozen=True)
class VimRaw:
    """The raw input: help file texts and the ``tags`` index.

    Attributes:
        files: ``{help file name: text}``, e.g. ``{"options.txt": "..."}``.
        tags: ``{tag: help file name}`` from the ``tags`` file.
    """

    files: dict[str, str]
    tags: dict[str, str]


@dataclass(frozen=True)
class _Entry:
    tag: str
    file: str
    text: str


def parse_tags(text: str) -> dict[str, str]:
    r"""``{tag: help file}`` of a Vim ``tags`` file.

    >>> parse_tags("'ts'\toptions.txt\t/*'ts'*\n:s\tchange.txt\t/*:s*\n")
    {"'ts'": 'options.txt', ':s': 'change.txt'}
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            out[parts[0]] = parts[1]
    return out


def render_tag(tag: str) -> str:
    """A help tag a little more readable: key sequences spaced, mode prefixes spelled out.

    >>> render_tag("CTRL-W_CTRL-S"), render_tag("i_CTRL-R"), render_tag("c_<Left>"), render_tag(":substitute")
    ('CTRL-W CTRL-S', 'Insert mode CTRL-R', 'Command-line mode <Left>', ':substitute')
    """
    mode = ""
    match = re.match(r"^([ivc])_(.+)$", tag)
    if match and (match.group(1) != "c" or match.group(2).startswith(("CTRL-", "<"))):
        mode, tag = _MODES[match.group(1)] + " ", match.group(2)
    return mode + re.sub(r"(CTRL-(?:<[^>]+>|\S))_(?=\S)", r"\1 ", tag)


def _strip_examples(lines: list[str]) -> list[str]:
    """Lines with example markers removed: a trailing `` >`` opens an example, a leading ``<`` closes it."""
    out: list[str] = []
    in_example = False
    for line in lines:
        if in_example:
            if line.startswith("<"):
                line, in_example = " " + line[1:], False
            elif line and not line[0].isspace():
                in_example = False
        if not in_example and _EXAMPLE_START.search(line):
            line, in_example = _EXAMPLE_START.sub("", line), True
        out.append(line)
    return out


def clean_lines(lines: list[str]) -> str:
    r"""Plain text of help lines: links, tags, backticks, example and heading markers removed, blanks squashed.

    >>> clean_lines(["Use |:retab| on 'ts': >", "\t:retab 4", "<\tThen *x* done. ~"])
    "Use :retab on 'ts': :retab 4 Then done."
    """
    return _clean_text(_strip_examples(lines))


def _clean_text(lines: list[str]) -> str:
    out: list[str] = []
    for line in lines:
        if _MODELINE.match(line):
            continue
        line = re.sub(r"(?<!\\)~\s*$", "", line)
        line = _TAG.sub("", line)
        line = _LINK.sub(r"\1", line).replace("`", "")
        out.append(line)
    return re.sub(r"\s+", " ", " ".join(out)).strip()


def _cut(text: str) -> str:
    if len(text) <= _MAX_TEXT:
        return text
    cut = max(text.rfind(". ", 0, _MAX_TEXT), text.rfind(": ", 0, _MAX_TEXT))
    return text[: cut + 1] if cut > _MAX_TEXT // 3 else text[:_MAX_TEXT].rsplit(" ", 1)[0]


def _line_tags(line: str, file: str, tags: dict[str, str]) -> list[str]:
    """The indexed tags of a tag line, else ``[]``.

    A tag line has only tags after its first tag, and nothing before it or a gap of a tab or three
    spaces (a heading or usage line at the left, the tags at the right; not a tag ending a sentence).
    """
    found = [m for m in _TAG.finditer(line) if tags.get(m.group(1)) == file]
    if not found or _TAG.sub("", line[found[0].start() :]).strip():
        return []
    before = line[: found[0].start()]
    if before.strip() and not re.search(r"(\t|   )\s*$", before):
        return []
    return [m.group(1) for m in found]


def _pick_tag(group: list[str]) -> str:
    named = [t for t in group if not _ERROR_TAG.match(t)]
    first = named[0]
    return max((t for t in named if t.startswith(first)), key=len)


def _file_entries(name: str, text: str, tags: dict[str, str]) -> list[_Entry]:
    out: list[_Entry] = []
    group: list[str] = []
    lines: list[str] = []

    def flush() -> None:
        real = [t for t in group if not t.endswith(".txt")]
        if real:
            out.append(_Entry(_pick_tag(real), name, _cut(_clean_text(lines))))

    previous_was_tag = False
    for line in _strip_examples(text.splitlines()):
        line_tags = _line_tags(line, name, tags)
        if line_tags and all(_ERROR_TAG.match(t) for t in line_tags):
            line_tags = []
        if _RULE.match(line):
            flush()
            group, lines, previous_was_tag = [], [], False
        elif line_tags:
            if not previous_was_tag:
                flush()
                group, lines = [], []
            group += line_tags
            lines.append(line)
            previous_was_tag = True
        else:
            lines.append(line)
            previous_was_tag = False
    flush()
    return out


def entries(raw: VimRaw) -> list[tuple[str, str, str]]:
    """``(tag, text, help file)`` of every help entry, files in name order; short and repeated texts left out."""
    out: list[tuple[str, str, str]] = []
    seen_text: set[str] = set()
    seen_tag: set[str] = set()
    for name in sorted(raw.files):
        for entry in _file_entries(name, raw.files[name], raw.tags):
            if len(entry.text) < _MIN_TEXT or entry.text in seen_text or entry.tag in seen_tag:
                continue
            seen_text.add(entry.text)
            seen_tag.add(entry.tag)
            out.append((entry.tag, entry.text, entry.file))
    return out


def labelled_entries(raw: VimRaw) -> list[tuple[str, str, str]]:
    """``(key, text, help file)`` of every entry, for classification and clustering evaluation (pure)."""
    return [("vimhelp:" + tag, text, file) for tag, text, file in entries(raw)]


def build(raw: VimRaw) -> list[TaskPairs]:
    """The Vim help tasks (pure; deterministic order)."""
    tag_to_text = TaskPairs(
        task(
            "vimhelp_tag_to_text",
            "vimhelp",
            "retrieval",
            ("help tag", "retrieving its documentation"),
            ("help text", "retrieval"),
            domain=DOMAIN,
            category="retrieval",
        )
    )
    same_file = TaskPairs(
        task(
            "vimhelp_same_file",
            "vimhelp",
            "topic",
            ("help text", "classifying the help file it belongs to"),
            domain=DOMAIN,
            category="pair_classification",
        )
    )
    all_entries = entries(raw)
    key_of = {text: "vimhelp:" + tag for tag, text, _ in all_entries}
    by_file: dict[str, list[str]] = defaultdict(list)
    for tag, text, file in all_entries:
        query = render_tag(tag)
        if query != text:
            tag_to_text.pairs.append(Pair(query, text, key_of[text]))
        by_file[file].append(text)
    same_file.pairs.extend(same_label_pairs(by_file, key_of.__getitem__))
    return [tag_to_text, same_file]


def locate(root: Path = ROOT) -> VimRaw:
    """Help files and the ``tags`` index of the newest ``vim*/doc`` under ``root``.

    Raises:
        SourceUnavailable: no help files with a ``tags`` index there.
    """
    docs = sorted(d for d in root.glob("vim[0-9]*/doc") if (d / "tags").is_file())
    if not docs:
        raise SourceUnavailable(f"vimhelp: no {root}/vim*/doc/tags (apt-get install vim-runtime)")
    doc = docs[-1]
    files = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in sorted(doc.glob("*.txt"))}
    return VimRaw(files=files, tags=parse_tags((doc / "tags").read_text(encoding="utf-8", errors="replace")))


SOURCE = Source(
    name="vimhelp",
    licence="Vim licence (charityware, GPL-compatible) (Debian vim-runtime)",
    install="apt-get install vim-runtime",
    locate=locate,
    build=build,
    debian_packages=("vim-runtime",),
)
