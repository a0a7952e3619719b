"""``flight-fees credit-notes``: list and show the credit notes of voided invoices."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from flight_fees.cli.common import fail, open_engine, wide_console

credit_notes_app = typer.Typer(
    help="Credit notes of voided invoices: list, show.", no_args_is_help=True
)


@credit_notes_app.command("list")
def list_command(
    customer: Annotated[
        str | None, typer.Option("--customer", "-c", help="Only this customer code.")
    ] = None,
) -> None:
    """List credit notes, oldest first, with the invoice each cancels and totals."""
    from flight_fees.lib.billing.search import list_credit_notes
    from flight_fees.lib.core.money import format_money

    notes = list_credit_notes(open_engine(migrated=True), customer=customer)
    console = wide_console(highlight=False, soft_wrap=True)
    if not notes:
        console.print("no credit notes")
        return
    table = Table(title=f"{len(notes)} credit note(s)")
    for col in ("number", "invoice", "customer", "amount", "date", "reason"):
        table.add_column(col, justify="right" if col == "amount" else "left")
    totals: dict[str, object] = {}
    for n in notes:
        table.add_row(
            n.number, n.invoice, escape(n.customer), format_money(n.amount, n.currency),
            f"{n.created_at:%Y-%m-%d}" if n.created_at else "-", escape(n.reason or ""),
        )  # fmt: skip
        totals[n.currency] = totals.get(n.currency, 0) + n.amount  # type: ignore[operator]
    console.print(table)
    console.print("total " + ", ".join(format_money(v, k) for k, v in sorted(totals.items())))  # type: ignore[arg-type]


@credit_notes_app.command("show")
def show_command(
    number: Annotated[str, typer.Argument(help="Credit-note number, e.g. CN-2026-000001.")],
) -> None:
    """Show a credit note, the invoice it cancels and its document's path."""
    from flight_fees.lib.billing.invoicing import CreditNoteNotFound, credit_note_detail
    from flight_fees.lib.core.money import format_money
    from flight_fees.lib.documents.invoices import credit_note_document

    engine = open_engine(migrated=True)
    try:
        detail = credit_note_detail(engine, number.strip())
    except CreditNoteNotFound as exc:
        fail(str(exc), 1)
    try:
        path = credit_note_document(engine, number.strip(), "html")
    except OSError as exc:
        path = None
        reason = str(exc)
    cn, inv = detail.credit_note, detail.invoice.invoice
    console = wide_console(highlight=False, soft_wrap=True)
    console.print(f"[bold]{cn.number}[/]  {format_money(cn.amount, cn.currency)}")
    console.print(f"cancels   {inv.number} ({inv.period_start} .. {inv.period_end}, {inv.status})")
    console.print(
        f"customer  {escape(detail.invoice.customer.code)}  {escape(detail.invoice.customer.name)}"
    )
    if cn.created_at:
        console.print(f"issued    {cn.created_at:%Y-%m-%d %H:%M} UTC")
    console.print(f"reason    {escape(cn.reason or '-')}")
    console.print(f"document  {path}" if path else f"document  not written: {escape(reason)}")
