"""instructor: text embeddings with instructions (INSTRUCTOR), served, batched, finetuned and evaluated on Ray.

Commands:
  serve      Run an HTTP embedding service on Ray Serve: OpenAI's /v1/embeddings plus an instruction,
             and /embed for one instruction per text.
               instructor serve --model hkunlp/instructor-large --port 8000
  batch      Embed a corpus (JSONL, Parquet or CSV; local or s3://) into Parquet shards with Ray Data,
             exactly once; --resume finishes an interrupted run.
               instructor batch --input docs/ --output emb/ --instruction "Represent the document for retrieval: "
  train      Finetune a model on MEDI-format data (instruction, text triples) with Ray Train.
               instructor train --data medi.json --output out/tuned --num-workers 2
  eval       Evaluate a model on the offline suite or MTEB tasks, with the paper's instruction per task.
               instructor eval --suite offline --output runs/eval
  compare    Put evaluation runs side by side, with differences to the first.
               instructor compare runs/paper runs/none

Experiment commands (this project's finetuning recipe, built on train and eval):
  corpus     Build the offline multi-task finetuning corpus from installed text (WordNet, dictionaries, ...).
               instructor corpus --output runs/corpus
  recipe     Corpus, finetune, no-instruction ablation, evaluation and a before/after report, in one command.
               instructor recipe --output runs/finetune
  seeds      Line up recipe runs of several seeds: every target per run and its mean across runs.
               instructor seeds runs/seed0 runs/seed1 runs/seed2
  diversity  The diversity ablation: the recipe on the narrow (16 tasks) and wide (53 tasks) corpora, per seed.
               instructor diversity --output runs/diversity --seeds 0 1 2
  paired     Two recipe runs item by item: one run's setting minus another's, with a paired 95 % interval.
               instructor paired runs/a "finetuned + instructions" runs/b "finetuned + instructions"

Run "instructor COMMAND --help" for a command's flags, each with its default. Exit status: 0 success,
1 failure, 2 usage error (a bad flag or value, or bad input found before any work starts).

Documentation: README.md and docs/ in the source distribution ("make docs" builds the site); measured
results with their commands in results/.
"""

# How it works: each command is a module whose main(argv, prog=...) -> int builds its parser from its config class
# (instructor_plugins.flags) and runs; "python -m MODULE" runs the same main. A command's module is imported only
# when it runs, so "instructor --help" is fast. The text above is the help "instructor --help" prints.

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
    "diversity": Command(
        "training.recipe.diversity", "the recipe on a narrow and a wide corpus, per seed: what diversity moves"
    ),
    "paired": Command(
        "training.recipe.paired", "two recipe runs item by item: a setting of one minus a setting of the other"
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
        help='one of the commands above; "instructor COMMAND --help" lists its flags',
    )
    if not argv or argv[0].startswith("-"):
        parser.parse_args(argv)  # --help / --version / a missing command: argparse prints and exits
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; valid: {sorted(COMMANDS)}")
    return int(COMMANDS[name].load()(rest, prog=f"instructor {name}") or 0)


if __name__ == "__main__":
    sys.exit(main())
