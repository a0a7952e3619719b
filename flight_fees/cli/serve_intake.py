"""``flight-fees serve-intake``: run the authenticated intake endpoint (see
flight_fees.http.intake).

Registered on the main typer app by ``flight_fees.cli.main`` (not here).
"""

from __future__ import annotations

import os

import typer

from flight_fees.cli.common import SafeConsole
from flight_fees.http.intake import (
    SECRET_ENV,
    IntakeLimits,
    create_intake_app,
    serve,
    validate_secret,
)

_err = SafeConsole(stderr=True)


def serve_intake_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8787, "--port", min=1, max=65535, help="TCP port to listen on."),
    max_body_mb: float = typer.Option(
        10.0, "--max-body-mb", min=0.001, help="Largest accepted body (MiB)."
    ),
    max_concurrent: int = typer.Option(
        8, "--max-concurrent", min=1, help="POST /flights handled at once (beyond: 503)."
    ),
    max_connections: int = typer.Option(
        100, "--max-connections", min=1, help="Open connections at most (more are closed)."
    ),
    header_timeout_s: float = typer.Option(
        10.0, "--header-timeout-s", min=0.1, help="Seconds to send a request's headers."
    ),
    body_timeout_s: float = typer.Option(
        30.0, "--body-timeout-s", min=0.1, help="Seconds to send a request's body."
    ),
) -> None:
    """Serve POST /flights (HMAC-signed flight ids -> queue) and GET /health.

    The shared secret comes from FLIGHT_FEES_INTAKE_SECRET (at least 16 characters, no
    whitespace, ~64 bits of entropy: `openssl rand -hex 32`); the database from
    FLIGHT_FEES_DATABASE_URL (default: the embedded SQLite file). Signature scheme and limits:
    see the README (Intake endpoint).
    """
    try:
        secret = validate_secret(os.environ.get(SECRET_ENV))
    except ValueError as exc:
        _err.print(f"[red]error:[/red] {exc}; refusing to start.", highlight=False)
        raise typer.Exit(code=2) from None

    from flight_fees.lib.db import DatabaseError, make_engine

    try:
        engine = make_engine()
    except DatabaseError as exc:
        _err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    limits = IntakeLimits(
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_concurrent=max_concurrent,
        max_connections=max_connections,
        header_timeout_s=header_timeout_s,
        body_timeout_s=body_timeout_s,
    )
    app = create_intake_app(engine, secret, limits=limits)
    try:
        serve(app, host, port, limits)
    finally:
        engine.dispose()
