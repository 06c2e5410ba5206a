"""The pycode source: ast extraction on an inline excerpt of the standard library, and counts on the real one."""

from __future__ import annotations

from tests.source_checks import check_tasks, installed
from training.recipe.sources import Pair, TaskPairs
from training.recipe.sources.pycode import SOURCE, build, locate

SHUTIL = '''"""Utility functions for copying and archiving files and directory trees."""

import os


def copyfileobj(fsrc, fdst, length=0):
    """copy data from file-like object fsrc to file-like object fdst"""
    if not length:
        length = COPY_BUFSIZE
    fsrc_read = fsrc.read
    fdst_write = fdst.write
    while True:
        buf = fsrc_read(length)
        if not buf:
            break
        fdst_write(buf)


def _stub(path):
    """Return the stub's value; a stub has no code pair."""
    raise NotImplementedError


class Error(OSError):
    pass


class ExecError(OSError):
    """Raised when a command could not be executed"""

    @property
    def name(self) -> str:
        """The command's name.

        Set by :func:`run` when the command
        fails; see ``errno``.
        """
        return self._name
'''


def test_build_on_excerpt():
    search, api, summary, same = build([("shutil", SHUTIL)])
    copy_doc = "copy data from file-like object fsrc to file-like object fdst"
    copy_code = (
        "def copyfileobj(fsrc, fdst, length=0): if not length: length = COPY_BUFSIZE fsrc_read = fsrc.read "
        "fdst_write = fdst.write while True: buf = fsrc_read(length) if not buf: break fdst_write(buf)"
    )
    assert [(p.query, p.pos, p.key) for p in search.pairs] == [
        (copy_doc, copy_code, "pycode:shutil.copyfileobj"),
        ("The command's name.", "def name(self) -> str: return self._name", "pycode:shutil.ExecError.name"),
    ]
    assert [(p.query, p.pos, p.key) for p in api.pairs] == [
        ("shutil.copyfileobj(fsrc, fdst, length=0)", copy_doc, "pycode:shutil.copyfileobj"),
        ("shutil._stub(path)", "Return the stub's value; a stub has no code pair.", "pycode:shutil._stub"),
        ("shutil.ExecError.name(self) -> str", "The command's name.", "pycode:shutil.ExecError.name"),
    ]
    assert [(p.query, p.pos, p.key) for p in summary.pairs] == [
        ("Set by run when the command fails; see errno.", "The command's name.", "pycode:shutil.ExecError.name")
    ]
    keys = {p.pos: p.key for p in api.pairs}
    for p in same.pairs:
        assert p.label == "shutil" and p.key == keys[p.query] != keys[p.pos]


def test_real_stdlib():
    raw = installed(locate, "no standard library sources: ")
    modules = [name for name, _ in raw]
    assert "shutil" in modules and "email.mime.text" in modules
    assert not any(m.startswith(("test.", "idlelib", "lib2to3", "encodings")) for m in modules)
    tasks = SOURCE.build(raw)

    def no_rest_markup(t: TaskPairs, p: Pair) -> None:  # docstrings lose their reST markup
        for text in {"code search": [p.query], "API documentation": [p.pos]}.get(t.spec.task_type, [p.query, p.pos]):
            assert ":func:`" not in text and "``" not in text

    check_tasks(
        tasks,
        "pycode",
        [
            "pycode_docstring_to_code",
            "pycode_signature_to_docstring",
            "pycode_docstring_body_to_summary",
            "pycode_same_module",
        ],
        categories=["retrieval", "retrieval", "summarization", "clustering"],
        instruction="Python",
        labels=modules,
        each=no_rest_markup,
    )
    code = {p.key: p.pos for p in tasks[0].pairs}
    assert code["pycode:shutil.copyfileobj"].startswith("def copyfileobj(")
    assert '"""' not in code["pycode:shutil.copyfileobj"]
