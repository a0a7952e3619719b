from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from flight_fees.cli import intake as intake_cli
from flight_fees.intake import (
    SIGNATURE_HEADER,
    create_intake_app,
    sign,
    validate_secret,
    verify_signature,
)
from flight_fees.lib.db import make_engine
from flight_fees.lib.db.models import FlightQueueItem
from flight_fees.lib.queue import FlightQueue

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
    signature: str | None = None,
):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    headers[SIGNATURE_HEADER] = signature if signature is not None else sign(body, secret)
    return client.post("/flights", content=body, headers=headers)


def test_sign_and_verify():
    body = b'{"flight_ids": [1]}'
    signature = sign(body, SECRET)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify_signature(body, SECRET, signature)
    assert verify_signature(body, SECRET, "SHA256=" + signature[7:].upper())
    assert not verify_signature(body + b" ", SECRET, signature)
    assert not verify_signature(body, SECRET + "x", signature)
    assert not verify_signature(body, SECRET, signature[7:])  # no prefix
    assert not verify_signature(body, SECRET, None)
    assert not verify_signature(body, SECRET, "sha256=é")


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
    "signature",
    [None, "", "sha256=" + "0" * 64, "md5=abc", "garbage", "sha256="],
)
def test_unsigned_or_badly_signed_is_401(client, engine, signature):
    body = json.dumps({"flight_ids": [1, 2]}).encode()
    headers = {} if signature is None else {SIGNATURE_HEADER: signature}
    resp = client.post("/flights", content=body, headers=headers)
    assert resp.status_code == 401
    assert SIGNATURE_HEADER in resp.json()["error"]
    assert _queued(engine) == {}


def test_signature_with_other_secret_or_body_is_401(client, engine):
    assert _post(client, [1], secret="another-secret-of-16+").status_code == 401
    body = json.dumps([1, 2]).encode()
    assert _post(client, raw=body, signature=sign(b"[1]", SECRET)).status_code == 401
    assert _queued(engine) == {}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"flight_ids": [1, 2', "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        (b'"12"', "must be a JSON object"),
        (b'{"ids": [1]}', "unknown field(s): ids"),
        (b'{"priority": "high"}', "missing field: flight_ids"),
        (b'{"flight_ids": "1,2"}', "flight_ids must be a JSON list"),
        (b'{"flight_ids": [1, 2, -3, "x", 4.0, true, null, 5]}', "5 invalid flight id(s)"),
        (b'{"flight_ids": [1], "priority": "urgent"}', "priority must be one of"),
        (b'{"flight_ids": [1], "priority": 1}', "priority must be one of"),
        (b'{"flight_ids": [1], "flight_date": "2024-02-30"}', "not a valid date"),
        (b'{"flight_ids": [1], "flight_date": "20240201"}', "YYYY-MM-DD"),
        (b'{"flight_ids": [1], "flight_date": 20240201}', "YYYY-MM-DD"),
    ],
)
def test_invalid_request_is_400_and_enqueues_nothing(client, engine, raw, fragment):
    resp = _post(client, raw=raw)
    assert resp.status_code == 400, resp.text
    assert fragment in resp.json()["error"]
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


def test_streamed_body_without_length_is_limited(engine):
    app = create_intake_app(engine, SECRET, max_body_bytes=100)
    client = TestClient(app)

    def chunks():
        yield b"[" + b"1," * 40
        yield b"1," * 40 + b"1]"

    resp = client.post("/flights", content=chunks(), headers={SIGNATURE_HEADER: "sha256=00"})
    assert resp.status_code == 413
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


def test_app_requires_a_secret(engine):
    with pytest.raises(ValueError):
        create_intake_app(engine, "")


def test_validate_secret():
    assert validate_secret("x" * 16) == "x" * 16
    with pytest.raises(ValueError, match="not set"):
        validate_secret(None)
    with pytest.raises(ValueError, match="too short"):
        validate_secret("short")


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _main() -> None:
        pass

    app.command("serve-intake")(intake_cli.serve_intake_command)
    return app


@pytest.mark.parametrize(("secret", "fragment"), [(None, "not set"), ("tooshort", "too short")])
def test_cli_refuses_without_a_proper_secret(monkeypatch, secret, fragment):
    if secret is None:
        monkeypatch.delenv("FLIGHT_FEES_INTAKE_SECRET", raising=False)
    else:
        monkeypatch.setenv("FLIGHT_FEES_INTAKE_SECRET", secret)
    started = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: started.append(a))
    result = CliRunner().invoke(_cli(), ["serve-intake"])
    assert result.exit_code == 2
    assert fragment in result.output and "refusing to start" in result.output
    assert started == []


def test_cli_serves_the_app(monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_INTAKE_SECRET", SECRET)
    calls = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.append((app, kw)))
    result = CliRunner().invoke(_cli(), ["serve-intake", "--host", "0.0.0.0", "--port", "9001"])
    assert result.exit_code == 0, result.output
    [(app, kw)] = calls
    assert (kw["host"], kw["port"]) == ("0.0.0.0", 9001)
    assert {r.path for r in app.routes} == {"/flights", "/health"}
