"""Fee lines, the flights row and the queue deletion commit together or not at all."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from flight_fees.lib.billing.fee_lines import FlightBill, persist_bills, record_flight_failures
from flight_fees.lib.db import make_engine, transaction
from flight_fees.lib.db.models import FeeLine, Flight, FlightQueueItem, Invoice
from flight_fees.lib.ops.queue import FlightQueue
from flight_fees_tests.factories import make_customer

DAY = dt.date(2026, 10, 27)
T0 = dt.datetime(2026, 10, 27, 8, tzinfo=dt.UTC)


def _line(line_no: int, amount: str = "100.00", **over) -> dict:
    line = {
        "line_no": line_no,
        "flight_date": DAY,
        "zone_id": "LF",
        "fir_ids": "LFFF",
        "entry_time": T0 + dt.timedelta(minutes=10 * line_no),
        "exit_time": T0 + dt.timedelta(minutes=10 * line_no + 9),
        "distance_km": Decimal("250.125"),
        "tariff_id": "LF",
        "tariff_version": "2025-01",
        "local_amount": Decimal(amount),
        "local_currency": "EUR",
        "fx_rate": Decimal("1"),
        "billing_amount": Decimal(amount),
        "billing_currency": "EUR",
        "formula_details": {"unit_rate": "70.8"},
    }
    line.update(over)
    return line


def _bill(fid: int, *lines: dict) -> FlightBill:
    return FlightBill(fid, list(lines), {"flight_date": DAY, "callsign": f"TST{fid}"})


def _count(engine, model, **where) -> int:
    query = select(func.count()).select_from(model)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def test_lines_flight_and_queue_deletion_commit_together(engine):
    queue = FlightQueue(engine)
    queue.enqueue([1, 2])
    queue.claim("w", 2)
    result = persist_bills(
        engine, [_bill(1, _line(0), _line(1)), _bill(2, _line(0))], batch_id="b1"
    )
    assert result.written == {1: 2, 2: 1} and not result.failures
    assert _count(engine, FeeLine) == 3
    assert _count(engine, FlightQueueItem) == 0
    with engine.connect() as conn:
        flight = conn.execute(select(Flight).where(Flight.flight_id == 1)).one()
        details = (
            conn.execute(select(FeeLine.details).where(FeeLine.flight_id == 1)).scalars().first()
        )
    assert flight.status == "billed" and flight.callsign == "TST1" and flight.batch_id == "b1"
    assert '"unit_rate": "70.8"' in details


def test_rewriting_a_flight_replaces_its_lines(engine):
    persist_bills(engine, [_bill(1, _line(0), _line(1), _line(2))])
    persist_bills(engine, [_bill(1, _line(0, "50.00"), _line(1, "60.00"))])
    with engine.connect() as conn:
        amounts = (
            conn.execute(
                select(FeeLine.billing_amount)
                .where(FeeLine.flight_id == 1)
                .order_by(FeeLine.line_no)
            )
            .scalars()
            .all()
        )
    assert [Decimal(str(a)) for a in amounts] == [Decimal("50.00"), Decimal("60.00")]


def test_a_bad_flight_fails_alone_and_keeps_its_queue_row(engine):
    queue = FlightQueue(engine)
    queue.enqueue([1, 2, 3])
    queue.claim("w", 3)
    bad = _bill(2, _line(0, billing_amount=Decimal("-1")))  # violates a CHECK constraint
    result = persist_bills(engine, [_bill(1, _line(0)), bad, _bill(3, _line(0))])
    assert set(result.written) == {1, 3}
    assert result.failures[2][0] == "database"
    assert _count(engine, FeeLine, flight_id=2) == 0
    assert _count(engine, FlightQueueItem) == 1  # flight 2 is still queued (processing)
    record_flight_failures(engine, queue, {2: result.failures[2]})
    with engine.connect() as conn:
        status = conn.execute(select(FlightQueueItem.status)).scalar_one()
    assert status == "queued"  # a database error is retried


def test_an_invoiced_flight_is_refused_and_keeps_its_lines(engine):
    customer_id = make_customer(engine)
    persist_bills(engine, [_bill(1, _line(0, customer_id=customer_id))])
    with transaction(engine) as session:
        invoice = Invoice(
            number="INV-2026-000001",
            customer_id=customer_id,
            period_start=DAY,
            period_end=DAY,
            issue_date=DAY,
            due_date=DAY,
            currency="EUR",
            total_amount=Decimal("100.00"),
            line_count=1,
        )
        session.add(invoice)
        session.flush()
        session.execute(update(FeeLine).values(invoice_id=invoice.id))
    result = persist_bills(engine, [_bill(1, _line(0, "999.00"))])
    assert result.written == {}
    assert result.failures[1][0] == "already_invoiced"
    assert "INV-2026-000001" in result.failures[1][1]
    with engine.connect() as conn:
        amount = conn.execute(select(FeeLine.billing_amount)).scalar_one()
    assert Decimal(str(amount)) == Decimal("100.00")


def _write_many_times(url: str, start: mp.Barrier, rounds: int) -> None:
    engine = make_engine(url)
    start.wait(timeout=60)
    for i in range(rounds):
        result = persist_bills(engine, [_bill(7, _line(0, f"{i}.00"), _line(1), _line(2))])
        if result.failures:  # writers must wait for each other, never collide
            raise SystemExit(f"collision: {result.failures}")
    engine.dispose()


@pytest.mark.postgres
def test_concurrent_writers_of_one_flight_leave_exactly_one_set(pg_engine, postgres_database_url):
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(3)
    procs = [
        ctx.Process(target=_write_many_times, args=(postgres_database_url, start, 15))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    with pg_engine.connect() as conn:
        rows = (
            conn.execute(
                select(FeeLine.line_no).where(FeeLine.flight_id == 7).order_by(FeeLine.line_no)
            )
            .scalars()
            .all()
        )
    assert rows == [0, 1, 2]
