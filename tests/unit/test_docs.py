"""Every code block in README.md and docs/ runs: Python blocks are executed, ``instructor`` command lines parse.

The Python blocks of one page run in order in one namespace (a page reads as one session), on the bundled offline
model: no hub, no network, no Ray. A block that needs more says so in an HTML comment on the line before it, which
the page's readers do not see::

    <!-- skip: needs the Hugging Face Hub -->

The reason is required. Shell blocks are not run; each ``instructor COMMAND ...`` line in them must name a real
command, and each of its flags must be one that command's parser defines.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from instructor_plugins import cli

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(
    r"^(?P<skip><!-- skip: (?P<reason>[^>]*?) -->\n)?```(?P<lang>[\w-]*)\n(?P<code>.*?)^```$", re.M | re.S
)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start("lang")) + 1
        skip = match.group("reason")
        if match.group("skip") is not None and not (skip or "").strip():
            raise AssertionError(f"{page}:{line}: a skip marker needs a reason")
        found.append(Block(page, line, match.group("lang"), match.group("code"), skip))
    return found


ALL = [b for page in PAGES for b in blocks(page)]
PYTHON_PAGES = sorted({b.page for b in ALL if b.lang == "python" and b.skip is None})


def test_pages_and_blocks_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/index.md", "docs/encoder.md", "docs/plugins.md"} <= names
    runnable = [b for b in ALL if b.lang == "python" and b.skip is None]
    assert len(runnable) >= 8, [b.where for b in runnable]
    assert all(b.lang for b in ALL), [b.where for b in ALL if not b.lang]  # every fence says its language


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    ran = 0
    for block in blocks(page):
        if block.lang != "python" or block.skip is not None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # instructions given to the bundled (untrained) model
            try:
                exec(compile(block.code, block.where, "exec"), namespace)  # noqa: S102
            except Exception as exc:
                raise AssertionError(f"{block.where}: {type(exc).__name__}: {exc}") from exc
        ran += 1
    assert ran >= 1


@cache
def _flags(command: str) -> frozenset[str]:
    """The option strings ``instructor COMMAND --help`` lists."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.main([command, "--help"])
    return frozenset(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", out.getvalue()))


def _commands(code: str) -> list[list[str]]:
    """``instructor ...`` command lines of a shell block (continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", code)
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        for start, word in enumerate(words):
            if word == "instructor" and (start == 0 or words[start - 1] in ("--", "&&", ";", "do")):
                found.append(words[start + 1 :])
    return found


SHELL = [(b, argv) for b in ALL if b.lang in ("bash", "sh", "shell") for argv in _commands(b.code)]


def test_shell_blocks_use_instructor() -> None:
    assert len(SHELL) >= 10


@pytest.mark.parametrize(("block", "argv"), SHELL, ids=[f"{b.where}:{' '.join(a[:1])}" for b, a in SHELL])
def test_instructor_command_lines_parse(block: Block, argv: list[str]) -> None:
    assert argv, f"{block.where}: 'instructor' without a command"
    command = argv[0]
    if command.startswith("-"):
        assert command in ("--help", "-h", "--version"), block.where
        return
    assert command in cli.COMMANDS, f"{block.where}: unknown command {command!r}; valid: {sorted(cli.COMMANDS)}"
    known = _flags(command)
    for word in argv[1:]:
        flag = word.split("=", 1)[0]
        if flag.startswith("--") or re.fullmatch(r"-[a-zA-Z]", flag):
            assert flag in known, f"{block.where}: instructor {command} has no flag {flag}"


DATA = [b for b in ALL if b.lang in ("yaml", "json") and b.skip is None]


@pytest.mark.parametrize("block", DATA, ids=[b.where for b in DATA])
def test_yaml_and_json_blocks_parse(block: Block) -> None:
    if block.lang == "json":
        json.loads(block.code)
        return
    import yaml

    assert yaml.safe_load(block.code) is not None, block.where


def test_the_serve_config_on_the_serving_page_matches_the_checked_in_one() -> None:
    import yaml

    page = next(b for b in DATA if b.page.name == "serving.md" and "import_path" in b.code)
    shown = yaml.safe_load(page.code)["applications"][0]
    real = yaml.safe_load((ROOT / "ray_backend" / "serve_config.yaml").read_text())["applications"][0]
    assert shown["import_path"] == real["import_path"]
    for key, value in shown["args"].items():
        assert real["args"][key] == value, key
    assert shown["deployments"][0]["user_config"] == real["deployments"][0]["user_config"]


PACKAGES = ("instructor_plugins", "ray_backend", "training", "evals")
NAMED = sorted(
    {
        (page, name)
        for page in [*PAGES, *(ROOT / "results").glob("*.md")]  # not CHANGELOG.md: it names old paths too
        for name in re.findall(r"`[^`\n]*`", page.read_text())
    }
)


def _module_file(dotted: list[str]) -> Path | None:
    path = ROOT.joinpath(*dotted)
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_named_files_and_modules_exist() -> None:
    """A path or dotted module name in backticks names something that exists (modules move; the docs follow)."""
    missing = []
    for page, code in NAMED:
        for path in re.findall(
            rf"(?<![\w./-])((?:{'|'.join(PACKAGES)}|tests|benchmarks|examples|deploy)/[\w./-]*\w)", code
        ):
            if not (ROOT / path).exists():
                missing.append(f"{page.name}: {path}")
        for dotted in re.findall(rf"(?<![\w./])((?:{'|'.join(PACKAGES)})(?:\.\w+)+)", code):
            parts = dotted.split(".")
            found = next(
                ((i, file) for i in range(len(parts), 0, -1) if (file := _module_file(parts[:i])) is not None),
                None,
            )
            if found is None or not all(name in found[1].read_text() for name in parts[found[0] :]):
                missing.append(f"{page.name}: {dotted}")
    assert not missing, missing
