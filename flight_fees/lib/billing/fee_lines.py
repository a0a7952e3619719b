"""Writing fee lines: all lines of a flight, its ``flights`` row and the deletion of its queue
row commit in one transaction, or none of it does.

Re-processing a flight replaces its not-yet-invoiced lines (no duplicates: ``(flight_id,
line_no)`` is unique). A flight with invoiced lines is refused (``already_invoiced``): void the
invoice first. On PostgreSQL, concurrent writers of the same flight are serialised by a
transaction-scoped advisory lock per flight.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flight_fees.lib.db.engine import transaction
from flight_fees.lib.db.models import FeeLine, Flight, Invoice
from flight_fees.lib.ops.queue import FlightQueue
from flight_fees.lib.tracks.base import SOURCE_FAULT_CATEGORIES

log = logging.getLogger(__name__)

#: columns of table ``fee_lines`` a written line fills (the computed frame's columns are
#: :data:`flight_fees.lib.charging.fees.FEE_LINE_FRAME_COLUMNS`)
STORED_FEE_LINE_COLUMNS = {c.name for c in FeeLine.__table__.columns} - {"id", "created_at"}
#: columns of table ``flights`` a written bill fills
STORED_FLIGHT_COLUMNS = {c.name for c in Flight.__table__.columns} - {"created_at", "updated_at"}


@dataclass
class FlightBill:
    """What to store for one flight: its fee lines and resolved attributes."""

    flight_id: int
    lines: list[dict[str, Any]]
    flight: dict[str, Any] = field(default_factory=dict)


@dataclass
class PersistResult:
    written: dict[int, int] = field(default_factory=dict)  # flight_id -> lines written
    failures: dict[int, tuple[str, str]] = field(default_factory=dict)  # category, message

    @property
    def lines(self) -> int:
        return sum(self.written.values())


def _clean_line(line: Mapping[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in line.items() if k in STORED_FEE_LINE_COLUMNS}
    details = line.get("details", line.get("formula_details"))
    if details is not None and not isinstance(details, str):
        row["details"] = json.dumps(details, default=str, sort_keys=True)
    for key in ("entry_time", "exit_time"):
        value = row.get(key)
        if value is not None and hasattr(value, "to_pydatetime"):  # stored to the microsecond
            row[key] = value.floor("us").to_pydatetime()
    for key in ("entry_lat", "entry_lon", "exit_lat", "exit_lon"):
        if row.get(key) is not None:
            row[key] = Decimal(str(round(float(row[key]), 6)))
    if row.get("flown_km") is not None and not isinstance(row["flown_km"], Decimal):
        row["flown_km"] = Decimal(str(round(float(row["flown_km"]), 3)))
    row["interpolated"] = bool(row.get("interpolated", False))
    return row


def _lock_flights(session: Session, flight_ids: Sequence[int]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        for fid in sorted(flight_ids):  # a fixed order: no deadlock between writers
            session.execute(select(func.pg_advisory_xact_lock(fid)))


def invoiced_flights(session: Session, flight_ids: Sequence[int]) -> dict[int, str]:
    """Flights among ``flight_ids`` that already have lines on a live invoice."""
    rows = session.execute(
        select(FeeLine.flight_id, func.min(Invoice.number))
        .join(Invoice, Invoice.id == FeeLine.invoice_id)
        .where(FeeLine.flight_id.in_(list(flight_ids)))
        .group_by(FeeLine.flight_id)
    ).all()
    return {fid: number for fid, number in rows}


def _upsert_flights(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = dt.datetime.now(dt.UTC)
    clean = [
        {**{k: v for k, v in r.items() if k in STORED_FLIGHT_COLUMNS}, "updated_at": now}
        for r in rows
    ]
    columns = set().union(*(r.keys() for r in clean))
    for r in clean:
        for c in columns:
            r.setdefault(c, None)
    # one statement executed for many parameter sets (executemany): compiled once and
    # cached, instead of a statement with thousands of VALUES compiled anew every time
    stmt = insert_fn(Flight)
    stmt = stmt.on_conflict_do_update(
        index_elements=["flight_id"],
        set_={c: stmt.excluded[c] for c in sorted(columns) if c != "flight_id"},
    )
    session.execute(stmt, clean)


def _refusal(flight_id: int, number: str) -> tuple[str, str]:
    return (
        "already_invoiced",
        f"flight {flight_id} is billed on invoice {number}; void that invoice to re-bill it",
    )


def _write_chunk(
    session: Session, bills: Sequence[FlightBill], batch_id: str | None
) -> tuple[dict[int, int], dict[int, str]]:
    """Write the bills of flights not yet invoiced; returns (lines written per flight,
    refused flight -> invoice number). The invoiced check runs under the flights' locks, in
    the writing transaction."""
    _lock_flights(session, [b.flight_id for b in bills])
    refused = invoiced_flights(session, [b.flight_id for b in bills])
    bills = [b for b in bills if b.flight_id not in refused]
    ids = [b.flight_id for b in bills]
    if not bills:
        return {}, refused
    session.execute(
        delete(FeeLine)
        .where(FeeLine.flight_id.in_(ids), FeeLine.invoice_id.is_(None))
        .execution_options(synchronize_session=False)
    )
    rows = [
        {**_clean_line(line), "flight_id": b.flight_id, "batch_id": batch_id}
        for b in bills
        for line in b.lines
    ]
    if rows:
        table = FeeLine.__table__
        assert isinstance(table, Table)  # a declarative class's table (typed any FromClause)
        session.execute(table.insert(), rows)
    _upsert_flights(
        session,
        [
            {
                **b.flight,
                "flight_id": b.flight_id,
                "status": "billed",
                "batch_id": batch_id,
                "error_category": None,
                "last_error": None,
            }
            for b in bills
        ],
    )
    FlightQueue.complete(session, ids)
    return {b.flight_id: len(b.lines) for b in bills}, refused


def persist_bills(
    engine: Engine,
    bills: Sequence[FlightBill],
    *,
    batch_id: str | None = None,
    chunk_size: int = 200,
) -> PersistResult:
    """Store the bills, a chunk of flights per transaction; a failing chunk is retried flight
    by flight so that one bad flight never blocks the others. A flight already on an invoice
    is refused (``already_invoiced``), including one invoiced concurrently."""
    result = PersistResult()

    def write(chunk: Sequence[FlightBill]) -> None:
        with transaction(engine) as session:
            written, refused = _write_chunk(session, chunk, batch_id)
        result.written.update(written)
        result.failures.update({fid: _refusal(fid, num) for fid, num in refused.items()})

    for start in range(0, len(bills), chunk_size):
        chunk = list(bills[start : start + chunk_size])
        try:
            write(chunk)
        except Exception as exc:  # isolate the culprit
            log.warning(
                "[DATABASE] chunk of %d flights failed (%s); retrying one by one", len(chunk), exc
            )
            for bill in chunk:
                try:
                    write([bill])
                except Exception as one_exc:
                    result.failures[bill.flight_id] = (
                        "database",
                        f"{type(one_exc).__name__}: {one_exc}",
                    )
    return result


def record_flight_failures(
    engine: Engine,
    queue: FlightQueue,
    failures: Mapping[int, tuple[str, str]],
    *,
    flights: Mapping[int, Mapping[str, Any]] | None = None,
    batch_id: str | None = None,
    release_categories: frozenset[str] = SOURCE_FAULT_CATEGORIES,
) -> dict[int, str]:
    """Mark failed flights in the queue (and in ``flights``), each in its own transaction.

    Whole-source faults (``release_categories``, default: ``timeout``, ``partial_result``,
    ``source_unavailable``: the flight's data is not at fault) release the flight back to
    ``queued`` without counting an attempt, claimable again after the queue's back-off; every
    other failure counts an attempt (:meth:`FlightQueue.fail`). Returns flight_id -> new queue
    status.
    """
    statuses: dict[int, str] = {}
    for fid, (category, message) in failures.items():
        with transaction(engine) as session:
            if category in release_categories:
                queue.release(
                    [fid], category, message, session=session, retry_after_s=queue.retry_backoff_s
                )
                statuses[fid] = "queued"
            else:
                statuses[fid] = queue.fail(fid, category, message, session=session) or "failed"
            row = dict((flights or {}).get(fid, {}))
            row.update(
                flight_id=fid,
                status="blocked" if category == "attribute_conflict" else "failed",
                error_category=category,
                last_error=message[:4000],
                batch_id=batch_id,
            )
            _upsert_flights(session, [row])
    return statuses


@dataclass(frozen=True)
class TrackSettlement:
    """How the flights a fetch could not deliver were settled."""

    statuses: dict[int, str]
    #: ``(category, message)`` of the whole-source fault, when there was one
    source_fault: tuple[str, str] | None
    #: nothing was delivered because of the source: the run should stop
    source_down: bool


def settle_track_failures(
    engine: Engine,
    queue: FlightQueue,
    breaker: Any,
    failures: Mapping[int, tuple[str, str]],
    *,
    source_error: tuple[str, str] | None = None,
    delivered: int = 0,
    batch_id: str | None = None,
) -> TrackSettlement:
    """Settle a fetch: the breaker learns whether the source itself failed, and each failed
    flight goes back to the queue (:func:`record_flight_failures`).

    A whole-source fault -- ``source_error`` (the flight list could not be read), or any
    flight failed with a category of :data:`SOURCE_FAULT_CATEGORIES` (timeouts, partial
    results across a query, connection errors) -- is one breaker failure and costs no flight
    an attempt; otherwise the source answered (breaker success) and only the flights' own
    data faults count as attempts. ``delivered``: flights whose tracks were fetched (none
    with a fault: the source is down). ``breaker``: a
    :class:`~flight_fees.lib.ops.breaker.CircuitBreaker` (or anything with ``record_failure`` /
    ``record_success``).
    """
    faults = sorted(
        (fid, failure) for fid, failure in failures.items() if failure[0] in SOURCE_FAULT_CATEGORIES
    )
    fault = source_error or (faults[0][1] if faults else None)
    if fault is not None:
        breaker.record_failure(f"{fault[0]}: {fault[1]}")
    else:
        breaker.record_success()
    statuses = record_flight_failures(engine, queue, failures, batch_id=batch_id)
    return TrackSettlement(
        statuses,
        fault,
        source_error is not None or (fault is not None and delivered == 0),
    )


def fee_line_totals(
    engine: Engine, flight_ids: Sequence[int] | None = None, *, flight_date: dt.date | None = None
) -> dict[str, Decimal]:
    """Billing totals per currency over the current lines of ``flight_ids``, or of the flights
    of ``flight_date`` when no ids are given."""
    where: ColumnElement[bool]
    if flight_ids is not None:
        if not flight_ids:
            return {}
        where = FeeLine.flight_id.in_(list(flight_ids))
    elif flight_date is not None:
        where = FeeLine.flight_date == flight_date
    else:
        raise ValueError("fee_line_totals: give flight_ids or flight_date")
    with engine.connect() as conn:
        rows = conn.execute(
            select(FeeLine.billing_currency, func.sum(FeeLine.billing_amount))
            .where(where)
            .group_by(FeeLine.billing_currency)
            .order_by(FeeLine.billing_currency)
        ).all()
    return {ccy: Decimal(str(total)) for ccy, total in rows}
