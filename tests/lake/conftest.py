"""An S3-compatible object store on loopback (moto in server mode) for the lake's story on S3."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator

import pytest

KEY_ID, SECRET = "watchtower-test", "watchtower-test-secret"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a free port), for the whole run."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_lake(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - a boto3 client and the bucket
    """A fresh bucket and the lake settings pointing at it: WATCHTOWER_LAKE_URL=s3://<bucket>/lake."""
    import boto3

    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                          region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    monkeypatch.setenv("WATCHTOWER_LAKE_URL", f"s3://{bucket}/lake")
    monkeypatch.setenv("WATCHTOWER_LAKE_S3_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("WATCHTOWER_LAKE_S3_REGION", "us-east-1")
    monkeypatch.setenv("WATCHTOWER_LAKE_S3_KEY_ID", KEY_ID)
    monkeypatch.setenv("WATCHTOWER_LAKE_S3_SECRET", SECRET)
    return client, bucket
