#!/usr/bin/env python
"""Benchmark of the FIR crossing engine against two naive baselines, from one run.

Synthetic traffic over the shipped FIR set: ``--flights`` flights (default 10,000) starting at
random positions inside the FIRs, flying a geodesic on a random heading at 200-250 m/s for
1-3 h, sampled every 5 s (about 1,440 positions per flight), 10 % of them with a 15-minute
coverage gap. Printed:

- engine (``flight_fees.lib.crossings.compute_crossings``) on **all** flights: points/s,
  flights/s, FIR-index build time, peak RSS;
- baseline (a), a geopandas ``sjoin`` point-in-polygon of every position, followed by
  transition detection (pandas), on a subsample (``--sjoin-flights``, default 1,000);
- baseline (b), per flight and per FIR whose bounding box meets the track, the shapely
  ``LineString.intersection(polygon)`` that trajectory libraries such as ``traffic`` use to
  clip airspaces (track as LineString Z with z = time, so GEOS interpolates entry / exit
  times; plus the entry -> exit geodesic distance), on a subsample (``--clip-flights``,
  default 200);
- the speed-up ratios (per point for (a), per flight for (b)) and the process's peak RSS.

Figures are printed, never asserted. ``python benchmarks/bench_crossings.py --flights 35000``
checks the memory goal (a day of traffic under 4 GiB RSS).
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flight_fees.lib.crossings import build_fir_index, compute_crossings  # noqa: E402
from flight_fees.lib.firs import load_firs  # noqa: E402

STEP_S = 5
GAP_S = 900
T0_NS = pd.Timestamp("2024-06-01T00:00:00Z").value


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _proc_status_mib(field: str) -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def current_rss_mib() -> float:
    """Current resident set size (MiB), from /proc/self/status."""
    return _proc_status_mib("VmRSS")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def phase_peak_rss_mib(reset_ok: bool) -> float:
    """Peak RSS since :func:`reset_peak_rss` (VmHWM), else the process's peak (getrusage)."""
    return _proc_status_mib("VmHWM") if reset_ok else peak_rss_mib()


def generate_tracks(n_flights: int, seed: int, firs: pd.DataFrame) -> pd.DataFrame:
    """Synthetic tracks (flight_id, ts, lat, lon), sorted, built block-wise to bound memory."""
    rng = np.random.default_rng(seed)
    index = build_fir_index(firs)
    bounds = shapely.bounds(np.asarray(firs["geometry"].to_numpy(), dtype=object))
    xmin, ymin = bounds[:, 0].min(), bounds[:, 1].min()
    xmax, ymax = bounds[:, 2].max(), bounds[:, 3].max()
    # origins: uniform in the FIR set's bounds, kept when inside a FIR (rejection sampling)
    olon = np.empty(0)
    olat = np.empty(0)
    while olon.size < n_flights:
        x = rng.uniform(xmin, xmax, 4 * n_flights)
        y = rng.uniform(ymin, ymax, 4 * n_flights)
        inside = index.classify(x, y) >= 0
        olon, olat = np.r_[olon, x[inside]], np.r_[olat, y[inside]]
    olon, olat = olon[:n_flights], olat[:n_flights]
    heading = rng.uniform(0.0, 360.0, n_flights)
    speed = rng.uniform(200.0, 250.0, n_flights)
    npts = (rng.uniform(3600.0, 3 * 3600.0, n_flights) // STEP_S).astype(np.int64) + 1
    dep = T0_NS + rng.integers(0, 86_400, n_flights) * 1_000_000_000
    has_gap = rng.random(n_flights) < 0.10
    gap_at = (rng.uniform(0.2, 0.7, n_flights) * npts).astype(np.int64)

    gap_len = np.where(has_gap, np.minimum(gap_at + GAP_S // STEP_S, npts) - gap_at, 0)
    kept = npts - gap_len
    total = int(kept.sum())
    # final arrays allocated once and filled block by block (peak memory ~ the data itself)
    fid = np.empty(total, np.int64)
    ts = np.empty(total, np.int64)
    lat = np.empty(total)
    lon = np.empty(total)
    geod = pyproj.Geod(ellps="WGS84")
    offs = np.r_[0, np.cumsum(npts)]
    out_offs = np.r_[0, np.cumsum(kept)]
    block = 1_000
    for a in range(0, n_flights, block):
        b = min(a + block, n_flights)
        f = np.repeat(np.arange(a, b), npts[a:b])
        k = np.arange(offs[b] - offs[a]) - np.repeat(offs[a:b] - offs[a], npts[a:b])
        keep = ~(has_gap[f] & (k >= gap_at[f]) & (k < gap_at[f] + GAP_S // STEP_S))
        f, k = f[keep], k[keep]
        x, y, _ = geod.fwd(olon[f], olat[f], heading[f], speed[f] * k * STEP_S)
        sl = slice(out_offs[a], out_offs[b])
        fid[sl] = f + 1
        ts[sl] = dep[f] + k * STEP_S * 1_000_000_000
        lat[sl] = y
        lon[sl] = x
    times = pd.DatetimeIndex(ts.view("datetime64[ns]"), tz="UTC")
    del ts
    frame = pd.DataFrame({"flight_id": fid, "ts": times, "lat": lat, "lon": lon}, copy=False)
    return frame


def baseline_sjoin(tracks: pd.DataFrame, firs: pd.DataFrame) -> tuple[float, int]:
    """(a) geopandas sjoin of every position, then transitions; returns (seconds, visits)."""
    import geopandas as gpd

    t0 = time.perf_counter()
    fir_gdf = gpd.GeoDataFrame(firs[["fir_id"]], geometry=list(firs["geometry"]), crs=4326)
    pts = gpd.GeoDataFrame(
        tracks[["flight_id", "ts"]].reset_index(drop=True),
        geometry=gpd.points_from_xy(tracks["lon"], tracks["lat"]),
        crs=4326,
    )
    joined = gpd.sjoin(pts, fir_gdf, how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")].sort_values(["flight_id", "ts"])
    fir = joined["fir_id"].fillna("")
    new = (fir != fir.shift()) | (joined["flight_id"] != joined["flight_id"].shift())
    visits = joined.loc[new & (fir != "")]
    return time.perf_counter() - t0, len(visits)


def baseline_clip(tracks: pd.DataFrame, firs: pd.DataFrame) -> tuple[float, int]:
    """(b) per flight, per FIR whose bbox meets the track: ``LineString.intersection(polygon)``
    as ``traffic`` clips airspaces, the track being a LineString Z with z = time so that GEOS
    interpolates the entry / exit times; plus the geodesic entry -> exit distance of each
    clipped part. Returns (seconds, clipped parts)."""
    t0 = time.perf_counter()
    geod = pyproj.Geod(ellps="WGS84")
    geoms = np.asarray(firs["geometry"].to_numpy(), dtype=object)
    tree = shapely.STRtree(geoms)
    n_parts = 0
    for _, grp in tracks.groupby("flight_id", sort=False):
        secs = (grp["ts"].to_numpy().astype("datetime64[ns]").astype(np.int64) - 0) / 1e9
        line = shapely.LineString(
            np.column_stack([grp["lon"].to_numpy(), grp["lat"].to_numpy(), secs])
        )
        for k in tree.query(line):  # FIRs whose bbox meets the track's bbox
            clipped = line.intersection(geoms[k])
            for part in shapely.get_parts(clipped):
                if part.geom_type == "LineString" and not part.is_empty:
                    (x0, y0, _t_entry), (x1, y1, _t_exit) = part.coords[0], part.coords[-1]
                    geod.inv(x0, y0, x1, y1)
                    n_parts += 1
    return time.perf_counter() - t0, n_parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flights", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--sjoin-flights", type=int, default=1_000)
    parser.add_argument("--clip-flights", type=int, default=200)
    parser.add_argument("--no-baselines", action="store_true", help="engine only (memory run)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    firs = load_firs()
    t0 = time.perf_counter()
    tracks = generate_tracks(args.flights, args.seed, firs)
    t_gen = time.perf_counter() - t0
    n_pts = len(tracks)
    gc.collect()
    rss_data = current_rss_mib()
    print(
        f"synthetic tracks: {args.flights:,} flights, {n_pts:,} positions "
        f"({n_pts / args.flights:,.0f}/flight, 5 s sampling), generated in {t_gen:.1f} s; "
        f"RSS with the data loaded: {rss_data:,.0f} MiB"
    )

    import flight_fees.lib.crossings as engine_mod

    engine_mod._INDEX_CACHE.clear()
    t0 = time.perf_counter()
    index = build_fir_index(firs)
    t_index = time.perf_counter() - t0
    gc.collect()
    reset_ok = reset_peak_rss()
    t0 = time.perf_counter()
    result = compute_crossings(tracks, index)
    t_engine = time.perf_counter() - t0
    rss_engine = phase_peak_rss_mib(reset_ok)
    eng_pps = n_pts / t_engine
    eng_fps = args.flights / t_engine
    print(
        f"engine: {len(result):,} FIR visits in {t_engine:.2f} s "
        f"(+ FIR index build {t_index:.2f} s, cached across calls): "
        f"{eng_pps:,.0f} points/s, {eng_fps:,.0f} flights/s; "
        f"peak RSS during the engine call {rss_engine:,.0f} MiB "
        f"(data alone {rss_data:,.0f} MiB{'' if reset_ok else '; process peak: no VmHWM reset'})"
    )
    if args.no_baselines:
        print(f"peak RSS of the whole run (getrusage, incl. generation): {peak_rss_mib():,.0f} MiB")
        return 0
    del result
    ids = tracks["flight_id"].drop_duplicates()

    sub_a = tracks[tracks["flight_id"].isin(ids.iloc[: args.sjoin_flights])]
    t_a, visits_a = baseline_sjoin(sub_a, firs)
    pps_a = len(sub_a) / t_a
    print(
        f"baseline (a) geopandas sjoin + transitions on {args.sjoin_flights:,} flights "
        f"({len(sub_a):,} positions): {t_a:.2f} s, {pps_a:,.0f} points/s "
        f"({visits_a:,} visits, boundary points not refined)"
    )

    sub_b = tracks[tracks["flight_id"].isin(ids.iloc[: args.clip_flights])]
    t_b, parts_b = baseline_clip(sub_b, firs)
    fps_b = args.clip_flights / t_b
    print(
        f"baseline (b) per-flight/per-FIR LineString.intersection on {args.clip_flights:,} "
        f"flights: {t_b:.2f} s, {fps_b:,.1f} flights/s ({parts_b:,} clipped parts; times from "
        "the z = time coordinate, geodesic entry-exit distance)"
    )

    print(f"speed-up vs (a), per point:  {eng_pps / pps_a:,.0f}x (goal >= 30x)")
    print(f"speed-up vs (b), per flight: {eng_fps / fps_b:,.0f}x (goal >= 100x)")
    print(
        f"peak RSS: engine phase {rss_engine:,.0f} MiB (goal < 4,096 MiB for 35,000 flights); "
        f"whole run (getrusage, incl. data generation and baselines) {peak_rss_mib():,.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
