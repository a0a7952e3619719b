"""Track cleaning: pure, vectorised, reported per flight.

:func:`clean_tracks` applies, per flight and in this order:

1. sort by ``flight_id, ts``;
2. drop out-of-range positions (missing time, non-finite or out-of-range lat/lon, (0, 0));
3. drop duplicate timestamps (the first row of a timestamp is kept);
4. drop teleports: a point whose implied ground speed from the **last kept point** exceeds
   ``max_speed_kt``. This is the greedy left-to-right rule, computed without a per-point loop:
   every "anchor" (a kept point followed by a too-fast hop) gets the first later point that is
   reachable from it at a plausible speed (searched in doubling windows), and the anchors that
   the greedy chain really visits are resolved by a few passes of running maxima over the
   anchors only. A bad *first* point (too fast to the second, while second -> third is fine)
   is dropped too, else the greedy rule would keep it and drop the rest of the track;
5. count gaps longer than ``max_gap_s`` between consecutive kept points (flagged, not filled);
6. flights with fewer than ``min_points`` points left fail with category ``bad_track`` and are
   removed from the cleaned frame.

:func:`check_track_input` is the same cleaning for a tracks file outside the pipeline (the
``crossings`` command), with a report of what is wrong with the input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from flight_fees.lib.tracks.base import (
    BAD_TRACK,
    REQUIRED_COLUMNS,
    FetchFailure,
    usable_positions,
)

EARTH_RADIUS_NM: Final = 3440.065
REPORT_COLUMNS: Final = (
    "flight_id",
    "points_in",
    "points_out",
    "duplicates_dropped",
    "out_of_range_dropped",
    "teleports_dropped",
    "gaps",
    "max_gap_s",
    "too_few_points",
)
#: passes of the bad-first-point rule (each drops at most one leading point per flight)
_HEAD_PASSES: Final = 5
#: bound on the (anchors x window) matrix of one search step
_SEARCH_CELLS: Final = 4_000_000


@dataclass
class CleaningResult:
    """Cleaned tracks, one report row per input flight, ``bad_track`` failures."""

    tracks: pd.DataFrame
    report: pd.DataFrame
    failures: dict[int, FetchFailure] = field(default_factory=dict)


def haversine_nm(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in nautical miles between points given in **radians**."""
    a = (
        np.sin((lat2 - lat1) / 2.0) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2.0) ** 2
    )
    return 2.0 * EARTH_RADIUS_NM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _speed_kt(
    i: np.ndarray, j: np.ndarray, t_s: np.ndarray, lat: np.ndarray, lon: np.ndarray
) -> np.ndarray:
    """Implied ground speed (kt) from point ``i`` to point ``j`` (``t[j] > t[i]``)."""
    hours = (t_s[j] - t_s[i]) / 3600.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return haversine_nm(lat[i], lon[i], lat[j], lon[j]) / hours


def _flight_bounds(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index of each run of equal ``group`` values and, per point, its run's end."""
    n = group.size
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if n else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], n]
    run = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, n]))
    return starts, ends[run]


def _drop_bad_heads(
    group: np.ndarray, t_s: np.ndarray, lat: np.ndarray, lon: np.ndarray, max_kt: float
) -> np.ndarray:
    """Mask of leading points to drop: p0 -> p1 too fast while p1 -> p2 is plausible."""
    n = group.size
    keep_idx = np.arange(n)
    for _ in range(_HEAD_PASSES):
        g = group[keep_idx]
        starts, end_of = _flight_bounds(g)
        s = starts[(starts + 2 < g.size)]
        s = s[s + 2 < end_of[s]]
        if s.size == 0:
            break
        i0, i1, i2 = keep_idx[s], keep_idx[s + 1], keep_idx[s + 2]
        bad = (_speed_kt(i0, i1, t_s, lat, lon) > max_kt) & (
            _speed_kt(i1, i2, t_s, lat, lon) <= max_kt
        )
        if not bad.any():
            break
        keep_mask = np.ones(keep_idx.size, bool)
        keep_mask[s[bad]] = False
        keep_idx = keep_idx[keep_mask]
    dropped = np.ones(n, bool)
    dropped[keep_idx] = False
    return dropped


def _next_reachable(
    anchors: np.ndarray,
    flight_end: np.ndarray,
    t_s: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    max_kt: float,
) -> np.ndarray:
    """For each anchor ``a``: the first ``k > a + 1`` of its flight with speed(a, k) <= max,
    else the flight's end (exclusive). Searched in doubling windows, vectorised over anchors."""
    nxt = np.empty(anchors.size, dtype=np.int64)
    todo = np.arange(anchors.size)
    offset, width = 2, 8
    n = t_s.size
    while todo.size:
        a, end = anchors[todo], flight_end[anchors[todo]]
        width = max(1, min(width, _SEARCH_CELLS // todo.size))
        k = a[:, None] + np.arange(offset, offset + width)[None, :]
        inside = k < end[:, None]
        kc = np.minimum(k, n - 1)
        ok = inside & (
            _speed_kt(np.broadcast_to(a[:, None], kc.shape), kc, t_s, lat, lon) <= max_kt
        )
        found = ok.any(axis=1)
        first = ok.argmax(axis=1)
        nxt[todo[found]] = k[found, first[found]]
        exhausted = ~found & ~inside[:, -1]
        nxt[todo[exhausted]] = end[exhausted]
        todo = todo[~found & ~exhausted]
        offset += width
        width *= 2
    return nxt


def _greedy_teleports(
    group: np.ndarray, t_s: np.ndarray, lat: np.ndarray, lon: np.ndarray, max_kt: float
) -> np.ndarray:
    """Mask of points the greedy "speed from the last kept point" rule drops."""
    n = group.size
    if n < 2:
        return np.zeros(n, bool)
    _, flight_end = _flight_bounds(group)
    idx = np.arange(n - 1)
    same = group[1:] == group[:-1]
    too_fast = same & (_speed_kt(idx, idx + 1, t_s, lat, lon) > max_kt)
    anchors = np.flatnonzero(too_fast)
    if anchors.size == 0:
        return np.zeros(n, bool)
    nxt = _next_reachable(anchors, flight_end, t_s, lat, lon, max_kt)

    # Which anchors does the greedy chain visit? An anchor is visited unless it lies strictly
    # inside (a, nxt[a]) of a visited anchor a. Intervals never cross flights.
    active = np.arange(anchors.size)
    while True:
        a, b = anchors[active], nxt[active]
        before = np.maximum.accumulate(np.r_[-1, b[:-1]])
        sure = a >= before  # no earlier interval covers it: visited
        before_sure = np.maximum.accumulate(np.r_[-1, np.where(sure, b, -1)[:-1]])
        skipped = a < before_sure  # inside a visited anchor's interval
        if not (~sure & ~skipped).any():
            visited = active[sure]
            break
        active = active[~skipped]

    diff = np.zeros(n + 1, dtype=np.int64)
    np.add.at(diff, anchors[visited] + 1, 1)
    np.add.at(diff, nxt[visited], -1)
    return np.cumsum(diff[:n]) > 0


def _epoch_ns(ts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps as int64 ns since the epoch (UTC) and a NaT mask."""
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(ts.dtype):
        ts = pd.to_datetime(ts, utc=True, errors="coerce").dt.tz_localize(None)
    values = ts.to_numpy(dtype="datetime64[ns]")
    nat = np.isnat(values)
    return values.astype(np.int64), nat


def empty_report() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "flight_id": pd.Series([], dtype="int64"),
            **{c: pd.Series([], dtype="int64") for c in REPORT_COLUMNS[1:7]},
            "max_gap_s": pd.Series([], dtype="float64"),
            "too_few_points": pd.Series([], dtype="bool"),
        }
    )


def clean_tracks(
    tracks: pd.DataFrame,
    *,
    max_gap_s: float = 600.0,
    max_speed_kt: float = 1200.0,
    min_points: int = 10,
) -> CleaningResult:
    """Clean a Tracks frame (see the module doc); the input is not modified.

    The report has one row per input flight (sorted by ``flight_id``): ``points_in``,
    ``points_out`` (after cleaning, before the minimum-points rule), ``duplicates_dropped``,
    ``out_of_range_dropped``, ``teleports_dropped``, ``gaps`` (consecutive kept points more
    than ``max_gap_s`` apart), ``max_gap_s`` (largest interval, 0 for < 2 points) and
    ``too_few_points``. Flights with ``too_few_points`` are left out of ``tracks`` and get a
    ``bad_track`` failure.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in tracks.columns]
    if missing:
        raise ValueError(f"track frame lacks required columns: {', '.join(missing)}")
    if tracks.empty:
        return CleaningResult(tracks.iloc[0:0].reset_index(drop=True), empty_report(), {})

    df = tracks.sort_values(["flight_id", "ts"], kind="stable", ignore_index=True)
    fid = df["flight_id"].to_numpy(dtype=np.int64)
    flight_ids, flight_of, points_in = np.unique(fid, return_inverse=True, return_counts=True)
    n_flights = flight_ids.size
    ns, nat = _epoch_ns(df["ts"])
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)

    # 2. out of range
    valid = ~nat & usable_positions(lat, lon)
    out_of_range = np.bincount(flight_of[~valid], minlength=n_flights)
    rows = np.flatnonzero(valid)

    # 3. duplicate timestamps (sorted: duplicates are adjacent)
    dup = np.r_[False, (fid[rows][1:] == fid[rows][:-1]) & (ns[rows][1:] == ns[rows][:-1])]
    dup = dup[: rows.size]  # no usable row at all: nothing is a duplicate
    duplicates = np.bincount(flight_of[rows[dup]], minlength=n_flights)
    rows = rows[~dup]

    # 4. teleports
    group = flight_of[rows]
    t_s = (ns[rows] - (ns[rows].min() if rows.size else 0)).astype(np.float64) / 1e9
    lat_r, lon_r = np.radians(lat[rows]), np.radians(lon[rows])
    head = _drop_bad_heads(group, t_s, lat_r, lon_r, max_speed_kt)
    sub = np.flatnonzero(~head)
    tele_sub = _greedy_teleports(group[sub], t_s[sub], lat_r[sub], lon_r[sub], max_speed_kt)
    tele = head.copy()
    tele[sub[tele_sub]] = True
    teleports = np.bincount(group[tele], minlength=n_flights)
    rows = rows[~tele]

    # 5. gaps
    group = flight_of[rows]
    points_out = np.bincount(group, minlength=n_flights)
    same = group[1:] == group[:-1]
    step_s = (ns[rows][1:] - ns[rows][:-1]).astype(np.float64)[same] / 1e9
    step_flight = group[1:][same]
    gaps = np.bincount(step_flight[step_s > max_gap_s], minlength=n_flights)
    max_gap = np.zeros(n_flights)
    np.maximum.at(max_gap, step_flight, step_s)

    # 6. minimum points
    too_few = points_out < min_points
    cleaned = df.iloc[rows[~too_few[group]]].reset_index(drop=True)
    report = pd.DataFrame(
        {
            "flight_id": flight_ids.astype(np.int64),
            "points_in": points_in.astype(np.int64),
            "points_out": points_out.astype(np.int64),
            "duplicates_dropped": duplicates.astype(np.int64),
            "out_of_range_dropped": out_of_range.astype(np.int64),
            "teleports_dropped": teleports.astype(np.int64),
            "gaps": gaps.astype(np.int64),
            "max_gap_s": max_gap,
            "too_few_points": too_few,
        }
    )
    failures = {
        int(f): FetchFailure(
            BAD_TRACK, f"{int(p)} usable points after cleaning (minimum {min_points})"
        )
        for f, p in zip(flight_ids[too_few], points_out[too_few], strict=True)
    }
    return CleaningResult(cleaned, report, failures)


@dataclass
class TrackInputCheck:
    """Tracks cleaned exactly as the pipeline cleans them (:func:`clean_tracks`), and what
    was wrong with the input (see :func:`check_track_input`)."""

    cleaning: CleaningResult
    #: per flight with kept positions outside every FIR: ``flight_id, positions, lat, lon``
    #: (``lat, lon``: the first such position)
    outside_firs: pd.DataFrame
    min_points: int
    max_speed_kt: float

    @property
    def tracks(self) -> pd.DataFrame:
        return self.cleaning.tracks

    def problems(self) -> list[str]:
        """What makes the result incomplete: positions out of range, unusable flights,
        positions outside every FIR (a caller warns and fails)."""
        report = self.cleaning.report
        out: list[str] = []
        bad = report[report["out_of_range_dropped"] > 0]
        if len(bad):
            out.append(
                f"{int(bad['out_of_range_dropped'].sum()):,} position(s) of {len(bad):,} "
                "flight(s) missing, at (0, 0) or outside lat [-90, 90] / lon [-180, 180]: "
                f"dropped (flight(s) {_some(bad['flight_id'])})"
            )
        if self.cleaning.failures:
            out.append(
                f"{len(self.cleaning.failures):,} flight(s) with fewer than {self.min_points} "
                f"usable positions left out: {_some(sorted(self.cleaning.failures))}"
            )
        outside = self.outside_firs
        if len(outside):
            first = outside.iloc[0]
            out.append(
                f"{int(outside['positions'].sum()):,} position(s) of {len(outside):,} flight(s) "
                f"outside every FIR (e.g. flight {int(first['flight_id'])} at "
                f"lat {first['lat']:.4f}, lon {first['lon']:.4f}): no crossing is computed there"
            )
        return out

    def notes(self) -> list[str]:
        """What cleaning dropped as the pipeline does (not an error)."""
        report = self.cleaning.report
        out: list[str] = []
        if (n := int(report["duplicates_dropped"].sum())) > 0:
            out.append(
                f"{n:,} position(s) with an already seen timestamp dropped (the first of each "
                "timestamp is kept, as in the pipeline)"
            )
        if (n := int(report["teleports_dropped"].sum())) > 0:
            out.append(
                f"{n:,} position(s) implying more than {self.max_speed_kt:g} kt dropped "
                "(as in the pipeline)"
            )
        return out


def _some(ids: Iterable[Any], limit: int = 5) -> str:
    values = [str(int(i)) for i in list(ids)[: limit + 1]]
    return ", ".join(values[:limit]) + (", ..." if len(values) > limit else "")


def check_track_input(
    tracks: pd.DataFrame,
    classify: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    max_gap_s: float = 600.0,
    max_speed_kt: float = 1200.0,
    min_points: int = 10,
) -> TrackInputCheck:
    """Clean ``tracks`` as the pipeline does (:func:`clean_tracks`, same defaults; a missing
    ``alt_ft`` column is allowed) and find the kept positions that ``classify(lon, lat)``
    (e.g. ``FirIndex.classify``: -1 = outside every FIR) puts outside every FIR."""
    frame = tracks if "alt_ft" in tracks.columns else tracks.assign(alt_ft=np.nan)
    cleaning = clean_tracks(
        frame, max_gap_s=max_gap_s, max_speed_kt=max_speed_kt, min_points=min_points
    )
    kept = cleaning.tracks
    inside = classify(kept["lon"].to_numpy(dtype=float), kept["lat"].to_numpy(dtype=float))
    outside = kept.loc[np.asarray(inside) < 0, ["flight_id", "lat", "lon"]]
    grouped = outside.groupby("flight_id", sort=True)
    per_flight = pd.DataFrame(
        {"positions": grouped.size(), "lat": grouped["lat"].first(), "lon": grouped["lon"].first()}
    ).reset_index()
    return TrackInputCheck(cleaning, per_flight, min_points, max_speed_kt)
