"""Perl's own documentation (Debian ``perl-doc``): the FAQ, the function reference and the diagnostics.

Raw files: ``/usr/share/perl/5.*/pod/perlfaq[1-9].pod``, ``perlfunc.pod`` and ``perldiag.pod``
(Debian ``perl-doc``; the newest ``5.*`` directory). Licence: Perl's, Artistic-1.0 or GPL-1+.

Cleaning: POD is split into paragraphs; verbatim (indented code) paragraphs are dropped from
answers and descriptions unless nothing else is left, ``X<>``/``Z<>`` index codes are removed,
the other formatting codes (``C<>``, ``I<>``, ``B<>``, ``F<>``, ``S<>``, ``L<>``, ``E<>``, also
in their ``C<< ... >>`` form) keep their text (``L<text|target>`` keeps ``text``, ``E<lt>`` is
``<``), whitespace is squashed and long texts are cut at a sentence boundary near 400 characters.

Split keys: the FAQ question (``perldoc:faq:<question>``), the function name
(``perldoc:func:<name>``), the diagnostic message (``perldoc:diag:<message>``).

Tasks:

* ``perldoc_faq_question_to_answer`` (retrieval, asymmetric): perlfaq question -> its answer
  (a leading "(contributed by ...)" credit removed);
* ``perldoc_faq_same_section`` (classification, same-label pairs): perlfaq question -> another
  question of the same perlfaq part (label: the part's title, e.g. ``perlfaq4 - Data Manipulation``);
* ``perldoc_function_usage_to_description`` (retrieval, asymmetric): a perlfunc usage line
  (``open FILEHANDLE,MODE,EXPR``) -> the function's description; a bare name (``abs``) listed
  next to a usage line with arguments (``abs VALUE``) is left out. Usage lines are short by
  nature (``fork``, ``abs VALUE``), so they are the one text kept under 10 characters;
* ``perldoc_function_description_to_summary`` is left out: perlfunc's ``=for Pod::Functions``
  one-line summaries cover only 246 functions (< 300 pairs);
* ``perldoc_diagnostic_to_explanation`` (retrieval, asymmetric): a perldiag message -> its
  explanation (the severity class, e.g. ``(W closed)``, removed);
* ``perldoc_diagnostic_same_severity`` (classification, same-label pairs): a perldiag message ->
  another message of the same severity class (``W`` warning, ``D`` deprecation, ``S`` severe
  warning, ``F`` fatal error, ``P`` internal error, ``X`` very fatal, ``A`` alien error).

perlvar (under 200 variables, < 300 pairs) gives no task.
"""

from __future__ import annotations

import html
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.splits import same_label_pairs

__all__ = ["SOURCE", "PodItem", "build", "cut", "locate", "pod_items", "pod_paragraphs", "strip_pod"]

ROOT = Path("/usr/share/perl")
FILES = tuple(f"perlfaq{i}.pod" for i in range(1, 10)) + ("perlfunc.pod", "perldiag.pod")
_MAX = 400
_SEVERITY = re.compile(r"^\(([WDSFPXA])\b[^)]*\)\s*")
_OPENER = re.compile(r"([IBCLEFSXZ])(<+)(\s+)?")
_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&", "apos": "'"}


def _escape(name: str) -> str:
    if name in _ESCAPES:
        return _ESCAPES[name]
    if name.isdigit():
        return chr(int(name))
    if name.lower().startswith("0x"):
        return chr(int(name, 16))
    return html.unescape(f"&{name};")


def _code(letter: str, body: str) -> str:
    if letter in "XZ":
        return ""
    if letter == "E":
        return _escape(body.strip())
    if letter == "L":
        if "|" in body:
            return body.split("|", 1)[0]
        if "/" in body and not re.match(r"\w+://", body):
            page, _, section = body.partition("/")
            section = section.strip('"')
            return f"{section} in {page}" if page else section
        return body.strip('"')
    return body


def strip_pod(text: str) -> str:
    """Plain text of POD formatting codes, whitespace squashed.

    A code's text ends at the first ``>`` (at the first whitespace + ``>>`` for ``C<< ... >>``), so
    ``C<$<>`` is ``$<`` and ``C<<<FOO>`` is ``<<FOO``, as perlpodspec says.

    >>> strip_pod("Use C<< $x->y >> or L<perlfunc/open>, not B<I<this>>X<index> E<lt>here")
    'Use $x->y or open in perlfunc, not this <here'
    """
    stack: list[tuple[str, str, list[str]]] = []  # (letter, closer, text so far)
    out: list[str] = []
    i = 0
    while i < len(text):
        opener = _OPENER.match(text, i)
        if opener:
            brackets, space = opener.group(2), opener.group(3)
            if len(brackets) > 1 and space:
                stack.append((opener.group(1), ">" * len(brackets), []))
                i = opener.end()
            else:
                stack.append((opener.group(1), ">", []))
                i = opener.start(2) + 1
            continue
        if stack:
            letter, closer, buffer = stack[-1]
            if closer == ">" and text[i] == ">":
                stack.pop()
                (stack[-1][2] if stack else out).append(_code(letter, "".join(buffer)))
                i += 1
                continue
            if closer != ">":
                close = re.compile(r"\s+" + closer).match(text, i)
                if close:
                    stack.pop()
                    (stack[-1][2] if stack else out).append(_code(letter, "".join(buffer)))
                    i = close.end()
                    continue
            buffer.append(text[i])
        else:
            out.append(text[i])
        i += 1
    while stack:  # unclosed codes keep their text
        letter, _, buffer = stack.pop()
        (stack[-1][2] if stack else out).append(_code(letter, "".join(buffer)))
    return re.sub(r"\s+", " ", "".join(out)).strip()


def cut(text: str, limit: int = _MAX) -> str:
    """``text`` cut at the last sentence end before ``limit`` (at ``limit`` when there is none past 60).

    >>> cut("One. Two three.", 8)
    'One.'
    """
    if len(text) <= limit:
        return text
    end = max(text.rfind(". ", 0, limit), text.rfind("? ", 0, limit), text.rfind("! ", 0, limit))
    return text[: end + 1] if end > 60 or (end > 0 and limit < 60) else text[:limit].rstrip()


def pod_paragraphs(pod: str) -> list[str]:
    """The POD paragraphs (blank-line separated), ``=begin``/``=end`` blocks and ``=for`` paragraphs kept as is."""
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n", pod) if p.strip()]


@dataclass
class PodItem:
    """A top-level ``=item`` group: its item lines, the body paragraphs and the enclosing ``=head2``."""

    items: list[str]
    body: list[str] = field(default_factory=list)
    head: str = ""
    summary: str = ""


def pod_items(pod: str, start: str | None = None) -> list[PodItem]:
    """Top-level ``=item`` groups of a POD text (from the paragraph starting with ``start``, if given).

    Consecutive ``=item`` paragraphs with no body between them form one group (``=item open FH`` /
    ``=item open FH,EXPR``); nested ``=over`` lists belong to the body.
    """
    paragraphs = pod_paragraphs(pod)
    if start is not None:
        index = next((i for i, p in enumerate(paragraphs) if p.startswith(start)), len(paragraphs))
        paragraphs = paragraphs[index:]
    out: list[PodItem] = []
    depth, head, skipping = 0, "", False
    current: PodItem | None = None
    for p in paragraphs:
        if skipping:
            skipping = not p.startswith("=end")
            continue
        if p.startswith("=begin"):
            skipping = True
            continue
        if p.startswith("=for"):
            if p.startswith("=for Pod::Functions") and current is not None:
                current.summary = strip_pod(p[len("=for Pod::Functions") :])
            continue
        if p.startswith(("=head1", "=head2")):
            head = strip_pod(p.split(None, 1)[1]) if " " in p else ""
            current = None
            continue
        if p.startswith("=over"):
            depth += 1
        elif p.startswith("=back"):
            depth -= 1
            if depth == 0:
                current = None
        elif p.startswith("=item") and depth == 1:
            line = p[len("=item") :].strip()
            if current is not None and not current.body and not current.summary:
                current.items.append(line)
            else:
                current = PodItem([line], head=head)
                out.append(current)
        elif current is not None and depth >= 1 and not p.startswith(("=cut", "=pod", "=encoding")):
            current.body.append(p)
    return out


def _prose(body: list[str]) -> str:
    """The body's text: its prose paragraphs, or its verbatim ones when it has no prose."""
    prose = [p for p in body if not p[:1].isspace() and not p.startswith("=")]
    return strip_pod(" ".join(prose or [p for p in body if not p.startswith("=")]))


def _faq(pod: str) -> tuple[str, list[tuple[str, str]]]:
    """``(part title, [(question, answer)])`` of one perlfaq file."""
    paragraphs = pod_paragraphs(pod)
    title = ""
    for i, p in enumerate(paragraphs):
        if p.startswith("=head1 NAME") and i + 1 < len(paragraphs):
            title = strip_pod(paragraphs[i + 1])
            break
    out: list[tuple[str, str]] = []
    question: str | None = None
    body: list[str] = []
    for p in paragraphs + ["=head1 END"]:
        if p.startswith(("=head1", "=head2")):
            if question is not None:
                answer = _prose([b for b in body if not b.startswith("=")])
                out.append((question, re.sub(r"^\(contributed by [^)]*\)\s*", "", answer)))
            question = strip_pod(p[len("=head2") :]) if p.startswith("=head2") else None
            body = []
        elif question is not None:
            body.append(p)
    return title, out


def _function_name(usage: str) -> str:
    return usage.split()[0] if usage.split() else usage


def build(raw: dict[str, str]) -> list[TaskPairs]:
    """The perldoc tasks from ``{pod file name: POD text}`` (pure); absent files give no pairs."""
    qa = TaskPairs(
        task(
            "perldoc_faq_question_to_answer",
            "perldoc",
            "question answering",
            ("FAQ question", "retrieving the answer to it"),
            ("FAQ answer", "answering a question"),
            domain="Perl",
        )
    )
    same_faq = TaskPairs(
        task(
            "perldoc_faq_same_section",
            "perldoc",
            "topic",
            ("FAQ question", "classifying the FAQ section it belongs to"),
            domain="Perl",
            category="classification",
        )
    )
    usage = TaskPairs(
        task(
            "perldoc_function_usage_to_description",
            "perldoc",
            "API documentation",
            ("built-in function usage line", "retrieving the function's documentation"),
            ("built-in function documentation", "retrieval of function reference"),
            domain="Perl",
        )
    )
    diag = TaskPairs(
        task(
            "perldoc_diagnostic_to_explanation",
            "perldoc",
            "error explanation",
            ("interpreter diagnostic message", "retrieving the explanation of the error"),
            ("diagnostic explanation", "retrieval of error explanations"),
            domain="Perl",
        )
    )
    severity = TaskPairs(
        task(
            "perldoc_diagnostic_same_severity",
            "perldoc",
            "severity",
            ("interpreter diagnostic message", "classifying its severity (warning, deprecation, fatal error)"),
            domain="Perl",
            category="classification",
        )
    )
    rng = random.Random(0)
    faq_by_part: dict[str, list[str]] = defaultdict(list)
    faq_key: dict[str, str] = {}
    for name in sorted(raw):
        if not re.fullmatch(r"perlfaq[1-9]\.pod", name):
            continue
        title, entries = _faq(raw[name])
        for question, answer in entries:
            answer = cut(answer)
            if len(question) < 10 or len(answer) < 20 or question in faq_key or question == answer:
                continue
            faq_key[question] = "perldoc:faq:" + question.lower()
            qa.pairs.append(Pair(question, answer, faq_key[question]))
            faq_by_part[title or name].append(question)
    same_faq.pairs.extend(same_label_pairs(faq_by_part, faq_key.__getitem__, rng))
    seen: set[tuple[str, str]] = set()
    for item in pod_items(raw.get("perlfunc.pod", ""), "=head2 Alphabetical Listing"):
        description = cut(_prose(item.body))
        if len(description) < 20:
            continue
        lines = [strip_pod(line) for line in item.items]
        if len(lines) > 1:  # ``abs`` next to ``abs VALUE`` says nothing more
            lines = [line for line in lines if len(line.split()) > 1] or lines
        for line in lines:
            if len(line) < 2 or (line, description) in seen:
                continue
            seen.add((line, description))
            usage.pairs.append(Pair(line, description, "perldoc:func:" + _function_name(line)))
    by_severity: dict[str, list[str]] = defaultdict(list)
    diag_key: dict[str, str] = {}
    for item in pod_items(raw.get("perldiag.pod", "")):
        text = _prose(item.body)
        match = _SEVERITY.match(text)
        explanation = cut(_SEVERITY.sub("", text))
        for line in item.items:
            message = strip_pod(line)
            if len(message) < 10 or len(explanation) < 20 or message in diag_key:
                continue
            diag_key[message] = "perldoc:diag:" + message.lower()
            diag.pairs.append(Pair(message, explanation, diag_key[message]))
            if match:
                by_severity[match.group(1)].append(message)
    severity.pairs.extend(same_label_pairs(by_severity, diag_key.__getitem__, rng))
    return [qa, same_faq, usage, diag, severity]


def pod_dir(root: Path = ROOT) -> Path | None:
    """The newest ``<root>/5.*/pod`` directory holding ``perlfunc.pod``, or ``None``."""
    found = [p.parent for p in root.glob("5.*/pod/perlfunc.pod")]
    return max(found, key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")], default=None)


def locate(root: Path = ROOT) -> dict[str, str]:
    """``{pod file name: text}`` of the files the tasks read.

    Raises:
        SourceUnavailable: perl-doc is not installed.
    """
    directory = pod_dir(root)
    if directory is None:
        raise SourceUnavailable(f"perldoc: no {root}/5.*/pod/perlfunc.pod (apt-get install perl-doc)")
    return {
        name: (directory / name).read_text(encoding="utf-8", errors="replace")
        for name in FILES
        if (directory / name).is_file()
    }


SOURCE = Source(
    name="perldoc",
    licence="Artistic-1.0 or GPL-1+ (Perl documentation, Debian perl-doc)",
    install="apt-get install perl-doc",
    locate=locate,
    build=build,
    debian_packages=("perl-doc",),
)
