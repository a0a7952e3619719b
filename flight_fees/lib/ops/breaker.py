"""A circuit breaker per external source, persisted in the billing database.

States and transitions (``N`` = ``failure_threshold``):

- **closed**: calls go through. Each whole-source failure increments ``consecutive_failures``;
  the N-th consecutive one opens the breaker. A success resets the count.
- **open**: :meth:`CircuitBreaker.allow` answers ``False`` until ``cooldown_s`` has elapsed since
  the breaker opened; the first ``allow()`` after that moves it to **half_open** and answers
  ``True``: that caller is the probe.
- **half_open**: exactly one probe is in flight; other callers get ``False``. The probe's success
  closes the breaker, its failure re-opens it (a new cool-down starts). A probe that never
  reports (its process died) is given up after ``probe_timeout_s`` (default: ``cooldown_s``) and
  the next ``allow()`` becomes the new probe.

The state lives in table ``circuit_breakers`` (one row per source name, created on first use),
so it is shared by sensor ticks, run workers and processes. Every transition is one
read-modify-write transaction: the row is locked with ``SELECT ... FOR UPDATE`` on PostgreSQL;
the SQLite engine starts write transactions with ``BEGIN IMMEDIATE`` (see
:func:`flight_fees.lib.db.engine.make_engine`), which serialises them.

:func:`guarded` (or :meth:`CircuitBreaker.guard`) wraps a call of a track source: only
whole-source failures (exceptions whose ``category`` is in :data:`BREAKER_FAILURE_CATEGORIES`)
count against the breaker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Literal, ParamSpec, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flight_fees.lib.core.timeutil import as_utc
from flight_fees.lib.db.engine import transaction, utcnow
from flight_fees.lib.db.models import CircuitBreakerState

__all__ = [
    "BREAKER_FAILURE_CATEGORIES",
    "BreakerState",
    "BreakerStateName",
    "CircuitBreaker",
    "CircuitOpenError",
    "guarded",
    "is_breaker_failure",
    "utcnow",
]

P = ParamSpec("P")
T = TypeVar("T")

BreakerStateName = Literal["closed", "open", "half_open"]
_STATE_NAMES: dict[str, BreakerStateName] = {
    "closed": "closed",
    "open": "open",
    "half_open": "half_open",
}

#: exception categories that mean "the whole source failed" (and count against the breaker)
BREAKER_FAILURE_CATEGORIES: frozenset[str] = frozenset({"source_unavailable", "timeout"})

#: ``circuit_breakers.name`` is VARCHAR(60); ``last_error`` is kept to this many characters
_NAME_MAX = 60
_ERROR_MAX = 4000

_CB = CircuitBreakerState


@dataclass(frozen=True)
class BreakerState:
    """A snapshot of a breaker.

    ``retry_after_s`` is 0.0 when :meth:`CircuitBreaker.allow` would answer ``True`` now, else
    the seconds until it would (open: end of the cool-down; half-open: probe time-out).
    ``last_error`` is the message of the last recorded failure (kept after recovery, for
    diagnosis; cleared by :meth:`CircuitBreaker.reset`).
    """

    state: BreakerStateName
    consecutive_failures: int
    opened_at: dt.datetime | None
    last_error: str | None
    retry_after_s: float

    @property
    def is_closed(self) -> bool:
        return self.state == "closed"


class CircuitOpenError(RuntimeError):
    """Raised by :func:`guarded` instead of calling a source whose breaker is open.

    Its category is ``source_unavailable``: callers treat it like the source being down
    (e.g. :meth:`flight_fees.lib.ops.queue.FlightQueue.release` the claimed flights).
    It is never itself recorded as a failure.
    """

    category: ClassVar[str] = "source_unavailable"

    def __init__(self, name: str, state: BreakerState) -> None:
        self.name = name
        self.state = state
        self.retry_after_s = state.retry_after_s
        super().__init__(
            f"circuit breaker {name!r} is {state.state} after {state.consecutive_failures} "
            f"consecutive failure(s); retry in {state.retry_after_s:.0f} s"
            + (f"; last error: {state.last_error}" if state.last_error else "")
        )


def is_breaker_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a whole-source failure (``exc.category`` in the breaker set)."""
    return getattr(exc, "category", None) in BREAKER_FAILURE_CATEGORIES


class CircuitBreaker:
    """The database-backed circuit breaker of one source (see the module docstring).

    Instances are cheap and hold no state besides their settings: two instances with the same
    ``name`` (in two processes) share one breaker.
    """

    def __init__(
        self,
        engine: Engine,
        name: str,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 60.0,
        probe_timeout_s: float | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        if not name or len(name) > _NAME_MAX:
            raise ValueError(f"breaker name must be 1..{_NAME_MAX} characters: {name!r}")
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if cooldown_s < 0:
            raise ValueError(f"cooldown_s must be >= 0, got {cooldown_s}")
        if probe_timeout_s is not None and probe_timeout_s < 0:
            raise ValueError(f"probe_timeout_s must be >= 0, got {probe_timeout_s}")
        self.engine = engine
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown_s = float(cooldown_s)
        self.probe_timeout_s = float(cooldown_s if probe_timeout_s is None else probe_timeout_s)
        self.clock = clock

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker({self.name!r}, failure_threshold={self.failure_threshold}, "
            f"cooldown_s={self.cooldown_s})"
        )

    # -- internals -------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the breaker clock must return timezone-aware datetimes")
        return now.astimezone(dt.UTC)

    def _db_time(self, session: Session, value: dt.datetime) -> dt.datetime:
        """SQLite stores timestamps as text without zone: bind naive UTC there."""
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if session.get_bind().dialect.name == "sqlite" else value

    def _locked_row(self, session: Session, now: dt.datetime) -> CircuitBreakerState:
        """The breaker's row, created (closed) if missing, locked for this transaction."""
        dialect = session.get_bind().dialect.name
        insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert_fn(_CB)
            .values(
                name=self.name,
                state="closed",
                consecutive_failures=0,
                updated_at=self._db_time(session, now),
            )
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return session.execute(
            select(_CB).where(_CB.name == self.name).with_for_update()
        ).scalar_one()

    def _touch(self, session: Session, row: CircuitBreakerState, now: dt.datetime) -> None:
        row.updated_at = self._db_time(session, now)

    def _snapshot(self, row: CircuitBreakerState | None, now: dt.datetime) -> BreakerState:
        if row is None:
            return BreakerState("closed", 0, None, None, 0.0)
        opened_at = as_utc(row.opened_at)
        updated_at = as_utc(row.updated_at)
        retry_after = 0.0
        if row.state == "open" and opened_at is not None:
            retry_after = self.cooldown_s - (now - opened_at).total_seconds()
        elif row.state == "half_open" and updated_at is not None:
            retry_after = self.probe_timeout_s - (now - updated_at).total_seconds()
        return BreakerState(
            state=_STATE_NAMES[row.state],  # the column's CHECK admits these only
            consecutive_failures=row.consecutive_failures,
            opened_at=opened_at,
            last_error=row.last_error,
            retry_after_s=max(0.0, retry_after),
        )

    # -- public API ------------------------------------------------------------------------

    def allow(self) -> bool:
        """Whether a call of the source may go ahead now (may move open -> half_open).

        Closed: ``True``. Open: ``False`` until the cool-down has elapsed, then the breaker
        becomes half-open and this caller gets ``True`` (the probe). Half-open: ``False`` while
        the probe is in flight (``True`` again, for a new probe, once it timed out).
        """
        now = self._now()
        with self.engine.connect() as conn:  # fast path: no write lock when closed
            current = conn.execute(select(_CB.state).where(_CB.name == self.name)).scalar()
        if current is None or current == "closed":
            return True
        with transaction(self.engine) as session:
            row = self._locked_row(session, now)
            if row.state == "closed":
                return True
            if row.state == "open":
                opened_at = as_utc(row.opened_at) or now
                if (now - opened_at).total_seconds() < self.cooldown_s:
                    return False
                row.state = "half_open"
                self._touch(session, row, now)  # updated_at = when the probe was granted
                return True
            # half_open: one probe at a time; a probe that never reported is replaced
            granted_at = as_utc(row.updated_at) or now
            if (now - granted_at).total_seconds() < self.probe_timeout_s:
                return False
            self._touch(session, row, now)
            return True

    def state(self) -> BreakerState:
        """The current state (read-only: never transitions)."""
        now = self._now()
        with Session(self.engine) as session:
            row = session.execute(select(_CB).where(_CB.name == self.name)).scalar_one_or_none()
            return self._snapshot(row, now)

    def record_success(self) -> BreakerState:
        """The source answered: close the breaker and reset the failure count."""
        now = self._now()
        with transaction(self.engine) as session:
            row = self._locked_row(session, now)
            if row.state != "closed" or row.consecutive_failures or row.opened_at is not None:
                row.state = "closed"
                row.consecutive_failures = 0
                row.opened_at = None
                self._touch(session, row, now)
            return self._snapshot(row, now)

    def record_failure(self, message: str) -> BreakerState:
        """The whole source failed: count it; open the breaker at the threshold.

        A failure while half-open (the probe failed) re-opens the breaker and restarts the
        cool-down. A failure reported while already open (a call started before it opened)
        is counted but does not extend the cool-down.
        """
        now = self._now()
        with transaction(self.engine) as session:
            row = self._locked_row(session, now)
            row.consecutive_failures += 1
            row.last_error = (message or "")[:_ERROR_MAX] or None
            if row.state == "half_open" or (
                row.state == "closed" and row.consecutive_failures >= self.failure_threshold
            ):
                row.state = "open"
                row.opened_at = self._db_time(session, now)
            self._touch(session, row, now)
            return self._snapshot(row, now)

    def reset(self) -> BreakerState:
        """Force the breaker closed, forgetting failures and the last error (operator action)."""
        now = self._now()
        with transaction(self.engine) as session:
            row = self._locked_row(session, now)
            row.state = "closed"
            row.consecutive_failures = 0
            row.opened_at = None
            row.last_error = None
            self._touch(session, row, now)
            return self._snapshot(row, now)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Context manager form of :func:`guarded`::

            with breaker.guard():
                frame = source.fetch(flight_ids)

        Raises :class:`CircuitOpenError` (without running the body) when not allowed.
        """
        if not self.allow():
            raise CircuitOpenError(self.name, self.state())
        try:
            yield
        except Exception as exc:
            if is_breaker_failure(exc):
                self.record_failure(f"{type(exc).__name__}: {exc}")
            elif getattr(exc, "category", None) is not None:
                # a categorised error of the source (query error, partial result...): the
                # source answered, so it is up
                self.record_success()
            # an uncategorised exception (a bug on our side) says nothing about the source
            raise
        self.record_success()


def guarded(breaker: CircuitBreaker, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call ``fn(*args, **kwargs)`` through ``breaker``.

    - breaker not allowing calls: raise :class:`CircuitOpenError`, ``fn`` is not called;
    - ``fn`` returns: record a success, return its result;
    - ``fn`` raises an exception whose ``category`` is ``source_unavailable`` or ``timeout``:
      record a failure and re-raise;
    - ``fn`` raises another categorised error (e.g. ``query_error``, ``partial_result``): the
      source answered, record a success and re-raise;
    - ``fn`` raises an uncategorised exception: record nothing (a half-open probe is then given
      up after ``probe_timeout_s``) and re-raise.
    """
    with breaker.guard():
        return fn(*args, **kwargs)
