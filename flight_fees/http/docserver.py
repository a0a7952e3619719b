"""The read-only document server behind ``flight-fees serve``: flight maps, day indexes,
invoice and credit-note documents, processing logs.

=============================================  ==============================================
``GET /``                                       links to everything below
``GET /health``                                 ``{"status": "ok"}`` (no token needed)
``GET /maps/``                                  days with billed flights
``GET /maps/{day}/``                            the day's flights: callsign, registration,
                                                route, zones, amount, invoices, map links
``GET /maps/flight/{flight_id}[?day=D]``        the flight's map, rendered on demand, cached
``GET /maps/flight/{flight_id}/{country}``      the flight's part in one country (on demand)
``GET /invoices/{number}.html`` / ``.pdf``      invoice document
(``flight_fees.lib.documents.invoices``)
``GET /credit-notes/{number}.html`` / ``.pdf``  credit-note document
``GET /logs/`` / ``GET /logs/{name}.json``      processing logs (``<home>/processing_logs``)
``GET /reports/{name}.html``                    analysis reports: bill verification, repricing
                                                (``<home>/reports``)
``GET /static/...``                             Leaflet, basemap, map script (package files)
=============================================  ==============================================

Documents, maps and processing logs come from the shared storage (``FLIGHT_FEES_STORAGE_URL``,
e.g. ``s3://bucket/prefix``; default the home), so the server may run on another machine than
the runs that wrote them.

Safety: only GET/HEAD; every file served is resolved and must stay inside its root (the
storage's ``processing_logs`` / ``invoices`` or the package's ``static``; on an object store,
which has no links, the key must start with the root's), names are checked against a strict
pattern first (no ``..``, no separators, no hidden files); pages carry a Content-Security-
Policy (maps load scripts from ``/static`` only; documents and indexes run no script). With a
token (``FLIGHT_FEES_SERVE_TOKEN``) every request but ``/health`` needs ``Authorization:
Bearer <token>``, or the ``flight_fees_token`` cookie, which a link with ``?token=<token>``
sets once (then redirects to the same URL without it). ``flight-fees serve`` binds 127.0.0.1
by default and refuses any other address without a token.
"""

from __future__ import annotations

import datetime as dt
import hmac
import html
import importlib
import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Route

from flight_fees.lib.core.settings import Paths
from flight_fees.lib.core.storage import StoragePath, confined, is_local, storage_path
from flight_fees.lib.documents import links
from flight_fees.lib.documents.maps import STATIC_DIR

__all__ = [
    "COOKIE_NAME",
    "MIN_TOKEN_LENGTH",
    "TOKEN_ENV",
    "PathRefused",
    "confined_path",
    "create_document_app",
    "is_loopback",
    "validate_token",
]

TOKEN_ENV = "FLIGHT_FEES_SERVE_TOKEN"
MIN_TOKEN_LENGTH = 16
COOKIE_NAME = "flight_fees_token"
DOCUMENTS_MODULE = "flight_fees.lib.documents.invoices"

_SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$")
_DOCUMENT = re.compile(r"^(?P<number>[A-Za-z0-9][A-Za-z0-9_\-]{0,59})\.(?P<fmt>html|pdf)$")
#: a country as the FIR set names it ("Belgium/Luxembourg" included); only ever compared with
#: the flight's countries, never used as a path
_COUNTRY = re.compile(r"^[^\x00-\x1f\x7f]{1,80}$")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".md": "text/plain; charset=utf-8",
    ".json": "application/json",
}
_MAP_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:{tiles}; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
_DOC_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


class PathRefused(ValueError):
    """A requested name is unsafe or resolves outside its root."""


def confined_path(root: StoragePath, *parts: str) -> StoragePath:
    """``root/part/...`` resolved, refused (:class:`PathRefused`) unless every part is a plain
    name (letters, digits, ``_.-``, not starting with a dot) and the result, symlinks
    followed, stays inside ``root`` (a local folder or a folder of an object store:
    :func:`flight_fees.lib.core.storage.confined`)."""
    for part in parts:
        if not _SAFE_PART.match(part) or part in (".", ".."):
            raise PathRefused(f"refused path component {part[:80]!r}")
    try:
        return confined(root, *parts)
    except ValueError as exc:
        raise PathRefused(str(exc)) from exc


def _same_file(served: StoragePath, given: StoragePath) -> bool:
    """Whether ``given`` (a path a documents function returned) is the file ``served``."""
    if is_local(given):
        return is_local(served) and served == given.resolve()
    return not is_local(served) and str(served) == str(given)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names a loopback interface (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def validate_token(token: str | None) -> str | None:
    """None (no token), or the token when long enough; ``ValueError`` otherwise."""
    if token is None or token == "":
        return None
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{TOKEN_ENV} must be at least {MIN_TOKEN_LENGTH} characters")
    return token


# --------------------------------------------------------------------------------------------
# token middleware
# --------------------------------------------------------------------------------------------


class TokenMiddleware:
    """Require the bearer token (header, cookie, or a one-time ``?token=`` that sets the
    cookie) on every request but ``/health``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _ok(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self.token)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if self._ok(bearer) or self._ok(request.cookies.get(COOKIE_NAME)):
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        given = [v for k, v in query if k == "token"]
        if given and self._ok(given[-1]):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope["path"] + (f"?{rest}" if rest else "")
            response: Response = Response(status_code=303, headers={"Location": location})
            response.set_cookie(
                COOKIE_NAME, given[-1], httponly=True, samesite="lax", path="/", max_age=86400 * 7
            )
        else:
            response = PlainTextResponse(
                "401: this document server needs its token (Authorization: Bearer ...)",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        await response(scope, receive, send)


class SecurityHeadersMiddleware:
    """``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` on every
    answer."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for key, value in (
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ):
                    if key not in names:
                        headers.append((key, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


# --------------------------------------------------------------------------------------------
# the app
# --------------------------------------------------------------------------------------------


def _not_found(message: str) -> PlainTextResponse:
    return PlainTextResponse(f"404: {message}", status_code=404)


def _html(text: str, csp: str = _DOC_CSP, **headers: str) -> HTMLResponse:
    return HTMLResponse(text, headers={"Content-Security-Policy": csp, **headers})


def _parse_day(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    except ValueError:
        return None


def _documents_function(name: str) -> Callable[..., Any] | None:
    """``flight_fees.lib.documents.invoices.<name>`` if that module provides it."""
    try:
        module = importlib.import_module(DOCUMENTS_MODULE)
    except ImportError:
        return None
    fn = getattr(module, name, None)
    return fn if callable(fn) else None


def _invoice_html_fallback(engine: Engine, number: str, fmt: str, **_: Any) -> str:
    """The invoice page of ``lib.documents.render_invoice_html`` (for a documents module
    without ``invoice_document``); HTML only."""
    if fmt != "html":
        raise NotImplementedError(
            "PDF invoices need flight_fees.lib.documents.invoices.invoice_document"
        )
    from flight_fees.lib.billing.invoicing import invoice_detail
    from flight_fees.lib.documents.invoices import render_invoice_html

    return render_invoice_html(invoice_detail(engine, number))


def create_document_app(
    engine: Engine,
    maps: Any,
    *,
    home: Path,
    token: str | None = None,
    storage_url: str | None = None,
) -> Starlette:
    """The document server over ``engine`` (billing database), ``maps`` (a
    :class:`~flight_fees.lib.documents.map_service.MapService`), the home ``home`` and the
    shared storage ``storage_url`` (documents and processing logs; None: the home)."""
    paths = Paths(Path(home), storage_url)
    tiles = " https: http:" if getattr(maps.assets, "tile_url", None) else ""
    map_csp = _MAP_CSP.format(tiles=tiles)

    async def index(request: Request) -> Response:
        body = (
            "<h1>flight_fees documents</h1><ul>"
            '<li><a href="/maps/">flight maps by day</a></li>'
            '<li><a href="/logs/">processing logs</a></li></ul>'
            "<p>Invoices: <code>/invoices/NUMBER.html</code> or <code>.pdf</code>; credit "
            "notes: <code>/credit-notes/NUMBER.html</code> or <code>.pdf</code>.</p>"
        )
        return _html(f"<!DOCTYPE html><meta charset='utf-8'><title>flight_fees</title>{body}")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def static(request: Request) -> Response:
        parts = request.path_params["path"].split("/")
        try:
            target = confined_path(STATIC_DIR, *parts)
        except PathRefused as exc:
            return _not_found(str(exc))
        if not target.is_file() or target.suffix not in _TYPES:
            return _not_found("no such file")
        return Response(
            target.read_bytes(),
            media_type=_TYPES[target.suffix],
            headers={"Cache-Control": "public, max-age=86400"},
        )

    async def days(request: Request) -> Response:
        return _html(await run_in_threadpool(maps.days_index))

    async def day_index(request: Request) -> Response:
        day = _parse_day(request.path_params["day"])
        if day is None:
            return _not_found("not a day (YYYY-MM-DD)")
        return _html(await run_in_threadpool(maps.day_index, day))

    async def flight_map(request: Request) -> Response:
        from flight_fees.lib.documents.map_service import MapNotFound

        flight_id = request.path_params["flight_id"]
        country = request.path_params.get("country")
        if country is not None and not _COUNTRY.match(country):
            return _not_found("not a country name")
        day = None
        if "day" in request.query_params:
            day = _parse_day(request.query_params["day"])
            if day is None:
                return _not_found("?day= is not a day (YYYY-MM-DD)")
        try:
            result = await run_in_threadpool(maps.flight_map, flight_id, day=day, country=country)
        except MapNotFound as exc:
            return _not_found(str(exc))
        return _html(
            result.html,
            map_csp,
            **{
                "X-Flight-Fees-Map": "cached" if result.cached else "rendered",
                "Server-Timing": f"map;dur={result.seconds * 1000:.1f}",
            },
        )

    async def document(request: Request) -> Response:
        kind = request.path_params["kind"]
        match = _DOCUMENT.match(request.path_params["filename"])
        if match is None:
            return _not_found("expected NUMBER.html or NUMBER.pdf")
        number, fmt = match["number"], match["fmt"]
        label = "invoice" if kind == "invoices" else "credit note"
        name = "invoice_document" if kind == "invoices" else "credit_note_document"
        fn = _documents_function(name)
        extra: dict[str, Any] = {"out_dir": paths.invoices}
        if fn is None and kind == "invoices":
            fn = _invoice_html_fallback
        elif kind == "invoices":
            extra["map_base_url"] = links.public_url()
        if fn is None:
            return _not_found(
                f"{label} documents are not available in this version "
                f"({DOCUMENTS_MODULE}.{name} is missing)"
            )
        try:
            content = await run_in_threadpool(fn, engine, number, fmt, **extra)
        except (LookupError, ValueError) as exc:
            return _not_found(f"{label} {number} not found ({exc})")
        except (NotImplementedError, ImportError, OSError) as exc:
            return _not_found(f"{fmt.upper()} of {label} {number} is not available: {exc}")
        if isinstance(content, str) and not content.lstrip().startswith("<"):
            content = storage_path(content)
        if not isinstance(content, str | bytes):
            try:  # the documents module writes to the storage: serve only from there
                target = confined_path(paths.invoices, content.name)
            except PathRefused as exc:
                return _not_found(str(exc))
            if not _same_file(target, content) or not target.is_file():
                return _not_found(f"{label} {number}: document outside the storage")
            content = await run_in_threadpool(target.read_bytes)
        if fmt == "pdf":
            return Response(
                content,
                media_type="application/pdf",
                headers={"Content-Disposition": f'inline; filename="{number}.pdf"'},
            )
        return _html(content if isinstance(content, str) else content.decode("utf-8"))

    def newest_logs() -> list[StoragePath]:
        folder = paths.logs
        if not folder.is_dir():
            return []
        newest: list[StoragePath] = sorted(
            folder.glob("*.json"), key=lambda p: p.name, reverse=True
        )
        return newest[:500]

    async def logs(request: Request) -> Response:
        files = await run_in_threadpool(newest_logs)
        items = "".join(
            f'<li><a href="/logs/{html.escape(p.name, quote=True)}">{html.escape(p.name)}</a></li>'
            for p in files
            if _SAFE_PART.match(p.name)
        )
        return _html(
            "<!DOCTYPE html><meta charset='utf-8'><title>Processing logs</title>"
            f"<h1>Processing logs</h1><ul>{items or '<li>none</li>'}</ul>"
        )

    async def log_file(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            target = confined_path(paths.logs, name)
        except PathRefused as exc:
            return _not_found(str(exc))
        if target.suffix != ".json":
            return _not_found("no such processing log")
        try:
            data = await run_in_threadpool(target.read_bytes)
        except (FileNotFoundError, IsADirectoryError):
            return _not_found("no such processing log")
        return Response(data, media_type="application/json")

    async def report_file(request: Request) -> Response:
        try:
            target = confined_path(paths.home / "reports", request.path_params["name"])
        except PathRefused as exc:
            return _not_found(str(exc))
        if target.suffix != ".html" or not target.is_file():
            return _not_found("no such report")
        return _html(target.read_text(encoding="utf-8"))

    def document_route(kind: str) -> Route:
        async def endpoint(request: Request) -> Response:
            request.path_params["kind"] = kind
            return await document(request)

        return Route(f"/{kind}/{{filename}}", endpoint, methods=["GET"])

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/static/{path:path}", static, methods=["GET"]),
        Route("/maps/", days, methods=["GET"]),
        Route("/maps/flight/{flight_id:int}", flight_map, methods=["GET"]),
        Route("/maps/flight/{flight_id:int}/{country:path}", flight_map, methods=["GET"]),
        Route("/maps/{day}/", day_index, methods=["GET"]),
        document_route("invoices"),
        document_route("credit-notes"),
        Route("/logs/", logs, methods=["GET"]),
        Route("/logs/{name}", log_file, methods=["GET"]),
        Route("/reports/{name}", report_file, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(SecurityHeadersMiddleware)
    if token is not None:
        app.add_middleware(TokenMiddleware, token=token)
    return app
