"""``flight-fees conflicts``: review and resolve attribute conflicts that block billing."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from flight_fees.cli.common import EXIT_USAGE, SafeConsole, fail, open_engine

console = SafeConsole()
conflicts_app = typer.Typer(
    help="Attribute conflicts (e.g. two MTOWs for one registration) blocking billing.",
    no_args_is_help=True,
)


@conflicts_app.command("list")
def list_conflicts() -> None:
    """List the open conflicts."""
    from flight_fees.lib.charging.attributes import open_conflicts

    frame = open_conflicts(open_engine(migrated=True))
    if frame.empty:
        console.print("no open conflict")
        return
    table = Table(title=f"{len(frame)} open conflict(s)")
    for col in ("id", "flight_id", "field", "candidates", "since"):
        table.add_column(col)
    for row in frame.itertuples(index=False):
        table.add_row(
            str(row.id),
            str(row.flight_id),
            row.field,
            json.dumps(row.candidates, default=str),
            str(row.created_at)[:19],
        )
    console.print(table)


@conflicts_app.command("resolve")
def resolve(
    conflict_id: Annotated[int, typer.Argument(help="Conflict id (see `conflicts list`).")],
    value: Annotated[str, typer.Argument(help="The correct value (e.g. the MTOW in kg).")],
    reprocess: Annotated[
        bool, typer.Option(help="Re-enqueue the flight (high priority) so it is billed.")
    ] = True,
) -> None:
    """Close a conflict with the correct value; it then wins over every source."""

    from flight_fees.lib.charging.attributes import ConflictNotFound, resolve_conflict
    from flight_fees.lib.charging.attributes.conflicts import conflict_flight_id
    from flight_fees.lib.ops.queue import FlightQueue

    engine = open_engine(migrated=True)
    try:
        resolved = resolve_conflict(engine, conflict_id, value)
    except ConflictNotFound as exc:
        fail(str(exc) or f"no open conflict {conflict_id}")
    except ValueError as exc:  # the VALUE argument
        fail(str(exc), EXIT_USAGE)
    flight_id = conflict_flight_id(engine, resolved)
    console.print(f"conflict {resolved} of flight {flight_id} resolved with {value!r}")
    if reprocess:
        FlightQueue(engine).enqueue([flight_id], priority="high")
        console.print(f"flight {flight_id} re-queued (high priority)")
