"""The ``instructor`` command: one entry point for serving, batch embedding, training and evaluation.

::

    instructor serve --model hkunlp/instructor-large --num-replicas 2
    instructor batch --input docs/ --output emb/ --instruction "Represent the document for retrieval: "
    instructor train --data medi.json --output out/tuned
    instructor recipe --output runs/finetune
    instructor seeds runs/seed0 runs/seed1 runs/seed2
    instructor eval --suite offline --output runs/paper
    instructor compare runs/paper runs/none

Each subcommand is a module whose ``main(argv, prog=...) -> int`` parses its flags (generated from
its config class by :mod:`instructor_plugins.flags`) and runs; ``python -m <module>`` runs the same
``main``. Modules are imported only when their subcommand runs, so ``instructor --help`` is fast.
Exit status: 0 success, 1 failure, 2 usage error (bad flag, bad value, bad input found up front).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from instructor_plugins import __version__
from instructor_plugins.flags import command_parser

__all__ = ["COMMANDS", "Command", "main"]


@dataclass(frozen=True)
class Command:
    """A subcommand: the module whose ``main(argv, prog=...)`` runs it, and one line of help."""

    module: str
    help: str

    def load(self) -> Callable[..., int]:
        """The module's ``main``."""
        main: Callable[..., int] = importlib.import_module(self.module).main
        return main


# Registering a subcommand is one line here.
COMMANDS: dict[str, Command] = {
    "serve": Command("ray_backend.serve", "run the Ray Serve embedding app (HTTP)"),
    "batch": Command("ray_backend.batch", "embed a corpus into Parquet shards with Ray Data"),
    "train": Command("training.train", "finetune on MEDI-format data with Ray Train"),
    "corpus": Command("training.recipe.corpus", "build the offline multi-task finetuning corpus"),
    "recipe": Command("training.recipe", "corpus -> finetune -> ablation -> before/after report, one command"),
    "seeds": Command(
        "training.recipe.seeds", "line up recipe runs of several seeds: every target per run and across runs"
    ),
    "eval": Command("evals.run", "evaluate a model on offline or MTEB tasks"),
    "compare": Command("evals.compare", "compare evaluation runs side by side"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``instructor <command> [flags]``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = command_parser("instructor", __doc__)
    parser.add_argument("--version", action="version", version=f"instructor-plugins {__version__}")
    parser.add_argument(
        "command",
        choices=sorted(COMMANDS),
        metavar="COMMAND",
        help="; ".join(f"{name}: {cmd.help}" for name, cmd in COMMANDS.items()),
    )
    if not argv or argv[0].startswith("-"):
        parser.parse_args(argv)  # --help / --version / a missing command: argparse prints and exits
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; valid: {sorted(COMMANDS)}")
    return int(COMMANDS[name].load()(rest, prog=f"instructor {name}") or 0)


if __name__ == "__main__":
    sys.exit(main())
