"""FIR crossing engine: analytic accuracy, topology cases, batching, shipped FIRs."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

import flight_fees.lib.airspace.crossings as crossings_mod
from flight_fees.lib.airspace.crossings import (
    CROSSING_COLUMNS,
    build_fir_index,
    compute_crossings,
)

GEOD = pyproj.Geod(ellps="WGS84")
T0 = pd.Timestamp("2024-03-01T12:00:00Z")
TOL_S = 1.0  # accuracy goals: 1 s and 50 m
TOL_M = 50.0


# ---------------------------------------------------------------------------------------------
# helpers


def firs_frame(geoms: dict[str, shapely.Geometry]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "fir_id": list(geoms),
            "name": [f"{k} FIR" for k in geoms],
            "country": ["Testland"] * len(geoms),
            "geometry": list(geoms.values()),
        }
    )


def track(
    flight_id: int, lons: Sequence[float], lats: Sequence[float], *, step_s: float = 5.0,
    t0: pd.Timestamp = T0,
) -> pd.DataFrame:  # fmt: skip
    n = len(lons)
    return pd.DataFrame(
        {
            "flight_id": np.full(n, flight_id, dtype=np.int64),
            "ts": t0 + pd.to_timedelta(np.arange(n) * step_s, unit="s"),
            "lat": np.asarray(lats, dtype=float),
            "lon": np.asarray(lons, dtype=float),
        }
    )


def geodesic_track(
    flight_id: int, lon0: float, lat0: float, az: float, speed: float, n: int,
    step_s: float = 5.0,
) -> pd.DataFrame:  # fmt: skip
    """Positions every step_s along a geodesic at constant speed (m/s)."""
    dist = np.arange(n) * step_s * speed
    lon, lat, _ = GEOD.fwd(np.full(n, lon0), np.full(n, lat0), np.full(n, az), dist)
    return track(flight_id, lon, lat, step_s=step_s)


def distance_to_meridian(lon0: float, lat0: float, az: float, meridian: float) -> float:
    """Distance (m) along the geodesic (lon0, lat0, az) where it meets ``meridian`` (bisection,
    longitudes compared unwrapped around lon0)."""

    def dlon(d: float) -> float:
        lon, _, _ = GEOD.fwd(lon0, lat0, az, d)
        return ((lon - meridian + 180.0) % 360.0) - 180.0

    lo, hi = 0.0, 5_000_000.0
    assert dlon(lo) * dlon(hi) < 0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if dlon(lo) * dlon(mid) <= 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def geo_dist_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def assert_point(row: pd.Series, prefix: str, lon: float, lat: float) -> None:
    d = geo_dist_m(row[f"{prefix}_lon"], row[f"{prefix}_lat"], lon, lat)
    assert d < TOL_M, f"{prefix} point off by {d:.1f} m"


def assert_time(actual: pd.Timestamp, expected: pd.Timestamp) -> None:
    assert abs((actual - expected).total_seconds()) < TOL_S, (actual, expected)


SQUARES = firs_frame(
    {
        "AAAA": shapely.box(0.0, -1.0, 1.0, 1.0),
        "BBBB": shapely.box(1.0, -1.0, 2.0, 1.0),
    }
)


# ---------------------------------------------------------------------------------------------
# accuracy on analytic cases


def test_equator_track_across_two_squares_exact_time_point_and_distances() -> None:
    # along the equator planar interpolation and the geodesic coincide
    lon0, dlon = 0.5003, 0.0011  # 0.0011 deg / 5 s ~ 24.5 m/s... any constant speed works
    n = 900
    lons = lon0 + dlon * np.arange(n)
    res = compute_crossings(track(7, lons, np.zeros(n)), SQUARES)

    assert list(res.columns) == list(CROSSING_COLUMNS)
    assert res["fir_id"].tolist() == ["AAAA", "BBBB"]
    assert res["visit_index"].tolist() == [0, 1]
    a, b = res.iloc[0], res.iloc[1]
    t_cross = T0 + pd.to_timedelta((1.0 - lon0) / dlon * 5.0, unit="s")
    assert_time(a["exit_time"], t_cross)
    assert a["exit_time"] == b["entry_time"]
    assert_point(a, "exit", 1.0, 0.0)
    assert_point(b, "entry", 1.0, 0.0)
    assert a["entry_time"] == T0 and a["starts_inside"] and not a["ends_inside"]
    assert b["exit_time"] == T0 + pd.Timedelta(seconds=5 * (n - 1)) and b["ends_inside"]
    assert a["distance_km"] == pytest.approx(geo_dist_m(lon0, 0, 1.0, 0) / 1000, abs=1e-3)
    assert b["distance_km"] == pytest.approx(geo_dist_m(1.0, 0, lons[-1], 0) / 1000, abs=1e-3)
    # on the equator the track is the geodesic: flown == direct distance
    assert a["flown_km"] == pytest.approx(a["distance_km"], abs=1e-3)
    assert b["flown_km"] == pytest.approx(b["distance_km"], abs=1e-3)
    assert not res["interpolated"].any()


@pytest.mark.parametrize(("lat0", "az"), [(0.3, 60.0), (-0.3, 120.0), (0.9, 95.0)])
def test_diagonal_geodesic_track_crossing_time_and_point(lat0: float, az: float) -> None:
    speed = 230.0
    trk = geodesic_track(1, 0.2, lat0, az, speed, 400)
    trk = trk[trk["lat"].between(-0.999, 0.999)]  # stay inside the squares' latitude band
    res = compute_crossings(trk, SQUARES)
    assert res["fir_id"].tolist()[:2] == ["AAAA", "BBBB"]
    d = distance_to_meridian(0.2, lat0, az, 1.0)
    lon_x, lat_x, _ = GEOD.fwd(0.2, lat0, az, d)
    assert_time(res.iloc[0]["exit_time"], T0 + pd.to_timedelta(d / speed, unit="s"))
    assert_point(res.iloc[0], "exit", lon_x, lat_x)
    assert_point(res.iloc[1], "entry", lon_x, lat_x)
    assert res.iloc[0]["distance_km"] == pytest.approx(d / 1000, abs=0.05)
    assert res.iloc[0]["flown_km"] == pytest.approx(d / 1000, abs=0.05)


def test_high_latitude_sparse_sampling_follows_the_geodesic() -> None:
    # 5-minute sampling: 69 km segments at 60N on a 45 degree heading; a lon/lat straight line
    # would be ~150 m off the geodesic; long segments are followed along the geodesic.
    firs = firs_frame({"WEST": shapely.box(0, 55, 10, 70), "EAST": shapely.box(10, 55, 20, 70)})
    speed, step = 230.0, 300.0
    trk = geodesic_track(3, 8.3, 59.2, 45.0, speed, 12, step_s=step)
    res = compute_crossings(trk, firs)
    assert res["fir_id"].tolist() == ["WEST", "EAST"]
    d = distance_to_meridian(8.3, 59.2, 45.0, 10.0)
    lon_x, lat_x, _ = GEOD.fwd(8.3, 59.2, 45.0, d)
    assert_point(res.iloc[0], "exit", lon_x, lat_x)
    assert_time(res.iloc[0]["exit_time"], T0 + pd.to_timedelta(d / speed, unit="s"))
    assert res.iloc[0]["flown_km"] == pytest.approx(d / 1000, abs=0.05)
    assert not res["interpolated"].any()  # 300 s < gap threshold


def test_reentry_gives_separate_visits() -> None:
    n = 400
    out = 0.7 + 0.004 * np.arange(n)  # 0.7 -> 2.3 ... capped below
    lons = np.concatenate([out[out < 1.3], out[out < 1.3][::-1]])
    res = compute_crossings(track(1, lons, np.full(lons.size, 0.2)), SQUARES)
    assert res["fir_id"].tolist() == ["AAAA", "BBBB", "AAAA"]
    assert res["visit_index"].tolist() == [0, 1, 2]
    assert res.iloc[2]["entry_time"] == res.iloc[1]["exit_time"]
    assert_point(res.iloc[2], "entry", 1.0, 0.2)
    assert res["starts_inside"].tolist() == [True, False, False]
    assert res["ends_inside"].tolist() == [False, False, True]


def test_entering_and_leaving_the_fir_set_from_outside() -> None:
    lon0, dlon = -0.4003, 0.0011
    n = int((2.6 - lon0) / dlon)
    lons = lon0 + dlon * np.arange(n)
    res = compute_crossings(track(1, lons, np.zeros(n)), SQUARES)
    assert res["fir_id"].tolist() == ["AAAA", "BBBB"]
    a, b = res.iloc[0], res.iloc[1]
    assert not a["starts_inside"] and not b["ends_inside"]
    assert_point(a, "entry", 0.0, 0.0)
    assert_point(b, "exit", 2.0, 0.0)
    assert_time(a["entry_time"], T0 + pd.to_timedelta((0.0 - lon0) / dlon * 5, unit="s"))
    assert_time(b["exit_time"], T0 + pd.to_timedelta((2.0 - lon0) / dlon * 5, unit="s"))


def test_corner_cut_through_a_third_fir_inside_one_segment() -> None:
    firs = firs_frame(
        {
            "SWSW": shapely.box(0, 0, 1, 1),
            "NWNW": shapely.box(0, 1, 1, 2),
            "NENE": shapely.box(1, 1, 2, 2),
            "SESE": shapely.box(1, 0, 2, 1),
        }
    )
    # one 5 s segment from SW to NE passing the NW corner: y = 1 at t = .25, x = 1 at t = .5
    trk = track(1, [0.5, 0.99, 1.01, 1.5], [0.5, 0.999, 1.003, 1.5])
    res = compute_crossings(trk, firs, jitter_s=0)
    assert res["fir_id"].tolist() == ["SWSW", "NWNW", "NENE"]
    nw = res.iloc[1]
    assert_time(nw["entry_time"], T0 + pd.Timedelta(seconds=5 + 0.25 * 5))
    assert_time(nw["exit_time"], T0 + pd.Timedelta(seconds=5 + 0.5 * 5))
    assert_point(nw, "entry", 0.995, 1.0)
    assert_point(nw, "exit", 1.0, 1.001)


def test_point_exactly_on_a_boundary() -> None:
    lons = [0.98, 0.99, 1.0, 1.01, 1.02]  # the middle sample lies on the AAAA|BBBB boundary
    res = compute_crossings(track(1, lons, np.full(5, 0.5)), SQUARES)
    assert res["fir_id"].tolist() == ["AAAA", "BBBB"]
    t_on = T0 + pd.Timedelta(seconds=10)
    assert res.iloc[0]["exit_time"] == t_on
    assert res.iloc[1]["entry_time"] == t_on
    assert_point(res.iloc[0], "exit", 1.0, 0.5)


def test_track_along_boundary_then_away_has_no_degenerate_visit() -> None:
    # starts exactly on the boundary, then goes east: one BBBB visit starting at the track start
    res = compute_crossings(track(1, [1.0, 1.01, 1.02], [0.5, 0.5, 0.5]), SQUARES)
    assert res["fir_id"].tolist() == ["BBBB"]
    assert res.iloc[0]["starts_inside"]
    assert res.iloc[0]["entry_time"] == T0


# ---------------------------------------------------------------------------------------------
# gaps, jitter


def test_gap_across_boundary_is_interpolated_and_estimated_on_the_geodesic() -> None:
    speed = 60.0
    trk = geodesic_track(1, 0.1, 0.2, 80.0, speed, 700)
    gap = (trk["lon"] > 0.7) & (trk["lon"] < 1.4)  # ~22 min without positions
    res = compute_crossings(trk[~gap], SQUARES)
    assert res["fir_id"].tolist() == ["AAAA", "BBBB"]
    assert res["interpolated"].tolist() == [True, True]
    d = distance_to_meridian(0.1, 0.2, 80.0, 1.0)
    lon_x, lat_x, _ = GEOD.fwd(0.1, 0.2, 80.0, d)
    assert_time(res.iloc[0]["exit_time"], T0 + pd.to_timedelta(d / speed, unit="s"))
    assert_point(res.iloc[0], "exit", lon_x, lat_x)
    # no gap: not interpolated
    full = compute_crossings(trk, SQUARES)
    assert not full["interpolated"].any()
    # gap threshold above the gap length: not flagged
    lenient = compute_crossings(trk[~gap], SQUARES, gap_threshold_s=3600)
    assert not lenient["interpolated"].any()


def test_gap_inside_one_fir_passing_through_another() -> None:
    # ends of the gap both in AAAA, the straight (geodesic) path between them crosses BBBB
    firs = firs_frame(
        {
            "AAAA": shapely.box(0, -1, 3, 1) - shapely.box(1, -1, 2, 0.5),
            "BBBB": shapely.box(1, -1, 2, 0.5),
        }
    )
    lons = np.r_[np.linspace(0.2, 0.5, 10), np.linspace(2.5, 2.8, 10)]
    trk = track(1, lons, np.zeros(20), step_s=5)
    trk.loc[10:, "ts"] += pd.Timedelta(minutes=30)
    res = compute_crossings(trk, firs)
    assert res["fir_id"].tolist() == ["AAAA", "BBBB", "AAAA"]
    assert res["interpolated"].tolist() == [True, True, True]
    assert_point(res.iloc[1], "entry", 1.0, 0.0)
    assert_point(res.iloc[1], "exit", 2.0, 0.0)


def test_jitter_visit_merged_into_surrounding_visit() -> None:
    # inside AAAA near the boundary, 20 s in BBBB, back to AAAA
    lons = np.r_[np.full(20, 0.999), np.full(4, 1.001), np.full(20, 0.999)]
    trk = track(1, lons, np.linspace(-0.5, 0.5, lons.size))
    merged = compute_crossings(trk, SQUARES, jitter_s=60)
    assert merged["fir_id"].tolist() == ["AAAA"]
    assert merged.iloc[0]["entry_time"] == T0
    assert merged.iloc[0]["exit_time"] == T0 + pd.Timedelta(seconds=5 * (lons.size - 1))
    assert merged.iloc[0]["starts_inside"] and merged.iloc[0]["ends_inside"]
    raw = compute_crossings(trk, SQUARES, jitter_s=0)
    assert raw["fir_id"].tolist() == ["AAAA", "BBBB", "AAAA"]
    # flown distance is preserved by the merge
    assert merged.iloc[0]["flown_km"] == pytest.approx(raw["flown_km"].sum(), rel=1e-9)
    # a longer excursion is a real visit
    long_ = np.r_[np.full(20, 0.999), np.full(20, 1.001), np.full(20, 0.999)]
    res = compute_crossings(track(1, long_, np.zeros(long_.size)), SQUARES, jitter_s=60)
    assert res["fir_id"].tolist() == ["AAAA", "BBBB", "AAAA"]


def test_shallow_excursion_outside_every_fir_is_noise_but_deep_one_is_kept() -> None:
    # 0.0005 degree at the equator = 55.7 m outside AAAA: within the 92.6 m noise tolerance
    lons = np.r_[np.full(20, 0.01), np.full(3, -0.0005), np.full(20, 0.01)]
    res = compute_crossings(track(1, lons, np.zeros(lons.size)), SQUARES)
    assert res["fir_id"].tolist() == ["AAAA"] and len(res) == 1
    assert res["merged_excursions"].tolist() == [1]
    # 0.01 degree = 1.1 km outside: the aircraft left the FIR set, two visits
    lons = np.r_[np.full(20, 0.01), np.full(3, -0.01), np.full(20, 0.01)]
    res = compute_crossings(track(1, lons, np.zeros(lons.size)), SQUARES)
    assert res["fir_id"].tolist() == ["AAAA", "AAAA"]
    assert res["merged_excursions"].tolist() == [0, 0]
    # a 10 s visit of a FIR between two stretches outside every FIR stays a visit
    lons = np.r_[np.full(20, -0.01), np.full(3, 0.01), np.full(20, -0.01)]
    res = compute_crossings(track(1, lons, np.zeros(lons.size)), SQUARES)
    assert res["fir_id"].tolist() == ["AAAA"]
    assert not res.iloc[0]["starts_inside"] and not res.iloc[0]["ends_inside"]


@pytest.mark.parametrize(
    ("depth_m", "merged"), [(30.0, True), (90.0, True), (95.0, False), (500.0, False)]
)
def test_excursion_is_noise_only_within_the_tolerance(depth_m: float, merged: bool) -> None:
    # 2 minutes in BBBB, every position depth_m east of the AAAA/BBBB boundary (lon 1)
    lat = 0.3
    deg = depth_m / crossings_mod._A / np.cos(np.radians(lat)) * 180 / np.pi  # ~ metres east
    lons = np.r_[np.full(20, 0.99), np.full(24, 1.0 + deg), np.full(20, 0.99)]
    res = compute_crossings(track(1, lons, np.full(lons.size, lat)), SQUARES)
    if merged:
        assert res["fir_id"].tolist() == ["AAAA"]
        assert res["merged_excursions"].tolist() == [1]
    else:
        assert res["fir_id"].tolist() == ["AAAA", "BBBB", "AAAA"]
        assert res["merged_excursions"].sum() == 0
    # the tolerance is a parameter; 0 disables the merge
    exact = compute_crossings(track(1, lons, np.full(lons.size, lat)), SQUARES, noise_tolerance_m=0)
    assert exact["fir_id"].tolist() == ["AAAA", "BBBB", "AAAA"]
    wide = compute_crossings(
        track(1, lons, np.full(lons.size, lat)), SQUARES, noise_tolerance_m=depth_m + 5
    )
    assert wide["fir_id"].tolist() == ["AAAA"]


def test_noise_merge_never_swallows_a_real_visit_unlike_the_time_merge() -> None:
    # A (100 s), a real 40 s visit of B 1.1 km deep, 30 s back in A, then B for good: the
    # time-based merge swallows the first B visit (B billed from the wrong place), the
    # default keeps all four visits
    lons = np.r_[np.full(20, 0.99), np.full(8, 1.01), np.full(6, 0.99), np.full(20, 1.01)]
    trk = track(1, lons, np.zeros(lons.size))
    res = compute_crossings(trk, SQUARES)
    assert res["fir_id"].tolist() == ["AAAA", "BBBB", "AAAA", "BBBB"]
    assert res["merged_excursions"].sum() == 0
    timed = compute_crossings(trk, SQUARES, jitter_s=60)
    assert timed["fir_id"].tolist() == ["AAAA", "BBBB"]
    assert timed.iloc[1]["entry_time"] > res.iloc[1]["entry_time"] + pd.Timedelta(seconds=60)


def test_noise_merges_repeat_along_a_border_and_are_counted() -> None:
    # flying along the boundary, 40 m either side, flipping five times: one AAAA visit, then
    # a deliberate crossing deep into BBBB
    side = np.tile(np.r_[np.full(3, 1.0 - 0.00036), np.full(3, 1.0 + 0.00036)], 5)
    lons = np.r_[np.full(10, 0.99), side, np.full(10, 0.99), np.full(10, 1.02)]
    lats = np.linspace(-0.5, 0.5, lons.size)
    res = compute_crossings(track(1, lons, lats), SQUARES)
    assert res["fir_id"].tolist() == ["AAAA", "BBBB"]
    assert res["merged_excursions"].tolist() == [5, 0]
    assert crossings_mod.merged_excursions_per_flight(res).to_dict() == {1: 5}
    flips = compute_crossings(track(1, lons, lats), SQUARES, noise_tolerance_m=0)
    assert len(flips) == 12
    # the flown distance is preserved by the merges
    assert res["flown_km"].sum() == pytest.approx(flips["flown_km"].sum(), rel=1e-9)


def test_negative_noise_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="noise_tolerance_m"):
        compute_crossings(track(1, [0.5, 0.6], [0.0, 0.0]), SQUARES, noise_tolerance_m=-1)


# ---------------------------------------------------------------------------------------------
# antimeridian


ANTI_GEOD_START = (165.0, 48.0)
ANTI_AZ = 75.0


def _antimeridian_firs(split: bool) -> pd.DataFrame:
    if split:
        pac = shapely.MultiPolygon([shapely.box(160, 40, 180, 60), shapely.box(-180, 40, -175, 60)])
    else:
        pac = shapely.box(160, 40, 185, 60)  # longitudes beyond 180
    return firs_frame({"PAC1": pac, "ALSK": shapely.box(-175, 40, -150, 60)})


@pytest.mark.parametrize("split", [False, True])
def test_antimeridian_fir_and_track(split: bool) -> None:
    speed = 250.0
    trk = geodesic_track(1, *ANTI_GEOD_START, ANTI_AZ, speed, 1600)  # ~2.2 h, 1,100 km
    lon = trk["lon"].to_numpy()
    assert (lon > 179.9).any() and (lon < -179.9).any()  # jumps from +180 to -180
    res = compute_crossings(trk, _antimeridian_firs(split))
    assert res["fir_id"].tolist() == ["PAC1", "ALSK"]
    d = distance_to_meridian(*ANTI_GEOD_START, ANTI_AZ, -175.0)
    lon_x, lat_x, _ = GEOD.fwd(*ANTI_GEOD_START, ANTI_AZ, d)
    pac, alsk = res.iloc[0], res.iloc[1]
    assert_time(pac["exit_time"], T0 + pd.to_timedelta(d / speed, unit="s"))
    assert_point(pac, "exit", lon_x, lat_x)
    assert -180.0 <= pac["exit_lon"] < 180.0
    # no bogus globe-wide segment: distances are those of the ~1,100 km flight
    assert pac["distance_km"] == pytest.approx(d / 1000, abs=0.05)
    assert pac["flown_km"] == pytest.approx(d / 1000, abs=0.05)
    total = 1599 * 5 * speed / 1000
    assert pac["flown_km"] + alsk["flown_km"] == pytest.approx(total, abs=0.05)


def test_antimeridian_crossing_inside_one_fir_is_not_a_crossing() -> None:
    lons = np.r_[np.linspace(179.0, 179.999, 50), np.linspace(-179.999, -179.0, 50)]
    res = compute_crossings(track(1, lons, np.full(100, 50.0)), _antimeridian_firs(True))
    assert res["fir_id"].tolist() == ["PAC1"]
    expected = geo_dist_m(179.0, 50.0, -179.0, 50.0) / 1000  # ~143 km, not ~25,000 km
    assert res.iloc[0]["distance_km"] == pytest.approx(expected, abs=0.01)
    assert res.iloc[0]["flown_km"] == pytest.approx(expected, abs=0.01)


# ---------------------------------------------------------------------------------------------
# degenerate inputs, ordering, batching


def test_one_point_and_empty_tracks() -> None:
    inside = compute_crossings(track(5, [0.5], [0.5]), SQUARES)
    assert len(inside) == 1
    row = inside.iloc[0]
    assert row["fir_id"] == "AAAA"
    assert row["entry_time"] == row["exit_time"] == T0
    assert row["distance_km"] == 0.0 and row["flown_km"] == 0.0
    assert row["starts_inside"] and row["ends_inside"]
    assert compute_crossings(track(5, [5.0], [5.0]), SQUARES).empty  # outside every FIR
    empty = compute_crossings(track(5, [], []), SQUARES)
    assert empty.empty and list(empty.columns) == list(CROSSING_COLUMNS)
    assert str(empty["entry_time"].dtype) == "datetime64[ns, UTC]"


def test_missing_columns_and_nan_rows() -> None:
    with pytest.raises(ValueError, match="lat"):
        compute_crossings(track(1, [0.5], [0.5]).drop(columns="lat"), SQUARES)
    trk = track(1, [0.5, np.nan, 1.5], [0.0, 0.0, 0.0])
    res = compute_crossings(trk, SQUARES)
    assert res["fir_id"].tolist() == ["AAAA", "BBBB"]


def test_duplicate_timestamps_tolerated() -> None:
    trk = track(1, [0.98, 0.99, 1.01, 1.02], [0.0] * 4)
    trk.loc[2, "ts"] = trk.loc[1, "ts"]  # the crossing segment has zero duration
    res = compute_crossings(trk, SQUARES)
    assert res["fir_id"].tolist() == ["AAAA", "BBBB"]
    assert res.iloc[0]["exit_time"] == trk.loc[1, "ts"]
    assert_point(res.iloc[0], "exit", 1.0, 0.0)


def _random_flights(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for fid in range(n):
        k = int(rng.integers(1, 300))
        lon0, lat0 = rng.uniform(-0.5, 2.5), rng.uniform(-1.2, 1.2)
        az, speed = rng.uniform(0, 360), rng.uniform(50, 250)
        trk = geodesic_track(1000 + fid, lon0, lat0, az, speed, k)
        trk["lat"] += rng.normal(0, 0.002, k)  # zig-zag: jitter and re-entries
        trk["ts"] += pd.Timedelta(seconds=int(rng.integers(0, 3600)))
        parts.append(trk)
    return pd.concat(parts, ignore_index=True)


def test_batch_equals_one_flight_at_a_time_and_order_does_not_matter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracks = _random_flights(40, seed=3)
    monkeypatch.setattr(crossings_mod, "CHUNK_POINTS", 1500)  # several chunks
    done: list[tuple[int, int]] = []
    batch = compute_crossings(tracks, SQUARES, progress=lambda a, b: done.append((a, b)))
    assert done[-1] == (40, 40) and len(done) > 1
    single = pd.concat(
        [compute_crossings(g, SQUARES) for _, g in tracks.groupby("flight_id")],
        ignore_index=True,
    )
    assert len(batch) >= 20
    pd.testing.assert_frame_equal(batch, single)
    shuffled = tracks.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(compute_crossings(shuffled, SQUARES), batch)
    # visits of a flight tile its track: each entry is the previous exit (or first position)
    for _, g in batch.groupby("flight_id"):
        assert (g["visit_index"].to_numpy() == np.arange(len(g))).all()
        assert (g["entry_time"].to_numpy()[1:] >= g["exit_time"].to_numpy()[:-1]).all()


def test_overlapping_firs_position_goes_to_first_fir_id() -> None:
    firs = firs_frame({"ZZZZ": shapely.box(0, 0, 2, 2), "MMMM": shapely.box(1, 0, 3, 2)})
    index = build_fir_index(firs)
    cls = index.classify(np.array([0.5, 1.5, 2.5, 5.0]), np.array([1.0, 1.0, 1.0, 1.0]))
    ids = [index.fir_ids[c] if c >= 0 else None for c in cls]
    assert ids == ["ZZZZ", "MMMM", "MMMM", None]


def test_classification_matches_exact_point_in_polygon_near_boundaries() -> None:
    from flight_fees.lib.airspace.firs import load_firs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        firs = load_firs(check_overlaps=False)
    index = build_fir_index(firs)
    rng = np.random.default_rng(11)
    # points on and near every FIR boundary vertex, and random ones
    coords = shapely.get_coordinates(np.asarray(firs["geometry"].to_numpy(), dtype=object))
    pick = coords[rng.integers(0, len(coords), 40_000)]
    near = pick + rng.normal(0, 0.01, pick.shape)
    pts = np.vstack(
        [near, pick, np.column_stack([rng.uniform(-45, 50, 20_000), rng.uniform(15, 85, 20_000)])]
    )
    # the world set has polygons with longitudes beyond 180 (PAZA, UHMM): wrap the points
    # as the engine does, so that the exact test sees them where they are
    pts[:, 0] = (pts[:, 0] + 180.0) % 360.0 - 180.0
    got = index.classify(pts[:, 0], pts[:, 1])
    expected = np.full(len(pts), -1)
    for predicate in (shapely.contains_xy, shapely.intersects_xy):  # interior first, then edge
        for k, geom in enumerate(index.geoms):
            hit = (expected == -1) & predicate(geom, pts[:, 0], pts[:, 1])
            expected[hit] = k
    np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------------------------
# shipped FIRs


@pytest.fixture(scope="module")
def shipped_firs() -> pd.DataFrame:
    from flight_fees.lib.airspace.firs import load_firs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_firs()


def test_brussels_to_frankfurt_on_shipped_firs(shipped_firs: pd.DataFrame) -> None:
    # EBBR (50.90, 4.48) -> EDDF (50.03, 8.57) along the geodesic, 220 m/s
    az, _, dist = GEOD.inv(4.484, 50.901, 8.570, 50.033)
    n = int(dist / (220 * 5)) + 1
    trk = geodesic_track(42, 4.484, 50.901, az, 220.0, n)
    res = compute_crossings(trk, shipped_firs)
    assert res["fir_id"].tolist() == ["EBBU", "EDGG"]
    assert res.iloc[0]["starts_inside"] and res.iloc[1]["ends_inside"]
    assert res.iloc[0]["exit_time"] == res.iloc[1]["entry_time"]
    # the crossing point lies on both FIR boundaries
    geoms = dict(zip(shipped_firs["fir_id"], shipped_firs["geometry"], strict=True))
    p = shapely.Point(res.iloc[0]["exit_lon"], res.iloc[0]["exit_lat"])
    for fir in ("EBBU", "EDGG"):
        assert geoms[fir].boundary.distance(p) < 1e-6
    assert res["flown_km"].sum() == pytest.approx((n - 1) * 5 * 220.0 / 1000, abs=0.01)
