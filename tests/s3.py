"""A real S3-compatible server on 127.0.0.1 for tests (moto in server mode), and the AWS environment for it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

#: Credentials the test server accepts; the secret is checked never to appear in output.
ACCESS_KEY = "AKIDTESTSERVER"
SECRET_KEY = "test-secret-never-printed"


@contextmanager
def s3_server(*buckets: str) -> Iterator[str]:
    """Start moto's S3 server on a free loopback port, point the AWS env at it, create ``buckets``.

    Yields the endpoint URL. The environment is restored and the server stopped afterwards.
    """
    moto_server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    try:
        import pyarrow.fs as pafs

        fs = pafs.S3FileSystem(
            endpoint_override=f"{host}:{port}", scheme="http", region="us-east-1", allow_bucket_creation=True
        )
        for bucket in buckets:
            fs.create_dir(bucket)
        yield endpoint
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


def upload(local: str | os.PathLike[str], uri: str) -> None:
    """Copy a local file to an ``s3://`` URI of the test server."""
    from instructor_plugins.storage import atomic_write, resolve

    with open(local, "rb") as fh:
        atomic_write(resolve(uri), fh.read())
