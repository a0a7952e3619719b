"""A local S3-compatible server for the shared-storage tests: moto's server mode (``moto[server]``
from PyPI, a dev dependency) in a child process on a free loopback port.

It is a protocol stand-in for S3, like the Pinot broker stand-in of the track tests: the code
under test talks real S3 HTTP to it through s3fs / botocore, configured only by the
environment a deployment uses (``FLIGHT_FEES_STORAGE_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL_S3``). Each test gets its own bucket.

Fixtures (registered by ``flight_fees_tests/conftest.py``): ``s3_server`` (one server per test
process) and ``s3_storage_url`` (a fresh ``s3://bucket/prefix`` with the environment set).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen

    def env(self) -> dict[str, str]:
        """The environment that points s3fs / botocore at this server."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": self.endpoint,
        }

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"ff-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` (all pages)."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_s3_server(timeout_s: float = 60.0) -> S3Server:
    """moto's S3 server on a free loopback port, answering when returned."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = S3Server(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}")
        try:
            httpx.get(f"{server.endpoint}/moto-api/", timeout=1.0)
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"moto server did not answer within {timeout_s:.0f} s")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_storage_url(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``s3://<fresh bucket>/state`` as ``FLIGHT_FEES_STORAGE_URL``, with the S3 environment
    set for this process and its children."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    bucket = s3_server.create_bucket()
    url = f"s3://{bucket}/state"
    monkeypatch.setenv("FLIGHT_FEES_STORAGE_URL", url)
    yield url
    _forget_s3_filesystems()


def _forget_s3_filesystems() -> None:
    """Drop fsspec's cached S3 filesystems (they keep the endpoint they were made with)."""
    try:
        from s3fs import S3FileSystem
    except ImportError:
        return
    S3FileSystem.clear_instance_cache()


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment (with the S3 settings of a test) for a child process."""
    return {**os.environ, **(extra or {})}
