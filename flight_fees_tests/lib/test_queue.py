from __future__ import annotations

import datetime as dt
import multiprocessing as mp

import pytest
from sqlalchemy import func, select

from flight_fees.lib.db import make_engine, transaction
from flight_fees.lib.db.models import FlightQueueItem
from flight_fees.lib.queue import FlightQueue, QueueError, parse_flight_id, utcnow


@pytest.fixture
def queue(engine) -> FlightQueue:
    return FlightQueue(engine, lease_s=600, max_attempts=3, retry_backoff_s=10)


def _status(engine, flight_id):
    with engine.connect() as conn:
        return conn.execute(
            select(FlightQueueItem.status).where(FlightQueueItem.flight_id == flight_id)
        ).scalar()


def test_enqueue_is_idempotent(queue):
    assert queue.enqueue([1, 2, 3]).added == 3
    again = queue.enqueue([1, 2, 3, 3])
    assert (again.added, again.reset, again.unchanged) == (0, 0, 3)
    assert queue.stats().by_status == {"queued": 3}


def test_parse_flight_id_rejects_garbage():
    assert parse_flight_id(" 42 ") == 42
    for bad in ["abc", "-1", "0", "1.5", "", str(2**63)]:
        with pytest.raises(QueueError):
            parse_flight_id(bad)


def test_claim_orders_by_priority_then_age(queue):
    queue.enqueue([10, 11], priority="low")
    queue.enqueue([20, 21], priority="normal")
    queue.enqueue([30], priority="high")
    claimed = queue.claim("w1", 4)
    assert [c.flight_id for c in claimed] == [30, 20, 21, 10]
    assert [c.flight_id for c in queue.claim("w2", 10)] == [11]
    assert queue.claim("w3", 10) == []


def test_enqueue_promotes_priority_of_waiting_flight(queue):
    queue.enqueue([1, 2])
    queue.enqueue([2], priority="high")
    assert [c.flight_id for c in queue.claim("w", 1)] == [2]


def test_expired_lease_is_reclaimable(queue):
    queue.enqueue([5])
    t0 = utcnow()
    assert len(queue.claim("crashed", 5, now=t0)) == 1
    assert queue.claim("other", 5, now=t0 + dt.timedelta(seconds=300)) == []
    again = queue.claim("other", 5, now=t0 + dt.timedelta(seconds=601))
    assert [c.flight_id for c in again] == [5]


def test_complete_deletes_only_with_callers_transaction(queue, engine):
    queue.enqueue([7, 8])
    queue.claim("w", 2)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction(engine) as session:
        FlightQueue.complete(session, [7])
        raise Boom  # the fee-line write failed: the deletion must roll back too
    assert _status(engine, 7) == "processing"
    with transaction(engine) as session:
        assert FlightQueue.complete(session, [7]) == 1
    assert _status(engine, 7) is None
    assert _status(engine, 8) == "processing"


def test_fail_retries_with_backoff_then_dead(queue, engine):
    queue.enqueue([9])
    t0 = utcnow()
    queue.claim("w", 1, now=t0)
    # a transient failure keeps the flight queued, behind a back-off
    assert queue.fail(9, "timeout", "broker timed out", now=t0) == "queued"
    assert queue.claim("w", 1, now=t0 + dt.timedelta(seconds=5)) == []  # backoff 10 s
    assert len(queue.claim("w", 1, now=t0 + dt.timedelta(seconds=11))) == 1
    assert queue.fail(9, "timeout", "again", now=t0 + dt.timedelta(seconds=12)) == "queued"
    assert queue.claim("w", 1, now=t0 + dt.timedelta(seconds=12 + 19)) == []  # backoff 20 s
    assert len(queue.claim("w", 1, now=t0 + dt.timedelta(seconds=12 + 21))) == 1
    assert queue.fail(9, "timeout", "third", now=t0 + dt.timedelta(seconds=13)) == "dead"
    assert queue.claim("w", 1, now=t0 + dt.timedelta(days=1)) == []
    stats = queue.stats()
    assert stats.by_status == {"dead": 1}
    assert stats.last_errors[0][:4] == (9, "dead", "timeout", "third")
    # re-enqueueing a dead flight resets it
    res = queue.enqueue([9])
    assert res.reset == 1 and _status(engine, 9) == "queued"


def test_non_retryable_failure_waits_for_a_human(queue):
    queue.enqueue([4])
    queue.claim("w", 1)
    assert queue.fail(4, "unknown_mtow", "no MTOW for type ZZZZ") == "failed"
    assert queue.claim("w", 1, now=utcnow() + dt.timedelta(days=30)) == []


def test_release_does_not_count_an_attempt(queue, engine):
    queue.enqueue([3])
    queue.claim("w", 1)
    assert queue.release([3], "source_unavailable", "circuit open") == 1
    with engine.connect() as conn:
        row = conn.execute(select(FlightQueueItem).where(FlightQueueItem.flight_id == 3)).one()
    assert (row.status, row.attempts, row.error_category) == ("queued", 0, "source_unavailable")


def test_fail_of_unqueued_flight_records_it(queue, engine):
    """A backfill found a flight that was never queued and it failed: the failure is kept."""
    assert queue.fail(77, "not_found", "no track rows") == "failed"
    assert _status(engine, 77) == "failed"


def test_stats_counts_and_oldest_age(queue):
    queue.enqueue([1, 2], priority="high")
    queue.enqueue([3])
    queue.claim("w", 1)
    stats = queue.stats()
    assert stats.by_status == {"queued": 2, "processing": 1}
    assert stats.by_status_priority[("queued", "normal")] == 1
    age = stats.oldest_queued_age_s()
    assert age is not None and 0 <= age < 120


def test_bulk_enqueue_in_chunks(queue, engine):
    res = queue.enqueue(range(1, 12_001), chunk_size=5_000)
    assert res.added == 12_000
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(FlightQueueItem)).scalar() == 12_000


def _claim_all(url: str, worker: str, out: mp.Queue, start: mp.Barrier) -> None:
    engine = make_engine(url)
    queue = FlightQueue(engine)
    got: list[int] = []
    start.wait(timeout=60)  # all claimers begin together
    while True:
        batch = queue.claim(worker, 25)
        if not batch:
            break
        got.extend(c.flight_id for c in batch)
    engine.dispose()
    out.put(got)


@pytest.mark.postgres
def test_concurrent_claimers_get_every_row_exactly_once(pg_engine, postgres_database_url):
    FlightQueue(pg_engine).enqueue(range(1, 1001))
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    start = ctx.Barrier(4)
    procs = [
        ctx.Process(target=_claim_all, args=(postgres_database_url, f"w{i}", out, start))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    claimed = [fid for r in results for fid in r]
    assert sorted(claimed) == list(range(1, 1001))  # all claimed, none twice
    assert sum(1 for r in results if r) >= 2  # the work really was shared


def test_fail_claimed_settles_only_what_the_crashed_run_left(queue, engine):
    queue.enqueue([1, 2, 3])
    queue.claim("sensor", 3)
    queue.touch([1, 2, 3], "run:abc")
    with transaction(engine) as session:
        FlightQueue.complete(session, [1])  # billed before the crash
    queue.fail(2, "unknown_mtow", "no MTOW")  # failed before the crash
    statuses = queue.fail_claimed("run:abc", "internal", "run crashed: boom")
    assert statuses == {3: "queued"}  # retried after the back-off
    stats = queue.stats()
    assert stats.by_status == {"failed": 1, "queued": 1}
