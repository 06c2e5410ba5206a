"""Local paths and object-storage URIs behind one pyarrow filesystem interface.

:func:`resolve` turns ``s3://bucket/key``, ``gs://bucket/key``, ``file:///abs/path``, a plain local
path or any other scheme that pyarrow or fsspec knows into a :class:`Location`: a
``pyarrow.fs.FileSystem`` plus a path on it. Batch input and output and Ray Train storage all go
through it, so the same command works on a laptop, on NFS and against S3, GCS or MinIO.

S3 settings come from the standard AWS environment, never from flags: credentials through the AWS
SDK's usual chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``,
``~/.aws``, instance metadata), the endpoint from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``
(MinIO, moto, GCS interop), the region from ``AWS_REGION`` / ``AWS_DEFAULT_REGION``. Credentials
written into a URI (``s3://KEY:SECRET@bucket``) are refused, and :func:`redact` strips any secret from
text shown to users, so keys never reach logs or error messages.

On a Ray cluster the driver's :class:`Location` travels to the workers, filesystem included. Keys found in
the driver's environment are therefore set on the filesystem itself, so every node signs its requests as the
driver does: a node of a cluster we did not start has no AWS environment of its own, and the AWS SDK then
sends unsigned ``aws-chunked`` uploads, which some S3-compatible stores (moto, some MinIO setups) keep
verbatim, chunk headers and checksum trailer included. Keys from ``~/.aws`` or instance metadata stay with
each node's own credential chain. Whatever a store does, :func:`atomic_write` checks that the object it
wrote has the size it sent.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = [
    "Location",
    "StorageEnvironment",
    "StorageError",
    "adopt_storage_environment",
    "atomic_write",
    "check_reachable",
    "is_uri",
    "redact",
    "resolve",
    "storage_environment",
]

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "GOOGLE_APPLICATION_CREDENTIALS")
#: Seconds before an unreachable S3 endpoint is reported (connect) and before a request gives up.
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 60.0


#: The variables that decide how :func:`resolve` reaches S3 (endpoint, region, keys).
S3_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


class StorageEnvironment(dict[str, str]):
    """The driver's S3 variables, for Ray workers that resolve URIs themselves; its repr shows no value."""

    def __repr__(self) -> str:
        return f"StorageEnvironment({sorted(self)})"

    __str__ = __repr__


def storage_environment() -> StorageEnvironment:
    """The S3 variables set in this process (see :data:`S3_ENV`), to hand to workers on other nodes."""
    return StorageEnvironment({k: os.environ[k] for k in S3_ENV if os.environ.get(k)})


def adopt_storage_environment(env: dict[str, str] | None) -> list[str]:
    """Set the driver's S3 variables that this process (a worker on a node we did not start) lacks.

    A node's own setting wins: only missing variables are set. Returns their names.
    """
    added = {k: v for k, v in (env or {}).items() if k in S3_ENV and v and not os.environ.get(k)}
    os.environ.update(added)
    return list(added)


class StorageError(OSError):
    """Storage is unreachable, a bucket is missing, or a URI is not usable; the message is redacted."""


def is_uri(text: str) -> bool:
    """Whether ``text`` names a scheme (``s3://``, ``gs://``, ``file://``...) rather than a plain path."""
    return bool(_SCHEME_RE.match(text))


def redact(text: str) -> str:
    """``text`` with URI credentials (``scheme://user:pass@``) and credential env values masked."""
    text = _USERINFO_RE.sub(r"\g<scheme>***@", text)
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


@dataclass(frozen=True)
class Location:
    """A path on a pyarrow filesystem, and the URI users know it by (credentials never included)."""

    fs: pafs.FileSystem
    path: str
    uri: str
    endpoint: str | None = None

    @property
    def is_local(self) -> bool:
        """Whether this is the machine's own filesystem (atomic renames, ``fsync``)."""
        import pyarrow.fs as pafs

        return isinstance(self.fs, pafs.LocalFileSystem)

    @property
    def bucket(self) -> str | None:
        """The bucket of an object-store location (first path component), else ``None``."""
        return None if self.is_local else self.path.split("/", 1)[0]

    def child(self, *names: str) -> Location:
        """The location of ``names`` below this one."""
        tail = "/".join(n.strip("/") for n in names if n)
        return Location(self.fs, f"{self.path.rstrip('/')}/{tail}", f"{self.uri.rstrip('/')}/{tail}", self.endpoint)

    def exists(self) -> bool:
        """Whether a file or folder exists here."""
        import pyarrow.fs as pafs

        return bool(self.fs.get_file_info(self.path).type != pafs.FileType.NotFound)

    def read_bytes(self) -> bytes:
        """The whole file."""
        with self.fs.open_input_stream(self.path) as fh:
            return bytes(fh.readall())

    def __str__(self) -> str:
        return self.uri


def _s3_filesystem() -> tuple[pafs.FileSystem, str | None]:
    import pyarrow.fs as pafs

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    options: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "request_timeout": REQUEST_TIMEOUT_S,
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
    }
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:  # travel with the filesystem to Ray workers, which may have no AWS environment
        options |= {"access_key": key, "secret_key": secret, "session_token": os.environ.get("AWS_SESSION_TOKEN")}
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options |= {"endpoint_override": parts.netloc + parts.path.rstrip("/"), "scheme": parts.scheme}
        options["region"] = options["region"] or "us-east-1"  # custom endpoints (MinIO, moto) need one
    return pafs.S3FileSystem(**options), endpoint


def resolve(target: str | os.PathLike[str]) -> Location:
    """The filesystem and path for a local path or a URI.

    ``s3://`` uses :class:`pyarrow.fs.S3FileSystem` configured from the AWS environment (see the module
    docstring); ``gs://``, ``hdfs://`` and ``file://`` use pyarrow's own filesystems; any other scheme goes
    through fsspec when the matching fsspec package is installed.

    Raises:
        ValueError: credentials inside the URI, or a scheme neither pyarrow nor fsspec handles.
    """
    import pyarrow.fs as pafs

    text = os.fspath(target)
    match = _SCHEME_RE.match(text)
    if match is None:
        path = str(Path(text).expanduser().resolve())
        return Location(pafs.LocalFileSystem(), path, path)
    scheme = match.group(1).lower()
    parts = urlsplit(text)
    if "@" in parts.netloc:
        raise ValueError(
            f"credentials in the URI {redact(text)!r} are not accepted (they would end up in logs); "
            "set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or your provider's standard variables) instead"
        )
    if scheme == "file":
        path = str(Path(parts.path).resolve())
        return Location(pafs.LocalFileSystem(), path, path)
    if scheme in ("s3", "s3a"):
        if not parts.netloc:
            raise ValueError(f"{text!r} names no bucket; expected s3://bucket/path")
        fs, endpoint = _s3_filesystem()
        return Location(fs, f"{parts.netloc}{parts.path}".rstrip("/"), text.rstrip("/"), endpoint)
    try:
        fs, path = pafs.FileSystem.from_uri(text)
        return Location(fs, path.rstrip("/"), text.rstrip("/"))
    except (pafs.ArrowInvalid, ValueError, OSError):  # type: ignore[attr-defined]
        pass
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec ships with the data extra's dependencies
        raise ValueError(f"unsupported storage scheme {scheme!r}; install fsspec and its {scheme} plugin") from exc
    try:
        impl = fsspec.filesystem(scheme)
    except (ImportError, ValueError) as exc:
        raise ValueError(
            f"unsupported storage scheme {scheme!r} in {redact(text)!r}; pyarrow handles s3, gs, hdfs and file, "
            f"fsspec needs its plugin for {scheme!r} ({exc})"
        ) from exc
    fs = pafs.PyFileSystem(pafs.FSSpecHandler(impl))
    return Location(fs, impl._strip_protocol(text).rstrip("/"), text.rstrip("/"))


def _short(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    return redact(message[:300] + ("..." if len(message) > 300 else ""))


def check_reachable(location: Location) -> None:
    """Fail fast, with a clear redacted message, when ``location``'s endpoint or bucket cannot be used.

    A local location always passes (missing folders are created later). For object stores the
    bucket must exist: it is never created implicitly.

    Raises:
        StorageError: the endpoint does not answer, access is denied, or the bucket does not exist.
    """
    import pyarrow.fs as pafs

    if location.is_local:
        return
    where = f" at endpoint {location.endpoint}" if location.endpoint else ""
    bucket = location.bucket or ""
    try:
        info = location.fs.get_file_info(bucket)
    except OSError as exc:
        raise StorageError(f"cannot reach storage for {redact(location.uri)}{where}: {_short(exc)}") from None
    if info.type == pafs.FileType.NotFound:
        raise StorageError(f"bucket {bucket!r} of {redact(location.uri)} does not exist{where}; create it first")


def atomic_write(location: Location, data: bytes) -> None:
    """Write ``data`` so that readers see the whole file or nothing.

    Local files are written to a temporary name, ``fsync``-ed and renamed into place. Object stores
    make an object visible only when its upload completes, so the bytes go up in one upload; the stored
    object's size is then checked against what was sent.

    Raises:
        StorageError: the store kept something else than the bytes sent (e.g. an ``aws-chunked`` body).
    """
    if location.is_local:
        path = Path(location.path)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return
    with location.fs.open_output_stream(location.path) as out:
        out.write(data)
    stored = location.fs.get_file_info(location.path).size
    if stored != len(data):
        try:  # leave nothing that looks written; the first bytes say what the store kept
            head = location.read_bytes()[:12]
            location.fs.delete_file(location.path)
        except OSError:
            head = b"?"
        raise StorageError(
            f"{redact(location.uri)} was stored as {stored} bytes starting {head!r}, {len(data)} were sent, so it "
            "was removed: the store kept another body (an unsigned aws-chunked upload stored verbatim looks like "
            "this). Give this node AWS credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the driver's "
            "environment travel with the job)"
        )
