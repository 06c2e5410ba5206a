"""Code search over Python's own standard library: docstrings, signatures and function bodies.

Raw files: the running interpreter's standard library sources (``sysconfig.get_paths()["stdlib"]``,
``*.py``; Debian ``libpython3.*-stdlib`` for the system Python), without tests (``test``/``tests``
folders), ``idlelib``, ``lib2to3``, ``site-packages``, ``encodings``, ``pydoc_data``, ``turtledemo``,
``ensurepip`` and ``__phello__``. They are parsed with :mod:`ast`, never imported. Licence: PSF-2.0.

Cleaning: a docstring's first paragraph (PEP 257 cleaned) loses its reST roles (``:func:`x``` is
``x``) and double back-quotes; code is the function's source from ``def`` to its end without the
docstring (decorators dropped); every text has its whitespace squashed and is cut near 400
characters (docstrings at a sentence end, code at a space). Functions whose body is only ``pass``,
``...`` or ``raise NotImplementedError`` give no code pair; a docstring seen before (``_pyio``
repeats ``io``...) is used once.

Split key: ``pycode:<module>.<qualified name>`` (``pycode:shutil.copyfileobj``).

Tasks:

* ``pycode_docstring_to_code`` (retrieval, code search, asymmetric): a function's docstring (first
  paragraph) -> its source code;
* ``pycode_signature_to_docstring`` (retrieval, API documentation, asymmetric): qualified name and
  signature (``shutil.copyfileobj(fsrc, fdst, length=0)``) -> the docstring's first paragraph;
* ``pycode_docstring_body_to_summary`` (summarization, asymmetric): the rest of a multi-paragraph
  docstring -> its one-line summary;
* ``pycode_same_module`` (clustering, same-label pairs): a docstring -> the docstring of another
  function of the same module (label: the module).
"""

from __future__ import annotations

import ast
import re
import sysconfig
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.splits import same_label_pairs

__all__ = ["SKIP_DIRS", "SOURCE", "build", "clean_doc", "cut", "functions", "locate", "module_name"]

SKIP_DIRS = frozenset(
    {"test", "tests", "idlelib", "lib2to3", "site-packages", "__pycache__", "encodings", "pydoc_data", "turtledemo"}
    | {"ensurepip", "__phello__"}
)
_MAX = 400
_MIN = 10
_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def squash(text: str) -> str:
    """Whitespace runs as one space."""
    return re.sub(r"\s+", " ", text).strip()


def cut(text: str, limit: int = _MAX) -> str:
    """``text`` cut at the last sentence end before ``limit`` (at ``limit`` when there is none past 60).

    >>> cut("Return the value. Raise an error when it is missing.", 30)
    'Return the value.'
    """
    if len(text) <= limit:
        return text
    end = max(text.rfind(". ", 0, limit), text.rfind("? ", 0, limit), text.rfind("! ", 0, limit))
    return text[: end + 1] if end > min(60, limit // 2) else text[:limit].rstrip()


def cut_code(code: str, limit: int = _MAX) -> str:
    """``code`` cut at the last space before ``limit``.

    >>> cut_code("def f(x): return x + 1", 12)
    'def f(x):'
    """
    if len(code) <= limit:
        return code
    end = code.rfind(" ", 0, limit)
    return code[:end] if end > limit // 2 else code[:limit]


def clean_doc(text: str) -> str:
    r"""A docstring paragraph without reST roles and literal quotes, whitespace squashed.

    >>> clean_doc("Like :func:`os.stat`, but ``follow_symlinks``\n   is *False*.")
    'Like os.stat, but follow_symlinks is False.'
    """
    text = re.sub(r":[\w:.-]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", text)
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r"(?<![\w*])\*{1,2}(?=[^\s*])([^*]+?)(?<=\S)\*{1,2}(?![\w*])", r"\1", text)
    return squash(text)


def module_name(relative: Path) -> str:
    """The dotted module name of a path under the standard library.

    >>> module_name(Path("email/mime/text.py")), module_name(Path("json/__init__.py"))
    ('email.mime.text', 'json')
    """
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def functions(tree: ast.Module) -> Iterator[tuple[str, _FunctionNode]]:
    """``(qualified name, node)`` of every function and method, nested classes included (not functions in functions)."""

    def walk(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, _FunctionNode]]:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield prefix + node.name, node
            elif isinstance(node, ast.ClassDef):
                yield from walk(node.body, f"{prefix}{node.name}.")

    yield from walk(tree.body, "")


def _signature(node: _FunctionNode) -> str:
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"({ast.unparse(node.args)}){returns}"


def _is_stub(body: list[ast.stmt]) -> bool:
    if len(body) != 1:
        return False
    stmt = body[0]
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return True
    if isinstance(stmt, ast.Raise):
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def _code(lines: list[str], node: _FunctionNode) -> str | None:
    """The function's source without its docstring (``None`` for a stub)."""
    body = node.body[1:]
    if not body or _is_stub(body) or node.end_lineno is None:
        return None
    header = lines[node.lineno - 1 : node.body[0].lineno - 1]
    if not header:  # ``def f(): "doc"; return 1`` on one line
        return None
    rest = lines[body[0].lineno - 1 : node.end_lineno]
    return cut_code(squash(" ".join(header + rest)))


def build(raw: list[tuple[str, str]]) -> list[TaskPairs]:
    """The stdlib code tasks from ``[(module name, source text)]`` (pure; modules in the given order)."""
    search = TaskPairs(
        task(
            "pycode_docstring_to_code",
            "pycode",
            "code search",
            ("function docstring", "retrieving the source code that implements it"),
            ("function source code", "code search"),
            domain="Python",
        )
    )
    api = TaskPairs(
        task(
            "pycode_signature_to_docstring",
            "pycode",
            "API documentation",
            ("function name and signature", "retrieving the function's docstring"),
            ("function docstring", "retrieval of API documentation"),
            domain="Python",
        )
    )
    summary = TaskPairs(
        task(
            "pycode_docstring_body_to_summary",
            "pycode",
            "summary line",
            ("docstring body", "retrieving the docstring's one-line summary"),
            ("docstring summary line", "summarizing a function's documentation"),
            domain="Python",
            category="summarization",
        )
    )
    same = TaskPairs(
        task(
            "pycode_same_module",
            "pycode",
            "module",
            ("function docstring", "clustering functions by the standard library module they belong to"),
            domain="Python",
            category="clustering",
        )
    )
    seen: set[str] = set()
    key_of: dict[str, str] = {}
    by_module: dict[str, list[str]] = defaultdict(list)
    for module, source in raw:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines = source.splitlines()
        for qualname, node in functions(tree):
            doc = ast.get_docstring(node)
            if not doc:
                continue
            paragraphs = [clean_doc(p) for p in re.split(r"\n\s*\n", doc) if p.strip()]
            first = cut(paragraphs[0]) if paragraphs else ""
            if len(first) < _MIN or first.startswith(">>>") or first in seen:
                continue
            seen.add(first)
            key = f"pycode:{module}.{qualname}"
            key_of[first] = key
            code = _code(lines, node)
            if code is not None and len(code) >= _MIN:
                search.pairs.append(Pair(first, code, key))
            signature = cut_code(squash(f"{module}.{qualname}{_signature(node)}"))
            if len(signature) >= _MIN:
                api.pairs.append(Pair(signature, first, key))
            rest = cut(" ".join(p for p in paragraphs[1:] if not p.startswith(">>>")))
            if len(paragraphs[0]) <= 120 and len(rest) >= 40 and "\n" not in doc.split("\n\n", 1)[0]:
                summary.pairs.append(Pair(rest, paragraphs[0], key))
            by_module[module].append(first)
    same.pairs.extend(same_label_pairs(by_module, key_of.__getitem__))
    return [search, api, summary, same]


def locate(root: Path | None = None) -> list[tuple[str, str]]:
    """``[(module name, source)]`` of the standard library's ``.py`` files, in sorted path order.

    Raises:
        SourceUnavailable: no standard library sources (an interpreter shipped as bytecode only).
    """
    base = Path(sysconfig.get_paths()["stdlib"]) if root is None else root
    paths = [
        p
        for p in sorted(base.rglob("*.py"))
        if not set(p.relative_to(base).parts[:-1]) & SKIP_DIRS and not p.name.startswith("_sysconfigdata")
    ]
    if not paths:
        raise SourceUnavailable(f"pycode: no standard library sources under {base} (apt-get install libpython3-stdlib)")
    return [(module_name(p.relative_to(base)), p.read_text(encoding="utf-8", errors="replace")) for p in paths]


SOURCE = Source(
    name="pycode",
    licence="PSF-2.0 (CPython standard library sources of the running interpreter)",
    install="apt-get install libpython3-stdlib (the running interpreter's standard library sources)",
    locate=locate,
    build=build,
)
