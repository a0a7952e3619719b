"""``flight-fees serve``: the read-only document server (see flight_fees.http.docserver).

Registered lazily by ``flight_fees.cli.main``.
"""

from __future__ import annotations

import os
import threading
from typing import Annotated

import typer

from flight_fees.cli.common import EXIT_USAGE, err_console, fail
from flight_fees.lib.documents.links import DEFAULT_PORT, PUBLIC_URL_ENV


def serve_command(
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on (non-loopback needs a token).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", min=1, max=65535, help="TCP port to listen on.")
    ] = DEFAULT_PORT,
    warm: Annotated[
        bool, typer.Option(help="Load the FIR set in the background at start (faster 1st map).")
    ] = True,
) -> None:
    """Serve maps, day indexes, invoices, credit notes and processing logs (read-only HTTP).

    Routes: /maps/flight/ID (rendered on demand, cached), /maps/YYYY-MM-DD/ (the day's
    flights), /invoices/NUMBER.html|.pdf, /credit-notes/NUMBER.html|.pdf, /logs/. Data come
    from FLIGHT_FEES_HOME and FLIGHT_FEES_DATABASE_URL. Binds 127.0.0.1 by default; any other
    address needs FLIGHT_FEES_SERVE_TOKEN (at least 16 characters; clients send
    "Authorization: Bearer TOKEN" or open one link with ?token=TOKEN). Links in the Dagster
    UI use FLIGHT_FEES_PUBLIC_URL (default http://127.0.0.1:8090). Optional background tiles:
    FLIGHT_FEES_MAP_TILE_URL (maps work offline without them).
    """
    from flight_fees.http.docserver import (
        TOKEN_ENV,
        create_document_app,
        is_loopback,
        validate_token,
    )

    try:
        token = validate_token(os.environ.get(TOKEN_ENV))
    except ValueError as exc:  # the token setting
        fail(str(exc), EXIT_USAGE)
    if token is None and not is_loopback(host):
        fail(f"binding {host} (not loopback) needs {TOKEN_ENV}; refusing to start", EXIT_USAGE)

    import uvicorn

    from flight_fees.cli.common import open_engine
    from flight_fees.lib.core.settings import home_dir, storage_url
    from flight_fees.lib.documents.map_service import MapService
    from flight_fees.lib.documents.maps import map_assets_from_env

    engine = open_engine()
    try:
        assets = map_assets_from_env("/static")
    except ValueError as exc:  # a map setting
        fail(str(exc), EXIT_USAGE)
    maps = MapService.from_environment(engine, home=home_dir(), assets=assets)
    if warm:  # the FIR set and index load while the server already answers
        threading.Thread(target=maps.warm, name="warm-maps", daemon=True).start()
    app = create_document_app(engine, maps, home=home_dir(), token=token, storage_url=storage_url())
    public = os.environ.get(PUBLIC_URL_ENV) or f"http://{host}:{port}"
    err_console.print(
        f"[bold]flight-fees serve[/bold] on http://{host}:{port} (home {home_dir()}"
        + (f", storage {maps.storage}" if storage_url() else "")
        + "); "
        f"links point at {public}" + ("; token required" if token else "")
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        engine.dispose()
