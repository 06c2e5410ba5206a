"""The ``instructor`` command and the config-to-flags helper: every flag documented, exit codes 0/1/2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from instructor_plugins import cli
from instructor_plugins.flags import add_config_flags, command_parser, config_fields, config_from_args


@dataclass
class Toy:
    name: str
    """A required name."""
    size: int = 3
    """How many."""
    ratio: float | None = None
    """Optional ratio."""
    mode: Literal["fast", "slow"] = "fast"
    """Which mode."""
    tags: tuple[str, ...] = ()
    """Tags."""
    extra: dict[str, int] = field(default_factory=dict)
    """JSON options."""
    verbose: bool = False
    """Talk more."""
    color: bool = True
    """Use color."""

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")


def parse(argv: list[str]) -> Toy:
    parser = command_parser("toy")
    add_config_flags(parser, Toy)
    return config_from_args(parser, Toy, parser.parse_args(argv))


def test_flags_follow_types_and_defaults() -> None:
    toy = parse(["--name", "n", "--ratio", "0.5", "--mode", "slow", "--tags", "a,b", "c"])
    assert toy == Toy("n", 3, 0.5, "slow", ("a", "b", "c"), {}, False, True)
    toy = parse(["--name", "n", "--extra", '{"k": 2}', "--verbose", "--no-color"])
    assert (toy.extra, toy.verbose, toy.color) == ({"k": 2}, True, False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: --name"),
        (["--name", "n", "--mode", "medium"], "invalid choice: 'medium'"),
        (["--name", "n", "--size", "0"], "size must be >= 1, got 0"),
        (["--name", "n", "--extra", "{bad"], "not valid JSON"),
    ],
)
def test_usage_errors_exit_2_with_the_message(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_shows_every_flag_with_its_default(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for f in config_fields(Toy):
        assert f"--{f.name.replace('_', '-')}" in text
    for snippet in ("A required name. (required)", "How many. (default: 3)", "Tags. (default: none)"):
        assert snippet in text
    assert "Use color. (default: True)" in text and "Talk more. (default: False)" in text


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_subcommand_documents_every_flag(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: instructor {command}")
    # one block per argument (a line indented by two spaces starts one); each ends with its default or "required"
    body = out.split("positional arguments:")[-1] if "positional arguments:" in out else out.split("options:")[1]
    blocks: list[str] = []
    for line in body.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            blocks.append(line)
        elif blocks and line.startswith("   "):
            blocks[-1] += " " + line.strip()
    arguments = [b for b in blocks if not b.strip().startswith("-h, --help")]
    assert len(arguments) >= 1
    for block in arguments:
        assert "(default: " in block or "(required)" in block, block


def test_top_level_usage_errors(capsys: pytest.CaptureFixture) -> None:
    for argv in ([], ["nope"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
    assert "unknown command 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0


def test_console_script_and_python_m_share_the_parser(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    for cmd in (
        [str(Path(sys.executable).parent / "instructor"), "compare", str(missing), str(missing)],
        [sys.executable, "-m", "evals.compare", str(missing), str(missing)],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "no summary.json" in done.stderr


def _train_usage_error(cwd: Path, *args: str) -> str:
    """Run ``python -m training.train ARGS`` in ``cwd``; it must exit 2 with one stderr line and no Ray."""
    done = subprocess.run(
        [sys.executable, "-m", "training.train", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ray" not in done.stderr.lower(), done.stderr
    return lines[0]


def test_train_validates_relative_data_before_ray_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    rows = [{"query": ["q: ", "a"], "pos": ["p: ", "b"], "neg": ["n: ", "c"], "task_id": 1}] * 3 + [{"query": 1}]
    (tmp_path / "data" / "medi.json").write_text(json.dumps(rows))
    started = time.monotonic()
    line = _train_usage_error(tmp_path, "--data", "data/medi.json", "--output", "out")
    assert f"{tmp_path}/data/medi.json: row 3: field 'query'" in line
    assert time.monotonic() - started < 60  # no cluster was started (generous bound for a loaded machine)


def test_train_checks_distill_texts_before_ray_and_exits_2(tmp_path: Path) -> None:
    rows = [
        {"query": ["q: ", f"a{i}"], "pos": ["p: ", f"b{i}"], "neg": ["n: ", f"c{i}"], "task_id": 1} for i in range(4)
    ]
    (tmp_path / "medi.json").write_text(json.dumps(rows))
    (tmp_path / "general.jsonl").write_text('{"text": "fine"}\n{"title": "no text"}\n')
    for texts, want in (("general.jsonl", "general.jsonl:2: a JSONL row needs"), ("nope.jsonl", "not found")):
        line = _train_usage_error(
            tmp_path,
            *("--data", "medi.json", "--output", "out", "--batch-size", "4", "--distill-weight", "1"),
            *("--distill-texts", texts, "--distill-texts-per-step", "6"),
        )
        assert line.startswith("python -m training.train: error: --distill-texts: ") and want in line


def test_train_config_resolves_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training.config import TrainConfig

    monkeypatch.chdir(tmp_path)
    (tmp_path / "medi.json").write_text("[]")
    cfg = TrainConfig(data="medi.json", output="out", model="user/hub-model", batch_size=4).resolved()
    assert (cfg.data, cfg.output, cfg.model) == (str(tmp_path / "medi.json"), str(tmp_path / "out"), "user/hub-model")
    assert Path(cfg.storage_path or "").is_absolute() and cfg.run_name == "out"
    assert TrainConfig(data="user/medi", output="o").resolved().data == "user/medi"  # a datasets id stays


def test_batch_too_few_rows_for_a_batch_is_a_usage_error(tmp_path: Path) -> None:
    from training.config import TrainConfig
    from training.medi import MediError
    from training.train import validate_data

    rows = [{"query": ["", "a"], "pos": ["", "b"], "neg": ["", "c"], "task_id": 1}]
    (tmp_path / "one.json").write_text(json.dumps(rows))
    with pytest.raises((ValueError, MediError)):
        validate_data(TrainConfig(data=str(tmp_path / "one.json"), output=str(tmp_path / "o"), batch_size=4))
    assert validate_data(TrainConfig(data="user/medi", output=str(tmp_path / "o"))) == 0


@pytest.mark.parametrize("command", [None, *sorted(cli.COMMANDS)])
def test_help_descriptions_are_plain_text(command: str | None, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"] if command is None else [command, "--help"])
    out = capsys.readouterr().out
    assert "``" not in out and ":mod:`" not in out and ":class:`" not in out and "::\n" not in out


PRODUCT = ("serve", "batch", "train", "eval", "compare")
EXPERIMENT = ("corpus", "recipe", "seeds", "diversity", "paired")


def test_top_level_help_is_written_for_users(capsys: pytest.CaptureFixture) -> None:
    assert set(PRODUCT + EXPERIMENT) == set(cli.COMMANDS)
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    product, experiment = out.split("Experiment commands")
    lines = [line.strip() for line in out.splitlines()]
    for name in PRODUCT + EXPERIMENT:
        assert any(line.startswith(f"{name} ") for line in lines), f"{name} is not described"
        assert any(line.startswith(f"instructor {name} ") for line in lines), f"{name} has no example"
        assert (name in PRODUCT) == (f"instructor {name} " in product), f"{name} is in the wrong group"
    assert "docs/" in out and "README" in out and "--help" in out
    assert "main(argv" not in out and "module" not in out


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_subcommand_help_is_written_for_users(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    description = re.split(r"\n(?:positional arguments|options):\n", out.split("\n\n", 1)[1])[0]
    assert f"instructor {command} " in description, "no example of the command"
    assert "How it works" not in description and "This module" not in description
