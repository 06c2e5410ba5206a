"""Deterministic training errors that must not be retried: how workers hand them to the driver.

Ray Train's ``FailureConfig(max_failures=N)`` restarts the workers after any error, which is right
for a lost node and wrong for bad data: the same file fails the same way N more times. A worker
that meets such an error (a malformed MEDI row, a batch plan that cannot be filled, a resume with a
different plan) records it with :func:`record_data_error` and returns normally; the driver then
raises it once as :class:`DataError` (:func:`raise_data_error`).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["DATA_ERROR_FILE", "DataError", "clear_data_error", "raise_data_error", "record_data_error"]

DATA_ERROR_FILE = "data_error.json"


class DataError(ValueError):
    """The training data (or the run it resumes) is unusable; retrying cannot help."""


def record_data_error(run_dir: Path, exc: BaseException) -> None:
    """Write ``exc`` into ``run_dir`` for the driver (rank 0 calls this; the others just return)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    body = {"type": type(exc).__name__, "message": str(exc)}
    (run_dir / DATA_ERROR_FILE).write_text(json.dumps(body), encoding="utf-8")


def clear_data_error(run_dir: Path) -> None:
    """Forget an error left by an earlier attempt (before a new ``fit``)."""
    (run_dir / DATA_ERROR_FILE).unlink(missing_ok=True)


def raise_data_error(run_dir: Path) -> None:
    """Raise the :class:`DataError` a worker recorded, if any (and remove the record)."""
    path = run_dir / DATA_ERROR_FILE
    if not path.is_file():
        return
    body = json.loads(path.read_text(encoding="utf-8"))
    path.unlink()
    raise DataError(f"{body.get('type', 'Error')}: {body.get('message', '')}")
