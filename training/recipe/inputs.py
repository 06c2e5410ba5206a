"""What a corpus was built from: package versions and file fingerprints, for its manifest.

The Debian package lists move every few days and installed packages get updates, so two corpora
built on different days can differ with the same settings. :func:`source_inputs` records, for one
source, the installed version of every Debian package and Python distribution it reads and, for the
files it reads outside those (apt's package lists), their size, modification time and SHA-256.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.recipe.sources import Source

__all__ = ["debian_version", "file_fingerprint", "python_version", "source_inputs"]


def debian_version(package: str) -> str | None:
    """The installed version of a Debian package (``dpkg-query``), or ``None`` when absent or without dpkg."""
    if shutil.which("dpkg-query") is None:
        return None
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status}\t${Version}", package], capture_output=True, text=True, check=False
    )
    status, _, version = done.stdout.partition("\t")
    return version if done.returncode == 0 and status.endswith(" installed") else None


def python_version(distribution: str) -> str | None:
    """The installed version of a Python distribution, or ``None``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def file_fingerprint(path: str | Path) -> dict[str, Any]:
    """Size, modification time (UTC, ISO 8601) and SHA-256 of one file."""
    p = Path(path)
    digest = hashlib.sha256()
    with p.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    stat = p.stat()
    return {
        "bytes": stat.st_size,
        "modified": datetime.fromtimestamp(stat.st_mtime, tz=UTC).isoformat(timespec="seconds"),
        "sha256": digest.hexdigest(),
    }


def source_inputs(source: Source) -> dict[str, Any]:
    """The versions and fingerprints of what ``source`` reads (``None`` for what is not installed)."""
    files = sorted({f for pattern in source.files for f in glob.glob(pattern) if Path(f).is_file()})
    return {
        "debian_packages": {p: debian_version(p) for p in source.debian_packages},
        "python_packages": {p: python_version(p) for p in source.python_packages},
        "files": {f: file_fingerprint(f) for f in files},
        "python": platform.python_version(),
    }
