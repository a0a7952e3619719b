"""The commands of ``flight-fees`` that have no module of their own: ``db``, ``enqueue``,
``queue``, ``doctor``.

Imported only when one of them runs (``flight_fees.cli.main`` registers every command lazily):
the billing database layer (SQLAlchemy, Alembic) is loaded here, not for ``--help`` or
``crossings``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from flight_fees.cli.common import EXIT_USAGE, SafeConsole, err_console, fail, open_engine
from flight_fees.lib.db.models import PRIORITIES
from flight_fees.lib.ops.queue import FlightQueue, QueueError, validate_priority

console = SafeConsole()

db_app = typer.Typer(help="The billing database (migrations).", no_args_is_help=True)


# -- db ------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create or migrate the billing database schema up to REVISION."""
    from flight_fees.lib.db import current_revision, upgrade

    engine = open_engine()
    before = current_revision(engine)
    upgrade(engine, revision)
    after = current_revision(engine)
    console.print(f"[DATABASE] {engine.url.render_as_string()}: {before or 'empty'} -> {after}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")] = "-1",
) -> None:
    """Downgrade the billing database schema (by default one step)."""
    from flight_fees.lib.db import current_revision, downgrade

    engine = open_engine()
    downgrade(engine, revision)
    console.print(f"[DATABASE] now at {current_revision(engine) or 'base (empty)'}")


@db_app.command("current")
def db_current() -> None:
    """Print the current and the latest schema revision."""
    from flight_fees.lib.db import current_revision, head_revision

    engine = open_engine()
    console.print(f"current: {current_revision(engine) or 'none'}  head: {head_revision()}")


# -- queue ---------------------------------------------------------------------------------


def enqueue(
    flight_ids: Annotated[
        list[str] | None, typer.Argument(help="Flight ids (positive integers).", show_default=False)
    ] = None,
    file: Annotated[
        list[Path] | None,
        typer.Option(
            "--file", "-f", help="Text file (one id per line) or CSV with a flight_id column."
        ),
    ] = None,
    priority: Annotated[
        str, typer.Option(help=f"Queue priority: {', '.join(PRIORITIES)}.")
    ] = "normal",
    date: Annotated[
        str | None, typer.Option("--date", help="UTC day of the flights (YYYY-MM-DD), if known.")
    ] = None,
) -> None:
    """Queue flights for billing (idempotent).

    Invalid ids are reported line by line and the valid ones are queued, one transaction per
    chunk of 5,000. Exit status 1 if any id was invalid.
    """
    from flight_fees.lib.ops.intake import parse_flight_ids

    try:
        validate_priority(priority)
        flight_date = dt.date.fromisoformat(date) if date else None
        parsed = parse_flight_ids(flight_ids or [], file or [])
    except (QueueError, ValueError) as exc:
        fail(str(exc), EXIT_USAGE)
    for where, message in parsed.invalid:
        err_console.print(f"[red]invalid[/red] {where}: {message}")
    if not parsed.ids and not parsed.invalid:
        fail("no flight ids given (arguments or --file)", EXIT_USAGE)
    queue = FlightQueue(open_engine(migrated=True))
    with Progress(console=err_console, transient=True, disable=len(parsed.ids) < 20_000) as bar:
        task = bar.add_task("enqueueing", total=len(parsed.ids))
        result = queue.enqueue(
            parsed.ids,
            priority=priority,
            flight_date=flight_date,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    console.print(
        f"queued {result.added} new flight(s), reset {result.reset} failed/dead, "
        f"{result.unchanged} already queued"
        + (f", {parsed.duplicates} duplicate(s) in input" if parsed.duplicates else "")
        + (f"; {len(parsed.invalid)} invalid" if parsed.invalid else "")
    )
    if parsed.invalid:
        fail(f"{len(parsed.invalid)} invalid flight id(s) not queued")


def queue_summary(
    errors: Annotated[int, typer.Option(help="How many recent errors to list.")] = 10,
) -> None:
    """Queue summary: counts per status and priority, oldest age, recent errors."""
    queue = FlightQueue(open_engine(migrated=True))
    stats = queue.stats(last_errors=errors)
    table = Table(title="flight_processing_queue")
    table.add_column("status")
    for p in PRIORITIES:
        table.add_column(p, justify="right")
    table.add_column("total", justify="right", style="bold")
    for status in ("queued", "processing", "failed", "dead"):
        counts = [stats.by_status_priority.get((status, p), 0) for p in PRIORITIES]
        table.add_row(status, *map(str, counts), str(sum(counts)))
    console.print(table)
    age = stats.oldest_queued_age_s()
    console.print(
        "oldest queued flight: " + (f"{_format_age(age)} old" if age is not None else "none queued")
    )
    if stats.last_errors:
        err = Table(title="recent errors")
        for col in ("flight_id", "status", "category", "attempts", "message"):
            err.add_column(col)
        for flight_id, status, category, message, attempts in stats.last_errors:
            err.add_row(
                str(flight_id), status, category or "", str(attempts), (message or "")[:120]
            )
        console.print(err)


def _format_age(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    hours, m = divmod(minutes, 60)
    days, h = divmod(hours, 24)
    return f"{days}d {h}h" if days else f"{h}h {m}m" if h else f"{m}m {s}s"


# -- doctor --------------------------------------------------------------------------------


def doctor() -> None:
    """Check the billing database (reachable, migrated) and the track source."""
    from flight_fees.cli.doctor import run_checks

    checks = run_checks()
    table = Table(title="flight-fees doctor")
    for col in ("check", "status", "detail"):
        table.add_column(col)
    for check in checks:
        table.add_row(
            check.name, "[green]ok[/green]" if check.ok else "[red]FAIL[/red]", check.detail
        )
    console.print(table)
    failed = [c for c in checks if not c.ok]
    if failed:
        fail(f"{len(failed)} check(s) failed: " + "; ".join(c.hint for c in failed))
