"""``flight-fees serve-intake``: run the authenticated intake endpoint (see flight_fees.intake).

Registered on the main typer app by ``flight_fees.cli.main`` (not here).
"""

from __future__ import annotations

import os

import typer
from rich.console import Console

from flight_fees.intake import SECRET_ENV, create_intake_app, validate_secret

_err = Console(stderr=True)


def serve_intake_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8787, "--port", min=1, max=65535, help="TCP port to listen on."),
) -> None:
    """Serve POST /flights (HMAC-signed flight ids -> queue) and GET /health.

    The shared secret comes from FLIGHT_FEES_INTAKE_SECRET (at least 16 characters); the
    database from FLIGHT_FEES_DATABASE_URL (default: the embedded SQLite file).
    """
    try:
        secret = validate_secret(os.environ.get(SECRET_ENV))
    except ValueError as exc:
        _err.print(f"[red]error:[/red] {exc}; refusing to start.")
        raise typer.Exit(code=2) from None

    import uvicorn

    from flight_fees.lib.db import DatabaseError, make_engine

    try:
        engine = make_engine()
    except DatabaseError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    app = create_intake_app(engine, secret)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        engine.dispose()
