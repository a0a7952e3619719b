"""A processing batch is visible while it runs and gets its final counts when it ends."""

from __future__ import annotations

import datetime as dt

from flight_fees.lib.billing.batches import finish_batch, list_batches, start_batch
from flight_fees.lib.billing.fee_lines import FlightBill, persist_bills

DAY = dt.date(2026, 10, 27)


def test_running_batch_shows_billed_flights_then_its_final_counts(engine):
    t0 = dt.datetime(2026, 10, 28, 1, 0, tzinfo=dt.UTC)
    start_batch(engine, "b1", run_id="r1", day=DAY, requested=4, started_at=t0)
    rows, total = list_batches(engine)
    assert total == 1 and rows[0].status == "running" and rows[0].progress == 0.0
    # a chunk of the run commits two flights: the running batch shows them
    bills = [FlightBill(fid, [], {"flight_date": DAY}) for fid in (1, 2)]
    persist_bills(engine, bills, batch_id="b1")
    rows, _ = list_batches(engine)
    assert (rows[0].billed, rows[0].progress) == (2, 50.0)
    status = finish_batch(
        engine,
        "b1",
        run_id="r1",
        day=DAY,
        started_at=t0,
        finished_at=t0 + dt.timedelta(minutes=2),
        requested=4,
        billed=3,
        failed=1,
        fee_lines=9,
    )
    rows, total = list_batches(engine)
    assert status == "partial" and total == 1
    assert (rows[0].status, rows[0].billed, rows[0].failed, rows[0].fee_lines) == (
        "partial",
        3,
        1,
        9,
    )
    assert rows[0].progress == 100.0
