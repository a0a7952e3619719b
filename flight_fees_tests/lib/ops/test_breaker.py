from __future__ import annotations

import datetime as dt
import threading
from typing import ClassVar

import pytest
from sqlalchemy import select

from flight_fees.lib.db.models import CircuitBreakerState
from flight_fees.lib.ops.breaker import (
    CircuitBreaker,
    CircuitOpenError,
    guarded,
    is_breaker_failure,
)

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


class FakeClock:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class SourceDown(Exception):
    category: ClassVar[str] = "source_unavailable"


class SourceTimeout(Exception):
    category: ClassVar[str] = "timeout"


class QueryError(Exception):
    category: ClassVar[str] = "query_error"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _breaker(engine, clock, **kw) -> CircuitBreaker:
    kw.setdefault("failure_threshold", 3)
    kw.setdefault("cooldown_s", 60.0)
    return CircuitBreaker(engine, "pinot", clock=clock, **kw)


def test_unknown_breaker_is_closed_without_writing(engine, clock):
    br = _breaker(engine, clock)
    assert br.allow() is True
    st = br.state()
    assert (st.state, st.consecutive_failures, st.opened_at, st.retry_after_s) == (
        "closed",
        0,
        None,
        0.0,
    )
    with engine.connect() as conn:
        assert conn.execute(select(CircuitBreakerState.name)).all() == []


def test_state_machine(engine, clock):
    br = _breaker(engine, clock)
    # closed: failures below the threshold keep it closed
    assert br.record_failure("e1").state == "closed"
    assert br.record_failure("e2").consecutive_failures == 2
    assert br.allow() is True
    # the threshold-th consecutive failure opens it
    st = br.record_failure("boom 3")
    assert (st.state, st.consecutive_failures, st.last_error) == ("open", 3, "boom 3")
    assert st.opened_at == T0
    assert st.retry_after_s == pytest.approx(60.0)
    assert br.allow() is False
    clock.advance(59.5)
    assert br.allow() is False
    assert br.state().retry_after_s == pytest.approx(0.5)
    # cool-down elapsed: exactly one probe
    clock.advance(0.5)
    assert br.state().retry_after_s == 0.0
    assert br.allow() is True
    assert br.state().state == "half_open"
    assert br.allow() is False  # the probe is in flight
    # the probe fails: open again, new cool-down from now
    st = br.record_failure("still down")
    assert (st.state, st.consecutive_failures) == ("open", 4)
    assert st.opened_at == T0 + dt.timedelta(seconds=60)
    clock.advance(30)
    assert br.allow() is False
    clock.advance(30)
    assert br.allow() is True
    # the probe succeeds: closed, count reset
    st = br.record_success()
    assert (st.state, st.consecutive_failures, st.opened_at) == ("closed", 0, None)
    assert st.last_error == "still down"  # kept for diagnosis
    assert br.allow() is True


def test_success_resets_consecutive_count(engine, clock):
    br = _breaker(engine, clock)
    br.record_failure("a")
    br.record_failure("b")
    br.record_success()
    br.record_failure("c")
    br.record_failure("d")
    assert br.state().state == "closed"
    assert br.record_failure("e").state == "open"


def test_failure_while_open_does_not_extend_cooldown(engine, clock):
    br = _breaker(engine, clock, failure_threshold=1)
    br.record_failure("first")
    clock.advance(40)
    st = br.record_failure("late report")
    assert (st.state, st.consecutive_failures, st.opened_at) == ("open", 2, T0)
    clock.advance(20)
    assert br.allow() is True


def test_lost_probe_is_replaced_after_probe_timeout(engine, clock):
    br = _breaker(engine, clock, failure_threshold=1, cooldown_s=10, probe_timeout_s=30)
    br.record_failure("down")
    clock.advance(10)
    assert br.allow() is True  # probe granted, its process then dies
    clock.advance(29)
    assert br.allow() is False
    assert br.state().retry_after_s == pytest.approx(1.0)
    clock.advance(1)
    assert br.allow() is True  # new probe
    assert br.allow() is False


def test_reset_forces_closed(engine, clock):
    br = _breaker(engine, clock, failure_threshold=1)
    br.record_failure("down")
    st = br.reset()
    assert (st.state, st.consecutive_failures, st.last_error) == ("closed", 0, None)
    assert br.allow() is True


def test_state_persists_across_instances(engine, clock):
    first = _breaker(engine, clock, failure_threshold=2)
    first.record_failure("x")
    first.record_failure("y")
    second = _breaker(engine, clock, failure_threshold=2)
    st = second.state()
    assert (st.state, st.consecutive_failures, st.last_error, st.opened_at) == ("open", 2, "y", T0)
    assert second.allow() is False
    clock.advance(60)
    assert second.allow() is True  # second instance takes the probe...
    assert first.allow() is False  # ...so the first one sees half-open with a probe in flight
    # breakers of different names are independent
    other = CircuitBreaker(engine, "adsb", clock=clock)
    assert other.state().state == "closed"


def test_guarded_counts_only_whole_source_failures(engine, clock):
    br = _breaker(engine, clock, failure_threshold=2)
    calls: list[str] = []

    def fetch(kind: str) -> str:
        calls.append(kind)
        if kind == "down":
            raise SourceDown("connection refused")
        if kind == "timeout":
            raise SourceTimeout("30 s")
        if kind == "query":
            raise QueryError("bad flight")
        if kind == "bug":
            raise KeyError("oops")
        return "frame"

    assert guarded(br, fetch, "ok") == "frame"
    with pytest.raises(SourceDown):
        guarded(br, fetch, "down")
    assert br.state().consecutive_failures == 1
    with pytest.raises(KeyError):  # our bug: neither failure nor success
        guarded(br, fetch, "bug")
    assert br.state().consecutive_failures == 1
    with pytest.raises(QueryError):  # the source answered: success
        guarded(br, fetch, "query")
    assert br.state().consecutive_failures == 0
    with pytest.raises(SourceDown):
        guarded(br, fetch, "down")
    with pytest.raises(SourceTimeout):
        guarded(br, fetch, kind="timeout")
    st = br.state()
    assert (st.state, st.last_error) == ("open", "SourceTimeout: 30 s")

    calls.clear()
    with pytest.raises(CircuitOpenError) as info:
        guarded(br, fetch, "ok")
    assert calls == []  # the source was not called
    assert info.value.category == "source_unavailable"
    assert info.value.retry_after_s == pytest.approx(60.0)
    assert is_breaker_failure(info.value)  # callers treat it as the source being down
    assert br.state().consecutive_failures == 2  # the refusal itself is not a failure

    clock.advance(60)
    with br.guard():  # the probe
        pass
    assert br.state().state == "closed"


def test_rejects_bad_settings(engine):
    with pytest.raises(ValueError):
        CircuitBreaker(engine, "")
    with pytest.raises(ValueError):
        CircuitBreaker(engine, "x" * 61)
    with pytest.raises(ValueError):
        CircuitBreaker(engine, "a", failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(engine, "a", cooldown_s=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        CircuitBreaker(engine, "a", clock=lambda: dt.datetime(2024, 1, 1)).record_success()


@pytest.mark.postgres
def test_concurrent_failures_are_all_counted(pg_engine):
    threads_n, k = 4, 25
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        br = CircuitBreaker(pg_engine, "pinot", failure_threshold=10**6)
        try:
            barrier.wait()
            for j in range(k):
                br.record_failure(f"thread {i} failure {j}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    st = CircuitBreaker(pg_engine, "pinot").state()
    assert st.consecutive_failures == threads_n * k
    assert st.state == "closed"


@pytest.mark.postgres
def test_concurrent_allow_grants_a_single_probe(pg_engine):
    clock = FakeClock()
    CircuitBreaker(pg_engine, "pinot", failure_threshold=1, clock=clock).record_failure("down")
    clock.advance(60)
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    answers: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        br = CircuitBreaker(pg_engine, "pinot", failure_threshold=1, clock=clock)
        barrier.wait()
        answer = br.allow()
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=worker) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [False] * (threads_n - 1) + [True]
