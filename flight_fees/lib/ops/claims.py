"""Turning claimed queue rows into processing requests: one request per UTC day, high-priority
flights first. Pure functions (no Dagster); the queue sensor wraps them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from flight_fees.lib.db.models import PRIORITY_RANK
from flight_fees.lib.ops.queue import ClaimedFlight

#: Dagster run priority per queue priority (higher runs first in the run queue)
RUN_PRIORITY = {"high": 10, "normal": 0, "low": -10}


@dataclass(frozen=True)
class DayRequest:
    day: dt.date
    flight_ids: tuple[int, ...]
    priority: str

    @property
    def run_priority(self) -> int:
        return RUN_PRIORITY[self.priority]


def group_by_day(
    claimed: Sequence[ClaimedFlight],
    locate: Callable[[Sequence[int]], Mapping[int, dt.date]] | None = None,
) -> tuple[list[DayRequest], dict[int, str]]:
    """Group claimed flights by their UTC day and priority lane.

    Flights queued without a date are located with ``locate`` (the track source's first
    position of each flight). Returns the requests, highest priority first, and the flights
    that could not be placed (flight_id -> reason).
    """
    undated = [c.flight_id for c in claimed if c.flight_date is None]
    located: Mapping[int, dt.date] = locate(undated) if (undated and locate) else {}
    unplaced: dict[int, str] = {}
    groups: dict[tuple[int, dt.date], list[int]] = {}
    for c in claimed:
        day = c.flight_date or located.get(c.flight_id)
        if day is None:
            unplaced[c.flight_id] = "no track position found to date the flight"
            continue
        groups.setdefault((PRIORITY_RANK[c.priority], day), []).append(c.flight_id)
    rank_to_priority = {v: k for k, v in PRIORITY_RANK.items()}
    requests = [
        DayRequest(day, tuple(ids), rank_to_priority[rank])
        for (rank, day), ids in sorted(groups.items())
    ]
    return requests, unplaced


def chunked(values: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
