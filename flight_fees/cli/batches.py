"""``flight-fees batches``: processing batches with progress; one batch's failed flights."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from flight_fees.cli.common import err_console, fail, open_engine, wide_console

batches_app = typer.Typer(
    help="Processing batches: list with progress, show one's failed flights, --watch.",
    invoke_without_command=True,
)


def _when(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


@batches_app.callback()
def list_command(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="running, succeeded, partial or failed.")
    ] = None,
    day: Annotated[str | None, typer.Option("--day", help="UTC day (YYYY-MM-DD).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Batches per page.")] = 20,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many batches.")] = 0,
) -> None:
    """Processing batches: list with progress, show one's failed flights, --watch."""
    if ctx.invoked_subcommand is not None:
        return
    from flight_fees.lib.billing.batches import BatchError, list_batches

    the_day = None
    if day is not None:
        try:
            the_day = dt.date.fromisoformat(day.strip())
        except ValueError:
            raise typer.BadParameter(f"{day!r} is not a date", param_hint="'--day'") from None
    try:
        rows, total = list_batches(
            open_engine(migrated=True),
            status=status.strip().lower() if status else None,
            day=the_day,
            limit=limit,
            offset=offset,
        )
    except BatchError as exc:
        fail(str(exc), 2)
    console = wide_console(highlight=False, soft_wrap=True)
    if not rows:
        console.print("no processing batches")
        return
    table = Table(title=f"processing batches {offset + 1}-{offset + len(rows)} of {total}")
    for col in ("batch", "run", "day", "started", "finished", "requested", "billed", "failed",
                "progress", "status"):  # fmt: skip
        table.add_column(col, justify="right" if col in ("requested", "billed", "failed",
                                                         "progress") else "left")  # fmt: skip
    for r in rows:
        table.add_row(
            r.batch_id, (r.run_id or "-")[:8], r.day or "-", _when(r.started_at),
            _when(r.finished_at), str(r.requested), str(r.billed), str(r.failed),
            f"{r.progress:.0f} %", r.status,
        )  # fmt: skip
    console.print(table)
    if offset + len(rows) < total:
        console.print(f"next page: --offset {offset + len(rows)}")


@batches_app.command("show")
def show_command(
    batch_id: Annotated[str, typer.Argument(help="Batch id (see `flight-fees batches`).")],
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow a running batch with a progress bar.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls.")] = 2.0,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Stop watching after this many seconds.")
    ] = 3600.0,
) -> None:
    """Show a batch and its failed flights (category, message); --watch follows it."""
    from flight_fees.lib.billing.batches import BatchError, batch_detail

    if interval <= 0 or timeout < 0:
        raise typer.BadParameter("--interval must be positive and --timeout not negative")
    engine = open_engine(migrated=True)
    try:
        row, failed = batch_detail(engine, batch_id)
    except BatchError as exc:
        fail(str(exc), 1)
    if watch and row.status == "running":
        deadline = time.monotonic() + timeout
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f} %"),
            TextColumn("billed {task.fields[billed]}, failed {task.fields[failed]}"),
            console=err_console,
        ) as bar:  # fmt: skip
            task = bar.add_task(row.batch_id, total=max(row.requested, 1), billed=0, failed=0)
            while True:
                bar.update(
                    task, completed=row.billed + row.failed, billed=row.billed, failed=row.failed
                )
                if row.status != "running" or time.monotonic() >= deadline:
                    break
                time.sleep(interval)
                row, failed = batch_detail(engine, batch_id)
        if row.status == "running":
            fail(f"batch {row.batch_id} still running after {timeout:g} s", 1)
    console = wide_console(highlight=False, soft_wrap=True)
    console.print(f"[bold]{row.batch_id}[/]  {row.status}  {row.progress:.0f} %")
    console.print(f"run       {row.run_id or '-'}   day {row.day or '-'}")
    console.print(f"started   {_when(row.started_at)}   finished {_when(row.finished_at)}")
    console.print(
        f"flights   requested {row.requested}, billed {row.billed}, failed {row.failed}; "
        f"fee lines {row.fee_lines}"
    )
    if not failed:
        console.print("no failed flights")
        return
    table = Table(title=f"{len(failed)} failed flight(s)")
    for col in ("flight", "category", "message"):
        table.add_column(col)
    for f in failed:
        table.add_row(str(f.flight_id), f.category or "-", escape(f.message or ""))
    console.print(table)
