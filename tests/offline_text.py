"""Real English text that every dev install has, for tests that need many distinct rows (no Debian package).

- the first paragraph of the docstrings of public standard-library functions, classes and methods;
- paragraphs of the Python reference topics that ship with every interpreter (``pydoc_data.topics``);
- chatterbot-corpus questions and answers (a dev dependency).

Rows are at most :data:`MAX_CHARS` long (about 60 on average, as WordNet's glosses that the batch tests used
before): over 5,000 distinct texts. They are read in a fixed order, so a test gets the same rows on every run of
the same Python version.
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache

from instructor_plugins.corpora import chatterbot_pairs

__all__ = ["MAX_CHARS", "TextRow", "docstring_paragraphs", "text_rows", "topic_paragraphs"]

MAX_CHARS = 200

TextRow = tuple[str, str, str]  # (unique id, text, a short name or category)

_MODULES = (
    "abc argparse ast asyncio base64 bisect bz2 calendar cmd codecs collections colorsys configparser contextlib "
    "copy csv dataclasses datetime decimal difflib email.message enum filecmp fnmatch fractions ftplib functools "
    "getopt gettext glob gzip hashlib heapq hmac html html.parser http.client http.cookies imaplib inspect io "
    "ipaddress itertools json logging lzma mailbox math mimetypes numbers operator optparse os os.path pathlib "
    "pickle pkgutil platform plistlib poplib pprint queue quopri random re sched secrets selectors shelve shlex "
    "shutil smtplib socket sqlite3 ssl statistics string struct subprocess tarfile tempfile textwrap threading "
    "timeit tokenize traceback types typing unittest urllib.parse urllib.request uuid warnings wave weakref "
    "xml.dom.minidom xml.etree.ElementTree zipfile zlib"
).split()


@cache
def docstring_paragraphs() -> tuple[TextRow, ...]:
    """``(qualified name, first docstring paragraph, short name)``, each paragraph once, in module order."""
    seen: dict[str, tuple[str, str]] = {}
    for module_name in _MODULES:
        module = importlib.import_module(module_name)
        for name, obj in inspect.getmembers(module):
            if name.startswith("_"):
                continue
            members = [(f"{module_name}.{name}", name, obj)]
            if inspect.isclass(obj) and obj.__module__.split(".")[0] == module_name.split(".")[0]:
                members += [(f"{module_name}.{name}.{n}", n, o) for n, o in vars(obj).items() if not n.startswith("_")]
            for qualified, short, member in members:
                doc = inspect.getdoc(member) if callable(member) else None
                paragraph = " ".join(doc.split("\n\n")[0].split()) if doc else ""
                if 20 < len(paragraph) <= MAX_CHARS and paragraph not in seen:
                    seen[paragraph] = (qualified, short)
    return tuple((qualified, text, short) for text, (qualified, short) in seen.items())


def topic_paragraphs() -> list[TextRow]:
    """``(pydoc-TOPIC-i, paragraph, TOPIC)`` from the Python reference topics."""
    from pydoc_data.topics import topics

    out = []
    for topic in sorted(topics):
        for i, paragraph in enumerate(topics[topic].split("\n\n")):
            text = " ".join(paragraph.split())
            if 40 < len(text) <= MAX_CHARS:
                out.append((f"pydoc-{topic}-{i}", text, topic))
    return out


def text_rows(n: int) -> list[TextRow]:
    """The first ``n`` distinct texts of: the docstring paragraphs, the reference topics, chatterbot's turns."""
    chatterbot = [
        (f"chatterbot-{i}{side}", text, pair.category)
        for i, pair in enumerate(chatterbot_pairs())
        for side, text in (("q", pair.question), ("a", pair.answer))
        if len(text) <= MAX_CHARS
    ]
    rows: list[TextRow] = []
    texts: set[str] = set()
    for row in [*docstring_paragraphs(), *topic_paragraphs(), *chatterbot]:
        if row[1] not in texts:
            texts.add(row[1])
            rows.append(row)
            if len(rows) == n:
                return rows
    raise ValueError(f"asked for {n} rows; the offline text has {len(rows)}")
