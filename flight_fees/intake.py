"""The intake endpoint: an authenticated HTTP entry point into the flight processing queue.

``POST /flights`` with a JSON body, either::

    {"flight_ids": [123, "456"], "priority": "high", "flight_date": "2024-05-01"}

(``priority`` and ``flight_date`` optional) or a bare JSON list of flight ids. The request must
carry ``X-Flight-Fees-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body with the shared
secret (see :func:`sign`). The whole body is validated before anything is enqueued.

=====  ===========================================================================
200    enqueued: ``{"received", "added", "reset", "unchanged"}``
400    invalid JSON / flight id / priority / flight date / field (message names it)
401    missing or wrong signature
413    body larger than ``max_body_bytes`` or more than ``max_ids`` flight ids
503    database unavailable (retrying is safe: enqueueing is idempotent)
=====  ===========================================================================

``GET /health``: 200 ``{"status": "ok", "queue": {status: count}}``, 503 when the database
cannot be queried. No signature needed.

A client::

    body = json.dumps({"flight_ids": ids}).encode()
    httpx.post(url + "/flights", content=body,
               headers={SIGNATURE_HEADER: sign(body, secret), "Content-Type": "application/json"})

Signatures cover the body only (no timestamp): a captured request can be replayed, which
re-enqueues the same flights -- harmless, as enqueueing is idempotent. Serve it behind TLS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from flight_fees.lib.db.models import PRIORITIES
from flight_fees.lib.queue import FlightQueue, QueueError, parse_flight_id

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_IDS",
    "MIN_SECRET_LENGTH",
    "SECRET_ENV",
    "SIGNATURE_HEADER",
    "create_intake_app",
    "sign",
    "validate_secret",
    "verify_signature",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Flight-Fees-Signature"
SECRET_ENV = "FLIGHT_FEES_INTAKE_SECRET"
MIN_SECRET_LENGTH = 16
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_IDS = 500_000
#: invalid ids reported by name in a 400 answer (the total count is always given)
_MAX_REPORTED_ERRORS = 10
_PREFIX = "sha256="
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KEYS = frozenset({"flight_ids", "priority", "flight_date"})


def sign(body: bytes, secret: str) -> str:
    """The value of the ``X-Flight-Fees-Signature`` header for ``body``: ``sha256=<hex>``.

    The HMAC-SHA256 of the exact bytes sent, keyed with the UTF-8 shared secret.
    """
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def verify_signature(body: bytes, secret: str, header: str | None) -> bool:
    """Whether ``header`` is the valid signature of ``body`` (constant-time comparison)."""
    if not header:
        return False
    header = header.strip()
    if header[: len(_PREFIX)].lower() != _PREFIX:
        return False
    given = header[len(_PREFIX) :].strip().lower().encode("ascii", errors="replace")
    expected = sign(body, secret)[len(_PREFIX) :].encode("ascii")
    return hmac.compare_digest(given, expected)


def validate_secret(secret: str | None) -> str:
    """The shared secret, or :class:`ValueError` saying why it is unusable."""
    if not secret:
        raise ValueError(f"{SECRET_ENV} is not set: the intake endpoint needs a shared secret")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{SECRET_ENV} is too short ({len(secret)} characters, at least "
            f"{MIN_SECRET_LENGTH} required)"
        )
    return secret


class _Reject(Exception):
    """An HTTP error answer: ``status`` and a message for the client."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.message, **self.extra}, status_code=self.status)


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise _Reject(400, "invalid Content-Length header") from None
        if length > limit:
            raise _Reject(413, f"request body too large ({length} > {limit} bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _Reject(413, f"request body too large (more than {limit} bytes)")
    return bytes(body)


def _parse_request(body: bytes, max_ids: int) -> tuple[list[int], str, dt.date | None]:
    """Validate the whole request: ``(flight ids, priority, flight date)`` or :class:`_Reject`."""
    try:
        payload = json.loads(body)
    except UnicodeDecodeError:
        raise _Reject(400, "invalid JSON: the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise _Reject(
            400, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None

    priority: Any = "normal"
    flight_date: dt.date | None = None
    if isinstance(payload, list):
        raw_ids: Any = payload
    elif isinstance(payload, dict):
        unknown = sorted(set(payload) - _KEYS)
        if unknown:
            raise _Reject(
                400,
                f"unknown field(s): {', '.join(unknown)}; expected {', '.join(sorted(_KEYS))}",
            )
        if "flight_ids" not in payload:
            raise _Reject(400, "missing field: flight_ids")
        raw_ids = payload["flight_ids"]
        priority = payload.get("priority", "normal")
        raw_date = payload.get("flight_date")
        if raw_date is not None:
            if not isinstance(raw_date, str) or not _DATE.match(raw_date):
                raise _Reject(400, f"flight_date must be a 'YYYY-MM-DD' string, got {raw_date!r}")
            try:
                flight_date = dt.date.fromisoformat(raw_date)
            except ValueError:
                raise _Reject(400, f"flight_date is not a valid date: {raw_date!r}") from None
    else:
        raise _Reject(400, "the body must be a JSON object with flight_ids, or a JSON list of ids")

    if not isinstance(priority, str) or priority not in PRIORITIES:
        raise _Reject(400, f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
    if not isinstance(raw_ids, list):
        raise _Reject(400, "flight_ids must be a JSON list")
    if len(raw_ids) > max_ids:
        raise _Reject(413, f"too many flight ids ({len(raw_ids)} > {max_ids})")

    ids: list[int] = []
    errors: list[str] = []
    invalid = 0
    for index, raw in enumerate(raw_ids):
        try:
            # JSON integers or digit strings; never booleans or floats (1.0, 1e3)
            if isinstance(raw, bool) or not isinstance(raw, int | str):
                raise QueueError(f"not a flight id (positive integer expected): {raw!r}")
            ids.append(parse_flight_id(raw))
        except QueueError as exc:
            invalid += 1
            if len(errors) < _MAX_REPORTED_ERRORS:
                errors.append(f"flight_ids[{index}]: {exc}")
    if invalid:
        raise _Reject(400, f"{invalid} invalid flight id(s); nothing was enqueued", invalid=errors)
    return ids, priority, flight_date


def create_intake_app(
    engine: Engine,
    secret: str,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_ids: int = DEFAULT_MAX_IDS,
    queue: FlightQueue | None = None,
) -> Starlette:
    """The intake ASGI app (see the module docstring) enqueueing into ``engine``'s queue.

    ``secret`` must be non-empty (the CLI also enforces :data:`MIN_SECRET_LENGTH`).
    """
    if not secret:
        raise ValueError("the intake endpoint needs a non-empty shared secret")
    if max_body_bytes <= 0 or max_ids <= 0:
        raise ValueError("max_body_bytes and max_ids must be positive")
    flight_queue = queue or FlightQueue(engine)

    async def post_flights(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, max_body_bytes)
            if not verify_signature(body, secret, request.headers.get(SIGNATURE_HEADER)):
                raise _Reject(401, f"missing or invalid {SIGNATURE_HEADER} header")
            ids, priority, flight_date = _parse_request(body, max_ids)
        except _Reject as reject:
            if reject.status == 401:
                log.warning(
                    "intake: rejected unsigned/badly signed request from %s",
                    request.client.host if request.client else "?",
                )
            return reject.response()
        try:
            result = await run_in_threadpool(
                flight_queue.enqueue, ids, priority=priority, flight_date=flight_date
            )
        except Exception as exc:  # database errors: the client may retry (idempotent)
            log.exception("intake: enqueue of %d flight(s) failed", len(ids))
            return JSONResponse(
                {"error": f"could not enqueue ({type(exc).__name__}); retry later"},
                status_code=503,
                headers={"Retry-After": "30"},
            )
        log.info(
            "intake: %d flight(s) (%s): %d added, %d reset, %d unchanged",
            len(ids),
            priority,
            result.added,
            result.reset,
            result.unchanged,
        )
        return JSONResponse(
            {
                "received": len(dict.fromkeys(ids)),
                "added": result.added,
                "reset": result.reset,
                "unchanged": result.unchanged,
            },
            status_code=200,
        )

    async def health(_request: Request) -> JSONResponse:
        try:
            stats = await run_in_threadpool(flight_queue.stats, last_errors=0)
        except Exception as exc:
            log.warning("intake: health check failed: %s", exc)
            return JSONResponse(
                {"status": "unavailable", "error": f"database unavailable ({type(exc).__name__})"},
                status_code=503,
            )
        return JSONResponse({"status": "ok", "queue": dict(sorted(stats.by_status.items()))})

    return Starlette(
        routes=[
            Route("/flights", post_flights, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
