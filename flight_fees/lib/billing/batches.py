"""Processing batches (table ``processing_batches``): list with progress, failed flights.

A batch's counts come from its row; while it is ``running`` they are counted live from the
``flights`` rows the batch has written so far (billed / failed), so a running batch shows
its progress. ``progress`` = (billed + failed) / requested, in percent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flight_fees.lib.core.timeutil import as_utc
from flight_fees.lib.db.engine import transaction
from flight_fees.lib.db.models import Flight, ProcessingBatch

BATCH_STATUSES: Final = ("running", "succeeded", "partial", "failed")


class BatchError(LookupError):
    """No such batch, or a filter that cannot be used."""


@dataclass(frozen=True)
class BatchRow:
    batch_id: str
    run_id: str | None
    day: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    requested: int
    billed: int
    failed: int
    fee_lines: int
    status: str

    @property
    def progress(self) -> float:
        """Percent of the requested flights done (billed or failed); 100 when finished."""
        if self.status != "running":
            return 100.0
        if self.requested <= 0:
            return 0.0
        return min(100.0, 100.0 * (self.billed + self.failed) / self.requested)


@dataclass(frozen=True)
class FailedFlight:
    flight_id: int
    category: str | None
    message: str | None


def _live_counts(session: Session, batch_ids: list[str]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = {}
    for batch_id, status, n in session.execute(
        select(Flight.batch_id, Flight.status, func.count())
        .where(Flight.batch_id.in_(batch_ids))
        .group_by(Flight.batch_id, Flight.status)
    ):
        pair = counts.setdefault(batch_id, [0, 0])
        pair[0 if status == "billed" else 1] += n
    return {k: (v[0], v[1]) for k, v in counts.items()}


def _row(b: ProcessingBatch, live: dict[str, tuple[int, int]]) -> BatchRow:
    billed, failed = b.flights_ok, b.flights_failed
    if b.status == "running":
        billed, failed = live.get(b.batch_id, (0, 0))
    return BatchRow(
        b.batch_id, b.run_id, b.partition_key, as_utc(b.started_at), as_utc(b.finished_at),
        b.flights_requested, billed, failed, b.fee_lines, b.status,
    )  # fmt: skip


def list_batches(
    engine: Engine,
    *,
    status: str | None = None,
    day: dt.date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[BatchRow], int]:
    """The batches (newest first; of one status / partition day) of one page, and how many
    match in all."""
    if status is not None and status not in BATCH_STATUSES:
        raise BatchError(f"status {status!r} is not one of {', '.join(BATCH_STATUSES)}")
    if limit < 1 or offset < 0:
        raise BatchError("limit must be 1 or more and offset 0 or more")
    B = ProcessingBatch
    conditions = []
    if status is not None:
        conditions.append(B.status == status)
    if day is not None:
        conditions.append(B.partition_key == day.isoformat())
    with Session(engine) as session:
        total = session.execute(select(func.count()).select_from(B).where(*conditions)).scalar_one()
        batches = session.scalars(
            select(B).where(*conditions).order_by(B.started_at.desc(), B.batch_id)
            .limit(limit).offset(offset)
        ).all()  # fmt: skip
        live = _live_counts(session, [b.batch_id for b in batches if b.status == "running"])
        return [_row(b, live) for b in batches], int(total)


def batch_detail(engine: Engine, batch_id: str) -> tuple[BatchRow, list[FailedFlight]]:
    """One batch (:class:`BatchError` if unknown) and its failed flights with category and
    message (the ``flights`` rows it marked failed or blocked), by flight id."""
    with Session(engine) as session:
        found = session.get(ProcessingBatch, batch_id.strip())
        if found is None:
            raise BatchError(f"no processing batch {batch_id.strip()!r}")
        failed = [
            FailedFlight(fid, category, message)
            for fid, category, message in session.execute(
                select(Flight.flight_id, Flight.error_category, Flight.last_error)
                .where(Flight.batch_id == found.batch_id, Flight.status != "billed")
                .order_by(Flight.flight_id)
            )
        ]
        return _row(found, _live_counts(session, [found.batch_id])), failed


def start_batch(
    engine: Engine,
    batch_id: str,
    *,
    run_id: str | None,
    day: dt.date | None,
    requested: int,
    started_at: dt.datetime | None = None,
) -> None:
    """Record a batch as ``running`` (so that ``flight-fees batches`` follows it); its final
    counts and status are written over this row when it ends."""
    with transaction(engine) as session:
        session.add(
            ProcessingBatch(
                batch_id=batch_id, run_id=run_id,
                partition_key=day.isoformat() if day else None,
                started_at=started_at or dt.datetime.now(dt.UTC), status="running",
                flights_requested=requested,
            )
        )  # fmt: skip


def finish_batch(
    engine: Engine,
    batch_id: str,
    *,
    run_id: str | None,
    day: dt.date | None,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    requested: int,
    billed: int,
    failed: int,
    fee_lines: int,
) -> str:
    """Write a batch's final counts and status over its ``running`` row (or create the row
    when the batch was not started with :func:`start_batch`); returns the status:
    ``succeeded`` (nothing failed), ``partial`` or ``failed`` (nothing billed)."""
    status = "succeeded" if not failed else ("partial" if billed else "failed")
    values = {
        "run_id": run_id,
        "partition_key": day.isoformat() if day else None,
        "started_at": started_at,
        "finished_at": finished_at,
        "status": status,
        "flights_requested": requested,
        "flights_ok": billed,
        "flights_failed": failed,
        "fee_lines": fee_lines,
    }
    with transaction(engine) as session:
        row = session.get(ProcessingBatch, batch_id)
        if row is None:
            session.add(ProcessingBatch(batch_id=batch_id, **values))
        else:
            for key, value in values.items():
                setattr(row, key, value)
    return status
