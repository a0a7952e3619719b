"""The flight processing queue: enqueue, claim, complete, fail, release, stats.

Semantics (correct under concurrency on PostgreSQL, serialised on SQLite):

- **enqueue** is idempotent per ``flight_id``; re-enqueueing a ``failed`` or ``dead`` flight
  resets it to ``queued`` (attempts 0).
- **claim** takes a batch ordered by priority then age. On PostgreSQL the candidate rows are
  locked with ``FOR UPDATE SKIP LOCKED`` so concurrent claimers never get the same row; on SQLite
  the write transaction is ``BEGIN IMMEDIATE``. A claim whose holder crashed becomes claimable
  again once its lease has expired.
- **complete** deletes the queue rows inside the caller's session, i.e. in the transaction that
  writes the fee lines: both commit or neither does.
- **fail** counts an attempt and records category and message. A retryable failure (timeout,
  partial result, source unavailable, ...) leaves the flight ``queued`` with an exponential
  back-off (``next_attempt_at``); a non-retryable one (no track, unknown MTOW, conflict, ...)
  makes it ``failed``, waiting for a human (fix the data, re-enqueue). After ``max_attempts``
  the row becomes ``dead`` and stays visible.
- **release** puts claimed rows back to ``queued`` without counting an attempt (the source was
  unavailable: not the flight's fault).

Two leases (self-healing):

- A **claim** (``claimed_by = "sensor:<claim id>"``, what the queue sensor takes before it asks
  for runs) expires after ``claim_lease_s`` (default :data:`CLAIM_LEASE_S`, 10 minutes): if no
  run ever starts for it (the daemon died between the claim and the run request, the run
  failed at launch, the run queue was dropped), its flights are claimable again within
  ``claim_lease_s`` plus one sensor interval, **without an attempt counted**.
- A started run **adopts** the flights of its claim (:meth:`FlightQueue.adopt`:
  ``claimed_by = "run:<run id>"``), which extends their lease to ``lease_s`` (default one hour).
  It adopts only flights still held by its own claim: flights re-claimed by another claim after
  the claim lease expired belong to that claim's run, never to two runs at once.
- **settle_run** settles a failed run in one set-based statement per holder (adopted flights
  fail with an attempt, flights of its claim that it never adopted go back without one), guarded
  by the holder so that a second evaluation of the same run, or two sensors at once, changes
  nothing: one crash is one attempt.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flight_fees.lib.core.timeutil import as_utc
from flight_fees.lib.db.engine import rows_affected, transaction, utcnow
from flight_fees.lib.db.models import PRIORITIES, PRIORITY_RANK, FlightQueueItem

Q = FlightQueueItem

#: rows written per statement / transaction by bulk enqueue
ENQUEUE_CHUNK = 5_000
#: failure categories that a retry may cure
RETRYABLE_CATEGORIES = frozenset(
    {"timeout", "source_unavailable", "partial_result", "query_error", "database", "internal"}
)
#: how long a sensor claim waits for its run to start (seconds)
CLAIM_LEASE_S = 600.0
#: ``claimed_by`` prefix of a claim that no run has adopted yet
CLAIM_PREFIX = "sensor:"


def _db_time(engine_or_session: Engine | Session, value: dt.datetime) -> dt.datetime:
    """SQLite compares timestamps as text: bind naive UTC there, aware UTC elsewhere."""
    bind = (
        engine_or_session.get_bind()
        if isinstance(engine_or_session, Session)
        else engine_or_session
    )
    value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None) if bind.dialect.name == "sqlite" else value


@dataclass(frozen=True)
class SettleResult:
    """What settling a failed run did: flights failed (count per new status) and flights of
    its claim released without an attempt."""

    failed: dict[str, int]
    released: int

    @property
    def total(self) -> int:
        return sum(self.failed.values()) + self.released


class QueueError(ValueError):
    """Invalid queue input (unknown priority, bad flight id)."""


@dataclass(frozen=True)
class ClaimedFlight:
    flight_id: int
    flight_date: dt.date | None
    priority: str
    attempts: int


@dataclass(frozen=True)
class EnqueueResult:
    added: int = 0
    reset: int = 0
    unchanged: int = 0

    def __add__(self, other: EnqueueResult) -> EnqueueResult:
        return EnqueueResult(
            self.added + other.added, self.reset + other.reset, self.unchanged + other.unchanged
        )


@dataclass(frozen=True)
class QueueStats:
    by_status: dict[str, int]
    by_status_priority: dict[tuple[str, str], int]
    oldest_queued_at: dt.datetime | None
    last_errors: list[tuple[int, str, str | None, str | None, int]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def oldest_queued_age_s(self, now: dt.datetime | None = None) -> float | None:
        if self.oldest_queued_at is None:
            return None
        return max(0.0, ((now or utcnow()) - self.oldest_queued_at).total_seconds())


def validate_priority(priority: str) -> str:
    if priority not in PRIORITIES:
        raise QueueError(f"unknown priority {priority!r}; expected one of {', '.join(PRIORITIES)}")
    return priority


def parse_flight_id(raw: str | int) -> int:
    """A flight id is a positive 64-bit integer, given as an int or as ASCII digits (no other
    Unicode digit such as ``"²"`` or ``"١٢٣"``); raise :class:`QueueError` otherwise."""
    shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:37] + "..."
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        text = str(raw).strip()
        if not (text.isascii() and text.isdigit()):
            raise QueueError(f"not a flight id (positive integer expected): {shown}")
        if len(text.lstrip("0")) > 19:  # never convert thousands of digits
            raise QueueError(f"flight id out of range (1 .. 2^63-1): {shown}")
        value = int(text)
    if value <= 0 or value >= 2**63:
        raise QueueError(f"flight id out of range (1 .. 2^63-1): {shown}")
    return value


class FlightQueue:
    """The queue table behind an engine. Stateless apart from its settings."""

    def __init__(
        self,
        engine: Engine,
        *,
        lease_s: float = 3600.0,
        claim_lease_s: float = CLAIM_LEASE_S,
        max_attempts: int = 5,
        retry_backoff_s: float = 60.0,
    ) -> None:
        self.engine = engine
        self.lease_s = lease_s
        self.claim_lease_s = claim_lease_s
        self.max_attempts = max_attempts
        self.retry_backoff_s = retry_backoff_s

    # -- enqueue ---------------------------------------------------------------------------

    def enqueue(
        self,
        flight_ids: Iterable[int],
        *,
        priority: str = "normal",
        flight_date: dt.date | None = None,
        chunk_size: int = ENQUEUE_CHUNK,
        progress: Callable[[int, int], None] | None = None,
    ) -> EnqueueResult:
        """Queue flights (idempotent). One transaction per chunk of ``chunk_size`` ids;
        ``progress(done, total)`` is called after each committed chunk."""
        validate_priority(priority)
        ids = list(dict.fromkeys(int(f) for f in flight_ids))  # de-duplicate, keep order
        result = EnqueueResult()
        for start in range(0, len(ids), chunk_size):
            with transaction(self.engine) as session:
                result = result + self._enqueue_chunk(
                    session, ids[start : start + chunk_size], priority, flight_date
                )
            if progress is not None:
                progress(min(start + chunk_size, len(ids)), len(ids))
        return result

    @staticmethod
    def _insert_missing(
        session: Session, ids: Sequence[int], priority: str, flight_date: dt.date | None
    ) -> set[int]:
        """INSERT ... ON CONFLICT DO NOTHING; returns the flight ids that were new."""
        now = utcnow()
        dialect = session.get_bind().dialect.name
        insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
        rows = [
            {
                "flight_id": fid,
                "flight_date": flight_date,
                "priority": priority,
                "priority_rank": PRIORITY_RANK[priority],
                "status": "queued",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for fid in ids
        ]
        # executemany with RETURNING: SQLAlchemy batches it ("insertmanyvalues") without
        # compiling one giant VALUES statement per chunk
        stmt = (
            insert_fn(Q).on_conflict_do_nothing(index_elements=["flight_id"]).returning(Q.flight_id)
        )
        return set(session.execute(stmt, rows).scalars())

    def _enqueue_chunk(
        self, session: Session, ids: Sequence[int], priority: str, flight_date: dt.date | None
    ) -> EnqueueResult:
        now = utcnow()
        added = self._insert_missing(session, ids, priority, flight_date)
        existing = [fid for fid in ids if fid not in added]
        reset = 0
        if existing:
            reset_stmt = (
                update(Q)
                .where(Q.flight_id.in_(existing), Q.status.in_(("failed", "dead")))
                .values(
                    status="queued",
                    attempts=0,
                    priority=priority,
                    priority_rank=PRIORITY_RANK[priority],
                    claimed_by=None,
                    claimed_at=None,
                    next_attempt_at=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            reset = rows_affected(session.execute(reset_stmt))
            # a higher priority asked for a flight already waiting: promote it
            session.execute(
                update(Q)
                .where(
                    Q.flight_id.in_(existing),
                    Q.status == "queued",
                    Q.priority_rank > PRIORITY_RANK[priority],
                )
                .values(priority=priority, priority_rank=PRIORITY_RANK[priority], updated_at=now)
                .execution_options(synchronize_session=False)
            )
        return EnqueueResult(added=len(added), reset=reset, unchanged=len(existing) - reset)

    # -- claim -----------------------------------------------------------------------------

    def claimable_condition(self, session: Session, now: dt.datetime) -> ColumnElement[bool]:
        lease_cutoff = _db_time(session, now - dt.timedelta(seconds=self.lease_s))
        claim_cutoff = _db_time(session, now - dt.timedelta(seconds=self.claim_lease_s))
        now_db = _db_time(session, now)
        unadopted = Q.claimed_by.startswith(CLAIM_PREFIX, autoescape=True)
        return or_(
            and_(
                Q.status == "queued",
                or_(Q.next_attempt_at.is_(None), Q.next_attempt_at <= now_db),
            ),
            and_(Q.status == "processing", Q.claimed_at < lease_cutoff),
            and_(Q.status == "processing", unadopted, Q.claimed_at < claim_cutoff),
        )

    def claim(
        self, worker: str, limit: int, *, now: dt.datetime | None = None
    ) -> list[ClaimedFlight]:
        """Claim up to ``limit`` flights for ``worker``; each row goes to exactly one claimer."""
        if limit <= 0:
            return []
        now = now or utcnow()
        with transaction(self.engine) as session:
            query = (
                select(Q.id, Q.flight_id, Q.flight_date, Q.priority, Q.attempts)
                .where(self.claimable_condition(session, now))
                .order_by(Q.priority_rank, Q.created_at, Q.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = session.execute(query).all()
            if not rows:
                return []
            session.execute(
                update(Q)
                .where(Q.id.in_([r.id for r in rows]))
                .values(
                    status="processing", claimed_by=worker[:200], claimed_at=now, updated_at=now
                )
                .execution_options(synchronize_session=False)
            )
        return [ClaimedFlight(r.flight_id, r.flight_date, r.priority, r.attempts) for r in rows]

    def adopt(
        self, flight_ids: Sequence[int], claim: str, worker: str, *, now: dt.datetime | None = None
    ) -> list[int]:
        """A started run takes the flights of its claim: those still held by ``claim`` (or
        already by ``worker``: a retried step) become held by ``worker`` with a fresh lease.
        Returns the adopted flight ids; the others were re-claimed by another claim after
        the claim lease expired (that claim's run bills them) or are settled already."""
        if not flight_ids:
            return []
        now = now or utcnow()
        adopted: list[int] = []
        ids = sorted(set(int(f) for f in flight_ids))
        with transaction(self.engine) as session:
            for start in range(0, len(ids), ENQUEUE_CHUNK):
                chunk = ids[start : start + ENQUEUE_CHUNK]
                rows = session.execute(
                    update(Q)
                    .where(
                        Q.flight_id.in_(chunk),
                        Q.status == "processing",
                        Q.claimed_by.in_([claim[:200], worker[:200]]),
                    )
                    .values(claimed_by=worker[:200], claimed_at=now, updated_at=now)
                    .returning(Q.flight_id)
                    .execution_options(synchronize_session=False)
                ).all()
                adopted.extend(int(r[0]) for r in rows)
        return sorted(adopted)

    def settle_run(
        self,
        worker: str,
        claim: str | None,
        category: str,
        message: str,
        *,
        flight_ids: Sequence[int] | None = None,
        now: dt.datetime | None = None,
    ) -> SettleResult:
        """Settle a failed run: flights still held by ``worker`` (adopted, being processed when
        the run died) fail with one attempt each, in one set-based statement; flights still
        held by its ``claim`` (never adopted: the run failed before it started) go back to
        ``queued`` without an attempt: only the run's own ``flight_ids`` (its run config) when
        given, since one claim feeds several runs and the others may still start and adopt
        theirs. Rows are matched by their holder, so settling the same run again, or
        concurrently, changes nothing."""
        now = now or utcnow()
        with transaction(self.engine) as session:
            failed = self._fail_held(session, worker, category, message, now)
            released = 0
            if claim:
                released = self.release_held(
                    session,
                    claim,
                    "internal",
                    f"run never started: {message}"[:4000],
                    now,
                    flight_ids=flight_ids,
                )
        return SettleResult(failed=failed, released=released)

    def _fail_held(
        self, session: Session, worker: str, category: str, message: str, now: dt.datetime
    ) -> dict[str, int]:
        """One UPDATE: every flight ``processing`` under ``worker`` fails with an attempt
        (status and back-off computed in SQL from its attempt count); counts per new status."""
        retryable = category in RETRYABLE_CATEGORIES
        held = and_(Q.claimed_by == worker[:200], Q.status == "processing")
        top = session.execute(select(func.max(Q.attempts)).where(held)).scalar()
        if top is None:
            return {}
        new_attempts = Q.attempts + 1
        if retryable:
            status = case((new_attempts >= self.max_attempts, "dead"), else_="queued")
            # back-off after the n-th attempt: retry_backoff_s * 2 ** (n - 1), as in fail()
            waits = {
                k: now + dt.timedelta(seconds=self.retry_backoff_s * 2**k)
                for k in range(max(self.max_attempts, int(top) + 1))
            }
            next_at = case(
                (new_attempts >= self.max_attempts, None),
                else_=case(waits, value=Q.attempts),
            )
        else:
            status = case((new_attempts >= self.max_attempts, "dead"), else_="failed")
            next_at = None
        # the statement re-checks the holder row by row (a concurrent settlement of the same
        # run waits for this one, then finds nothing): count what it really changed
        changed = session.execute(
            update(Q)
            .where(held)
            .values(
                attempts=new_attempts,
                status=status,
                next_attempt_at=next_at,
                error_category=category[:40],
                last_error=message[:4000],
                claimed_by=None,
                claimed_at=None,
                updated_at=now,
            )
            .returning(Q.status)
            .execution_options(synchronize_session=False)
        ).all()
        result: dict[str, int] = {}
        for (new_status,) in changed:
            result[new_status] = result.get(new_status, 0) + 1
        return result

    @staticmethod
    def release_held(
        session: Session,
        holder: str,
        category: str,
        message: str,
        now: dt.datetime,
        *,
        flight_ids: Sequence[int] | None = None,
    ) -> int:
        """Flights still ``processing`` under ``holder`` (of ``flight_ids`` when given) go back
        to ``queued`` (no attempt)."""
        condition = and_(Q.claimed_by == holder[:200], Q.status == "processing")
        if flight_ids is not None:
            ids = sorted(set(int(f) for f in flight_ids))
            released = 0
            for start in range(0, len(ids), ENQUEUE_CHUNK):
                chunk = ids[start : start + ENQUEUE_CHUNK]
                released += FlightQueue._release_where(
                    session, and_(condition, Q.flight_id.in_(chunk)), category, message, now
                )
            return released
        return FlightQueue._release_where(session, condition, category, message, now)

    @staticmethod
    def _release_where(
        session: Session,
        condition: Any,
        category: str,
        message: str,
        now: dt.datetime,
        **extra: Any,
    ) -> int:
        """Rows matching ``condition`` back to ``queued`` without an attempt (``extra``:
        further values, e.g. ``next_attempt_at``)."""
        res = session.execute(
            update(Q)
            .where(condition)
            .values(
                status="queued",
                claimed_by=None,
                claimed_at=None,
                error_category=category[:40],
                last_error=message[:4000],
                updated_at=now,
                **extra,
            )
            .execution_options(synchronize_session=False)
        )
        return rows_affected(res)

    def touch(self, flight_ids: Sequence[int], worker: str) -> int:
        """Renew the lease of flights a run is working on (marks them processing now)."""
        if not flight_ids:
            return 0
        now = utcnow()
        with transaction(self.engine) as session:
            res = session.execute(
                update(Q)
                .where(Q.flight_id.in_(list(flight_ids)), Q.status != "dead")
                .values(
                    status="processing", claimed_by=worker[:200], claimed_at=now, updated_at=now
                )
                .execution_options(synchronize_session=False)
            )
            return rows_affected(res)

    # -- outcomes --------------------------------------------------------------------------

    @staticmethod
    def complete(session: Session, flight_ids: Sequence[int]) -> int:
        """Delete queue rows inside the caller's transaction (the one writing the fee lines)."""
        if not flight_ids:
            return 0
        res = session.execute(
            delete(Q)
            .where(Q.flight_id.in_(list(flight_ids)))
            .execution_options(synchronize_session=False)
        )
        return rows_affected(res)

    def fail(
        self,
        flight_id: int,
        category: str,
        message: str,
        *,
        retryable: bool | None = None,
        now: dt.datetime | None = None,
        session: Session | None = None,
    ) -> str | None:
        """Record a failed attempt; returns the new status (``queued`` for a retry after the
        back-off, ``failed`` for a human to look at, or ``dead``).

        The flight is (re-)inserted if it was not queued (e.g. a backfill found it): a failure
        is never lost.
        """
        now = now or utcnow()
        retryable = category in RETRYABLE_CATEGORIES if retryable is None else retryable
        if session is None:
            with transaction(self.engine) as own:
                return self.fail(
                    flight_id, category, message, retryable=retryable, now=now, session=own
                )
        self._insert_missing(session, [flight_id], "normal", None)
        item = session.execute(
            select(Q).where(Q.flight_id == flight_id).with_for_update()
        ).scalar_one()
        item.attempts += 1
        item.error_category = category[:40]
        item.last_error = message[:4000]
        item.claimed_by = None
        item.claimed_at = None
        item.updated_at = now
        if item.attempts >= self.max_attempts:
            item.status = "dead"
            item.next_attempt_at = None
        elif retryable:
            item.status = "queued"
            item.next_attempt_at = now + dt.timedelta(
                seconds=self.retry_backoff_s * 2 ** (item.attempts - 1)
            )
        else:
            item.status = "failed"
            item.next_attempt_at = None
        return item.status

    def release(
        self,
        flight_ids: Sequence[int],
        category: str,
        message: str,
        *,
        session: Session | None = None,
        retry_after_s: float | None = None,
    ) -> int:
        """Put claimed flights back to ``queued`` without counting an attempt; with
        ``retry_after_s`` they are claimable again only after that delay."""
        if not flight_ids:
            return 0
        if session is None:
            with transaction(self.engine) as own:
                return self.release(
                    flight_ids, category, message, session=own, retry_after_s=retry_after_s
                )
        now = utcnow()
        extra = (
            {"next_attempt_at": now + dt.timedelta(seconds=retry_after_s)}
            if retry_after_s is not None
            else {}
        )
        return self._release_where(
            session,
            and_(Q.flight_id.in_(list(flight_ids)), Q.status.in_(("processing", "queued"))),
            category,
            message,
            now,
            **extra,
        )

    def fail_claimed(self, worker: str, category: str, message: str) -> dict[str, int]:
        """Fail every flight still ``processing`` under ``worker`` (its run crashed before
        settling them), one attempt each, in one statement; flights the run already completed
        or failed are untouched. Returns the count per new status."""
        return self.settle_run(worker, None, category, message).failed

    # -- reading ---------------------------------------------------------------------------

    def stats(self, *, last_errors: int = 10) -> QueueStats:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Q.status, Q.priority, func.count()).group_by(Q.status, Q.priority)
            ).all()
            oldest = conn.execute(
                select(func.min(Q.created_at)).where(Q.status == "queued")
            ).scalar()
            errors = conn.execute(
                select(Q.flight_id, Q.status, Q.error_category, Q.last_error, Q.attempts)
                .where(Q.last_error.is_not(None))
                .order_by(Q.updated_at.desc(), Q.id.desc())
                .limit(last_errors)
            ).all()
        by_status: dict[str, int] = {}
        by_sp: dict[tuple[str, str], int] = {}
        for status, priority, count in rows:
            by_status[status] = by_status.get(status, 0) + count
            by_sp[(status, priority)] = count
        if isinstance(oldest, str):  # SQLite server-default timestamps come back as text
            oldest = dt.datetime.fromisoformat(oldest)
        return QueueStats(
            by_status=by_status,
            by_status_priority=by_sp,
            oldest_queued_at=as_utc(oldest),
            last_errors=[(fid, st, cat, msg, n) for fid, st, cat, msg, n in errors],
        )

    def count_claimable(self, *, now: dt.datetime | None = None) -> int:
        now = now or utcnow()
        with Session(self.engine) as session:
            return session.execute(
                select(func.count()).select_from(Q).where(self.claimable_condition(session, now))
            ).scalar_one()
