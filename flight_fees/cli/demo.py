"""``flight-fees demo``: seed the embedded demo data and run the pipeline end to end through
Dagster (queue claim -> process_flights per day -> consolidate_invoices -> overdue sweep).

A home that already holds data is kept: the command says what is there, prints its summary
and the command that starts again (``--reset``, which lists what it deletes)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from flight_fees.cli.common import EXIT_USAGE, err_console, fail, wide_console

if TYPE_CHECKING:
    from pathlib import Path

    from flight_fees.lib.core.settings import Paths
    from flight_fees.lib.ops.demo_home import DemoHomeState, HomePlace
    from flight_fees.lib.ops.demo_summary import BillingSummary

console = wide_console(soft_wrap=True)  # paths stay copyable

#: a fixed, complete week ending on a month end: reproducible numbers, weekly *and* monthly
#: invoices, and (with short payment terms) overdue invoices
DEMO_START = dt.date(2026, 10, 25)
DEMO_DAYS = 7


def demo_command(
    flights: Annotated[int, typer.Option("--flights", "-n", help="Number of demo flights.")] = 60,
    start: Annotated[
        str, typer.Option(help="First UTC day of the demo week (YYYY-MM-DD).")
    ] = DEMO_START.isoformat(),
    days: Annotated[int, typer.Option(help="Number of days with flights.")] = DEMO_DAYS,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same numbers).")] = 7,
    reset: Annotated[
        bool,
        typer.Option(
            help="Delete the embedded database, track store and pipeline outputs of the home "
            "first (listed); without it, a home that holds data is kept as it is."
        ),
    ] = False,
) -> None:
    """Seed demo data (tracks, FIRs, customers, aircraft, tariffs, FX) and run the pipeline."""
    import os

    from flight_fees.cli.dagster_runs import (
        ensure_dagster_home,
        materialization_metadata,
        run_consolidation,
        run_failure_message,
        run_overdue_sweep,
        run_process_flights,
        run_reference_refresh,
    )
    from flight_fees.lib.core.settings import DATABASE_URL_ENV, paths
    from flight_fees.lib.db import make_engine, upgrade
    from flight_fees.lib.ops.demo import generate_demo, write_track_store
    from flight_fees.lib.ops.demo_home import demo_home_state, reset_demo_home
    from flight_fees.lib.ops.demo_summary import billing_summary
    from flight_fees.lib.ops.queue import FlightQueue
    from flight_fees.lib.ops.registry import load_aircraft, load_customers
    from flight_fees.lib.usecases.queue_tick import queue_tick

    if os.environ.get(DATABASE_URL_ENV):
        fail(f"the demo only writes to the embedded database; unset {DATABASE_URL_ENV}", EXIT_USAGE)
    try:
        start_day = dt.date.fromisoformat(start)
    except ValueError:
        fail(f"--start: not a date: {start!r}", EXIT_USAGE)
    p = paths()
    console.rule("[bold]flight_fees demo")
    if reset:
        _print_reset(reset_demo_home(p))
        console.print(
            f"[RESET] kept: the Dagster instance {ensure_dagster_home()} "
            "(earlier runs stay listed in the UI)"
        )
    else:
        state = demo_home_state(p)
        if state.has_data:
            _print_kept(state)
            engine = make_engine()
            upgrade(engine)  # a kept database is migrated like `make dev` does; no data changes
            summary = billing_summary(engine)
            _print_summary(summary, summary.flights_billed, summary.flights_not_billed)
            _print_locations(p, summary.first_flight_day or start_day, ensure_dagster_home())
            console.print(
                "To start again from an empty home (the places above are deleted): "
                "[bold]make demo RESET=1[/bold] or [bold]flight-fees demo --reset[/bold]"
            )
            return
    dagster_home = ensure_dagster_home()
    engine = make_engine()
    upgrade(engine)

    data = generate_demo(n_flights=flights, start_day=start_day, n_days=days, seed=seed)
    write_track_store(data.tracks, p.tracks)
    load_customers(engine, data.customers)
    load_aircraft(engine, data.aircraft)
    console.print(
        f"[INGESTION] track store {p.tracks}: {len(data.flights)} flights, "
        f"{len(data.tracks):,} positions over {len(data.days)} day(s); "
        f"{len(data.customers)} customers, {len(data.aircraft)} aircraft"
    )

    reference = run_reference_refresh()
    if not reference.success:
        fail(f"reference data is invalid: {run_failure_message(reference)}")
    console.print(
        "[INGESTION] reference data validated (FIRs, charging zones, tariffs, FX, aircraft)"
    )

    queue = FlightQueue(engine)
    by_day = data.flights.groupby("flight_date")["flight_id"].apply(list)
    for day, ids in by_day.items():
        queue.enqueue([int(i) for i in ids], flight_date=day)
    high = [int(data.flights["flight_id"].iloc[0])]
    queue.enqueue(high, priority="high")
    console.print(f"[INGESTION] queued {len(data.flights)} flights ({len(high)} high priority)")

    # one tick of the queue, as the queue sensor takes it: claim, date, one run per day/lane
    tick = queue_tick(queue, claim_batch=len(data.flights), claimant="demo")
    billed = failed = 0
    for request in tick.runs:
        result = run_process_flights(
            request.day,
            list(request.flight_ids),
            tags={"dagster/priority": str(request.run_priority)},
        )
        meta = materialization_metadata(result, "fee_lines")
        if not result.success:
            err_console.print(
                f"[red]run for {request.day} failed:[/red] {run_failure_message(result)}"
            )
            failed += len(request.flight_ids)
            continue
        billed += int(meta.get("batch_flights_billed", 0))
        failed += int(meta.get("batch_flights_failed", 0))
        console.print(
            f"  process_flights {request.day} ({request.priority}): "
            f"{meta.get('batch_flights_billed', 0)} billed, "
            f"{meta.get('batch_flights_failed', 0)} failed, "
            f"{meta.get('batch_fee_lines', 0)} fee lines  [run {result.run_id[:8]}]"
        )

    # the daily 01:00 schedule over the demo period: only invoice days produce invoices
    from flight_fees.lib.ops.demo_summary import invoice_days as due_days

    invoice_days = due_days(engine, start_day, start_day + dt.timedelta(days=days + 1))
    for day in invoice_days:
        result = run_consolidation(day)
        if not result.success:
            err_console.print(
                f"[red]consolidation {day} failed:[/red] {run_failure_message(result)}"
            )
            continue
        meta = materialization_metadata(result, "invoices")
        console.print(
            f"  consolidate_invoices as of {day}: {meta.get('invoices_created', 0)} invoice(s)"
        )
    sweep = run_overdue_sweep()
    if not sweep.success:
        err_console.print(f"[red]overdue sweep failed:[/red] {run_failure_message(sweep)}")

    _print_summary(billing_summary(engine), billed, failed)
    _print_locations(p, start_day, dagster_home)
    if billed == 0:
        fail("the demo billed no flight")
    if tick.undatable:
        err_console.print(f"{len(tick.undatable)} flight(s) could not be dated")


def _size(n_bytes: int) -> str:
    if n_bytes < 1024:
        return f"{n_bytes} B"
    if n_bytes < 1024**2:
        return f"{n_bytes / 1024:,.1f} KB"
    return f"{n_bytes / 1024**2:,.1f} MB"


def _describe(place: HomePlace) -> str:
    """``<path>: 60 flights, 333 fee_lines (672.0 KB)`` or ``<path>: 7 files (3.2 MB)``."""
    if place.rows:
        what = ", ".join(f"{n:,} {table}" for table, n in place.rows.items())
    else:
        what = f"{place.files:,} file(s)"
    return f"  {place.path}: {what} ({_size(place.bytes)})"


def _print_kept(state: DemoHomeState) -> None:
    console.print(
        "[DEMO] the home already holds data; kept as it is (nothing seeded, no run; "
        "--flights/--start/--days/--seed apply to a new demo, with --reset):"
    )
    for place in state.reset:
        if place.has_data:
            console.print(_describe(place))


def _print_reset(deleted: DemoHomeState) -> None:
    gone = [place for place in deleted.reset if place.has_data]
    if not gone:
        console.print("[RESET] nothing to delete: the home holds no data")
    else:
        console.print("[RESET] deleted:")
        for place in gone:
            console.print(_describe(place))
    kept = [place for place in deleted.kept if place.has_data]
    if kept:
        console.print("[RESET] kept (configuration and caches, not demo data):")
        for place in kept:
            console.print(_describe(place))


def _print_locations(p: Paths, first_day: dt.date, dagster_home: Path) -> None:
    from flight_fees.lib.documents.links import day_maps_url

    console.print(
        f"maps:      {day_maps_url(first_day)} (on demand; `make dev` or `flight-fees serve`)"
    )
    console.print(f"invoices:  {p.invoices}")
    console.print(f"logs:      {p.logs}")
    console.print(
        f"dagster:   runs recorded in {dagster_home}; open the UI with [bold]make dev[/bold]"
        " (http://127.0.0.1:3000)"
    )


def _print_summary(summary: BillingSummary, billed: int, failed: int) -> None:
    console.rule("[bold]summary")
    console.print(f"flights billed: {billed}   failed: {failed}   fee lines: {summary.fee_lines}")
    for ccy, (count, total) in summary.per_currency.items():
        console.print(f"  fee lines in {ccy}: {count}, total {total:,.2f} {ccy}")
    # per charging zone, in the zone's own currency (US, VTBB, HCSM come from the tracks)
    per_zone = summary.per_zone
    console.print(
        "  per zone (local currency): "
        + ", ".join(
            f"{zone} {count} ({total:,.2f} {ccy})"
            for (zone, ccy), (count, total) in sorted(per_zone.items())
        ),
        soft_wrap=False,
    )
    invoices = summary.invoices
    for fid, cat, msg in summary.failed[:10]:
        console.print(f"  failed flight {fid}: {cat}: {msg}")
    table = Table(title=f"{len(invoices)} invoice(s)")
    for col in ("number", "customer", "period", "lines", "total", "status", "due"):
        table.add_column(col, no_wrap=True)
    for inv in invoices:
        table.add_row(
            inv.number,
            inv.customer_code,
            f"{inv.period_start}/{inv.period_end}",
            str(inv.line_count),
            f"{Decimal(str(inv.total_amount)):,.2f} {inv.currency}",
            inv.status,
            str(inv.due_date),
        )
    console.print(table)
