from __future__ import annotations

import datetime as dt
import multiprocessing as mp

import pytest
from sqlalchemy import func, select

from flight_fees.lib.db import make_engine, transaction
from flight_fees.lib.db.models import FlightQueueItem
from flight_fees.lib.ops.queue import FlightQueue, QueueError, parse_flight_id, utcnow


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
    assert statuses == {"queued": 1}  # flight 3, retried after the back-off
    stats = queue.stats()
    assert stats.by_status == {"failed": 1, "queued": 1}


def _row(engine, flight_id):
    with engine.connect() as conn:
        return conn.execute(
            select(
                FlightQueueItem.status, FlightQueueItem.attempts, FlightQueueItem.claimed_by
            ).where(FlightQueueItem.flight_id == flight_id)
        ).one()


def test_a_claim_no_run_adopts_is_claimable_again_without_an_attempt(engine):
    queue = FlightQueue(engine, lease_s=3600, claim_lease_s=600)
    queue.enqueue([1, 2])
    t0 = utcnow()
    assert len(queue.claim("sensor:c1", 10, now=t0)) == 2  # then the daemon dies
    assert queue.claim("sensor:c2", 10, now=t0 + dt.timedelta(seconds=590)) == []
    again = queue.claim("sensor:c2", 10, now=t0 + dt.timedelta(seconds=610))
    assert [c.flight_id for c in again] == [1, 2]
    assert [c.attempts for c in again] == [0, 0]
    # a run that adopted its flights keeps them for the run lease
    assert queue.adopt([1, 2], "sensor:c2", "run:r2", now=t0 + dt.timedelta(seconds=620)) == [
        1,
        2,
    ]
    assert queue.claim("sensor:c3", 10, now=t0 + dt.timedelta(seconds=1300)) == []
    assert _row(engine, 1) == ("processing", 0, "run:r2")


def test_a_late_run_adopts_only_what_its_claim_still_holds(engine):
    queue = FlightQueue(engine, claim_lease_s=600)
    queue.enqueue([1, 2, 3])
    t0 = utcnow()
    queue.claim("sensor:late", 2, now=t0)  # flights 1 and 2; its run waits in the run queue
    queue.claim("sensor:next", 10, now=t0 + dt.timedelta(seconds=700))  # 1, 2 (expired) and 3
    assert queue.adopt([1, 2], "sensor:late", "run:late", now=t0 + dt.timedelta(seconds=710)) == []
    assert queue.adopt([1, 2, 3], "sensor:next", "run:next") == [1, 2, 3]
    # a retried step of the same run adopts again (it already holds them)
    assert queue.adopt([1, 2, 3], "sensor:next", "run:next") == [1, 2, 3]


def test_settling_a_run_is_one_attempt_however_often_it_is_evaluated(engine):
    queue = FlightQueue(engine, max_attempts=3, retry_backoff_s=60)
    queue.enqueue(list(range(1, 11)))
    queue.claim("sensor:c", 10)
    queue.adopt([1, 2, 3, 4, 5, 6], "sensor:c", "run:r")
    # flights 7..10 stay held by the claim: the run died before adopting them
    with transaction(engine) as session:
        FlightQueue.complete(session, [1])  # billed before the crash
    first = queue.settle_run("run:r", "sensor:c", "internal", "worker killed")
    assert first.failed == {"queued": 5} and first.released == 4
    for _ in range(3):  # the sensor retried, or a second daemon evaluated the same run
        again = queue.settle_run("run:r", "sensor:c", "internal", "worker killed")
        assert again.total == 0
    assert {_row(engine, f)[:2] for f in (2, 3, 4, 5, 6)} == {("queued", 1)}
    assert {_row(engine, f)[:2] for f in (7, 8, 9, 10)} == {("queued", 0)}
    # the failed ones wait for their back-off, the released ones are claimable at once
    now = utcnow()
    assert sorted(c.flight_id for c in queue.claim("sensor:d", 20, now=now)) == [7, 8, 9, 10]
    later = now + dt.timedelta(seconds=61)
    assert sorted(c.flight_id for c in queue.claim("sensor:e", 20, now=later)) == [2, 3, 4, 5, 6]


def test_settlement_reaches_dead_after_the_maximum_attempts(engine):
    queue = FlightQueue(engine, max_attempts=2, retry_backoff_s=0)
    queue.enqueue([7])
    for n in (1, 2):
        queue.claim(f"sensor:{n}", 1)
        queue.adopt([7], f"sensor:{n}", f"run:{n}")
        queue.settle_run(f"run:{n}", f"sensor:{n}", "internal", "crash")
    assert _row(engine, 7)[:2] == ("dead", 2)
    # a data failure is not retried
    queue.enqueue([8])
    queue.claim("sensor:x", 1)
    queue.adopt([8], "sensor:x", "run:x")
    assert queue.settle_run("run:x", None, "unknown_mtow", "no MTOW").failed == {"failed": 1}


def _settle_in_process(url, barrier):
    engine = make_engine(url)
    barrier.wait()
    result = FlightQueue(engine, max_attempts=5).settle_run(
        "run:twice", "sensor:twice", "internal", "killed"
    )
    engine.dispose()
    return result.total


def test_two_sensors_settling_the_same_run_at_once_count_one_attempt(
    pg_engine, postgres_database_url
):
    queue = FlightQueue(pg_engine, max_attempts=5)
    queue.enqueue(list(range(1, 2001)))
    queue.claim("sensor:twice", 5000)
    queue.adopt(list(range(1, 1501)), "sensor:twice", "run:twice")
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            totals = pool.starmap(_settle_in_process, [(postgres_database_url, barrier)] * 2)
    assert sorted(totals) == [0, 2000]
    with pg_engine.connect() as conn:
        attempts = dict(
            conn.execute(
                select(FlightQueueItem.attempts, func.count()).group_by(FlightQueueItem.attempts)
            ).all()
        )
    assert attempts == {1: 1500, 0: 500}


def test_settling_a_run_leaves_its_sibling_runs_flights_to_them(engine):
    queue = FlightQueue(engine)
    queue.enqueue(range(1, 17))
    queue.claim("sensor:c1", 16)  # one claim, two runs of 8 flights
    queue.adopt(list(range(1, 9)), "sensor:c1", "run:r1")
    settled = queue.settle_run(
        "run:r1", "sensor:c1", "internal", "worker killed", flight_ids=list(range(1, 9))
    )
    assert settled.failed == {"queued": 8} and settled.released == 0
    assert queue.adopt(list(range(9, 17)), "sensor:c1", "run:r2") == list(range(9, 17))
    # a run that failed at launch gives back only its own flights
    queue.enqueue(range(20, 26))
    queue.claim("sensor:c2", 6)
    launch = queue.settle_run(
        "run:x", "sensor:c2", "internal", "no code server", flight_ids=[20, 21]
    )
    assert launch.released == 2
    assert queue.adopt(list(range(22, 26)), "sensor:c2", "run:y") == [22, 23, 24, 25]
