"""Processing a day of flights: fetch their tracks under the queue and circuit-breaker
policy, bill a batch and record it, and read what a billed day holds — the same for the
``process_flights`` run (whoever launched it: the queue sensor, ``flight-fees process``,
``flight-fees demo``, a backfill from the UI) and for a notebook.

The stage functions (:mod:`flight_fees.lib.processing.pipeline`) compute; these decide: which
flights a run may touch, when the source counts as down, what a batch records.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Engine, distinct, func, select

from flight_fees.lib.billing.batches import finish_batch, start_batch
from flight_fees.lib.billing.fee_lines import (
    TrackSettlement,
    fee_line_totals,
    record_flight_failures,
    settle_track_failures,
)
from flight_fees.lib.core.money import CategorizedError
from flight_fees.lib.db.models import FeeLine, Flight, FlightQueueItem
from flight_fees.lib.ops.audit import FlightTiming, ProcessingLog, write_processing_log
from flight_fees.lib.processing.pipeline import BillsRun, TracksRun, stream_bills, stream_tracks

if TYPE_CHECKING:
    from flight_fees.lib.charging.aircraft_types import AircraftTypes
    from flight_fees.lib.charging.fx import FxRates
    from flight_fees.lib.charging.tariffs import Tariffs
    from flight_fees.lib.ops.breaker import CircuitBreaker
    from flight_fees.lib.ops.queue import FlightQueue
    from flight_fees.lib.ops.workstore import WorkStore
    from flight_fees.lib.tracks.base import TrackSource

Failures = dict[int, tuple[str, str]]

#: worker names of the queue: a run holds its flights as ``run:<run id>``; a claim of the
#: queue sensor is ``sensor:<claim id>`` (an analyst's run has no claim)
RUN_WORKER_PREFIX = "run:"
SENSOR_CLAIM_PREFIX = "sensor:"
#: failed flights written out one by one in logs and metadata (the rest are counted)
FAILURES_SHOWN = 20


class ClaimLost(CategorizedError):
    """The run's claim holds none of its flights any more (they were claimed again after the
    claim lease expired, or settled): another run bills them; this one has nothing to do."""

    category: ClassVar[str] = "claim_lost"


class SourceUnavailable(CategorizedError):
    """The track source cannot be used: its circuit is open, or it failed as a whole. The
    flights are back in the queue without an attempt counted."""

    category: ClassVar[str] = "source_unavailable"


def worker_of(run_id: str) -> str:
    """The queue's name for a run holding flights."""
    return f"{RUN_WORKER_PREFIX}{run_id}"


# -- tracks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackFetch:
    """What :func:`fetch_day_tracks` did for a run."""

    day: dt.date
    #: the flights the run works on (the adopted part of a claim), empty for a backfill
    flight_ids: list[int]
    #: flights of the run's claim that another run holds now (left alone)
    not_held: int
    source_name: str
    run: TracksRun
    settlement: TrackSettlement
    seconds: float

    @property
    def failures(self) -> Failures:
        return self.run.failures

    @property
    def requested(self) -> int:
        return len(self.flight_ids) or self.run.flights_with_tracks + len(self.run.failures)


def fetch_day_tracks(
    *,
    queue: FlightQueue,
    engine: Engine,
    source: TrackSource,
    breaker: CircuitBreaker,
    store: WorkStore,
    day: dt.date,
    run_id: str,
    flight_ids: Sequence[int] = (),
    claim_id: str = "",
    chunk_flights: int = 1_000,
    max_gap_s: float = 600.0,
    max_speed_kt: float = 1200.0,
    min_points: int = 10,
) -> TrackFetch:
    """Fetch and clean the tracks of a run's flights of ``day`` into the work store.

    Policy, in order:

    1. A run requested by the queue sensor (``claim_id`` of a sensor claim) adopts the
       flights its claim still holds; the others were claimed again after the claim lease and
       another run bills them (:class:`ClaimLost` when none is left). An analyst's run (no
       claim) takes its flights and renews their lease. No flight ids:
       every flight of the day in the source (a backfill), no queue rows involved.
    2. An open circuit of the source hands the flights back to the queue untouched
       (:class:`SourceUnavailable`).
    3. The flights are fetched chunk by chunk; the breaker learns whether the source failed,
       and every failed flight is settled (whole-source faults cost no attempt).
    4. A source that failed as a whole (nothing delivered) raises :class:`SourceUnavailable`
       after the settlement, so the run fails loudly.

    The run's selection (its flight ids and this stage's failures) is stored beside the
    frames for the batch's processing log.
    """
    started = time.perf_counter()
    ids = [int(f) for f in flight_ids]
    worker = worker_of(run_id)
    not_held = 0
    if ids and claim_id:
        adopted = queue.adopt(ids, f"{SENSOR_CLAIM_PREFIX}{claim_id}", worker)
        not_held = len(ids) - len(adopted)
        ids = adopted
        if not ids:
            raise ClaimLost(f"claim {claim_id} holds none of its flights any more")
    elif ids:
        queue.touch(ids, worker)
    if not breaker.allow():
        queue.release(ids, "source_unavailable", f"circuit of {source.name} is open")
        raise SourceUnavailable(
            f"track source {source.name!r} circuit is open; {len(ids)} flight(s) left queued"
        )
    fetched = stream_tracks(
        source,
        store,
        day,
        run_id,
        ids or None,
        chunk_flights=chunk_flights,
        max_gap_s=max_gap_s,
        max_speed_kt=max_speed_kt,
        min_points=min_points,
    )
    failures = fetched.failures
    settlement = settle_track_failures(
        engine,
        queue,
        breaker,
        failures,
        source_error=fetched.source_error,
        delivered=fetched.flights_with_tracks,
        batch_id=run_id,
    )
    unavailable = {f for f, (cat, _) in failures.items() if cat == "source_unavailable"}
    if fetched.source_error is not None or (unavailable and fetched.flights_with_tracks == 0):
        category, message = fetched.source_error or failures[min(unavailable)]
        raise SourceUnavailable(
            f"track source {source.name!r} failed ({category}): {message}; "
            f"{len(failures)} flight(s) left in the queue"
        )
    store.write_json(
        "selection",
        day,
        run_id,
        {
            "flight_ids": ids,
            "failed": [
                {"flight_id": fid, "category": cat, "message": msg}
                for fid, (cat, msg) in sorted(failures.items())
            ],
        },
    )
    return TrackFetch(
        day, ids, not_held, source.name, fetched, settlement, time.perf_counter() - started
    )


# -- the state of a day ------------------------------------------------------------------------


@dataclass(frozen=True)
class DayState:
    """What the billing database holds for a UTC day, whatever batch wrote it."""

    day: dt.date
    flights_billed: int
    fee_lines: int
    #: billing currency -> total of the day's fee lines
    totals: dict[str, Decimal]
    #: flights of the day waiting in the queue after a failure (``failed``) or given up
    #: (``dead``): ``{flight_id: (category, message)}``
    failed: Failures


def day_state(engine: Engine, day: dt.date) -> DayState:
    """Reads the state of ``day``: billed flights, fee lines and totals per billing currency
    over every batch, and the day's flights failing in the queue."""
    with engine.connect() as conn:
        lines, flights = conn.execute(
            select(func.count(FeeLine.id), func.count(distinct(FeeLine.flight_id))).where(
                FeeLine.flight_date == day
            )
        ).one()
        failed = {
            int(fid): (str(cat or "unknown"), str(msg or ""))
            for fid, cat, msg in conn.execute(
                select(
                    FlightQueueItem.flight_id,
                    FlightQueueItem.error_category,
                    FlightQueueItem.last_error,
                )
                .where(
                    FlightQueueItem.flight_date == day,
                    FlightQueueItem.status.in_(("failed", "dead")),
                )
                .order_by(FlightQueueItem.flight_id)
            )
        }
    totals = fee_line_totals(engine, flight_date=day)
    return DayState(day, int(flights), int(lines), totals, failed)


# -- billing a batch ---------------------------------------------------------------------------


@dataclass
class BatchOutcome:
    """What :func:`bill_batch` did: the batch's delta, its failures of both stages, its
    processing log, and the state of the whole day after it."""

    batch_id: str
    run: BillsRun
    requested: int
    #: flights that failed while their tracks were fetched (they never reach pricing)
    track_failures: Failures
    log_path: Any
    status: str
    day: DayState
    seconds: float
    backfill: bool = False
    #: every failed flight of the batch, both stages
    failures: Failures = field(default_factory=dict)
    #: queue status of each flight that failed pricing or writing (failed, dead, queued)
    statuses: dict[int, str] = field(default_factory=dict)

    @property
    def flights_billed(self) -> int:
        return len(self.run.written)

    @property
    def verdict(self) -> str:
        """``ok`` (no flight failed), ``some_failed``, ``all_failed`` (nothing billed)."""
        if not self.failures:
            return "ok"
        return "all_failed" if not self.run.written else "some_failed"


def new_batch_id(day: dt.date, run_id: str) -> str:
    return f"{day.isoformat()}-{run_id[:8]}-{uuid.uuid4().hex[:6]}"


def bill_batch(
    *,
    engine: Engine,
    queue: FlightQueue,
    store: WorkStore,
    day: dt.date,
    run_id: str,
    run_ids: Sequence[str],
    tariffs: Tariffs,
    fx: FxRates,
    aircraft_types: AircraftTypes,
    logs_dir: Any,
    attributes_csv: str | Path | None = None,
    partition_key: str | None = None,
    keep_logs: int = 100,
    keep_intermediates: dt.timedelta | None = None,
) -> BatchOutcome:
    """Bill the run's zone visits of ``day`` as one processing batch.

    The batch row is written first (``running``: ``flight-fees batches`` follows it), the
    stages write each chunk's fee lines with the deletion of its flights' queue rows, the
    failures go back to the queue, then the processing log (both stages' failures) and the
    batch's final counts are written and old intermediates pruned. ``run_ids``: the run and
    its parents (a re-execution reads its parent's frames). A run without selected flights
    is a whole-day backfill: invoiced flights are left alone.
    """
    started = time.perf_counter()
    batch_id = new_batch_id(day, run_id)
    log = ProcessingLog(
        batch_id=batch_id,
        started_at=dt.datetime.now(dt.UTC),
        run_id=run_id,
        partition_key=partition_key,
    )
    selection = store.read_json("selection", day, run_ids) or {}
    track_failures: Failures = {
        int(f["flight_id"]): (str(f["category"]), str(f["message"]))
        for f in selection.get("failed", [])
    }
    requested = store.count_rows("flight_attributes", day, run_ids) + len(track_failures)
    start_batch(
        engine, batch_id, run_id=run_id, day=day, requested=requested, started_at=log.started_at
    )
    backfill = not selection.get("flight_ids")
    run = stream_bills(
        engine,
        store,
        day,
        run_ids,
        tariffs=tariffs,
        fx=fx,
        aircraft_types=aircraft_types,
        attributes_csv=attributes_csv,
        batch_id=batch_id,
        backfill=backfill,
    )
    statuses = (
        record_flight_failures(engine, queue, run.failures, batch_id=run_id) if run.failures else {}
    )
    elapsed = time.perf_counter() - started
    per_flight = elapsed / max(1, len(run.written))
    failures = {**track_failures, **run.failures}
    log.processed = [
        FlightTiming(fid, n, round(per_flight, 4)) for fid, n in sorted(run.written.items())
    ]
    log.failed = [
        {"flight_id": fid, "category": cat, "message": msg}
        for fid, (cat, msg) in sorted(failures.items())
    ]
    log.summary = {
        "fee_lines": run.lines,
        "totals": {k: str(v) for k, v in run.totals.items()},
    }
    log.finished_at = dt.datetime.now(dt.UTC)
    log_path = write_processing_log(log, logs_dir, keep=keep_logs)
    status = finish_batch(
        engine,
        batch_id,
        run_id=run_id,
        day=day,
        started_at=log.started_at,
        finished_at=log.finished_at,
        requested=requested,
        billed=len(log.processed),
        failed=len(log.failed),
        fee_lines=run.lines,
    )
    if keep_intermediates is not None:
        store.prune(keep_intermediates)
    return BatchOutcome(
        batch_id=batch_id,
        run=run,
        requested=requested,
        track_failures=track_failures,
        log_path=log_path,
        status=status,
        day=day_state(engine, day),
        seconds=time.perf_counter() - started,
        backfill=backfill,
        failures=failures,
        statuses=statuses,
    )


# -- the day of a flight -----------------------------------------------------------------------


def known_flight_days(
    engine: Engine, flight_ids: Sequence[int], source: TrackSource | None = None
) -> tuple[dict[int, dt.date], list[int]]:
    """The UTC day of each flight: given when it was queued, else of its earlier processing,
    else of its first track position in ``source``. Returns ``({flight_id: day}, undatable
    flight ids)``."""
    ids = [int(f) for f in flight_ids]
    days: dict[int, dt.date] = {}
    with engine.connect() as conn:
        for fid, day in conn.execute(
            select(FlightQueueItem.flight_id, FlightQueueItem.flight_date).where(
                FlightQueueItem.flight_id.in_(ids), FlightQueueItem.flight_date.is_not(None)
            )
        ):
            days[int(fid)] = day
        for fid, day in conn.execute(
            select(Flight.flight_id, Flight.flight_date).where(
                Flight.flight_id.in_(ids), Flight.flight_date.is_not(None)
            )
        ):
            days.setdefault(int(fid), day)
    missing = [f for f in ids if f not in days]
    if missing and source is not None:
        days.update({int(k): v for k, v in source.flight_days(missing).items()})
    return days, [f for f in ids if f not in days]
