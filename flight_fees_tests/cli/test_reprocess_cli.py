"""End to end on the embedded database: a flight already invoiced is re-billed through the
documented path ``invoice void`` -> ``process`` -> ``invoice consolidate --force``."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from flight_fees.cli.main import app
from flight_fees.lib.billing.invoicing import invoice_detail, list_invoices
from flight_fees.lib.core.settings import paths
from flight_fees.lib.db import make_engine
from flight_fees.lib.db.models import Customer, FeeLine, FlightQueueItem, Invoice

runner = CliRunner()


def _lines_of(engine, flight_id: int) -> list[tuple[int, object, object]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(FeeLine.line_no, FeeLine.billing_amount, FeeLine.invoice_id)
                .where(FeeLine.flight_id == flight_id)
                .order_by(FeeLine.line_no)
            )
        ]


@pytest.mark.slow
def test_void_reprocess_reinvoice(dagster_home):
    demo = runner.invoke(
        app, ["demo", "--flights", "6", "--start", "2026-10-29", "--days", "2", "--seed", "3"]
    )
    assert demo.exit_code == 0, demo.output
    engine = make_engine()
    with engine.connect() as conn:
        flight_id, number, code, period_end = conn.execute(
            select(FeeLine.flight_id, Invoice.number, Customer.code, Invoice.period_end)
            .join(Invoice, Invoice.id == FeeLine.invoice_id)
            .join(Customer, Customer.id == Invoice.customer_id)
            .order_by(FeeLine.flight_id)
            .limit(1)
        ).one()
    before = _lines_of(engine, flight_id)
    voided_total = invoice_detail(engine, number).invoice.total_amount

    # 1. the flight is on an invoice: refused, and told exactly what to do
    refused = runner.invoke(app, ["process", str(flight_id)])
    assert refused.exit_code == 1
    assert f"flight {flight_id} is on invoice {number}" in refused.output
    assert f"flight-fees invoice void {number}" in refused.output
    assert _lines_of(engine, flight_id) == before  # nothing billed twice

    # 2. void: the lines are released, the credit note and the documents are written
    voided = runner.invoke(app, ["invoice", "void", number, "--reason", "wrong MTOW"])
    assert voided.exit_code == 0, voided.output
    hint = f"flight-fees invoice consolidate --date {period_end} --force --customer {code}"
    assert hint in voided.output

    # 3. re-process: billed again, the refusal's queue row is gone
    again = runner.invoke(app, ["process", str(flight_id)])
    assert again.exit_code == 0, again.output
    assert "billed 1, failed 0" in again.output
    after = _lines_of(engine, flight_id)
    assert [(n, a) for n, a, _ in after] == [(n, a) for n, a, _ in before]
    assert all(invoice_id is None for _, _, invoice_id in after)
    with engine.connect() as conn:
        queued = conn.execute(
            select(func.count())
            .select_from(FlightQueueItem)
            .where(FlightQueueItem.flight_id == flight_id)
        ).scalar_one()
    assert queued == 0

    # 4. re-invoice with the command the void printed: a replacement, issued today
    today = dt.datetime.now(dt.UTC).date()
    reissued = runner.invoke(app, ["invoice", *hint.split()[2:]])
    assert reissued.exit_code == 0, reissued.output
    assert "1 invoice(s) created" in reissued.output
    [replacement] = [n for n in list_invoices(engine, customer_code=code)["number"] if n > number]
    detail = invoice_detail(engine, replacement)
    assert detail.invoice.issue_date >= today  # not back-dated to the period end
    assert [(r.number, r.credit_note_number) for r in detail.replaces] == [
        (number, "CN-2026-000001")
    ]
    assert detail.invoice.total_amount == voided_total  # same data, same charges
    assert flight_id in {ln.flight_id for ln in detail.lines}
    invoices = paths().invoices
    for name in (replacement, number, "CN-2026-000001"):
        assert (invoices / f"{name}.html").exists() and (invoices / f"{name}.pdf").exists()
    assert "This invoice is VOID" in (invoices / f"{number}.html").read_text(encoding="utf-8")
