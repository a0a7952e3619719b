"""``flight-fees process``: (re-)process flights now, through Dagster (the run shows in the UI)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console

from flight_fees.cli.common import EXIT_USAGE, err_console, fail, open_engine

console = Console()


def process_command(
    flight_ids: Annotated[
        list[str] | None, typer.Argument(help="Flight ids to (re-)process.")
    ] = None,
    day: Annotated[
        str | None,
        typer.Option(
            "--day",
            help="UTC day of the flights (YYYY-MM-DD); without flight ids: "
            "process every flight of that day (backfill).",
        ),
    ] = None,
) -> None:
    """Process flights now through Dagster (the run appears in the UI)."""
    from flight_fees.cli.dagster_runs import (
        materialization_metadata,
        run_failure_message,
        run_process_flights,
    )
    from flight_fees.lib.ops.queue import QueueError, parse_flight_id

    try:
        ids = [parse_flight_id(f) for f in flight_ids or []]
        the_day = dt.date.fromisoformat(day) if day else None
    except (QueueError, ValueError) as exc:
        fail(str(exc), EXIT_USAGE)
    if not ids and the_day is None:
        fail("give flight ids, or --day for a whole-day backfill", EXIT_USAGE)
    engine = open_engine(migrated=True)
    groups: dict[dt.date, list[int]] = {}
    if the_day is not None:
        groups[the_day] = ids
    else:
        from flight_fees.lib.tracks import make_track_source
        from flight_fees.lib.usecases.processing import known_flight_days

        days, undated = known_flight_days(engine, ids)
        if undated:  # date them by their first position in the track source
            source = make_track_source()
            try:
                days.update(known_flight_days(engine, undated, source)[0])
            finally:
                source.close()
        for fid in ids:
            if fid not in days:
                err_console.print(f"[red]flight {fid}[/red]: no track found to date it; use --day")
                continue
            groups.setdefault(days[fid], []).append(fid)
    failed = False
    for run_day, run_ids in sorted(groups.items()):
        label = f"{len(run_ids)} flight(s)" if run_ids else "every flight (backfill)"
        console.print(f"[bold]process_flights[/bold] {run_day}: {label}")
        result = run_process_flights(run_day, run_ids or None)
        meta = materialization_metadata(result, "fee_lines")
        if not result.success:
            failed = True
            err_console.print(
                f"[red]run {result.run_id} failed:[/red] {run_failure_message(result)}"
            )
            continue
        billed = int(meta.get("batch_flights_billed", 0))
        n_failed = int(meta.get("batch_flights_failed", 0))  # tracks and pricing
        console.print(
            f"  run {result.run_id}: billed {billed}, failed {n_failed}, "
            f"fee lines {meta.get('batch_fee_lines', 0)}"
        )
        if n_failed:
            failed = True
            what = (
                f"all {n_failed} flight(s) failed"
                if billed == 0
                else f"{n_failed} of {billed + n_failed} flight(s) failed"
            )
            err_console.print(f"[red]{run_day}: {what}[/red] (`flight-fees queue` shows why)")
    if failed and ids:
        _explain_invoiced(engine, ids)
    if failed or not groups:
        raise typer.Exit(1)


def _explain_invoiced(engine, flight_ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    """Say how to re-bill the requested flights that are refused because they are invoiced."""
    from flight_fees.lib.billing.invoicing import OPEN_STATUSES, invoices_of_flights

    for fid, inv in sorted(invoices_of_flights(engine, flight_ids).items()):
        if inv.status not in OPEN_STATUSES:
            err_console.print(
                f"flight {fid} is on invoice {inv.number}, which is {inv.status} and cannot "
                "be voided: it is not re-billed",
                highlight=False,
                markup=False,
            )
            continue
        err_console.print(
            f"flight {fid} is on invoice {inv.number} ({inv.customer_code}, {inv.status}); "
            "to re-bill it, void that invoice, re-process, then issue the replacement:\n"
            f'  flight-fees invoice void {inv.number} --reason "..."\n'
            f"  flight-fees process {fid}\n"
            f"  flight-fees invoice consolidate --date {inv.period_end} --force "
            f"--customer {inv.customer_code}",
            highlight=False,
            markup=False,
        )
