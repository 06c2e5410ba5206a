"""One active run per output folder: ``_lock.json`` with an owner and a heartbeat.

A run takes the lock before it writes anything and releases it at the end, success or failure.
A second run on the same output is refused while the lock is live. Object stores have no file locks,
so the lock is a small JSON object the owner rewrites every ``ttl_s / 3`` seconds; a lock is live
while its owner process is alive (same host) or, from another host, while its heartbeat is younger
than ``ttl_s``. A run killed with ``SIGKILL`` therefore blocks a ``--resume`` on the same machine for
no time at all, and one on another machine for at most ``ttl_s``.

Taking the lock writes it and reads it back after a short pause: of two runs that start in the same
instant, the one whose write landed last keeps it and the other is refused.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from types import TracebackType
from typing import Any

from instructor_plugins.storage import Location, atomic_write

__all__ = ["LOCK_NAME", "OutputLock", "OutputLockedError"]

LOCK_NAME = "_lock.json"
logger = logging.getLogger(__name__)


class OutputLockedError(RuntimeError):
    """Another live run holds the output folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    """The lock of one output folder; use as a context manager or call :meth:`acquire` / :meth:`release`."""

    def __init__(self, folder: Location, *, ttl_s: float = 90.0, settle_s: float = 0.3) -> None:
        self.location = folder.child(LOCK_NAME)
        self.ttl_s = ttl_s
        self.settle_s = settle_s
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> dict[str, Any]:
        return {"token": self.token, "host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time()}

    def _read(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.location.read_bytes()))
        except (FileNotFoundError, ValueError):
            return None
        except OSError:
            if not self.location.exists():
                return None
            raise

    def _live(self, other: dict[str, Any]) -> bool:
        if other.get("host") == socket.gethostname():
            return _pid_alive(int(other.get("pid", -1)))
        return time.time() - float(other.get("heartbeat", 0)) < self.ttl_s

    def _refuse(self, other: dict[str, Any]) -> OutputLockedError:
        return OutputLockedError(
            f"{self.location} is held by another run (host {other.get('host')}, pid {other.get('pid')}); "
            f"wait for it to finish, or delete the lock if that run is gone (a lock from another host expires "
            f"{self.ttl_s:.0f} s after its last heartbeat)"
        )

    def acquire(self) -> None:
        """Take the lock, or raise :class:`OutputLockedError` naming the holder."""
        other = self._read()
        if other is not None and other.get("token") != self.token and self._live(other):
            raise self._refuse(other)
        atomic_write(self.location, json.dumps(self._record()).encode())
        time.sleep(self.settle_s)
        mine = self._read()
        if mine is None or mine.get("token") != self.token:
            raise self._refuse(mine or {})
        self._thread = threading.Thread(target=self._beat, name="batch-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                atomic_write(self.location, json.dumps(self._record()).encode())
            except OSError as exc:  # a missed heartbeat only shortens the lock's life
                logger.warning("could not refresh %s: %s", self.location, exc)

    def release(self) -> None:
        """Stop the heartbeat and delete the lock if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        current = self._read()
        if current is not None and current.get("token") == self.token:
            self.location.fs.delete_file(self.location.path)

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
