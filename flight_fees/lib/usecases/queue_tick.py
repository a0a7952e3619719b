"""One tick of the queue: claim queued flights and plan one processing run per UTC day and
priority lane — what the queue sensor does every 30 s, and what ``flight-fees demo`` does
once, so that both take the same decisions."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flight_fees.lib.ops.claims import chunked, group_by_day

if TYPE_CHECKING:
    from flight_fees.lib.ops.breaker import CircuitBreaker
    from flight_fees.lib.ops.queue import FlightQueue
    from flight_fees.lib.tracks.base import TrackSource

#: flights claimed per tick (a run handles hundreds of flights in one vectorised pass)
DEFAULT_CLAIM_BATCH = 5_000
#: largest number of flights in one run (bounds a failed run's blast radius; memory is bounded
#: by the run's chunks)
DEFAULT_MAX_FLIGHTS_PER_RUN = 2_500
#: no new claim while this many runs wait to start: flights stay queued (claimable by
#: whoever has capacity) instead of aging in claims that runs adopt late
DEFAULT_MAX_WAITING_RUNS = 4


@dataclass(frozen=True)
class PlannedRun:
    """One processing run to request: a day partition, its flights and priority."""

    claim_id: str
    day: dt.date
    flight_ids: tuple[int, ...]
    priority: str
    run_priority: int
    part: int

    @property
    def run_key(self) -> str:
        """Unique per claim, day, lane and part (run keys are never reused)."""
        return f"claim-{self.claim_id}-{self.day.isoformat()}-{self.priority}-{self.part}"


@dataclass(frozen=True)
class QueueTick:
    """The outcome of :func:`queue_tick`: runs to request, or why nothing was claimed."""

    claim_id: str
    claimed: int = 0
    runs: list[PlannedRun] = field(default_factory=list)
    #: flights that could not be dated (failed ``not_found``)
    undatable: dict[int, str] = field(default_factory=dict)
    #: flights whose day is outside the processable days (failed ``bad_date``, final)
    out_of_range: list[int] = field(default_factory=list)
    #: set when the tick claimed nothing, with the reason (source circuit open, back
    #: pressure, empty queue)
    skipped: str | None = None


def queue_tick(
    queue: FlightQueue,
    *,
    source: TrackSource | None = None,
    breaker: CircuitBreaker | None = None,
    claim_batch: int = DEFAULT_CLAIM_BATCH,
    max_flights_per_run: int = DEFAULT_MAX_FLIGHTS_PER_RUN,
    waiting_runs: int = 0,
    max_waiting_runs: int = DEFAULT_MAX_WAITING_RUNS,
    valid_day: Callable[[dt.date], bool] = lambda day: True,
    day_range: str = "",
    claimant: str = "sensor",
    after_claim: Callable[[], None] | None = None,
) -> QueueTick:
    """Claim up to ``claim_batch`` queued flights (high priority first) under
    ``<claimant>:<claim id>`` and plan their runs.

    Nothing is claimed while the source's circuit is open or ``waiting_runs`` reached
    ``max_waiting_runs``. Flights queued without a day are dated by ``source`` (their first
    position); those it cannot date fail ``not_found``, those on a day ``valid_day`` refuses
    fail ``bad_date`` for good (``day_range`` describes the valid days in the message). Each
    day and priority lane becomes runs of at most ``max_flights_per_run`` flights.
    ``after_claim`` runs right after the claim commits (a test hook of the fault suite).
    """
    claim_id = uuid.uuid4().hex[:16]
    if breaker is not None and not breaker.allow():
        state = breaker.state()
        name = source.name if source is not None else "track source"
        return QueueTick(
            claim_id,
            skipped=f"track source {name!r} circuit is {state.state} after "
            f"{state.consecutive_failures} failures ({state.last_error}); retry in "
            f"{state.retry_after_s:.0f} s; flights stay queued",
        )
    if waiting_runs >= max_waiting_runs:
        return QueueTick(
            claim_id,
            skipped=f"{waiting_runs} process_flights run(s) waiting to start (limit "
            f"{max_waiting_runs}); flights stay queued until the runs catch up",
        )
    claimed = queue.claim(f"{claimant}:{claim_id}", claim_batch)
    if not claimed:
        stats = queue.stats(last_errors=0)
        waiting = ", ".join(f"{n} {s}" for s, n in sorted(stats.by_status.items())) or "empty"
        return QueueTick(claim_id, skipped=f"no claimable flight in the queue ({waiting})")
    if after_claim is not None:
        after_claim()
    requests, undatable = group_by_day(claimed, source.flight_days if source is not None else None)
    for flight_id, reason in undatable.items():
        queue.fail(flight_id, "not_found", reason)
    runs: list[PlannedRun] = []
    out_of_range: list[int] = []
    for request in requests:
        if not valid_day(request.day):
            out_of_range.extend(request.flight_ids)
            continue
        for part, ids in enumerate(chunked(request.flight_ids, max_flights_per_run)):
            runs.append(
                PlannedRun(
                    claim_id,
                    request.day,
                    tuple(ids),
                    request.priority,
                    request.run_priority,
                    part,
                )
            )
    for flight_id in out_of_range:
        queue.fail(
            flight_id,
            "bad_date",
            f"flight day outside the processable days{f' ({day_range})' if day_range else ''}",
            retryable=False,
        )
    return QueueTick(claim_id, len(claimed), runs, dict(undatable), out_of_range)
