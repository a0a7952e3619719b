"""A slow, obviously-correct FIR-visit reference, sharing no code with the crossing engine.

Method, per flight, in plain shapely:

1. **Labels.** Each position is labelled by the FIR polygon holding it: the first FIR (by
   ``fir_id``) whose interior contains it, else the first whose boundary it lies on, else
   outside (``None``).
2. **Boundary points.** Where the label changes between two consecutive positions, the segment
   between them (a straight line in lon/lat) is intersected with the boundary of the FIR left
   (its first intersection along the segment is the exit) and with the boundary of the FIR
   entered (its last intersection is the entry).
3. **Times.** The time of a boundary point is interpolated linearly along the segment (by its
   fraction of the segment in lon/lat).
4. **Visits.** A visit is a run of positions with the same FIR label; it starts at the first
   position of the track or at its entry point, and ends at the last position or its exit
   point. Nothing is merged.

It only sees what the positions show: a segment clipping the corner of a third FIR with both
ends outside it does not make a visit of that FIR. Tracks must not cross the antimeridian.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely


@dataclass(frozen=True)
class RefVisit:
    flight_id: int
    fir_id: str
    entry_time: pd.Timestamp
    exit_time: pd.Timestamp

    @property
    def duration_s(self) -> float:
        return (self.exit_time - self.entry_time).total_seconds()


def label_positions(firs: pd.DataFrame, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """FIR index (into ``firs`` sorted by id) of each position, -1 outside every FIR."""
    geoms = list(firs["geometry"])
    points = shapely.points(lon, lat)
    tree = shapely.STRtree(geoms)
    label = np.full(len(points), -1, dtype=np.int64)
    # query(points, predicate) tests predicate(point, fir): "within" is the interior,
    # "intersects" adds the boundary
    for predicate in ("within", "intersects"):
        todo = np.flatnonzero(label < 0)
        if todo.size == 0:
            break
        pt_i, fir_i = tree.query(points[todo], predicate=predicate)
        best: dict[int, int] = {}
        for p, f in zip(pt_i.tolist(), fir_i.tolist(), strict=True):
            if p not in best or f < best[p]:
                best[p] = f
        for p, f in best.items():
            label[todo[p]] = f
    return label


def _boundary_fraction(
    boundary: shapely.Geometry, p0: tuple[float, float], p1: tuple[float, float], *, last: bool
) -> float:
    """Fraction along the segment p0 -> p1 of its first (or last) point on ``boundary``."""
    seg = shapely.LineString([p0, p1])
    hit = seg.intersection(boundary)
    coords = shapely.get_coordinates(hit)
    if len(coords) == 0:  # numerically missed (touching): take the segment end nearest
        return 1.0 if last else 0.0
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    norm = dx * dx + dy * dy
    if norm == 0.0:
        return 0.0
    t = ((coords[:, 0] - p0[0]) * dx + (coords[:, 1] - p0[1]) * dy) / norm
    t = np.clip(t, 0.0, 1.0)
    return float(t.max() if last else t.min())


def reference_visits(tracks: pd.DataFrame, firs: pd.DataFrame) -> list[RefVisit]:
    """Every FIR visit of every flight of ``tracks`` (flight_id, ts, lat, lon)."""
    firs = firs.sort_values("fir_id", kind="stable").reset_index(drop=True)
    ids = firs["fir_id"].astype(str).tolist()
    boundaries = [shapely.boundary(g) for g in firs["geometry"]]
    df = tracks.sort_values(["flight_id", "ts"], kind="stable").reset_index(drop=True)
    df = df.dropna(subset=["lat", "lon", "ts"])
    lon = df["lon"].to_numpy(float)
    lat = df["lat"].to_numpy(float)
    ts = pd.to_datetime(df["ts"], utc=True)
    label = label_positions(firs, lon, lat)
    fid = df["flight_id"].to_numpy(np.int64)
    visits: list[RefVisit] = []
    starts = np.flatnonzero(np.r_[True, fid[1:] != fid[:-1]])
    ends = np.r_[starts[1:], len(fid)]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        run_label = label[a]
        run_entry = ts.iloc[a]
        for k in range(a, b - 1):
            if label[k + 1] == run_label:
                continue
            p0, p1 = (lon[k], lat[k]), (lon[k + 1], lat[k + 1])
            t0, t1 = ts.iloc[k], ts.iloc[k + 1]
            if run_label >= 0:
                f = _boundary_fraction(boundaries[run_label], p0, p1, last=False)
                visits.append(RefVisit(int(fid[a]), ids[run_label], run_entry, t0 + f * (t1 - t0)))
            run_label = label[k + 1]
            if run_label >= 0:
                f = _boundary_fraction(boundaries[run_label], p0, p1, last=True)
                run_entry = t0 + f * (t1 - t0)
        if run_label >= 0:
            visits.append(RefVisit(int(fid[a]), ids[run_label], run_entry, ts.iloc[b - 1]))
    return visits


@dataclass(frozen=True)
class Comparison:
    compared: int  #: reference visits of at least the minimum duration
    matched: int  #: ... with an engine visit of the same FIR, entry and exit within tolerance
    missing: list[RefVisit]  #: ... with no engine visit of the same FIR overlapping them
    unmatched: list[RefVisit]  #: ... neither matched nor missing

    @property
    def match_rate(self) -> float:
        return self.matched / self.compared if self.compared else 1.0


def compare(
    reference: list[RefVisit], engine: pd.DataFrame, *, min_duration_s: float, tolerance_s: float
) -> Comparison:
    """Match reference visits of at least ``min_duration_s`` to the engine's crossings frame."""
    by_key: dict[tuple[int, str], list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for row in engine[["flight_id", "fir_id", "entry_time", "exit_time"]].itertuples(index=False):
        by_key.setdefault((int(row.flight_id), str(row.fir_id)), []).append(
            (row.entry_time, row.exit_time)
        )
    tol = pd.Timedelta(seconds=tolerance_s)
    compared = matched = 0
    missing: list[RefVisit] = []
    unmatched: list[RefVisit] = []
    for v in reference:
        if v.duration_s < min_duration_s:
            continue
        compared += 1
        spans = by_key.get((v.flight_id, v.fir_id), [])
        if any(abs(e - v.entry_time) <= tol and abs(x - v.exit_time) <= tol for e, x in spans):
            matched += 1
        elif any(e < v.exit_time and x > v.entry_time for e, x in spans):
            unmatched.append(v)
        else:
            missing.append(v)
    return Comparison(compared, matched, missing, unmatched)
