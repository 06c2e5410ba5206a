"""Where a training run keeps its files when storage may be object storage (``s3://``, ``gs://``) or a local path.

Ray Train writes checkpoints through a pyarrow filesystem itself; this module covers the rest:

- :class:`StepLog`: each rank's one-JSON-line-per-step log under ``<run>/logs/``. On a local or shared
  filesystem lines are appended as they happen (``steps.rank<r>.jsonl``); object stores cannot append,
  so a rank buffers its lines and uploads them as one object per checkpoint interval
  (``steps.rank<r>.<first>-<last>.jsonl``). :func:`read_step_log` reads either layout back in order.
- :func:`publish_dir`: copy the exported final model to ``--output`` (a local folder or a URI).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from instructor_plugins.storage import Location, atomic_write, resolve

__all__ = ["StepLog", "publish_dir", "read_step_log"]


class StepLog:
    """One rank's step log in ``<run>/logs``; call :meth:`flush` at each checkpoint and at the end."""

    def __init__(self, run: Location, rank: int) -> None:
        self.folder = run.child("logs")
        self.rank = rank
        self._pending: list[dict[str, Any]] = []
        if self.folder.is_local:
            os.makedirs(self.folder.path, exist_ok=True)

    def append(self, record: dict[str, Any]) -> None:
        """Log one step (written now on local storage, at the next :meth:`flush` on object storage)."""
        if self.folder.is_local:
            with open(Path(self.folder.path) / f"steps.rank{self.rank}.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        else:
            self._pending.append(record)

    def flush(self) -> None:
        """Upload the buffered lines as one object (object storage only; a no-op otherwise)."""
        if not self._pending:
            return
        first, last = self._pending[0]["step"], self._pending[-1]["step"]
        name = f"steps.rank{self.rank}.{first:07d}-{last:07d}.{os.getpid()}.jsonl"
        atomic_write(self.folder.child(name), "".join(json.dumps(r) + "\n" for r in self._pending).encode())
        self._pending = []


def read_step_log(run: str | Location, rank: int) -> list[dict[str, Any]]:
    """Every logged step of ``rank``, in the order written (both layouts of :class:`StepLog`)."""
    import pyarrow.fs as pafs

    folder = (run if isinstance(run, Location) else resolve(run)).child("logs")
    entries = folder.fs.get_file_info(pafs.FileSelector(folder.path, allow_not_found=True))
    names = sorted(e.base_name for e in entries if e.base_name.startswith(f"steps.rank{rank}."))
    records = []
    for name in names:
        text = folder.child(name).read_bytes().decode()
        records += [json.loads(line) for line in text.splitlines() if line.strip()]
    return records


def publish_dir(local: str | os.PathLike[str], target: str) -> str:
    """Copy folder ``local`` to ``target`` (a local folder or a URI); returns the target's URI or path."""
    import pyarrow.fs as pafs

    where = resolve(target)
    if where.is_local:
        if Path(local).resolve() != Path(where.path):
            shutil.copytree(local, where.path, dirs_exist_ok=True)
        return where.path
    pafs.copy_files(str(Path(local).resolve()), where.path, destination_filesystem=where.fs)
    return where.uri
