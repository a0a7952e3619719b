"""Registers the commands that live in their own modules on the main app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from flight_fees.cli.conflicts import conflicts_app
    from flight_fees.cli.crossings import crossings_command
    from flight_fees.cli.demo import demo_command
    from flight_fees.cli.intake import serve_intake_command
    from flight_fees.cli.invoice import invoice_app
    from flight_fees.cli.process import process_command
    from flight_fees.cli.quote import quote_command
    from flight_fees.cli.tracks import tracks_command

    app.command("demo")(demo_command)
    app.command("process")(process_command)
    app.command("tracks")(tracks_command)
    app.command("crossings")(crossings_command)
    app.command("quote")(quote_command)
    app.command("serve-intake")(serve_intake_command)
    app.add_typer(invoice_app, name="invoice", help="Consolidated invoices: list, show, pay, void.")
    app.add_typer(conflicts_app, name="conflicts")
