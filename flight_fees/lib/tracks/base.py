"""Contracts shared by every track source: result types, failure categories, the Tracks frame.

A *track source* answers "give me the positions of these flights". It never raises for a
problem that concerns some flights only: such flights land in :attr:`TrackFetchResult.failures`
with a category, and the flights that were fetched completely are returned. Whole-source
problems that leave no per-flight answer (``ping``, listing the flights of a day) raise
:class:`TrackSourceError`, which carries a category too.

Failure categories (``FetchFailure.category``):

- ``timeout``: the query (or the HTTP request) exceeded its time budget.
- ``not_found``: the source has no position for the flight (in the requested window).
- ``query_error``: the source rejected the query (SQL error, missing table or column...).
  Never retried: the same query fails the same way.
- ``partial_result``: the source answered without all of its servers / segments. Partial
  data is never returned: the flights concerned are failed.
- ``source_unavailable``: the source cannot be reached (connection refused, DNS, HTTP 5xx,
  authentication rejected, circuit open).
- ``bad_track``: the track is unusable after cleaning (too few points); set by
  :func:`flight_fees.lib.tracks.cleaning.clean_tracks`.
- ``corrupt_file``: a file of the track store that may hold the flight cannot be read. Only
  the flights of that file fail (never retried: the file must be repaired), the others are
  delivered.

Whole-source faults (:data:`SOURCE_FAULT_CATEGORIES`: ``timeout``, ``partial_result``,
``source_unavailable``) say nothing about the flight: its attempt is not counted and the
source's circuit breaker is fed (:func:`flight_fees.lib.billing.fee_lines.settle_track_failures`).
The
other categories are about the flight's own data and count as an attempt.
"""

from __future__ import annotations

import datetime as dt
import operator
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from flight_fees.lib.core.timeutil import as_utc

FailureCategory = Literal[
    "timeout",
    "not_found",
    "query_error",
    "partial_result",
    "source_unavailable",
    "bad_track",
    "corrupt_file",
]

TIMEOUT: Final = "timeout"
NOT_FOUND: Final = "not_found"
QUERY_ERROR: Final = "query_error"
PARTIAL_RESULT: Final = "partial_result"
SOURCE_UNAVAILABLE: Final = "source_unavailable"
BAD_TRACK: Final = "bad_track"
CORRUPT_FILE: Final = "corrupt_file"

FAILURE_CATEGORIES: Final = frozenset(
    {TIMEOUT, NOT_FOUND, QUERY_ERROR, PARTIAL_RESULT, SOURCE_UNAVAILABLE, BAD_TRACK, CORRUPT_FILE}
)
#: categories a source retries by itself (with exponential back-off and jitter)
RETRYABLE_FETCH_CATEGORIES: Final = frozenset({TIMEOUT, SOURCE_UNAVAILABLE, PARTIAL_RESULT})
#: faults of the whole source, not of a flight: no attempt counted, the breaker is fed
SOURCE_FAULT_CATEGORIES: Final = frozenset({TIMEOUT, SOURCE_UNAVAILABLE, PARTIAL_RESULT})

#: columns every Tracks frame has, in this order
REQUIRED_COLUMNS: Final = ("flight_id", "ts", "lat", "lon", "alt_ft")
#: optional string attributes, present when the source has them
ATTRIBUTE_COLUMNS: Final = (
    "callsign",
    "registration",
    "aircraft_type",
    "icao24",
    "origin",
    "destination",
)
TRACK_COLUMNS: Final = REQUIRED_COLUMNS + ATTRIBUTE_COLUMNS
#: dtype of the attribute columns: pandas' default string dtype (missing values are NaN)
ATTRIBUTE_DTYPE: Final = pd.StringDtype(na_value=np.nan)
#: string values that mean "no value" (Pinot's default null value for STRING is "null")
STRING_NULL_SENTINELS: Final = ("", "null", "NULL", "None")
#: a flight id is a positive signed 64-bit integer
MAX_FLIGHT_ID: Final = 2**63 - 1


class TrackSourceError(Exception):
    """The whole source failed (not a single flight); ``category`` says how."""

    def __init__(self, message: str, *, category: str = SOURCE_UNAVAILABLE) -> None:
        if category not in FAILURE_CATEGORIES:
            raise ValueError(f"unknown failure category {category!r}")
        super().__init__(message)
        self.category = category
        self.message = message

    def __str__(self) -> str:
        return f"[{self.category}] {self.message}"

    def as_failure(self) -> FetchFailure:
        return FetchFailure(self.category, self.message)


@dataclass(frozen=True)
class FetchFailure:
    """Why the track of one flight could not be delivered."""

    category: str
    message: str


@dataclass
class TrackFetchResult:
    """What a fetch delivered.

    ``tracks`` holds complete tracks only (a Tracks frame ordered by ``flight_id, ts``);
    every requested flight absent from it has an entry in ``failures``. ``queries`` counts the
    queries sent to the source, retries included. ``stats`` holds source-specific counters.
    """

    tracks: pd.DataFrame
    failures: dict[int, FetchFailure] = field(default_factory=dict)
    queries: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def flight_ids(self) -> list[int]:
        """The flights that came back (sorted)."""
        return [int(f) for f in pd.unique(self.tracks["flight_id"])]

    @property
    def ok(self) -> bool:
        return not self.failures

    def failures_by_category(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for flight_id, failure in sorted(self.failures.items()):
            out.setdefault(failure.category, []).append(flight_id)
        return out


@runtime_checkable
class TrackSource(Protocol):
    """Anything that delivers tracks (Parquet store, Pinot, ...)."""

    name: str

    def fetch(
        self,
        flight_ids: Sequence[int],
        *,
        day: dt.date | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> TrackFetchResult:
        """Complete tracks of ``flight_ids``: ``day`` = departure day, [start, end) = window."""
        ...

    def fetch_day(self, day: dt.date) -> TrackFetchResult:
        """Every flight whose first position is on the UTC ``day``, with its full track."""
        ...

    def flight_ids_for_day(self, day: dt.date) -> list[int]:
        """The flights whose first position is on the UTC ``day`` (sorted)."""
        ...

    def ping(self) -> None:
        """Raise :class:`TrackSourceError` when the source cannot serve queries."""
        ...

    def flight_days(self, flight_ids: Sequence[int]) -> dict[int, dt.date]:
        """The UTC departure day (day of the first position) of each flight found."""
        ...

    @property
    def description(self) -> str:
        """One line naming the source and where it reads (for ``flight-fees doctor``)."""
        ...

    def close(self) -> None:
        """Release connections (no-op unless the source holds any)."""
        ...


class BaseTrackSource(ABC):
    """Shared behaviour of the built-in sources; a context manager that closes the source."""

    name: str = "base"

    @abstractmethod
    def fetch(
        self,
        flight_ids: Sequence[int],
        *,
        day: dt.date | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> TrackFetchResult: ...

    @abstractmethod
    def fetch_day(self, day: dt.date) -> TrackFetchResult: ...

    @abstractmethod
    def flight_ids_for_day(self, day: dt.date) -> list[int]: ...

    @abstractmethod
    def ping(self) -> None: ...

    @property
    def description(self) -> str:
        """One line naming the source and where it reads (for ``flight-fees doctor``)."""
        return self.name

    @abstractmethod
    def flight_days(self, flight_ids: Sequence[int]) -> dict[int, dt.date]:
        """The UTC departure day (day of the first position) of each flight found."""

    def close(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Release connections (no-op unless the source holds any)."""

    def __enter__(self) -> BaseTrackSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- validation ------------------------------------------------------------------------------


def validate_flight_ids(flight_ids: Iterable[Any]) -> list[int]:
    """Flight ids as distinct Python ints, in first-seen order.

    Only integers (Python or NumPy, not bool) in 1 .. 2^63-1 are accepted: ids are spliced
    into SQL, so nothing else may pass.
    """
    if isinstance(flight_ids, str | bytes):
        raise TypeError("flight_ids must be a sequence of integers, not a string")
    out: dict[int, None] = {}
    for raw in flight_ids:
        if isinstance(raw, bool | np.bool_):
            raise TypeError(f"not a flight id: {raw!r}")
        try:
            value = operator.index(raw)
        except TypeError:
            raise TypeError(f"not a flight id (integer expected): {raw!r}") from None
        if not 0 < value <= MAX_FLIGHT_ID:
            raise ValueError(f"flight id out of range (1 .. 2^63-1): {raw!r}")
        out[value] = None
    return list(out)


def day_start(day: dt.date) -> dt.datetime:
    """Midnight UTC at the start of ``day`` (a datetime is reduced to its UTC date)."""
    if isinstance(day, dt.datetime):
        day = as_utc(day).date()
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def resolve_window(
    day: dt.date | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    max_flight_duration: dt.timedelta,
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The half-open time window [lo, hi) of positions to read.

    ``day`` (departure day) spans ``[day, day + 1 d + max_flight_duration)``: a flight that
    departs before midnight may land the next day. Explicit ``start`` / ``end`` override the
    bound they name. ``None`` means unbounded.
    """
    lo = as_utc(start) if start is not None else None
    hi = as_utc(end) if end is not None else None
    if day is not None:
        d0 = day_start(day)
        lo = lo if lo is not None else d0
        hi = hi if hi is not None else d0 + dt.timedelta(days=1) + max_flight_duration
    if lo is not None and hi is not None and hi <= lo:
        raise ValueError(f"empty time window: start {lo.isoformat()} >= end {hi.isoformat()}")
    return lo, hi


def epoch_ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch of an aware (or naive-UTC) datetime, exactly."""
    delta = as_utc(value) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


# -- the Tracks frame --------------------------------------------------------------------------


def empty_tracks(attributes: Iterable[str] = ()) -> pd.DataFrame:
    """A Tracks frame without rows (``ts`` in microseconds, UTC)."""
    data: dict[str, pd.Series] = {
        "flight_id": pd.Series([], dtype="int64"),
        "ts": pd.Series([], dtype="datetime64[us, UTC]"),
        "lat": pd.Series([], dtype="float64"),
        "lon": pd.Series([], dtype="float64"),
        "alt_ft": pd.Series([], dtype="float64"),
    }
    for name in ATTRIBUTE_COLUMNS:
        if name in set(attributes):
            data[name] = pd.Series([], dtype=ATTRIBUTE_DTYPE)
    return pd.DataFrame(data)


def to_utc_timestamps(values: pd.Series) -> pd.Series:
    """Timestamps as ``datetime64[*, UTC]``.

    Accepts datetimes (naive = UTC), epoch milliseconds (integers or floats) and strings such as
    Pinot's zone-less ``"2024-03-01 12:34:56.0"`` (read as UTC) or ISO 8601 with an offset.
    Unparseable values become NaT.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        ms = pd.to_numeric(values, errors="coerce").astype("float64")
        return pd.to_datetime(ms, unit="ms", utc=True, errors="coerce").astype(
            "datetime64[ms, UTC]"
        )
    # object / string: numbers (epoch ms) and strings may be mixed
    numeric = pd.to_numeric(values, errors="coerce")
    is_num = numeric.notna().to_numpy()
    if is_num.all():
        return to_utc_timestamps(numeric)
    text = values.astype(ATTRIBUTE_DTYPE)
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    if is_num.any():
        from_ms = pd.to_datetime(numeric.where(is_num), unit="ms", utc=True, errors="coerce")
        parsed = parsed.where(~is_num, from_ms.astype(parsed.dtype))
    return parsed


def usable_positions(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Where a position is usable: finite lat/lon in range, and not the (0, 0) null sentinel."""
    with np.errstate(invalid="ignore"):
        return (
            np.isfinite(lat)
            & np.isfinite(lon)
            & (np.abs(lat) <= 90.0)
            & (np.abs(lon) <= 180.0)
            & ~((lat == 0.0) & (lon == 0.0))
        )


def normalise_tracks(
    frame: pd.DataFrame, *, attributes: Iterable[str] | None = None
) -> tuple[pd.DataFrame, int]:
    """Coerce a raw frame to the Tracks contract and drop unusable rows.

    Rows are dropped when ``flight_id`` is missing or not positive, ``ts`` is missing, or
    the position is a null sentinel: non-finite lat/lon (Pinot stores null DOUBLEs as
    ``-Infinity``), lat/lon out of range, or exactly (0, 0). A non-finite ``alt_ft`` becomes
    NaN (the row stays). Attribute strings equal to a null sentinel (``"null"``, ``""``)
    become missing. The result is sorted by ``flight_id, ts`` (stable) with a fresh index;
    ``ts`` is ``datetime64[us, UTC]``.
    Returns ``(frame, rows_dropped)``.
    """
    wanted = (
        [c for c in ATTRIBUTE_COLUMNS if c in frame.columns]
        if attributes is None
        else [c for c in ATTRIBUTE_COLUMNS if c in set(attributes)]
    )
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"track frame lacks required columns: {', '.join(missing)}")
    if frame.empty:
        return empty_tracks(wanted), 0

    fid = frame["flight_id"]
    if not pd.api.types.is_integer_dtype(fid.dtype):  # keep 64-bit ids exact when possible
        fid = pd.to_numeric(fid, errors="coerce")
    ts = to_utc_timestamps(frame["ts"]).astype("datetime64[us, UTC]")  # one unit everywhere
    lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    alt = pd.to_numeric(frame["alt_ft"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    alt = np.where(np.isfinite(alt), alt, np.nan)

    keep = (
        (fid > 0).to_numpy(dtype=bool, na_value=False)  # Pinot's null LONG is -2^63
        & ts.notna().to_numpy()
        & usable_positions(lat, lon)
    )
    out = pd.DataFrame(
        {
            "flight_id": fid.to_numpy()[keep].astype("int64"),
            "ts": ts[keep].reset_index(drop=True),
            "lat": lat[keep],
            "lon": lon[keep],
            "alt_ft": alt[keep],
        }
    )
    for name in wanted:
        if name in frame.columns:
            col = frame[name][keep].reset_index(drop=True).astype(ATTRIBUTE_DTYPE)
            col = col.str.strip().where(~col.str.strip().isin(STRING_NULL_SENTINELS))
            out[name] = col.astype(ATTRIBUTE_DTYPE)
        else:
            out[name] = pd.Series(pd.NA, index=out.index, dtype=ATTRIBUTE_DTYPE)
    out = out.sort_values(["flight_id", "ts"], kind="stable", ignore_index=True)
    return out, int((~keep).sum())


def not_found_failures(
    requested: Iterable[int], found: Iterable[int], message: str
) -> dict[int, FetchFailure]:
    """``not_found`` failures for the requested flights that are not in ``found``."""
    present = set(found)
    return {f: FetchFailure(NOT_FOUND, message) for f in requested if f not in present}
