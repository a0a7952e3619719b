"""``flight-fees invoice ...``: list, show, pay, void, consolidate invoices; documents.

The lead mounts :data:`invoice_app` with ``app.add_typer(invoice_app, name="invoice")``.
Expected failures (unknown number, refused transition, bad input, unreachable database) print
one ``error:`` line on stderr and exit with code 1, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flight_fees.cli.common import fail, open_engine, parse_day, wide_console
from flight_fees.cli.lines import (
    CallsignOption,
    FlightOption,
    FromOption,
    InvoiceOption,
    RegistrationOption,
    ToOption,
    ZoneOption,
    line_filters,
)
from flight_fees.lib.core.money import format_money
from flight_fees.lib.db.models import INVOICE_STATUSES

__all__ = ["invoice_app"]

invoice_app = typer.Typer(
    help="Consolidated invoices: list, show, pay, void, consolidate, document.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

EXIT_ERROR = 1


def _console() -> Console:
    # created per command so that it writes to the current sys.stdout (CliRunner, pipes);
    # piped output gets room for a whole invoice row instead of Rich's 80 columns
    return wide_console(highlight=False, soft_wrap=True)


@contextmanager
def _clean_errors() -> Iterator[None]:
    """Turn the expected domain errors into one clear line and a non-zero exit."""
    from sqlalchemy.exc import OperationalError

    from flight_fees.lib.billing.invoicing import InvoicingError
    from flight_fees.lib.db import DatabaseError

    try:
        yield
    except (InvoicingError, DatabaseError, ValueError) as exc:
        fail(str(exc), EXIT_ERROR)
    except OperationalError as exc:
        fail(f"database error: {str(exc.orig).strip().splitlines()[0]}", EXIT_ERROR)


def _status_option(value: str | None) -> str | None:
    if value is None:
        return None
    norm = value.strip().upper()
    if norm not in INVOICE_STATUSES:
        raise typer.BadParameter(
            f"{value!r} is not one of {', '.join(INVOICE_STATUSES)}", param_hint="'--status'"
        )
    return norm


_STATUS_STYLE = {"PENDING": "yellow", "PAID": "green", "OVERDUE": "bold red", "VOID": "dim"}


def _status_text(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


# -- list ------------------------------------------------------------------------------------


@invoice_app.command("list")
def list_command(
    status: Annotated[
        str | None,
        typer.Option("--status", "-s", help=f"Only this status ({', '.join(INVOICE_STATUSES)})."),
    ] = None,
    customer: Annotated[
        str | None, typer.Option("--customer", "-c", help="Only this customer code.")
    ] = None,
    flight: FlightOption = None,
    callsign: CallsignOption = None,
    registration: RegistrationOption = None,
    zone: ZoneOption = None,
    day_from: FromOption = None,
    day_to: ToOption = None,
    invoice: InvoiceOption = None,
) -> None:
    """List invoices, oldest first, with totals per currency."""
    from rich.markup import escape

    from flight_fees.lib.billing.search import search_invoices

    wanted = _status_option(status)
    filters = line_filters(
        flight=flight, callsign=callsign, registration=registration, zone=zone,
        day_from=day_from, day_to=day_to, invoice=invoice,
    )  # fmt: skip
    with _clean_errors():
        frame = search_invoices(
            open_engine(migrated=True), filters, status=wanted, customer=customer
        )
    console = _console()
    if frame.empty:
        console.print("no invoices")
        return
    table = Table(title="Invoices")
    for name, justify in (
        ("number", "left"), ("customer", "left"), ("period", "left"), ("issued", "left"),
        ("due", "left"), ("lines", "right"), ("total", "right"), ("status", "left"),
    ):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=name != "customer")  # type: ignore[arg-type]
    totals: dict[str, object] = {}
    for row in frame.itertuples(index=False):
        table.add_row(
            row.number,
            escape(f"{row.customer_code} {row.customer_name}"),
            f"{row.period_start}..{row.period_end}",
            str(row.issue_date),
            str(row.due_date),
            str(row.line_count),
            format_money(row.total_amount, row.currency),
            _status_text(row.status),
        )
        if row.status != "VOID":
            totals[row.currency] = totals.get(row.currency, 0) + row.total_amount  # type: ignore[operator]
    console.print(table)
    summary = ", ".join(format_money(v, k) for k, v in sorted(totals.items()))  # type: ignore[arg-type]
    console.print(f"{len(frame)} invoice(s); total excluding VOID: {summary or 'none'}")


# -- show ------------------------------------------------------------------------------------


def _document_target(number: str, html_out: Path | None) -> tuple[Path, str | None]:
    """(directory, file name) of the document: ``--html-out`` ending in .html/.htm is a file,
    anything else a directory; default ``<FLIGHT_FEES_HOME>/invoices/<number>.html``."""
    from flight_fees.lib.core.settings import paths

    if html_out is None:
        return paths().invoices, None
    if html_out.suffix.lower() in (".html", ".htm"):
        return html_out.parent, html_out.name
    return html_out, None


@invoice_app.command("show")
def show_command(
    number: Annotated[str, typer.Argument(help="Invoice number, e.g. INV-2026-000001.")],
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the HTML document in the web browser.")
    ] = False,
    html_out: Annotated[
        Path | None,
        typer.Option(
            "--html-out",
            help="Where to write the HTML document: a .html file or a directory "
            "(default: <FLIGHT_FEES_HOME>/invoices/).",
        ),
    ] = None,
) -> None:
    """Print an invoice summary and write (and optionally open) its HTML and PDF documents."""
    from rich.markup import escape

    from flight_fees.lib.billing.invoicing import invoice_detail
    from flight_fees.lib.documents.invoices import write_invoice_document

    number = number.strip()
    out_dir, filename = _document_target(number, html_out)
    with _clean_errors():
        engine = open_engine(migrated=True)
        detail = invoice_detail(engine, number)
        try:
            path = write_invoice_document(engine, number, out_dir, filename=filename)
        except OSError as exc:
            fail(f"cannot write the document to {out_dir}: {exc}", EXIT_ERROR)

    inv, customer = detail.invoice, detail.customer
    console = _console()
    console.print(f"[bold]{inv.number}[/]  {_status_text(inv.status)}")
    console.print(f"customer  {escape(customer.code)}  {escape(customer.name)}")
    console.print(f"period    {inv.period_start} .. {inv.period_end}")
    console.print(f"issued    {inv.issue_date}   due {inv.due_date}")
    console.print(f"total     [bold]{format_money(inv.total_amount, inv.currency)}[/]")
    if inv.paid_at:
        console.print(f"paid at   {inv.paid_at:%Y-%m-%d %H:%M} UTC")
    if inv.status == "VOID":
        cn = detail.credit_note
        console.print(
            f"voided    {inv.voided_at:%Y-%m-%d %H:%M} UTC" if inv.voided_at else "voided",
            f"credit note {cn.number}" if cn else "",
            f"reason: {escape(inv.void_reason or '')}",
        )
    if cn := detail.credit_note:
        console.print(
            f"credit    {cn.number}  {format_money(cn.amount, cn.currency)}"
            + (f"  {cn.created_at:%Y-%m-%d}" if cn.created_at else "")
            + (f"  {escape(cn.reason)}" if cn.reason else "")
        )
    if detail.lines:
        table = Table(title=f"{inv.line_count} fee line(s)")
        for name in ("flight", "callsign", "date", "zone", "FIRs", "km", "amount"):
            justify = "right" if name in ("km", "amount") else "left"
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for ln in detail.lines:
            table.add_row(
                str(ln.flight_id),
                escape(ln.callsign or "-"),
                str(ln.flight_date),
                ln.zone_id,
                escape(ln.fir_ids),
                f"{ln.distance_km:,.1f}",
                format_money(ln.billing_amount, ln.billing_currency),
            )
        console.print(table)
        zones = ", ".join(
            f"{z} {format_money(v, inv.currency)}" for z, v in detail.zone_totals().items()
        )
        console.print(f"per zone  {zones}")
    elif inv.status == "VOID":
        console.print("its fee lines were released when it was voided")
    console.print(f"document  {path}")
    console.print(f"pdf       {path.with_suffix('.pdf')}")
    if replaced := detail.replaces:
        console.print(
            f"replaces  {replaced[0].number}"
            + (
                f" (credit note {replaced[0].credit_note_number})"
                if replaced[0].credit_note_number
                else ""
            )
        )
    if detail.replaced_by:
        console.print(f"replaced by {detail.replaced_by}")
    if open_browser:
        webbrowser.open(path.as_uri())


# -- transitions -----------------------------------------------------------------------------


@invoice_app.command("pay")
def pay_command(
    number: Annotated[str, typer.Argument(help="Invoice number.")],
    paid_on: Annotated[
        str | None,
        typer.Option("--date", help="Payment date YYYY-MM-DD (default: now)."),
    ] = None,
) -> None:
    """Mark a PENDING or OVERDUE invoice PAID."""
    from flight_fees.lib.billing.invoicing import pay

    paid_at = None
    if paid_on is not None:
        day = parse_day(paid_on, "--date")
        paid_at = dt.datetime.combine(day, dt.time(12, 0), tzinfo=dt.UTC)
    with _clean_errors():
        summary = pay(open_engine(migrated=True), number.strip(), paid_at=paid_at)
    _console().print(
        f"{summary.number} {_status_text(summary.status)}: "
        f"{format_money(summary.total_amount, summary.currency)}"
    )


@invoice_app.command("void")
def void_command(
    number: Annotated[str, typer.Argument(help="Invoice number.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why the invoice is voided.")],
) -> None:
    """Void a PENDING or OVERDUE invoice: its fee lines are released for re-invoicing, a
    credit note is recorded, and the documents of both (HTML + PDF, the invoice watermarked
    VOID with the lines it carried) are written to <FLIGHT_FEES_HOME>/invoices/."""
    from rich.markup import escape

    from flight_fees.lib.documents.invoices import void_invoice

    with _clean_errors():
        done = void_invoice(open_engine(migrated=True), number.strip(), reason)
    result, inv = done.result, done.result.detail.invoice
    console = _console()
    console.print(
        f"{result.number} [dim]VOID[/]: credit note {result.credit_note_number} for "
        f"{format_money(result.amount, result.currency)}; "
        f"{result.released_lines} fee line(s) released for re-invoicing"
    )
    if done.document_error:
        console.print(f"[yellow]documents not written: {escape(done.document_error)}[/]")
    else:
        console.print(f"documents {escape(str(done.invoice_path))} (watermarked VOID)")
        console.print(f"          {escape(str(done.credit_note_path))} (credit note)")
    console.print(
        "next: re-process the flights to correct (`flight-fees process FLIGHT_ID`), then "
        "issue the replacement invoice:\n"
        f"  flight-fees invoice consolidate --date {inv.period_end} --force "
        f"--customer {escape(inv.customer_code)}"
    )


@invoice_app.command("overdue")
def overdue_command(
    today: Annotated[
        str | None, typer.Option("--date", help="Today, YYYY-MM-DD (default: today, UTC).")
    ] = None,
) -> None:
    """Mark PENDING invoices past their due date OVERDUE (idempotent)."""
    from flight_fees.lib.billing.invoicing import mark_overdue

    day = parse_day(today, "--date") if today else dt.datetime.now(dt.UTC).date()
    with _clean_errors():
        changed = mark_overdue(open_engine(migrated=True), day)
    _console().print(
        f"{len(changed)} invoice(s) marked OVERDUE" + (f": {', '.join(changed)}" if changed else "")
    )


# -- consolidate -----------------------------------------------------------------------------


@invoice_app.command("consolidate")
def consolidate_command(
    day: Annotated[
        str, typer.Option("--date", "-d", help="Invoice the periods ending on this day.")
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Invoice every customer's last period ending on/before the day, even when the "
            "day is not its invoice day (catch-up, re-invoicing after a void).",
        ),
    ] = False,
    customers: Annotated[
        list[str] | None,
        typer.Option("--customer", "-c", help="Only this customer code (repeatable)."),
    ] = None,
    documents: Annotated[
        bool,
        typer.Option("--documents/--no-documents", help="Write the HTML and PDF documents."),
    ] = True,
) -> None:
    """Create the consolidated invoices of the periods ending on --date (idempotent)."""
    from rich.markup import escape

    from flight_fees.lib.charging.reference import tariffs_in_force
    from flight_fees.lib.core.settings import paths
    from flight_fees.lib.usecases.invoicing import UnknownCustomers, issue_invoices

    as_of = parse_day(day, "--date")
    console = _console()
    with _clean_errors():
        try:
            issued = issue_invoices(
                open_engine(migrated=True),
                as_of,
                tariffs_in_force(),
                force=force,
                customer_codes=customers or None,
                documents_dir=paths().invoices if documents else None,
            )
        except UnknownCustomers as exc:
            fail(str(exc), EXIT_ERROR)
    result, docs = issued.result, issued.documents

    console.print(
        f"consolidation for {as_of}{' (forced)' if force else ''}: "
        f"{result.customers_due} customer(s) due, {len(result.created)} invoice(s) created"
    )
    if result.created:
        table = Table()
        columns = ("number", "customer", "period", "lines", "total", "issued", "due", "replaces")
        for name in columns:
            table.add_column(name, justify="right" if name in ("lines", "total") else "left")  # type: ignore[arg-type]
        for inv in result.created:
            table.add_row(
                inv.number,
                escape(inv.customer_code),
                f"{inv.period_start}..{inv.period_end}",
                str(inv.line_count),
                format_money(inv.total_amount, inv.currency),
                str(inv.issue_date),
                str(inv.due_date),
                inv.replaces or "",
            )
        console.print(table)
    for skipped in result.skipped:
        console.print(
            f"already invoiced: {escape(skipped.customer_code)} "
            f"{skipped.period_start}..{skipped.period_end} ({skipped.invoice_number})"
        )
    for label, flags in (
        ("late line(s) (not invoiced; decide: void and re-issue, or --force a past period)",
         result.late_lines),
        ("line(s) held below a zone threshold", result.held_lines),
        ("line(s) in another currency than the customer's", result.currency_mismatch_lines),
    ):  # fmt: skip
        if flags:
            console.print(f"[yellow]{len(flags)} {label}[/]")
            for f in flags[:20]:
                console.print(
                    f"  line {f.line_id} flight {f.flight_id} {f.flight_date} {f.zone_id} "
                    f"{format_money(f.billing_amount, f.billing_currency)} "
                    f"{escape(f.customer_code)} {f.reason}"
                    + (f" ({f.invoice_number})" if f.invoice_number else "")
                )
            if len(flags) > 20:
                console.print(f"  ... and {len(flags) - 20} more")
    if docs:
        console.print(f"documents in {paths().invoices}")


# -- documents -------------------------------------------------------------------------------


@invoice_app.command("document")
def document_command(
    number: Annotated[
        str, typer.Argument(help="Invoice (INV-...) or credit-note (CN-...) number.")
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="html or pdf.")] = "pdf",
) -> None:
    """Print the path of an invoice or credit-note document (HTML or PDF), rendering it when
    missing or out of date; the document server serves the same files."""
    from flight_fees.lib.billing.invoicing import CreditNoteNotFound, InvoiceNotFound
    from flight_fees.lib.documents.invoices import credit_note_document, invoice_document

    with _clean_errors():
        engine = open_engine(migrated=True)
        try:
            path = invoice_document(engine, number, fmt)
        except InvoiceNotFound:
            try:
                path = credit_note_document(engine, number, fmt)
            except CreditNoteNotFound:
                fail(f"no invoice or credit note numbered {number.strip()!r}", EXIT_ERROR)
    typer.echo(str(path))
