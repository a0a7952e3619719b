"""Tests of the synthetic demo data generator."""

from __future__ import annotations

import math
import re
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from flight_fees.lib.airspace.airports import read_airports
from flight_fees.lib.ops.demo import (
    HOSTILE_CALLSIGN,
    DemoData,
    default_start_day,
    generate_demo,
)

START = date(2026, 1, 5)  # a Monday
GEOD = Geod(ellps="WGS84")
TRACK_COLUMNS = [
    "flight_id",
    "ts",
    "lat",
    "lon",
    "alt_ft",
    "callsign",
    "registration",
    "aircraft_type",
    "icao24",
    "origin",
    "destination",
]


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo(n_flights=40, start_day=START, seed=7)


@pytest.fixture(scope="module")
def airports() -> pd.DataFrame:
    return read_airports().set_index("icao")


def _epoch_us(ts: pd.Series) -> np.ndarray:
    return ts.dt.as_unit("us").astype("int64").to_numpy()


def _per_flight(tracks: pd.DataFrame) -> dict[int, pd.DataFrame]:
    return {int(fid): grp for fid, grp in tracks.groupby("flight_id", sort=True)}


# --------------------------------------------------------------------------------------------
# generator
# --------------------------------------------------------------------------------------------


def test_deterministic_for_a_seed(demo: DemoData) -> None:
    again = generate_demo(n_flights=40, start_day=START, seed=7)
    for name in ("tracks", "flights", "aircraft", "customers"):
        pd.testing.assert_frame_equal(getattr(demo, name), getattr(again, name))
    other = generate_demo(n_flights=40, start_day=START, seed=8)
    assert len(other.tracks) != len(demo.tracks) or not np.array_equal(
        other.tracks["lat"].to_numpy(), demo.tracks["lat"].to_numpy()
    )


def test_tracks_frame_contract(demo: DemoData) -> None:
    tr = demo.tracks
    assert list(tr.columns) == TRACK_COLUMNS
    assert tr["flight_id"].dtype == np.int64
    assert isinstance(tr["ts"].dtype, pd.DatetimeTZDtype)
    assert tr["ts"].dtype.unit == "us" and str(tr["ts"].dtype.tz) == "UTC"
    for col in ("lat", "lon", "alt_ft"):
        assert tr[col].dtype == np.float64
    for col in TRACK_COLUMNS[5:]:
        assert pd.api.types.is_string_dtype(tr[col])
        assert tr[col].notna().all()
    assert tr["lon"].between(-180, 180).all()
    assert not tr[["lat", "lon", "alt_ft"]].isna().any().any()
    # ordered by flight_id, ts
    assert tr["flight_id"].is_monotonic_increasing
    assert tr.groupby("flight_id")["ts"].apply(lambda s: s.is_monotonic_increasing).all()
    assert tr["icao24"].str.fullmatch(r"[0-9a-f]{6}").all()


def test_flights_frame_matches_tracks(demo: DemoData) -> None:
    fl = demo.flights
    assert len(fl) == 40
    assert fl["flight_id"].is_unique and fl["flight_id"].dtype == np.int64
    assert (fl["flight_id"] >= 2_026_000_000).all()
    assert sorted(fl["flight_id"]) == sorted(demo.tracks["flight_id"].unique())
    first = demo.tracks.groupby("flight_id")["ts"].agg(["min", "max"])
    merged = fl.set_index("flight_id").join(first)
    assert (merged["departure_time"] == merged["min"]).all()
    assert (merged["arrival_time"] == merged["max"]).all()
    assert (merged["flight_date"] == merged["min"].dt.date).all()
    # the flight id encodes the departure day
    codes = fl["flight_id"] // 100_000
    assert (codes == fl["flight_date"].map(lambda d: int(d.strftime("%Y%m%d")))).all()
    # per-flight attributes are the track's attributes
    attrs = ["callsign", "registration", "aircraft_type", "icao24", "origin", "destination"]
    per_track = demo.tracks.groupby("flight_id")[attrs].agg(lambda s: set(s))
    for fid, row in per_track.iterrows():
        expected = fl.set_index("flight_id").loc[fid, attrs]
        assert all(row[a] == {expected[a]} for a in attrs)
    # departures spread over all days of the week, across the day
    assert set(fl["flight_date"]) == {START + timedelta(days=i) for i in range(7)}
    hours = fl["departure_time"].dt.hour
    assert hours.min() < 9 and hours.max() >= 16
    assert demo.days == tuple(START + timedelta(days=i) for i in range(7))


def test_five_second_sampling_and_monotonic_ts(demo: DemoData) -> None:
    for fid, tr in _per_flight(demo.tracks).items():
        step = np.diff(_epoch_us(tr["ts"]))
        assert (step > 0).all(), fid
        assert (step % 5_000_000 == 0).all(), fid
        assert np.median(step) == 5_000_000


def test_coverage_gaps(demo: DemoData) -> None:
    max_step = demo.tracks.groupby("flight_id")["ts"].agg(lambda s: s.diff().max())
    gaps = max_step[max_step > pd.Timedelta(seconds=5)]
    assert len(gaps) == 4  # 10 % of 40
    assert (gaps >= pd.Timedelta(minutes=8) - pd.Timedelta(seconds=5)).all()
    assert (gaps <= pd.Timedelta(minutes=15) + pd.Timedelta(seconds=5)).all()
    small = generate_demo(n_flights=5, start_day=START, n_days=1, seed=1)
    steps = small.tracks.groupby("flight_id")["ts"].agg(lambda s: s.diff().max())
    assert (steps > pd.Timedelta(minutes=7)).sum() == 1  # at least one
    none = generate_demo(n_flights=5, start_day=START, n_days=1, seed=1, gap_fraction=0.0)
    steps = none.tracks.groupby("flight_id")["ts"].agg(lambda s: s.diff().max())
    assert (steps == pd.Timedelta(seconds=5)).all()


def test_altitude_profile(demo: DemoData, airports: pd.DataFrame) -> None:
    fl = demo.flights.set_index("flight_id")
    for fid, tr in _per_flight(demo.tracks).items():
        alt = tr["alt_ft"].to_numpy()
        t_min = (tr["ts"] - tr["ts"].iloc[0]).dt.total_seconds().to_numpy() / 60.0
        origin, dest = fl.at[fid, "origin"], fl.at[fid, "destination"]
        assert abs(alt[0] - airports.at[origin, "elevation_ft"]) <= 100, fid
        assert abs(alt[-1] - airports.at[dest, "elevation_ft"]) <= 300, fid
        assert (alt % 25 == 0).all()
        top = alt.max()
        assert 20_000 <= top <= 45_000, fid
        if fl.at[fid, "great_circle_km"] > 1_000 and fl.at[fid, "aircraft_type"] != "PC12":
            assert top >= 33_000, fid
        # climb: average 1,000-3,500 ft/min, never faster than 4,500 ft/min over a minute
        toc = int(np.argmax(alt >= top))
        rate = (alt[toc] - alt[0]) / t_min[toc]
        assert 1_000 <= rate <= 3_500, (fid, rate)
        per_min = np.diff(alt[::12]) / np.diff(t_min[::12])
        assert per_min.max() <= 4_500
        # descent on a ~3 degree path (from the first descending position after the top of
        # descent: a coverage gap may hide the top of descent itself)
        tod = len(alt) - 1 - int(np.argmax(alt[::-1] >= top))
        a = tod + int(np.argmax(alt[tod:] <= top - 2_000))
        _, _, ground_m = GEOD.inv(
            tr["lon"].iloc[a], tr["lat"].iloc[a], tr["lon"].iloc[-1], tr["lat"].iloc[-1]
        )
        angle = math.degrees(math.atan((alt[a] - alt[-1]) * 0.3048 / ground_m))
        assert 2.6 <= angle <= 3.4, (fid, angle)


def test_cruise_ground_speed(demo: DemoData) -> None:
    for fid, tr in _per_flight(demo.tracks).items():
        alt = tr["alt_ft"].to_numpy()
        cruise = alt >= alt.max() - 1
        if cruise.sum() < 120:
            continue
        lon, lat = tr["lon"].to_numpy()[cruise], tr["lat"].to_numpy()[cruise]
        t = _epoch_us(tr["ts"])[cruise] / 1e6
        # over 60 samples (5 min) the position noise is negligible
        _, _, dist = GEOD.inv(lon[:-60], lat[:-60], lon[60:], lat[60:])
        kt = dist / (t[60:] - t[:-60]) / 0.514444
        median = float(np.median(kt))
        if tr["aircraft_type"].iloc[0] == "PC12":
            assert 200 <= median <= 330, (fid, median)
        else:
            assert 350 <= median <= 560, (fid, median)


def test_tracks_follow_the_great_circle(demo: DemoData, airports: pd.DataFrame) -> None:
    fl = demo.flights.set_index("flight_id")
    long_flights = fl[fl["great_circle_km"] > 2_000].index
    assert len(long_flights) >= 3
    for fid in long_flights:
        tr = demo.tracks[demo.tracks["flight_id"] == fid]
        o = airports.loc[fl.at[fid, "origin"]]
        d = airports.loc[fl.at[fid, "destination"]]
        az12, _, dist = GEOD.inv(o["lon"], o["lat"], d["lon"], d["lat"])
        # cross-track distance of every position (reduced-length approx. of the offset)
        az, _, s = GEOD.inv(
            np.full(len(tr), o["lon"]), np.full(len(tr), o["lat"]), tr["lon"], tr["lat"]
        )
        dAz = np.radians((az - az12 + 180.0) % 360.0 - 180.0)
        xtrack = np.abs(s * np.sin(dAz))
        assert np.percentile(xtrack, 99) < 200.0, fid  # noise only (sigma 30-50 m)
        assert xtrack.max() < 400.0, fid
        # the position nearest the geodesic midpoint is within a couple of km of it
        mid_lon, mid_lat, _ = GEOD.fwd(o["lon"], o["lat"], az12, dist / 2.0)
        _, _, to_mid = GEOD.inv(
            np.full(len(tr), mid_lon), np.full(len(tr), mid_lat), tr["lon"], tr["lat"]
        )
        assert to_mid.min() < 2_000.0, fid
        # and the track reaches the destination
        _, _, to_dest = GEOD.inv(d["lon"], d["lat"], tr["lon"].iloc[-1], tr["lat"].iloc[-1])
        assert to_dest < 3_000.0


def test_required_routes_and_hostile_callsign(demo: DemoData) -> None:
    pairs = set(zip(demo.flights["origin"], demo.flights["destination"], strict=True))
    for route in [
        ("EGLL", "LGAV"),
        ("EHAM", "GCLP"),
        ("LPPT", "LPPD"),
        ("EDDF", "LEMD"),
        ("EKCH", "LIRF"),
        ("LFPG", "LFMN"),
    ]:
        assert route in pairs
    assert (demo.flights["callsign"] == HOSTILE_CALLSIGN).sum() == 1
    assert HOSTILE_CALLSIGN == "TST<b>&1"
    normal = demo.flights.loc[demo.flights["callsign"] != HOSTILE_CALLSIGN, "callsign"]
    assert normal.str.fullmatch(r"[A-Z]{3}\d{1,4}").all()


def test_reference_frames_consistent(demo: DemoData) -> None:
    ac, cu, fl = demo.aircraft, demo.customers, demo.flights
    assert list(ac.columns) == ["registration", "icao24", "icao_type", "mtow_kg", "customer_code"]
    assert list(cu.columns) == [
        "code", "name", "billing_frequency", "week_end_weekday", "billing_currency",
        "payment_terms_days", "email", "address",
    ]  # fmt: skip
    assert ac["registration"].is_unique and ac["icao24"].is_unique
    assert ac["icao24"].str.fullmatch(r"[0-9a-f]{6}").all()
    assert set(fl["registration"]) <= set(ac["registration"])
    assert set(ac["customer_code"]) <= set(cu["code"])
    assert set(fl["customer_code"]) <= set(cu["code"])
    joined = fl.merge(ac, on="registration", suffixes=("", "_ac"), validate="many_to_one")
    assert (joined["aircraft_type"] == joined["icao_type"]).all()
    assert (joined["icao24"] == joined["icao24_ac"]).all()
    assert (joined["customer_code"] == joined["customer_code_ac"]).all()
    # exactly one aircraft without declared MTOW, of a common type (type-table fallback)
    undeclared = ac[ac["mtow_kg"].isna()]
    assert len(undeclared) == 1 and undeclared["icao_type"].iloc[0] == "A320"
    assert (ac["mtow_kg"].dropna() > 1_000).all()
    # registrations look like real ones of their nationality
    pattern = r"(D-A[A-Z]{3}|G-[A-Z]{4}|EI-[A-Z]{3}|CS-T[A-Z]{2}|N[1-9]\d{2}[A-Z]{2})"
    assert ac["registration"].str.fullmatch(pattern).all()
    # customers
    assert 4 <= len(cu) <= 6 and cu["code"].is_unique
    assert set(cu["billing_frequency"]) == {"weekly", "monthly"}
    assert cu["billing_currency"].nunique() >= 2
    assert {"EUR", "USD", "GBP"} <= set(cu["billing_currency"])
    assert cu["week_end_weekday"].between(0, 6).all()
    assert (cu["payment_terms_days"] > 0).all()
    assert cu["email"].map(lambda e: re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", e) is not None).all()


def test_aircraft_never_in_two_places(demo: DemoData) -> None:
    big = generate_demo(n_flights=400, start_day=START, n_days=7, seed=3)
    for data in (demo, big):
        for reg, legs in data.flights.sort_values("departure_time").groupby("registration"):
            dep = legs["departure_time"].to_numpy()
            arr = legs["arrival_time"].to_numpy()
            assert (dep[1:] > arr[:-1]).all(), reg
            # each leg departs where the previous one arrived
            assert (legs["origin"].to_numpy()[1:] == legs["destination"].to_numpy()[:-1]).all()
    # the fleet grows with the number of flights
    assert len(big.aircraft) > len(demo.aircraft)
    assert len(big.flights) == 400 and big.flights["flight_id"].is_unique


def test_argument_validation() -> None:
    with pytest.raises(ValueError):
        generate_demo(n_flights=0, start_day=START)
    with pytest.raises(ValueError):
        generate_demo(n_days=0, start_day=START)
    with pytest.raises(ValueError):
        generate_demo(sample_s=0, start_day=START)


def test_default_start_day_is_monday_of_last_completed_week() -> None:
    assert default_start_day(date(2026, 1, 14)) == date(2026, 1, 5)  # Wednesday
    assert default_start_day(date(2026, 1, 12)) == date(2026, 1, 5)  # Monday
    assert default_start_day(date(2026, 1, 11)) == date(2025, 12, 29)  # Sunday
    assert default_start_day().weekday() == 0


def test_custom_sampling_interval() -> None:
    d = generate_demo(n_flights=3, start_day=START, n_days=1, sample_s=2.5, gap_fraction=0.0)
    step = d.tracks.groupby("flight_id")["ts"].agg(lambda s: s.diff().max())
    assert (step == pd.Timedelta(seconds=2.5)).all()
