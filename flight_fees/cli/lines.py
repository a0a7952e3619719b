"""``flight-fees lines``: search fee lines (:mod:`flight_fees.lib.billing.search`)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from flight_fees.cli.common import fail, open_engine, parse_day, wide_console

FlightOption = Annotated[str | None, typer.Option("--flight", help="Flight id.")]
CallsignOption = Annotated[str | None, typer.Option("--callsign", help="Callsign.")]
RegistrationOption = Annotated[str | None, typer.Option("--registration", help="Registration.")]
ZoneOption = Annotated[str | None, typer.Option("--zone", help="Charging zone id, e.g. LF.")]
FromOption = Annotated[
    str | None, typer.Option("--from", help="First UTC day of the flights (YYYY-MM-DD).")
]
ToOption = Annotated[str | None, typer.Option("--to", help="Last UTC day (inclusive).")]
InvoiceOption = Annotated[str | None, typer.Option("--invoice", help="Invoice number.")]


def line_filters(
    *,
    flight: str | None = None,
    callsign: str | None = None,
    registration: str | None = None,
    customer: str | None = None,
    zone: str | None = None,
    day_from: str | None = None,
    day_to: str | None = None,
    invoice: str | None = None,
    status: str | None = None,
) -> Any:
    """The :class:`~flight_fees.lib.billing.search.LineFilters` of the options (usage error if
    bad)."""
    from flight_fees.lib.billing.search import LineFilters, SearchError
    from flight_fees.lib.ops.queue import QueueError, parse_flight_id

    def day(value: str | None, option: str) -> dt.date | None:
        return None if value is None else parse_day(value, option)

    try:
        flight_id = parse_flight_id(flight) if flight is not None else None
    except (QueueError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="'--flight'") from None
    try:
        return LineFilters(
            flight_id=flight_id, callsign=callsign, registration=registration,
            customer=customer, zone=zone, day_from=day(day_from, "--from"),
            day_to=day(day_to, "--to"), invoice=invoice,
            status=status.strip().lower() if status else None,
        )  # fmt: skip
    except SearchError as exc:
        raise typer.BadParameter(str(exc)) from None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def lines_command(
    flight: FlightOption = None,
    callsign: CallsignOption = None,
    registration: RegistrationOption = None,
    customer: Annotated[str | None, typer.Option("--customer", help="Customer code.")] = None,
    zone: ZoneOption = None,
    day_from: FromOption = None,
    day_to: ToOption = None,
    invoice: InvoiceOption = None,
    status: Annotated[
        str | None, typer.Option("--status", help="billed, invoiced or void.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Lines per page (1-10,000).")] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue after a page (its next_cursor).")
    ] = None,
    offset: Annotated[int | None, typer.Option("--offset", help="Skip this many lines.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the page as CSV.")] = False,
) -> None:
    """Search fee lines by flight, callsign, registration, customer, zone, day, invoice, status."""
    from flight_fees.lib.billing.search import LINE_FIELDS, SearchError, search_lines
    from flight_fees.lib.core.money import format_money

    if as_json and as_csv:
        raise typer.BadParameter("give --json or --csv, not both", param_hint="'--csv'")
    filters = line_filters(
        flight=flight, callsign=callsign, registration=registration, customer=customer,
        zone=zone, day_from=day_from, day_to=day_to, invoice=invoice, status=status,
    )  # fmt: skip
    engine = open_engine(migrated=True)
    try:
        page = search_lines(engine, filters, limit=limit, cursor=cursor, offset=offset)
    except SearchError as exc:
        fail(str(exc), 2)
    if as_json:
        payload = {
            "lines": [{k: _plain(line[k]) for k in LINE_FIELDS} for line in page.lines],
            "totals": {k: str(v) for k, v in page.totals.items()},
            "count": page.count,
            "next_cursor": page.next_cursor,
        }
        typer.echo(json.dumps(payload, indent=1))
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(LINE_FIELDS)
        for line in page.lines:
            writer.writerow(["" if line[k] is None else _plain(line[k]) for k in LINE_FIELDS])
        return
    console = wide_console(highlight=False, soft_wrap=True)
    table = Table(title=f"{len(page.lines)} of {page.count} fee line(s)")
    for col in ("day", "flight", "line", "callsign", "reg.", "customer", "zone", "amount",
                "invoice", "status"):  # fmt: skip
        table.add_column(col, justify="right" if col in ("line", "amount") else "left")
    for ln in page.lines:
        table.add_row(
            str(ln["day"]), str(ln["flight_id"]), str(ln["line_no"]),
            escape(ln["callsign"] or "-"), escape(ln["registration"] or "-"),
            escape(ln["customer"] or "-"), ln["zone_id"],
            format_money(ln["billing_amount"], ln["billing_currency"]),
            ln["invoice"] or "-", ln["status"],
        )  # fmt: skip
    console.print(table)
    totals = ", ".join(format_money(v, k) for k, v in page.totals.items())
    console.print(f"total of the {page.count} line(s): {totals or 'none'}")
    if page.next_cursor:
        console.print(f"next page: --cursor {page.next_cursor}")
