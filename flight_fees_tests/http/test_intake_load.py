"""Bounded load test of the real intake server (``flight-fees serve-intake`` in a child
process, 127.0.0.1 only): unsigned large bodies and slow headers.

Bounded in count (40 uploads, 200 slow connections) and time (every wait has a deadline).
The server's memory is read from ``/proc/<pid>/status`` (VmRSS), sampled while the uploads
run.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flight_fees.http.intake import sign
from flight_fees.lib.db import make_engine, upgrade

SECRET = "load-test-secret-5f1c9a7e3b"
HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 2.0
DECLARED = 10 * 1024 * 1024  # every unsigned upload declares 10 MiB
SENT = 2 * 1024 * 1024  # ... and tries to send 2 MiB of it

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the server's RSS from /proc"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    home = tmp_path / "home"
    engine = make_engine(f"sqlite:///{home / 'billing.db'}")
    upgrade(engine)
    engine.dispose()
    port = _free_port()
    env = {**os.environ, "FLIGHT_FEES_HOME": str(home), "FLIGHT_FEES_INTAKE_SECRET": SECRET}
    env.pop("FLIGHT_FEES_DATABASE_URL", None)
    cli = Path(sys.executable).with_name("flight-fees")
    proc = subprocess.Popen(
        [
            str(cli),
            "serve-intake",
            "--port",
            str(port),
            "--header-timeout-s",
            str(HEADER_TIMEOUT_S),
            "--max-connections",
            "100",
            "--body-timeout-s",
            str(BODY_TIMEOUT_S),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"intake server did not start: {proc.stderr.read().decode()[-2000:]}")
    yield url, proc
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _unsigned_upload(port: int, outcome: list[str]) -> None:
    head = (
        f"POST /flights HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {DECLARED}\r\n\r\n"
    ).encode()
    chunk = b"1," * 32_768
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(head)
            sent = 0
            while sent < SENT:
                sock.sendall(chunk)
                sent += len(chunk)
            answer = sock.recv(200)
            outcome.append(answer.split(b"\r\n", 1)[0].decode(errors="replace") or "closed")
        except (ConnectionResetError, BrokenPipeError):
            outcome.append("closed")  # refused and closed without reading the body
        except TimeoutError:
            outcome.append("timeout")


def test_unsigned_large_uploads_keep_memory_bounded(server):
    url, proc = server
    port = int(url.rsplit(":", 1)[1])
    before = _rss_mb(proc.pid)
    outcome: list[str] = []
    threads = [threading.Thread(target=_unsigned_upload, args=(port, outcome)) for _ in range(40)]
    peak = before
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, _rss_mb(proc.pid))
        time.sleep(0.02)
    for t in threads:
        t.join(timeout=30)
    peak = max(peak, _rss_mb(proc.pid))
    assert len(outcome) == 40
    assert "timeout" not in outcome
    assert set(outcome) <= {"HTTP/1.1 401 Unauthorized", "closed"}, outcome
    # 40 x 10 MiB declared, 80 MiB sent: none of it buffered (the old server held 412 MB)
    assert peak - before < 40, f"server RSS grew from {before:.0f} to {peak:.0f} MB"
    # and it still serves signed requests
    body = json.dumps([42]).encode()
    resp = httpx.post(url + "/flights", content=body, headers=sign(body, SECRET), timeout=10)
    assert resp.status_code == 200 and resp.json()["added"] == 1


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while True:
            data = sock.recv(1024)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_slow_header_connections_are_closed(server):
    url, proc = server
    port = int(url.rsplit(":", 1)[1])
    sockets = []
    try:
        for _ in range(200):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"POST /flights HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            sockets.append(sock)
        started = time.monotonic()
        for _ in range(3):  # keep trickling header bytes: the deadline is not per byte
            time.sleep(0.3)
            for sock in sockets:
                with contextlib.suppress(OSError):  # already closed by the server
                    sock.sendall(b"a")
        budget = HEADER_TIMEOUT_S + 4.0
        closed = [
            _closed_within(s, max(0.1, budget - (time.monotonic() - started))) for s in sockets
        ]
        assert all(closed), f"{closed.count(False)} of 200 slow connections still open"
    finally:
        for sock in sockets:
            sock.close()
    # the server is healthy afterwards
    assert httpx.get(url + "/health", timeout=5).status_code == 200
    assert proc.poll() is None


def test_slow_body_is_cut_off(server):
    """A signed request whose body stalls gets 408 after the body deadline."""
    url, _proc = server
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps([1, 2, 3]).encode()
    headers = sign(body, SECRET)
    head = "POST /flights HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    head += f"Content-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode() + body[:3])
        started = time.monotonic()
        sock.settimeout(BODY_TIMEOUT_S + 5)
        answer = sock.recv(200)
    assert BODY_TIMEOUT_S - 0.5 < time.monotonic() - started < BODY_TIMEOUT_S + 5
    assert answer.startswith(b"HTTP/1.1 408"), answer
