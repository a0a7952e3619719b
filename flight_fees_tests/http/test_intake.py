from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from flight_fees.cli import serve_intake as intake_cli
from flight_fees.http.intake import (
    CONTENT_SHA256_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    IntakeLimits,
    create_intake_app,
    sign,
    signing_string,
    validate_secret,
)
from flight_fees.lib.db import make_engine
from flight_fees.lib.db.models import FlightQueueItem
from flight_fees.lib.ops.queue import FlightQueue
from flight_fees_tests.aio import run_coroutine

SECRET = "s3cret-intake-key-0123"


@pytest.fixture
def client(engine) -> TestClient:
    return TestClient(create_intake_app(engine, SECRET, max_body_bytes=4096, max_ids=50))


def _queued(engine) -> dict[int, tuple[str, str, dt.date | None]]:
    q = FlightQueueItem
    with engine.connect() as conn:
        rows = conn.execute(select(q.flight_id, q.status, q.priority, q.flight_date)).all()
    return {r.flight_id: (r.status, r.priority, r.flight_date) for r in rows}


def _post(
    client: TestClient,
    payload=None,
    *,
    raw: bytes | None = None,
    secret: str = SECRET,
    headers: dict[str, str] | None = None,
    **sign_kwargs,
):
    body = raw if raw is not None else json.dumps(payload).encode()
    signed = {**sign(body, secret, **sign_kwargs), "Content-Type": "application/json"}
    return client.post("/flights", content=body, headers={**signed, **(headers or {})})


def test_sign_covers_method_path_time_nonce_length_and_body_hash():
    body = b'{"flight_ids": [1]}'
    headers = sign(body, SECRET, timestamp=1_700_000_000, nonce="n" * 16)
    assert headers[TIMESTAMP_HEADER] == "1700000000" and headers[NONCE_HEADER] == "n" * 16
    assert headers[CONTENT_SHA256_HEADER] == hashlib.sha256(body).hexdigest()
    signature = headers[SIGNATURE_HEADER]
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    message = signing_string(
        "POST", "/flights", "1700000000", "n" * 16, len(body), headers[CONTENT_SHA256_HEADER]
    )
    assert message.split(b"\n")[0] == b"ff-hmac-v2" and len(message.split(b"\n")) == 7
    assert sign(body, SECRET, timestamp=1_700_000_000, nonce="n" * 16) == headers
    assert sign(body, SECRET + "x", timestamp=1_700_000_000, nonce="n" * 16) != headers
    assert sign(body, SECRET)[NONCE_HEADER] != sign(body, SECRET)[NONCE_HEADER]  # fresh


def test_signed_request_enqueues(client, engine):
    resp = _post(
        client, {"flight_ids": [11, "12", 11], "priority": "high", "flight_date": "2024-05-01"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"received": 2, "added": 2, "reset": 0, "unchanged": 0}
    assert _queued(engine) == {
        11: ("queued", "high", dt.date(2024, 5, 1)),
        12: ("queued", "high", dt.date(2024, 5, 1)),
    }
    # a bare list, normal priority by default; known flights are unchanged
    resp = _post(client, [12, 13])
    assert resp.json() == {"received": 2, "added": 1, "reset": 0, "unchanged": 1}
    assert _queued(engine)[13] == ("queued", "normal", None)
    # a dead flight is reset
    FlightQueue(engine, max_attempts=1).fail(13, "no_tariff", "x")
    assert _queued(engine)[13][0] == "dead"
    assert _post(client, {"flight_ids": [13]}).json()["reset"] == 1
    assert _post(client, []).json() == {"received": 0, "added": 0, "reset": 0, "unchanged": 0}


@pytest.mark.parametrize(
    ("drop", "replace"),
    [
        ((SIGNATURE_HEADER,), {}),
        ((), {SIGNATURE_HEADER: "sha256=" + "0" * 64}),
        ((), {SIGNATURE_HEADER: "md5=abc"}),
        ((), {SIGNATURE_HEADER: "sha256=é".encode()}),
        ((TIMESTAMP_HEADER,), {}),
        ((NONCE_HEADER,), {}),
        ((CONTENT_SHA256_HEADER,), {}),
        ((), {NONCE_HEADER: "short"}),
        ((), {TIMESTAMP_HEADER: "１７００".encode()}),
        ((), {CONTENT_SHA256_HEADER: "0" * 64}),
    ],
)
def test_unsigned_or_badly_signed_is_401(client, engine, drop, replace):
    body = json.dumps({"flight_ids": [1, 2]}).encode()
    headers = {k: v for k, v in sign(body, SECRET).items() if k not in drop}
    headers.update(replace)
    resp = client.post("/flights", content=body, headers=headers)
    assert resp.status_code == 401, resp.text
    assert "X-Flight-Fees" in resp.json()["error"]
    assert _queued(engine) == {}


def test_signature_with_other_secret_body_path_or_method_is_401(client, engine):
    assert _post(client, [1], secret="another-secret-of-16+").status_code == 401
    body = json.dumps([1, 2]).encode()
    assert _post(client, raw=body, headers=sign(b"[1]", SECRET)).status_code == 401
    same_length = b"[3, 4]"
    assert len(same_length) == len(body)
    headers = sign(body, SECRET)
    resp = client.post("/flights", content=same_length, headers=headers)  # body swapped
    assert resp.status_code == 401 and "does not match" in resp.json()["error"]
    assert _post(client, [1], path="/other").status_code == 401
    assert _post(client, [1], method="PUT").status_code == 401
    assert _queued(engine) == {}


def test_replayed_request_is_refused(client, engine):
    body = json.dumps({"flight_ids": [21]}).encode()
    headers = sign(body, SECRET)
    first = client.post("/flights", content=body, headers=headers)
    assert first.status_code == 200
    FlightQueue(engine, max_attempts=1).fail(21, "no_tariff", "x")  # dead
    again = client.post("/flights", content=body, headers=headers)
    assert again.status_code == 409 and "replayed" in again.json()["error"]
    assert _queued(engine)[21][0] == "dead"  # the replay did not re-queue it
    assert _post(client, {"flight_ids": [21]}).json()["reset"] == 1  # a fresh signature does


@pytest.mark.parametrize("offset_s", [-301, 301, -(10**9)])
def test_timestamp_outside_the_window_is_401(client, engine, offset_s):
    resp = _post(client, [1], timestamp=int(time.time()) + offset_s)
    assert resp.status_code == 401 and "sign the request again" in resp.json()["error"]
    assert _queued(engine) == {}


def test_nonces_are_forgotten_after_the_window(engine):
    now = [1_800_000_000.0]
    app = create_intake_app(engine, SECRET, clock=lambda: now[0])
    client = TestClient(app)
    body = b"[5]"
    headers = sign(body, SECRET, timestamp=int(now[0]))
    assert client.post("/flights", content=body, headers=headers).status_code == 200
    now[0] += 299
    assert client.post("/flights", content=body, headers=headers).status_code == 409
    now[0] += 1000  # the nonce is forgotten, but the timestamp is stale by then
    assert client.post("/flights", content=body, headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"flight_ids": [1, 2', "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        (b'"12"', "must be a JSON object"),
        (b'{"ids": [1]}', "unknown field(s): 'ids'"),
        (b'{"priority": "high"}', "missing field: flight_ids"),
        (b'{"flight_ids": "1,2"}', "flight_ids must be a JSON list"),
        (b'{"flight_ids": [1, 2, -3, "x", 4.0, true, null, 5]}', "5 invalid flight id(s)"),
        (b'{"flight_ids": [1], "priority": "urgent"}', "priority must be one of"),
        (b'{"flight_ids": [1], "priority": 1}', "priority must be one of"),
        (b'{"flight_ids": [1], "flight_date": "2024-02-30"}', "not a valid date"),
        (b'{"flight_ids": [1], "flight_date": "20240201"}', "YYYY-MM-DD"),
        (b'{"flight_ids": [1], "flight_date": 20240201}', "YYYY-MM-DD"),
        (b'{"flight_ids": [1], "flight_date": "\xd9\xa2024-01-01"}', "YYYY-MM-DD"),
        # Unicode digits are no flight ids (str.isdigit accepts them)
        ('["²"]'.encode(), "1 invalid flight id(s)"),
        ('["١٢٣"]'.encode(), "1 invalid flight id(s)"),
        ('["５"]'.encode(), "1 invalid flight id(s)"),
        # 5,000-digit ids, as a string and as a JSON number
        (b'["' + b"9" * 5000 + b'"]', "1 invalid flight id(s)"),
        (b"[" + b"9" * 5000 + b"]", "invalid JSON"),
        # 100,000-deep nesting
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_every_malformed_signed_body_is_400(engine, raw, fragment):
    client = TestClient(create_intake_app(engine, SECRET, max_body_bytes=300_000, max_ids=50))
    resp = _post(client, raw=raw)
    assert resp.status_code == 400, resp.text
    assert fragment in resp.json()["error"]
    assert len(resp.text) < 2000  # no echo of a huge value
    assert _queued(engine) == {}


def test_invalid_ids_are_named(client, engine):
    resp = _post(client, {"flight_ids": [1, 2, "abc", 9_223_372_036_854_775_808]})
    assert resp.status_code == 400
    invalid = resp.json()["invalid"]
    assert len(invalid) == 2
    assert invalid[0].startswith("flight_ids[2]: not a flight id")
    assert invalid[1].startswith("flight_ids[3]: flight id out of range")
    assert _queued(engine) == {}  # the valid ids 1 and 2 were not enqueued either


def test_too_large_is_413(client, engine):
    big = json.dumps({"flight_ids": list(range(1, 2000))}).encode()
    assert len(big) > 4096
    resp = _post(client, raw=big)
    assert resp.status_code == 413 and "too large" in resp.json()["error"]
    # too many ids within the byte limit
    resp = _post(client, {"flight_ids": list(range(1, 52))})
    assert resp.status_code == 413 and "too many flight ids (51 > 50)" in resp.json()["error"]
    assert _queued(engine) == {}


def test_unsigned_large_body_is_refused_before_the_size_check(client):
    big = b"[" + b"1," * 5000 + b"1]"
    resp = client.post("/flights", content=big)
    assert resp.status_code == 401


def test_streamed_body_without_length_is_411(engine):
    client = TestClient(create_intake_app(engine, SECRET, max_body_bytes=100))
    body = b"[1, 2]"

    def chunks():
        yield body[:3]
        yield body[3:]

    resp = client.post("/flights", content=chunks(), headers=sign(body, SECRET))
    assert resp.status_code == 411
    assert _queued(engine) == {}


def test_health(client, engine):
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "queue": {}}
    _post(client, [1, 2, 3])
    FlightQueue(engine).claim("w", 1)
    assert client.get("/health").json() == {
        "status": "ok",
        "queue": {"processing": 1, "queued": 2},
    }
    assert client.post("/health").status_code == 405
    assert client.get("/flights").status_code == 405


@pytest.mark.parametrize("kind", ["sqlite_not_migrated", "postgres_unreachable"])
def test_unusable_database_is_503(tmp_path: Path, kind: str):
    url = (
        f"sqlite:///{tmp_path / 'not_migrated.db'}"  # no tables
        if kind == "sqlite_not_migrated"
        else "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"  # nothing listens
    )
    broken = make_engine(url)
    client = TestClient(create_intake_app(broken, SECRET))
    resp = client.get("/health")
    assert resp.status_code == 503 and resp.json()["status"] == "unavailable"
    resp = _post(client, [1])
    assert resp.status_code == 503 and "retry" in resp.json()["error"]
    broken.dispose()


def test_one_json_log_line_per_request_never_the_secret(client, caplog):
    caplog.set_level(logging.INFO, logger="flight_fees.http.intake")
    assert _post(client, [7, 8]).status_code == 200
    assert _post(client, ["x"]).status_code == 400
    assert client.post("/flights", content=b"[1]").status_code == 401
    lines = [r for r in caplog.records if r.name == "flight_fees.http.intake"]
    records = [json.loads(r.getMessage()) for r in lines]
    assert [r["status"] for r in records] == [200, 400, 401]
    assert records[0]["received"] == 2 and records[0]["added"] == 2
    assert "invalid flight id" in records[1]["reason"]
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records)


def test_client_disconnect_is_one_line_without_traceback(engine, caplog):
    """An upload aborted mid-body (ASGI http.disconnect) is logged once, without a traceback."""
    caplog.set_level(logging.INFO)
    app = create_intake_app(engine, SECRET)
    body = b"[1, 2, 3]"
    headers = [
        (k.lower().encode(), v.encode())
        for k, v in {**sign(body, SECRET), "content-length": str(len(body))}.items()
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/flights",
        "raw_path": b"/flights",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8787),
    }
    incoming = [
        {"type": "http.request", "body": body[:4], "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive():
        return incoming.pop(0)

    async def send(_message):
        return None

    run_coroutine(app(scope, receive, send))
    lines = [
        json.loads(r.getMessage()) for r in caplog.records if r.name == "flight_fees.http.intake"
    ]
    assert lines == [{**lines[0], "status": 499, "reason": "client disconnected before the body"}]
    assert all(r.exc_info is None for r in caplog.records)
    assert not any("Traceback" in r.getMessage() for r in caplog.records)
    assert _queued(engine) == {}


def test_app_requires_a_secret(engine):
    with pytest.raises(ValueError):
        create_intake_app(engine, "")
    with pytest.raises(ValueError, match="positive"):
        IntakeLimits(max_concurrent=0)


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        (None, "not set"),
        ("short", "too short"),
        (" " * 16, "whitespace"),
        ("my secret key with spaces", "whitespace"),
        ("x" * 16, "too weak"),
        ("aaaabbbbccccdddd", "too weak"),
        ("0123456789abcdef\x07", "control"),
    ],
)
def test_weak_secrets_are_refused(secret, fragment):
    with pytest.raises(ValueError, match=fragment):
        validate_secret(secret)


def test_strong_secrets_are_accepted():
    hex_secret = "3f9a1c7be04d58a2c6e19f0b7d3a5c8e1f2b4d6a8c0e2f4a6b8d0c2e4f6a8b0c"
    assert validate_secret(hex_secret) == hex_secret
    assert validate_secret(SECRET) == SECRET


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _main() -> None:
        pass

    app.command("serve-intake")(intake_cli.serve_intake_command)
    return app


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [(None, "not set"), ("tooshort", "too short"), (" " * 16, "whitespace")],
)
def test_cli_refuses_without_a_proper_secret(monkeypatch, secret, fragment):
    if secret is None:
        monkeypatch.delenv("FLIGHT_FEES_INTAKE_SECRET", raising=False)
    else:
        monkeypatch.setenv("FLIGHT_FEES_INTAKE_SECRET", secret)
    started = []
    monkeypatch.setattr(intake_cli, "serve", lambda *a, **k: started.append(a))
    result = CliRunner().invoke(_cli(), ["serve-intake"])
    assert result.exit_code == 2
    assert fragment in result.output and "refusing to start" in result.output
    assert started == []


def test_cli_serves_the_app(monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_INTAKE_SECRET", SECRET)
    calls = []
    monkeypatch.setattr(intake_cli, "serve", lambda *args: calls.append(args))
    result = CliRunner().invoke(
        _cli(),
        ["serve-intake", "--host", "0.0.0.0", "--port", "9001", "--header-timeout-s", "2"],
    )
    assert result.exit_code == 0, result.output
    [(app, host, port, limits)] = calls
    assert (host, port) == ("0.0.0.0", 9001)
    assert {r.path for r in app.routes} == {"/flights", "/health"}
    assert limits.header_timeout_s == 2 and app.state.limits == limits
