"""The processing use cases: the queue tick, the day of a flight, the state of a day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from flight_fees.lib.db.models import FlightQueueItem
from flight_fees.lib.ops.breaker import CircuitBreaker
from flight_fees.lib.ops.queue import FlightQueue
from flight_fees.lib.usecases.processing import day_state, known_flight_days
from flight_fees.lib.usecases.queue_tick import queue_tick
from flight_fees_tests.factories import make_customer, make_fee_line, make_flight

DAY = dt.date(2026, 10, 27)


class _Source:
    """A track source that knows the first day of some flights."""

    name = "stub"

    def __init__(self, days: dict[int, dt.date]) -> None:
        self.days = days
        self.asked: list[int] = []

    def flight_days(self, flight_ids):
        self.asked.extend(flight_ids)
        return {f: self.days[f] for f in flight_ids if f in self.days}


def _statuses(engine) -> dict[int, tuple[str, str | None]]:
    with engine.connect() as conn:
        return {
            fid: (status, category)
            for fid, status, category in conn.execute(
                select(
                    FlightQueueItem.flight_id,
                    FlightQueueItem.status,
                    FlightQueueItem.error_category,
                )
            )
        }


def test_a_tick_claims_dates_splits_and_fails_what_it_cannot_plan(engine):
    queue = FlightQueue(engine)
    queue.enqueue(range(1, 6), flight_date=DAY)
    queue.enqueue([6], flight_date=DAY, priority="high")
    queue.enqueue([7, 8])  # undated: 7 is found by the source, 8 is not
    queue.enqueue([9], flight_date=dt.date(1999, 1, 1))  # before the processable days
    source = _Source({7: DAY + dt.timedelta(days=1)})

    tick = queue_tick(
        queue,
        source=source,
        max_flights_per_run=2,
        valid_day=lambda day: day.year >= 2026,
        day_range="2026 onwards",
    )
    assert tick.skipped is None and tick.claimed == 9
    assert sorted(source.asked) == [7, 8]
    plan = [(r.day, r.priority, r.flight_ids, r.part) for r in tick.runs]
    assert plan == [
        (DAY, "high", (6,), 0),  # high priority first
        (DAY, "normal", (1, 2), 0),
        (DAY, "normal", (3, 4), 1),
        (DAY, "normal", (5,), 2),
        (DAY + dt.timedelta(days=1), "normal", (7,), 0),
    ]
    assert tick.runs[0].run_priority > tick.runs[1].run_priority
    assert len({r.run_key for r in tick.runs}) == len(tick.runs)
    assert set(tick.undatable) == {8} and tick.out_of_range == [9]
    statuses = _statuses(engine)
    assert statuses[8][1] == "not_found" and statuses[9] == ("failed", "bad_date")
    assert {statuses[f][0] for f in (1, 2, 3, 4, 5, 6, 7)} == {"processing"}


def test_a_tick_claims_nothing_when_the_source_is_down_or_runs_pile_up(engine):
    queue = FlightQueue(engine)
    queue.enqueue([1, 2], flight_date=DAY)
    breaker = CircuitBreaker(engine, "stub", failure_threshold=1, cooldown_s=3600)
    breaker.record_failure("broker down")
    tick = queue_tick(queue, source=_Source({}), breaker=breaker)
    assert tick.skipped and "circuit is open" in tick.skipped and not tick.runs
    piled = queue_tick(queue, waiting_runs=4, max_waiting_runs=4)
    assert piled.skipped and "waiting to start" in piled.skipped
    assert queue.stats().by_status == {"queued": 2}  # nothing claimed
    drained = queue_tick(queue)
    assert drained.claimed == 2
    assert "no claimable flight" in (queue_tick(queue).skipped or "")


def test_known_flight_days_prefers_the_queue_then_earlier_processing_then_tracks(engine):
    queue = FlightQueue(engine)
    queue.enqueue([1], flight_date=DAY)
    make_flight(engine, 2, flight_date=DAY - dt.timedelta(days=3))
    source = _Source({3: DAY + dt.timedelta(days=2), 1: dt.date(2000, 1, 1)})
    days, undatable = known_flight_days(engine, [1, 2, 3, 4], source)
    assert days == {1: DAY, 2: DAY - dt.timedelta(days=3), 3: DAY + dt.timedelta(days=2)}
    assert undatable == [4] and sorted(source.asked) == [3, 4]
    assert known_flight_days(engine, [3])[1] == [3]  # no source: not dated


def test_day_state_counts_every_batch_of_the_day(engine):
    cid = make_customer(engine, "ACME")
    usd = make_customer(engine, "YANK", billing_currency="USD")
    make_fee_line(engine, cid, DAY, "10.25", flight_id=11, batch_id="a")
    make_fee_line(engine, cid, DAY, "5.00", flight_id=11, batch_id="a")
    make_fee_line(engine, usd, DAY, "7.10", flight_id=12, billing_currency="USD", batch_id="b")
    make_fee_line(engine, cid, DAY + dt.timedelta(days=1), "99.00", flight_id=13)
    queue = FlightQueue(engine)
    queue.enqueue([14], flight_date=DAY)
    queue.claim("t", 10)
    queue.fail(14, "unknown_aircraft", "no operator")

    state = day_state(engine, DAY)
    assert (state.flights_billed, state.fee_lines) == (2, 3)
    assert state.totals == {"EUR": Decimal("15.25"), "USD": Decimal("7.10")}
    assert state.failed == {14: ("unknown_aircraft", "no operator")}
    empty = day_state(engine, DAY - dt.timedelta(days=9))
    assert (empty.flights_billed, empty.fee_lines, empty.totals, empty.failed) == (0, 0, {}, {})
