"""Run an mteb evaluation with per-task instructions and write results, a table and a plot.

Examples::

    instructor eval --suite offline --output runs/bundled            # instructions follow the model
    instructor eval --suite offline --instructions paper --output runs/bundled-paper
    instructor compare runs/bundled runs/bundled-paper
    instructor eval --model hkunlp/instructor-large --tasks SciFact STSBenchmark --output runs/large
    instructor eval --suite offline --endpoint http://127.0.0.1:8000 --output runs/served

``--suite offline`` needs nothing but installed packages (see :mod:`evals.tasks`). Real MTEB tasks
(``--tasks NAME`` or ``--suite mteb-paper``) download their data from the Hugging Face Hub: they
work wherever the hub is reachable and fail with a clear error when ``HF_HUB_OFFLINE`` is set.
Docs: docs/evaluation.md.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import mteb
from mteb.abstasks import AbsTask

from evals.instructions import INSTRUCTION_MODES
from evals.model import TABLE_MODELS, load_mteb_model
from evals.report import Summary, markdown_table, rows_from_results, write_report
from evals.tasks import OFFLINE_TASKS, offline_task, offline_tasks
from instructor_plugins.checkpoint import ModelLoadError
from instructor_plugins.flags import add_config_flags, command_parser, config_from_args
from instructor_plugins.instructions import mteb_task_names
from instructor_plugins.types import Encoder

__all__ = ["SUITES", "HubUnavailableError", "RunConfig", "hub_offline", "main", "resolve_tasks", "run"]

SUITES = ("offline", "mteb-paper")
_TRUE = {"1", "true", "yes", "on"}

logger = logging.getLogger(__name__)


class HubUnavailableError(RuntimeError):
    """Real MTEB tasks were asked for while the Hugging Face Hub is switched off."""


@dataclass
class RunConfig:
    """One evaluation run; each field is a flag of ``instructor eval``."""

    output: Path
    """Folder for mteb's result JSON, summary.json, table.md and scores.png."""
    model: str | None = None
    """None/"bundled", hkunlp/instructor-{base,large,xl}, a hub id or a local checkpoint folder."""
    tasks: list[str] = field(default_factory=list)
    """Offline or MTEB task names (give tasks or a suite)."""
    suite: Literal["offline", "mteb-paper"] | None = None
    """offline: real-data tasks that need no hub; mteb-paper: the paper's tasks (give tasks or a suite)."""
    instructions: Literal["auto", "paper", "none"] = "auto"
    """auto: follow the model (paper when it is instruction-trained, else none); paper: per-task; none."""
    endpoint: str | None = None
    """Ray Serve URL, e.g. http://127.0.0.1:8000; None embeds in process."""
    device: str | None = None
    """Torch device for in-process encoding (default cuda if present)."""
    batch_size: int = 32
    """Texts per forward pass / request."""
    max_items: int | None = None
    """Subsample the offline tasks (quick runs; not comparable with full runs)."""
    progress: bool = True
    """Progress bars and per-task instruction lines on stderr."""
    predictions: bool = False
    """Also save each task's predictions (classifier labels, cluster ids...) under OUTPUT/predictions/."""

    def __post_init__(self) -> None:
        if bool(self.tasks) == (self.suite is not None):
            raise ValueError("give either tasks or a suite (not both, not neither)")
        if self.suite is not None and self.suite not in SUITES:
            raise ValueError(f"unknown suite {self.suite!r}; valid: {list(SUITES)}")
        if self.instructions not in INSTRUCTION_MODES:
            raise ValueError(f"unknown instructions mode {self.instructions!r}; valid: {list(INSTRUCTION_MODES)}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        self.output = Path(self.output)


def hub_offline() -> bool:
    """Whether the Hugging Face Hub (models or datasets) is switched off for this process."""
    from huggingface_hub import constants

    env = any(os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return env or bool(constants.HF_HUB_OFFLINE)


def resolve_tasks(
    tasks: Sequence[str] = (),
    suite: str | None = None,
    *,
    max_items: int | None = None,
    table_model: str | None = None,
) -> list[AbsTask]:
    """Task objects for names (offline first, then mteb's registry, English subsets) or a suite.

    Raises:
        ValueError: an unknown suite or task name (lists the offline tasks and mteb's suggestion).
    """
    if suite == "offline":
        return offline_tasks(max_items=max_items)
    if suite == "mteb-paper":
        tasks = mteb_task_names(table_model)
    elif suite is not None:
        raise ValueError(f"unknown suite {suite!r}; valid: {list(SUITES)}")
    resolved: list[AbsTask] = []
    for name in tasks:
        if name in OFFLINE_TASKS:
            resolved.append(offline_task(name, max_items=max_items))
            continue
        try:
            resolved.append(mteb.get_task(name, languages=["eng"]))
        except KeyError as exc:
            raise ValueError(
                f"unknown task {name!r}: not an offline task {sorted(OFFLINE_TASKS)} and not in mteb ({exc.args[0]})"
            ) from None
    return resolved


def _hub_tasks(tasks: Sequence[AbsTask]) -> list[str]:
    return [t.metadata.name for t in tasks if t.metadata.name not in OFFLINE_TASKS]


def run(config: RunConfig, *, encoder: Encoder | None = None) -> Summary:
    """Evaluate, write mteb's result files and the report into ``config.output``; return the summary.

    Args:
        config: the run.
        encoder: an already loaded encoder to evaluate in process (tests pass the session's model).

    Raises:
        HubUnavailableError: real MTEB tasks requested while the hub is switched off.
        ValueError: bad task names.
    """
    table_model = config.model if config.model in TABLE_MODELS else None
    tasks = resolve_tasks(config.tasks, config.suite, max_items=config.max_items, table_model=table_model)
    hub = _hub_tasks(tasks)
    if hub and hub_offline():
        raise HubUnavailableError(
            f"{len(hub)} real MTEB task(s) ({', '.join(hub[:5])}{', ...' if len(hub) > 5 else ''}) download their "
            "data from the Hugging Face Hub, but HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set. Run them where the hub "
            f"is reachable, or use the offline suite (--suite offline; tasks {sorted(OFFLINE_TASKS)})."
        )
    log = logger.info if config.progress else None
    model = load_mteb_model(
        config.model,
        instructions=config.instructions,
        endpoint=config.endpoint,
        device=config.device,
        batch_size=config.batch_size,
        show_progress=config.progress,
        encoder=encoder,
        log=log,
    )
    meta = model.mteb_model_meta
    if log:
        log(f"[evals] {meta.name}: {len(tasks)} task(s), instructions={model.instructions} -> {config.output}")
    start = time.perf_counter()
    result = mteb.evaluate(
        model,
        tasks,
        cache=mteb.ResultCache(cache_path=config.output),
        overwrite_strategy="always",
        raise_error=False,
        co2_tracker=False,
        encode_kwargs={"batch_size": config.batch_size},
        show_progress_bar=config.progress,
        prediction_folder=config.output / "predictions" if config.predictions else None,
    )
    seconds = time.perf_counter() - start
    failures = {}
    for error in result.exceptions or []:
        hint = " (real MTEB tasks need the Hugging Face Hub)" if error.task_name in hub else ""
        failures[error.task_name] = f"{error.exception}{hint}"
    summary = Summary(
        model=str(meta.name),
        instructions=model.instructions,
        rows=rows_from_results(result.task_results, tasks),
        settings={
            "tasks": [t.metadata.name for t in tasks],
            "suite": config.suite,
            "endpoint": config.endpoint,
            "max_items": config.max_items,
            "batch_size": config.batch_size,
            "seconds": round(seconds, 1),
            "mteb_version": mteb.__version__,
        },
        failures=failures,
    )
    paths = write_report(config.output, summary)
    if log:
        log(f"[evals] done in {seconds:.1f} s; wrote {', '.join(str(p) for p in paths.values())}")
    return summary


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m evals.run") -> int:
    """CLI entry point (``instructor eval``): 0, or 1 when a task failed; usage errors exit with 2."""
    parser = command_parser(prog, __doc__)
    add_config_flags(parser, RunConfig)
    config = config_from_args(parser, RunConfig, parser.parse_args(argv))
    if config.progress:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        summary = run(config)
    except (ValueError, HubUnavailableError, ModelLoadError, NotImplementedError) as exc:
        parser.error(str(exc))
    print(markdown_table(summary.rows, title=summary.label))
    for task, error in summary.failures.items():
        print(f"FAILED {task}: {error}", file=sys.stderr)
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
