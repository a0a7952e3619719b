"""``flight-fees aircraft ...``: add, list and import aircraft with their declared MTOWs.

A declared MTOW takes effect on a UTC day (``--effective-from`` / CSV ``effective_from``;
empty: since always) and stays in force until the next declaration: a flight is billed with
the declaration in force on its day (:mod:`flight_fees.lib.ops.registry`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from flight_fees.cli.common import open_engine, wide_console
from flight_fees.cli.customers import (
    ActorOption,
    SkipOption,
    actor_of,
    print_import,
    registry_errors,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from flight_fees.lib.ops.registry_queries import AircraftView

aircraft_app = typer.Typer(
    help="Aircraft: add, list, import a CSV file (declared MTOW with the day it takes effect).",
    no_args_is_help=True,
)


def aircraft_table(aircraft: Sequence[AircraftView]) -> Table:
    """A table of aircraft and their MTOW history."""
    from rich.markup import escape

    table = Table(title=f"{len(aircraft)} aircraft")
    for col in ("registration", "icao24", "type", "operator", "MTOW kg (current)", "declared"):
        table.add_column(col)
    for a in aircraft:
        history = "; ".join(
            f"{d.mtow_kg:,} kg from {d.effective_from or 'always'}" for d in a.declarations
        )
        table.add_row(
            escape(a.registration), a.icao24 or "-", a.aircraft_type or "-",
            escape(a.operator or "-"), f"{a.mtow_kg:,}" if a.mtow_kg is not None else "-",
            history or "-",
        )  # fmt: skip
    return table


@aircraft_app.command("add")
def add_command(
    registration: Annotated[str, typer.Argument(help="Registration, e.g. D-AIRX.")],
    icao24: Annotated[str | None, typer.Option("--icao24", help="Mode S address (6 hex).")] = None,
    aircraft_type: Annotated[
        str | None, typer.Option("--type", help="ICAO type designator, e.g. A321.")
    ] = None,
    mtow_kg: Annotated[str | None, typer.Option("--mtow-kg", help="Declared MTOW (kg).")] = None,
    effective_from: Annotated[
        str | None,
        typer.Option("--effective-from", help="UTC day the MTOW takes effect (default: always)."),
    ] = None,
    operator: Annotated[
        str | None, typer.Option("--operator", help="Operator: a customer code.")
    ] = None,
    actor: ActorOption = None,
) -> None:
    """Create an aircraft, or update it and declare its MTOW from a day on."""
    from flight_fees.lib.ops.registry import add_aircraft

    values = {
        "registration": registration, "icao24": icao24, "aircraft_type": aircraft_type,
        "mtow_kg": mtow_kg, "effective_from": effective_from, "operator": operator,
    }  # fmt: skip
    with registry_errors(2):
        result = add_aircraft(open_engine(migrated=True), values, actor=actor_of(actor))
    state = "created" if result.created else "updated" if result.updated else "unchanged"
    wide_console(highlight=False).print(
        f"aircraft {registration.strip().upper()} {state}"
        + (", MTOW declared" if result.declarations else "")
    )


@aircraft_app.command("list")
def list_command(
    operator: Annotated[
        str | None, typer.Option("--operator", help="Only this operator (customer code).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List aircraft with operator, current MTOW and MTOW declarations."""
    from flight_fees.lib.ops.registry_queries import list_aircraft

    aircraft = list_aircraft(open_engine(migrated=True), operator=operator)
    if as_json:
        typer.echo(json.dumps([asdict(a) for a in aircraft], indent=1, default=str))
        return
    console = wide_console(highlight=False, soft_wrap=True)
    console.print(aircraft_table(aircraft) if aircraft else "no aircraft")


@aircraft_app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: registration,icao24,aircraft_type,mtow_kg,effective_from,operator."
        ),
    ],
    skip_invalid: SkipOption = False,
    actor: ActorOption = None,
) -> None:
    """Import aircraft and MTOW declarations from a CSV file in one transaction."""
    from flight_fees.lib.ops.registry import import_aircraft

    with registry_errors():
        result = import_aircraft(
            open_engine(migrated=True), file, actor=actor_of(actor), skip_invalid=skip_invalid
        )
    print_import(result, "aircraft", str(file))
