#!/usr/bin/env python
"""Benchmark of the FIR crossing engine against two naive baselines, on three cases, from one run.

Cases (``--cases``, default all three):

- **synthetic**: ``--flights`` flights (default 10,000) over the 58 European FIRs, starting at
  random positions inside the FIRs, flying a geodesic on a random heading at 200-250 m/s for
  1-3 h, sampled every 5 s (about 1,420 positions per flight), 10 % with a 15-minute gap;
- **real**: the real ADS-B sample ``flight_fees_tests/data/adsb/switzerland_sample.parquet``
  (622 flights over Switzerland, 10 s sampling) replicated ``--real-copies`` times (default 36:
  about 2.5 M positions) with new flight ids and per-flight time shifts of up to +-10 min, over
  the shipped default FIR set (world, 270 FIRs);
- **world**: ``--world-flights`` great-circle flights (default 3,000) over the world FIR set:
  origin inside a FIR, random heading, 1-8 h at 220-260 m/s sampled every 10 s, 10 % with a
  15-minute gap (antimeridian and polar-ish routes included).

Per case, printed side by side:

- engine (``flight_fees.lib.airspace.crossings.compute_crossings``) on **all** flights, with the FIR
  index from the on-disk cache (``flight_fees.lib.airspace.index_store``): build time (cold) and
  load time (warm) of the index;
- baseline (a), a geopandas ``sjoin`` point-in-polygon of every position, followed by
  transition detection (pandas), on a subsample (``--sjoin-flights``), compared per point;
- baseline (b), per flight and per FIR whose bounding box meets the track, the shapely
  ``LineString.intersection(polygon)`` that trajectory libraries such as ``traffic`` use to
  clip airspaces (track as LineString Z with z = time, so GEOS interpolates entry / exit
  times; plus the entry -> exit geodesic distance), on a subsample (``--clip-flights``),
  compared per flight;
- the whole process: ``flight-fees crossings`` run as a subprocess on a Parquet file of the
  case (imports, FIR loading, index, engine, output; **FIR caches warm**), against a naive
  geopandas script (read FIR file + tracks, ``sjoin``, transitions, write) run as a
  subprocess, both including their imports and FIR loading. Where the naive script runs on a
  subsample of the flights (``--process-sjoin-points``, default 3 M positions), its time is
  extrapolated as fixed cost (its run on a 2-flight file) + per-point cost x positions:
  labelled "extrapolated".

Finally the engine's peak RSS on 35,000 synthetic flights (``--memory-flights``, a child
process). Figures are printed, never asserted. Goals: engine >= 30x (a) and >= 100x (b) on
every case; whole process >= 15x the sjoin script on the real case; < 4 GiB RSS.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flight_fees.lib.airspace import index_store as fir_index_store  # noqa: E402
from flight_fees.lib.airspace.crossings import build_fir_index, compute_crossings  # noqa: E402
from flight_fees.lib.airspace.firs import load_firs  # noqa: E402

FIRS_DIR = ROOT / "flight_fees" / "data" / "firs"
EUROPE_FIRS = FIRS_DIR / "eurocontrol_firs_2015.geojson"
WORLD_FIRS = FIRS_DIR / "eurocontrol_ead_world_firuir_2015.geojson"
REAL_SAMPLE = ROOT / "flight_fees_tests" / "data" / "adsb" / "switzerland_sample.parquet"
FLIGHT_FEES = Path(sys.executable).with_name("flight-fees")

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


def generate_tracks(
    n_flights: int,
    seed: int,
    firs: pd.DataFrame,
    *,
    step_s: int = STEP_S,
    hours: tuple[float, float] = (1.0, 3.0),
    speed_ms: tuple[float, float] = (200.0, 250.0),
) -> pd.DataFrame:
    """Synthetic tracks (flight_id, ts, lat, lon), sorted, built block-wise to bound memory:
    geodesics from a random position inside a FIR on a random heading, ``hours`` long at
    ``speed_ms``, one position every ``step_s`` seconds, 10 % with a 15-minute gap."""
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
    speed = rng.uniform(speed_ms[0], speed_ms[1], n_flights)
    npts = (rng.uniform(hours[0] * 3600.0, hours[1] * 3600.0, n_flights) // step_s).astype(
        np.int64
    ) + 1
    dep = T0_NS + rng.integers(0, 86_400, n_flights) * 1_000_000_000
    has_gap = rng.random(n_flights) < 0.10
    gap_at = (rng.uniform(0.2, 0.7, n_flights) * npts).astype(np.int64)

    gap_len = np.where(has_gap, np.minimum(gap_at + GAP_S // step_s, npts) - gap_at, 0)
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
        keep = ~(has_gap[f] & (k >= gap_at[f]) & (k < gap_at[f] + GAP_S // step_s))
        f, k = f[keep], k[keep]
        x, y, _ = geod.fwd(olon[f], olat[f], heading[f], speed[f] * k * step_s)
        sl = slice(out_offs[a], out_offs[b])
        fid[sl] = f + 1
        ts[sl] = dep[f] + k * step_s * 1_000_000_000
        lat[sl] = y
        lon[sl] = x
    times = pd.DatetimeIndex(ts.view("datetime64[ns]"), tz="UTC")
    del ts
    frame = pd.DataFrame({"flight_id": fid, "ts": times, "lat": lat, "lon": lon}, copy=False)
    return frame


def baseline_sjoin(
    tracks: pd.DataFrame, firs: pd.DataFrame, predicate: str = "within"
) -> tuple[float, int]:
    """(a) geopandas sjoin of every position, then transitions; returns (seconds, visits).

    ``predicate="intersects"`` is ``gpd.sjoin(points, firs)`` as written without options (the
    naive script: every point-in-polygon test on the unprepared polygon); ``"within"`` lets
    geopandas query with the prepared polygons (a tuned script, ~20x faster)."""
    import geopandas as gpd

    t0 = time.perf_counter()
    fir_gdf = gpd.GeoDataFrame(firs[["fir_id"]], geometry=list(firs["geometry"]), crs=4326)
    pts = gpd.GeoDataFrame(
        tracks[["flight_id", "ts"]].reset_index(drop=True),
        geometry=gpd.points_from_xy(tracks["lon"], tracks["lat"]),
        crs=4326,
    )
    joined = gpd.sjoin(pts, fir_gdf, how="left", predicate=predicate)
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


def replicate_real(sample: pd.DataFrame, copies: int, seed: int) -> pd.DataFrame:
    """The real sample ``copies`` times: new flight ids, each flight shifted by up to +-10 min."""
    rng = np.random.default_rng(seed)
    base = sample[["flight_id", "ts", "lat", "lon"]].sort_values(["flight_id", "ts"])
    fid = base["flight_id"].to_numpy(np.int64)
    ts = base["ts"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    ids, first = np.unique(fid, return_inverse=True)
    stride = int(ids.max()) + 1
    parts_fid, parts_ts = [], []
    for c in range(copies):
        shift = rng.integers(-600, 601, ids.size) * 1_000_000_000
        parts_fid.append(fid + c * stride)
        parts_ts.append(ts + shift[first])
    n = copies
    times = pd.DatetimeIndex(np.concatenate(parts_ts).view("datetime64[ns]"), tz="UTC")
    return pd.DataFrame(
        {
            "flight_id": np.concatenate(parts_fid),
            "ts": times,
            "lat": np.tile(base["lat"].to_numpy(), n),
            "lon": np.tile(base["lon"].to_numpy(), n),
        },
        copy=False,
    )


#: The naive whole-process baseline: what one writes with geopandas in a few lines.
SJOIN_SCRIPT = textwrap.dedent(
    """
    import sys
    import geopandas as gpd
    import pandas as pd

    fir_path, src, out, predicate = sys.argv[1:5]
    firs = gpd.read_file(fir_path)
    cols = {c.lower(): c for c in firs.columns}
    if "type" in cols:  # world file: the lateral FIR layer only
        firs = firs[firs[cols["type"]].astype(str).str.upper() == "FIR"]
    firs = firs.rename(columns={cols["ident"]: "fir_id"})[["fir_id", "geometry"]]
    tracks = pd.read_parquet(src, columns=["flight_id", "ts", "lat", "lon"])
    pts = gpd.GeoDataFrame(
        tracks[["flight_id", "ts"]],
        geometry=gpd.points_from_xy(tracks["lon"], tracks["lat"]),
        crs=4326,
    )
    joined = gpd.sjoin(pts, firs.to_crs(4326), how="left", predicate=predicate)
    joined = joined[~joined.index.duplicated(keep="first")].sort_values(["flight_id", "ts"])
    fir = joined["fir_id"].fillna("")
    new = (fir != fir.shift()) | (joined["flight_id"] != joined["flight_id"].shift())
    visits = joined.loc[new & (fir != ""), ["flight_id", "fir_id", "ts"]]
    pd.DataFrame(visits).to_parquet(out, index=False)
    print(len(visits))
    """
)


def run_timed(cmd: list[str], env: dict[str, str]) -> float:
    """Wall time of a subprocess (it must succeed; `flight-fees crossings` exits 1 after
    writing its output when positions lie outside every FIR, as synthetic flights leaving
    the FIR set do: that is a success here)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    warned = proc.returncode == 1 and "outside every FIR" in proc.stderr
    if proc.returncode != 0 and not warned:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return elapsed


@dataclass
class CaseResult:
    name: str
    flights: int
    points: int
    fir_set: str
    t_build: float
    t_load: float
    t_engine: float
    visits: int
    pps_a: float
    sub_a: str
    pps_naive: float
    sub_naive: str
    fps_b: float
    sub_b: str
    t_cli: float
    t_cli_fixed_cold: float
    t_cli_fixed_warm: float
    t_script: float
    script_note: str
    t_script_fixed: float
    t_naive: float
    naive_note: str

    @property
    def pps(self) -> float:
        return self.points / self.t_engine

    @property
    def fps(self) -> float:
        return self.flights / self.t_engine


def run_case(
    name: str,
    tracks: pd.DataFrame,
    fir_path: Path,
    args: argparse.Namespace,
    workdir: Path,
    env: dict[str, str],
) -> CaseResult:
    """Engine, baselines (a) and (b), and the whole-process comparison on one case."""
    import flight_fees.lib.airspace.crossings as engine_mod

    n_pts = len(tracks)
    ids = tracks["flight_id"].drop_duplicates()
    n_flights = len(ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        firs = load_firs(fir_path)
    fir_set = f"{fir_path.name} ({len(firs)} FIRs)"
    print(f"\n=== {name}: {n_flights:,} flights, {n_pts:,} positions, FIRs {fir_set}")

    # FIR index: cold build (empty cache directory), then the load of the stored index
    index_dir = workdir / f"index_{name}"
    engine_mod._INDEX_CACHE.clear()
    fir_index_store.clear_memory_cache()
    t0 = time.perf_counter()
    fir_index_store.cached_fir_index(firs, cache_dir=index_dir)
    t_build = time.perf_counter() - t0
    engine_mod._INDEX_CACHE.clear()
    fir_index_store.clear_memory_cache()
    t0 = time.perf_counter()
    index = fir_index_store.cached_fir_index(firs, cache_dir=index_dir)
    t_load = time.perf_counter() - t0

    gc.collect()
    t0 = time.perf_counter()
    result = compute_crossings(tracks, index)
    t_engine = time.perf_counter() - t0
    visits = len(result)
    del result
    print(
        f"engine: {visits:,} visits in {t_engine:.2f} s: {n_pts / t_engine:,.0f} points/s, "
        f"{n_flights / t_engine:,.0f} flights/s (FIR index: build {t_build:.2f} s once, "
        f"load from the cache {t_load:.3f} s)"
    )

    k_a = min(args.sjoin_flights, n_flights)
    sub = tracks[tracks["flight_id"].isin(ids.iloc[:k_a])]
    t_a, visits_a = baseline_sjoin(sub, firs)
    pps_a = len(sub) / t_a
    sub_a = f"{k_a:,} flights, {len(sub):,} positions"
    print(
        f"(a) sjoin (within) on {sub_a}: {t_a:.2f} s, {pps_a:,.0f} points/s ({visits_a:,} visits)"
    )
    del sub
    k_n = _flights_within(tracks, ids, args.naive_sjoin_points)
    sub = tracks[tracks["flight_id"].isin(ids.iloc[:k_n])]
    t_n, visits_n = baseline_sjoin(sub, firs, predicate="intersects")
    pps_naive = len(sub) / t_n
    sub_naive = f"{k_n:,} flights, {len(sub):,} positions"
    print(
        f"(a0) sjoin (default predicate) on {sub_naive}: {t_n:.2f} s, {pps_naive:,.0f} "
        f"points/s ({visits_n:,} visits)"
    )
    del sub
    k_b = min(args.clip_flights, n_flights)
    sub = tracks[tracks["flight_id"].isin(ids.iloc[:k_b])]
    t_b, parts_b = baseline_clip(sub, firs)
    fps_b = k_b / t_b
    sub_b = f"{k_b:,} flights"
    print(f"(b) clipping on {sub_b}: {t_b:.2f} s, {fps_b:,.1f} flights/s ({parts_b:,} parts)")
    del sub

    # whole process, both as subprocesses on a Parquet file of the case
    src = workdir / f"{name}.parquet"
    tracks.to_parquet(src, index=False)
    tiny = workdir / f"{name}_tiny.parquet"
    tracks[tracks["flight_id"].isin(ids.iloc[:2])].to_parquet(tiny, index=False)
    cli_env = dict(env, FLIGHT_FEES_CACHE_DIR=str(workdir / f"cli_cache_{name}"))
    cli = [str(FLIGHT_FEES), "crossings", "--firs", str(fir_path), "--no-progress", "-o"]
    t_fixed_cold = run_timed([*cli, str(workdir / "o.parquet"), str(tiny)], cli_env)
    t_fixed_warm = run_timed([*cli, str(workdir / "o.parquet"), str(tiny)], cli_env)
    t_cli = run_timed([*cli, str(workdir / "o.parquet"), str(src)], cli_env)
    script = workdir / "naive_sjoin.py"
    script.write_text(SJOIN_SCRIPT)
    t_script, note, t_script_fixed = _script_time(
        script, fir_path, tracks, ids, "within", args.process_sjoin_points, workdir, env, name
    )
    t_naive, naive_note, _ = _script_time(
        script, fir_path, tracks, ids, "intersects", args.naive_sjoin_points, workdir, env, name
    )
    print(
        f"process: flight-fees crossings {t_cli:.2f} s (warm FIR caches; its fixed cost, on "
        f"a 2-flight file: {t_fixed_warm:.2f} s warm, {t_fixed_cold:.2f} s with cold caches); "
        f"sjoin script (within) {t_script:.2f} s ({note}; fixed cost {t_script_fixed:.2f} s); "
        f"naive sjoin script (default predicate) {t_naive:.2f} s ({naive_note})"
    )
    for path in workdir.glob(f"{name}*.parquet"):
        path.unlink()
    return CaseResult(
        name, n_flights, n_pts, fir_set, t_build, t_load, t_engine, visits, pps_a, sub_a,
        pps_naive, sub_naive, fps_b, sub_b, t_cli, t_fixed_cold, t_fixed_warm, t_script, note,
        t_script_fixed, t_naive, naive_note,
    )  # fmt: skip


def _flights_within(tracks: pd.DataFrame, ids: pd.Series, limit: int) -> int:
    """How many of the first flights ``ids`` fit in ``limit`` positions (at least 1; 0 =
    all)."""
    if limit <= 0:
        return len(ids)
    sizes = tracks.groupby("flight_id", sort=False).size().reindex(ids.to_numpy()).to_numpy()
    return max(int(np.searchsorted(np.cumsum(sizes), limit, "right")), 1)


def _script_time(
    script: Path,
    fir_path: Path,
    tracks: pd.DataFrame,
    ids: pd.Series,
    predicate: str,
    limit: int,
    workdir: Path,
    env: dict[str, str],
    name: str,
) -> tuple[float, str, float]:
    """Wall time of the sjoin script on the whole case: measured, or extrapolated from its
    run on the first flights within ``limit`` positions (fixed cost of a 2-flight run + per
    position cost x positions). Returns (seconds, note, fixed cost)."""
    naive = [sys.executable, str(script), str(fir_path)]
    tiny = workdir / f"{name}_tiny.parquet"
    out = str(workdir / "n.parquet")
    t_fixed = run_timed([*naive, str(tiny), out, predicate], env)
    k = _flights_within(tracks, ids, limit)
    if k >= len(ids):
        src = workdir / f"{name}.parquet"
        return run_timed([*naive, str(src), out, predicate], env), "measured", t_fixed
    part = tracks[tracks["flight_id"].isin(ids.iloc[:k])]
    part_src = workdir / f"{name}_part.parquet"
    part.to_parquet(part_src, index=False)
    t_part = run_timed([*naive, str(part_src), out, predicate], env)
    per_point = max(t_part - t_fixed, 1e-9) / len(part)
    note = (
        f"EXTRAPOLATED: {t_part:.1f} s on {k:,} flights ({len(part):,} positions) = "
        f"{t_fixed:.1f} s fixed + per point x {len(tracks):,}"
    )
    return t_fixed + per_point * len(tracks), note, t_fixed


def print_summary(results: list[CaseResult]) -> None:
    print("\n=== summary (goals: engine >= 30x sjoin, >= 100x clipping; process >= 15x on real)")
    head = (
        f"{'case':<10} {'flights':>8} {'positions':>11} {'engine s':>9} {'Mpts/s':>7} "
        f"{'vs(a0)':>7} {'vs (a)':>7} {'vs (b)':>7} {'CLI s':>7} {'naive s':>8} "
        f"{'process':>8} {'within s':>9} {'process':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.name:<10} {r.flights:>8,} {r.points:>11,} {r.t_engine:>9.2f} "
            f"{r.pps / 1e6:>7.1f} {r.pps / r.pps_naive:>6.0f}x {r.pps / r.pps_a:>6.0f}x "
            f"{r.fps / r.fps_b:>6.0f}x {r.t_cli:>7.2f} {r.t_naive:>8.2f} "
            f"{r.t_naive / r.t_cli:>7.1f}x"
            + ("*" if r.naive_note.startswith("EXTRAPOLATED") else " ")
            + f"{r.t_script:>9.2f} {r.t_script / r.t_cli:>7.1f}x"
            + ("*" if r.script_note.startswith("EXTRAPOLATED") else "")
        )
    print(
        "vs (a0): per point, engine vs `gpd.sjoin(points, firs)` as written without options "
        "(default predicate: the naive baseline); vs (a): vs sjoin with predicate='within' "
        "(tuned, prepared polygons); vs (b): per flight, engine vs per-flight LineString "
        "clipping; process: sjoin script wall time / flight-fees crossings wall time "
        "(subprocesses, imports and FIR loading included, FIR caches of the CLI warm), naive "
        "then tuned; * = script time extrapolated from a subsample (see above)."
    )
    for r in results:
        print(
            f"{r.name}: FIR index build {r.t_build:.2f} s, load from cache {r.t_load:.3f} s "
            f"({r.t_build / r.t_load:,.0f}x); CLI fixed cost cold {r.t_cli_fixed_cold:.2f} s, "
            f"warm {r.t_cli_fixed_warm:.2f} s; baselines on {r.sub_a} (a), {r.sub_b} (b)"
        )


def memory_run(n_flights: int, seed: int) -> int:
    """Engine peak RSS on ``n_flights`` synthetic flights (run in a child process)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        firs = load_firs(EUROPE_FIRS)
    tracks = generate_tracks(n_flights, seed, firs)
    gc.collect()
    rss_data = current_rss_mib()
    index = build_fir_index(firs)
    gc.collect()
    reset_ok = reset_peak_rss()
    t0 = time.perf_counter()
    result = compute_crossings(tracks, index)
    t_engine = time.perf_counter() - t0
    rss = phase_peak_rss_mib(reset_ok)
    print(
        f"memory: {n_flights:,} synthetic flights, {len(tracks):,} positions, {len(result):,} "
        f"visits in {t_engine:.2f} s ({len(tracks) / t_engine:,.0f} points/s); peak RSS during "
        f"the engine call {rss:,.0f} MiB (data alone {rss_data:,.0f} MiB; goal < 4,096 MiB)"
        f"{'' if reset_ok else ' [process peak: no VmHWM reset]'}; whole child process "
        f"{peak_rss_mib():,.0f} MiB"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="synthetic,real,world")
    parser.add_argument("--flights", type=int, default=10_000, help="synthetic case")
    parser.add_argument("--real-copies", type=int, default=36, help="real case replication")
    parser.add_argument("--world-flights", type=int, default=3_000, help="world case")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--sjoin-flights", type=int, default=1_000)
    parser.add_argument(
        "--naive-sjoin-points",
        type=int,
        default=150_000,
        help="positions the default-predicate sjoin (in process and as a script) runs on; "
        "its script time is extrapolated to the whole case",
    )
    parser.add_argument("--clip-flights", type=int, default=200)
    parser.add_argument(
        "--process-sjoin-points",
        type=int,
        default=3_000_000,
        help="positions the naive sjoin script runs on (whole flights; 0 = all); a larger "
        "case is extrapolated from them",
    )
    parser.add_argument("--memory-flights", type=int, default=35_000, help="0 = skip")
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.memory_only:
        return memory_run(args.memory_flights, args.seed)

    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}")
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="bench_crossings_") as tmp:
        workdir = Path(tmp)
        env = dict(os.environ, FLIGHT_FEES_HOME=str(workdir / "home"))
        for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
            if case == "synthetic":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    firs = load_firs(EUROPE_FIRS)
                tracks = generate_tracks(args.flights, args.seed, firs)
                results.append(run_case("synthetic", tracks, EUROPE_FIRS, args, workdir, env))
            elif case == "real":
                if not REAL_SAMPLE.exists():
                    print(f"\n=== real: skipped, {REAL_SAMPLE} is missing")
                    continue
                sample = pd.read_parquet(REAL_SAMPLE)
                tracks = replicate_real(sample, args.real_copies, args.seed)
                results.append(run_case("real", tracks, WORLD_FIRS, args, workdir, env))
            elif case == "world":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    firs = load_firs(WORLD_FIRS)
                tracks = generate_tracks(
                    args.world_flights,
                    args.seed + 1,
                    firs,
                    step_s=10,
                    hours=(1.0, 8.0),
                    speed_ms=(220.0, 260.0),
                )
                results.append(run_case("world", tracks, WORLD_FIRS, args, workdir, env))
            else:
                parser.error(f"unknown case {case!r}")
            del tracks
            gc.collect()
    if results:
        print_summary(results)
    if args.memory_flights > 0:
        print()
        cmd = [sys.executable, __file__, "--memory-only", "--memory-flights"]
        subprocess.run([*cmd, str(args.memory_flights), "--seed", str(args.seed)], check=True)
    print(f"load average at the end: {Path('/proc/loadavg').read_text().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
