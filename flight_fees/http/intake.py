"""The intake endpoint: an authenticated HTTP entry point into the flight processing queue.

``POST /flights`` with a JSON body, either::

    {"flight_ids": [123, "456"], "priority": "high", "flight_date": "2024-05-01"}

(``priority`` and ``flight_date`` optional) or a bare JSON list of flight ids (JSON integers or
strings of ASCII digits). What a valid request is lives in :mod:`flight_fees.lib.ops.intake`
(:func:`~flight_fees.lib.ops.intake.parse_enqueue_request`); this module is the HTTP entry
point: signature, limits, status codes (``flight-fees serve-intake``,
:mod:`flight_fees.cli.serve_intake`, runs it).

**Signature** (scheme ``ff-hmac-v2``, see :func:`sign`). The request carries four headers:

- ``X-Flight-Fees-Timestamp``: Unix time in seconds;
- ``X-Flight-Fees-Nonce``: 16 to 64 characters ``[A-Za-z0-9_-]``, fresh for every request;
- ``X-Flight-Fees-Content-SHA256``: the lower-case hex SHA-256 of the exact body bytes;
- ``X-Flight-Fees-Signature: sha256=<hex>``: the HMAC-SHA256, keyed with the UTF-8 shared
  secret, of the seven lines ``ff-hmac-v2``, method, path, timestamp, nonce, Content-Length,
  body SHA-256, joined by ``\\n`` (no trailing newline).

The signature covers only headers, so the server authenticates a request **before reading its
body**: an unsigned or badly signed request is refused without one body byte being read. The
body of an authenticated request is then streamed with a hard cap (its signed
Content-Length, at most ``max_body_bytes``) and a deadline, and must hash to the signed
SHA-256. A timestamp more than ``replay_window_s`` (300 s) away from the server clock is
refused, and so is a nonce seen within the window (**replay**): a captured request cannot be
accepted twice. Retries must be signed again (new timestamp and nonce). The nonce memory is
per process: run one intake process per database (``flight-fees serve-intake`` does).

=====  ===========================================================================
200    enqueued: ``{"received", "added", "reset", "unchanged"}``
400    invalid JSON / flight id / priority / flight date / field (message names it)
401    missing or wrong signature, malformed signature headers, timestamp outside the window
408    the body did not arrive within ``body_timeout_s``
409    replayed request (nonce already used)
411    no Content-Length (chunked bodies are refused)
413    body larger than ``max_body_bytes`` or more than ``max_ids`` flight ids
503    database unavailable, or ``max_concurrent`` requests already in progress (retry later)
=====  ===========================================================================

``GET /health``: 200 ``{"status": "ok", "queue": {status: count}}``, 503 when the database
cannot be queried. No signature needed.

Every ``POST /flights`` is logged as one JSON line on logger ``flight_fees.http.intake``
(``{"event": "intake", "status", "client", "reason" | "received", "added", ...}``; never the
secret, never a traceback for a client that hung up). :func:`serve` runs the app with
connection-level limits: a header deadline (slow-header connections are closed), a maximum of
open connections, a keep-alive timeout, 16 KiB of headers.

A client::

    body = json.dumps({"flight_ids": ids}).encode()
    httpx.post(url + "/flights", content=body,
               headers={**sign(body, secret), "Content-Type": "application/json"})
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from flight_fees.lib.ops.intake import InvalidRequest, TooManyIds, parse_enqueue_request
from flight_fees.lib.ops.queue import FlightQueue

__all__ = [
    "CONTENT_SHA256_HEADER",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_IDS",
    "MIN_SECRET_BITS",
    "MIN_SECRET_LENGTH",
    "NONCE_HEADER",
    "SCHEME",
    "SECRET_ENV",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "IntakeLimits",
    "create_intake_app",
    "serve",
    "sign",
    "signing_string",
    "validate_secret",
]

log = logging.getLogger(__name__)

SCHEME = "ff-hmac-v2"
SIGNATURE_HEADER = "X-Flight-Fees-Signature"
TIMESTAMP_HEADER = "X-Flight-Fees-Timestamp"
NONCE_HEADER = "X-Flight-Fees-Nonce"
CONTENT_SHA256_HEADER = "X-Flight-Fees-Content-SHA256"
SECRET_ENV = "FLIGHT_FEES_INTAKE_SECRET"
MIN_SECRET_LENGTH = 16
#: minimum estimated entropy of the secret (length x Shannon entropy of its characters)
MIN_SECRET_BITS = 64
_MIN_DISTINCT_CHARACTERS = 8
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_IDS = 500_000
_PREFIX = "sha256="
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


@dataclass(frozen=True)
class IntakeLimits:
    """Limits of the intake app (:func:`create_intake_app`) and server (:func:`serve`)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_ids: int = DEFAULT_MAX_IDS
    #: accepted distance between the request's timestamp and the server clock (seconds)
    replay_window_s: float = 300.0
    #: nonces remembered at most (beyond: 503, fail closed); only signed requests add one
    max_nonces: int = 1_000_000
    #: POST /flights handled at the same time (beyond: 503); bounds buffered bodies
    max_concurrent: int = 8
    #: seconds to receive a whole body once its headers are in
    body_timeout_s: float = 30.0
    #: seconds a connection may take to send a request's headers (then it is closed)
    header_timeout_s: float = 10.0
    #: open connections at most (more are closed at once)
    max_connections: int = 100
    #: seconds an idle keep-alive connection stays open
    keep_alive_s: float = 5.0

    def __post_init__(self) -> None:
        bad = [k for k, v in self.__dict__.items() if not (isinstance(v, int | float) and v > 0)]
        if bad:
            raise ValueError(f"intake limits must be positive: {', '.join(bad)}")


# -- signing ----------------------------------------------------------------------------------


def signing_string(
    method: str, path: str, timestamp: str, nonce: str, length: int, body_sha256: str
) -> bytes:
    """The bytes the signature is the HMAC-SHA256 of (see the module docstring)."""
    return "\n".join(
        [SCHEME, method.upper(), path, timestamp, nonce, str(length), body_sha256]
    ).encode("ascii")


def _hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(
    body: bytes,
    secret: str,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
    method: str = "POST",
    path: str = "/flights",
) -> dict[str, str]:
    """The four signature headers of a request with ``body`` (fresh timestamp and nonce
    unless given)."""
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    nonce = nonce or secrets.token_urlsafe(24)
    digest = hashlib.sha256(body).hexdigest()
    mac = _hmac(secret, signing_string(method, path, ts, nonce, len(body), digest))
    return {
        TIMESTAMP_HEADER: ts,
        NONCE_HEADER: nonce,
        CONTENT_SHA256_HEADER: digest,
        SIGNATURE_HEADER: _PREFIX + mac,
    }


def secret_bits(secret: str) -> float:
    """Estimated entropy of ``secret`` in bits: its length times the Shannon entropy of its
    character distribution (a repeated or two-letter secret scores low)."""
    counts = collections.Counter(secret)
    n = len(secret)
    per_char = -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0
    return max(0.0, n * per_char)


def validate_secret(secret: str | None) -> str:
    """The shared secret, or :class:`ValueError` saying why it is unusable: at least
    :data:`MIN_SECRET_LENGTH` characters, no whitespace or control character, at least 8
    distinct characters and :data:`MIN_SECRET_BITS` bits of estimated entropy
    (``openssl rand -hex 32`` gives 256)."""
    if not secret:
        raise ValueError(f"{SECRET_ENV} is not set: the intake endpoint needs a shared secret")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{SECRET_ENV} is too short ({len(secret)} characters, at least "
            f"{MIN_SECRET_LENGTH} required)"
        )
    if any(ch.isspace() or not ch.isprintable() for ch in secret):
        raise ValueError(f"{SECRET_ENV} contains whitespace or control characters")
    distinct = len(set(secret))
    bits = secret_bits(secret)
    if distinct < _MIN_DISTINCT_CHARACTERS or bits < MIN_SECRET_BITS:
        raise ValueError(
            f"{SECRET_ENV} is too weak ({distinct} distinct characters, ~{bits:.0f} bits; "
            f"at least {_MIN_DISTINCT_CHARACTERS} and {MIN_SECRET_BITS} bits required): "
            "use e.g. `openssl rand -hex 32`"
        )
    return secret


# -- request handling -------------------------------------------------------------------------


class _Reject(Exception):
    """An HTTP error answer: ``status`` and a message for the client."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def response(self) -> JSONResponse:
        headers = {"Retry-After": "5"} if self.status == 503 else None
        return JSONResponse(
            {"error": self.message, **self.extra}, status_code=self.status, headers=headers
        )


class _Nonces:
    """Nonces of accepted signatures, remembered for twice the replay window."""

    def __init__(self, window_s: float, limit: int, clock: Callable[[], float]) -> None:
        self.window_s = window_s
        self.limit = limit
        self.clock = clock
        self._expiry: collections.deque[tuple[float, str]] = collections.deque()
        self._seen: set[str] = set()

    def check_and_add(self, nonce: str) -> None:
        """Record ``nonce``; :class:`_Reject` 409 when already seen (no await: atomic)."""
        now = self.clock()
        while self._expiry and self._expiry[0][0] < now:
            self._seen.discard(self._expiry.popleft()[1])
        if nonce in self._seen:
            raise _Reject(409, "replayed request: this nonce was already used")
        if len(self._seen) >= self.limit:
            raise _Reject(503, "too many recent requests to remember their nonces; retry later")
        self._seen.add(nonce)
        # a timestamp is accepted up to window_s in the future: remember until it is stale
        self._expiry.append((now + 2 * self.window_s, nonce))


@dataclass(frozen=True)
class _Signed:
    length: int
    body_sha256: str
    nonce: str


def _authenticate(
    request: Request, secret: str, limits: IntakeLimits, clock: Callable[[], float]
) -> _Signed:
    """Check the signature headers (no body read); :class:`_Reject` unless authentic."""
    headers = request.headers
    signature = (headers.get(SIGNATURE_HEADER) or "").strip()
    timestamp = (headers.get(TIMESTAMP_HEADER) or "").strip()
    nonce = (headers.get(NONCE_HEADER) or "").strip()
    digest = (headers.get(CONTENT_SHA256_HEADER) or "").strip().lower()
    if not signature:
        raise _Reject(401, f"missing {SIGNATURE_HEADER} header")
    if not signature[: len(_PREFIX)].lower() == _PREFIX:
        raise _Reject(401, f"invalid {SIGNATURE_HEADER} header (sha256=<hex> expected)")
    if not _TIMESTAMP.match(timestamp) or not _NONCE.match(nonce) or not _HEX64.match(digest):
        raise _Reject(
            401,
            f"missing or malformed {TIMESTAMP_HEADER}, {NONCE_HEADER} or "
            f"{CONTENT_SHA256_HEADER} header",
        )
    declared = headers.get("content-length")
    if declared is None:
        raise _Reject(411, "Content-Length required (chunked bodies are not accepted)")
    if not declared.isascii() or not declared.isdigit() or len(declared) > 12:
        raise _Reject(400, "invalid Content-Length header")
    length = int(declared)
    if length > limits.max_body_bytes:
        raise _Reject(413, f"request body too large ({length} > {limits.max_body_bytes} bytes)")
    expected = _hmac(
        secret, signing_string(request.method, request.url.path, timestamp, nonce, length, digest)
    )
    given = signature[len(_PREFIX) :].strip().lower().encode("ascii", errors="replace")
    if not hmac.compare_digest(given, expected.encode("ascii")):
        raise _Reject(401, f"invalid {SIGNATURE_HEADER} header")
    skew = int(timestamp) - clock()
    if abs(skew) > limits.replay_window_s:
        raise _Reject(
            401,
            f"timestamp {timestamp} is {abs(skew):.0f} s from the server clock (more than "
            f"{limits.replay_window_s:g} s): sign the request again",
        )
    return _Signed(length, digest, nonce)


async def _read_body(request: Request, signed: _Signed, timeout_s: float) -> bytes:
    """The body of an authenticated request: exactly its signed length, within the
    deadline, hashing to the signed SHA-256."""
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > signed.length:
                    raise _Reject(413, "request body longer than its Content-Length")
    except TimeoutError:
        raise _Reject(408, f"request body not received within {timeout_s:g} s") from None
    if len(body) != signed.length:
        raise _Reject(400, "request body shorter than its Content-Length")
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), signed.body_sha256):
        raise _Reject(401, f"the body does not match {CONTENT_SHA256_HEADER}")
    return bytes(body)


def _parse_request(body: bytes, max_ids: int) -> tuple[list[int], str, dt.date | None]:
    """Validate the whole request (:func:`flight_fees.lib.ops.intake.parse_enqueue_request`):
    ``(flight ids, priority, flight date)`` or :class:`_Reject` (413: too many ids, else 400)."""
    try:
        request = parse_enqueue_request(body, max_ids)
    except TooManyIds as exc:
        raise _Reject(413, exc.message) from None
    except InvalidRequest as exc:
        extra = {"invalid": exc.invalid} if exc.invalid is not None else {}
        raise _Reject(400, exc.message, **extra) from None
    return request.flight_ids, request.priority, request.flight_date


def _log_line(request: Request, status: int, started: float, **fields: Any) -> None:
    """One JSON log line per POST /flights (never the secret nor the body)."""
    record = {
        "event": "intake",
        "status": status,
        "client": request.client.host if request.client else None,
        "ms": round((time.perf_counter() - started) * 1000, 1),
        **fields,
    }
    level = logging.INFO if status < 400 else logging.WARNING
    log.log(level, "%s", json.dumps(record, default=str, ensure_ascii=True))


def create_intake_app(
    engine: Engine,
    secret: str,
    *,
    limits: IntakeLimits | None = None,
    max_body_bytes: int | None = None,
    max_ids: int | None = None,
    queue: FlightQueue | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The intake ASGI app (see the module docstring) enqueueing into ``engine``'s queue.

    ``secret`` must be non-empty (the CLI also enforces :func:`validate_secret`);
    ``max_body_bytes`` / ``max_ids`` override ``limits``.
    """
    if not secret:
        raise ValueError("the intake endpoint needs a non-empty shared secret")
    limits = limits or IntakeLimits()
    if max_body_bytes is not None or max_ids is not None:
        limits = IntakeLimits(
            **{
                **limits.__dict__,
                "max_body_bytes": max_body_bytes or limits.max_body_bytes,
                "max_ids": max_ids or limits.max_ids,
            }
        )
    flight_queue = queue or FlightQueue(engine)
    nonces = _Nonces(limits.replay_window_s, limits.max_nonces, clock)
    slots = asyncio.Semaphore(limits.max_concurrent)

    async def post_flights(request: Request) -> JSONResponse:
        started = time.perf_counter()
        if slots.locked():
            reject = _Reject(503, "too many requests in progress; retry later")
            _log_line(request, reject.status, started, reason=reject.message)
            return reject.response()
        async with slots:
            try:
                signed = _authenticate(request, secret, limits, clock)
                nonces.check_and_add(signed.nonce)
                body = await _read_body(request, signed, limits.body_timeout_s)
                ids, priority, flight_date = _parse_request(body, limits.max_ids)
            except _Reject as reject:
                _log_line(request, reject.status, started, reason=reject.message)
                return reject.response()
            except ClientDisconnect:
                _log_line(request, 499, started, reason="client disconnected before the body")
                return JSONResponse({"error": "client disconnected"}, status_code=400)
            try:
                result = await run_in_threadpool(
                    flight_queue.enqueue, ids, priority=priority, flight_date=flight_date
                )
            except Exception as exc:  # database errors: the client may retry (idempotent)
                _log_line(request, 503, started, reason=f"enqueue failed: {type(exc).__name__}")
                return JSONResponse(
                    {"error": f"could not enqueue ({type(exc).__name__}); retry later"},
                    status_code=503,
                    headers={"Retry-After": "30"},
                )
        answer = {
            "received": len(dict.fromkeys(ids)),
            "added": result.added,
            "reset": result.reset,
            "unchanged": result.unchanged,
        }
        _log_line(request, 200, started, nonce=signed.nonce, priority=priority, **answer)
        return JSONResponse(answer, status_code=200)

    async def health(_request: Request) -> JSONResponse:
        try:
            stats = await run_in_threadpool(flight_queue.stats, last_errors=0)
        except Exception as exc:
            log.warning("intake: health check failed: %s", type(exc).__name__)
            return JSONResponse(
                {"status": "unavailable", "error": f"database unavailable ({type(exc).__name__})"},
                status_code=503,
            )
        return JSONResponse({"status": "ok", "queue": dict(sorted(stats.by_status.items()))})

    app = Starlette(
        routes=[
            Route("/flights", post_flights, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
    app.state.limits = limits
    return app


# -- serving ----------------------------------------------------------------------------------


def _protocol_class(limits: IntakeLimits) -> type:
    """uvicorn's h11 protocol with a header deadline and a connection cap."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DeadlineH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        # uvicorn's H11Protocol narrows asyncio's BaseTransport to Transport (and ignores it)
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                log.warning(
                    "%s",
                    json.dumps(
                        {"event": "intake", "status": None, "reason": "too many connections"}
                    ),
                )
                transport.abort()
                return
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(limits.header_timeout_s, self._on_deadline)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _on_deadline(self) -> None:
            self._deadline = None
            waiting = self.cycle is None or self.cycle.response_complete
            if (
                waiting
                and self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
                and not (self.transport.is_closing())
            ):
                # no complete request headers within the deadline: a slow or idle client
                self.transport.abort()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's headers get the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return DeadlineH11Protocol


def server_config(app: Starlette, host: str, port: int, limits: IntakeLimits | None = None) -> Any:
    """The uvicorn configuration of :func:`serve` (header deadline, connection cap,
    keep-alive timeout, 16 KiB of headers; the app limits concurrent requests itself)."""
    import uvicorn

    limits = limits or getattr(app.state, "limits", None) or IntakeLimits()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_protocol_class(limits),
        timeout_keep_alive=int(max(1, limits.keep_alive_s)),
        h11_max_incomplete_event_size=16 * 1024,
        log_level="info",
        access_log=False,  # the app logs one JSON line per request
    )


def serve(app: Starlette, host: str, port: int, limits: IntakeLimits | None = None) -> None:
    """Run the intake app until interrupted (see :func:`server_config`); the request log
    lines go to stderr."""
    import uvicorn

    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    uvicorn.Server(server_config(app, host, port, limits)).run()
