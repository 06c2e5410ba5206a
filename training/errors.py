"""Deterministic training errors that must not be retried: how workers hand them to the driver.

Ray Train's ``FailureConfig(max_failures=N)`` restarts the workers after any error, which is right
for a lost node and wrong for bad data: the same file fails the same way N more times. A worker
that meets such an error (a malformed MEDI row, a batch plan that cannot be filled, a resume with a
different plan) records it with :func:`record_data_error` and returns normally; the driver then
raises it once as :class:`DataError` (:func:`raise_data_error`).
"""

from __future__ import annotations

import json
import os

from instructor_plugins.storage import Location, atomic_write, resolve

__all__ = ["DATA_ERROR_FILE", "DataError", "clear_data_error", "raise_data_error", "record_data_error"]

DATA_ERROR_FILE = "data_error.json"


class DataError(ValueError):
    """The training data (or the run it resumes) is unusable; retrying cannot help."""


def _record(run: str | os.PathLike[str]) -> Location:
    return resolve(os.fspath(run)).child(DATA_ERROR_FILE)


def record_data_error(run_dir: str | os.PathLike[str], exc: BaseException) -> None:
    """Write ``exc`` into the run's folder (a path or a URI) for the driver (rank 0 calls this)."""
    record = _record(run_dir)
    if record.is_local:
        os.makedirs(os.path.dirname(record.path), exist_ok=True)
    body = {"type": type(exc).__name__, "message": str(exc)}
    atomic_write(record, json.dumps(body).encode())


def clear_data_error(run_dir: str | os.PathLike[str]) -> None:
    """Forget an error left by an earlier attempt (before a new ``fit``)."""
    record = _record(run_dir)
    if record.exists():
        record.fs.delete_file(record.path)


def raise_data_error(run_dir: str | os.PathLike[str]) -> None:
    """Raise the :class:`DataError` a worker recorded, if any (and remove the record)."""
    record = _record(run_dir)
    if not record.exists():
        return
    body = json.loads(record.read_bytes())
    record.fs.delete_file(record.path)
    raise DataError(f"{body.get('type', 'Error')}: {body.get('message', '')}")
