"""The world FIR set end to end: antimeridian crossings, long-haul FIR sequences checked
against an independent slow reference, and zone visits (US classes, VTBB, HCSM).

Reference: the great circle is sampled every second of flight (~250 m) and each sample is
labelled by plain shapely containment in the FIR polygons (longitude tried as is and +/-360,
because the source writes PAZA and UHMM with longitudes beyond 180; a sample in two FIRs goes
to the first by id, the engine's rule). Runs shorter than 60 s are ignored on both sides.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from flight_fees.lib.airspace.crossings import build_fir_index, compute_crossings
from flight_fees.lib.airspace.firs import FirDataWarning, default_fir_set, load_firs
from flight_fees.lib.airspace.zones import load_charging_zones, split_zone_visits

GEOD = pyproj.Geod(ellps="WGS84")
T0 = pd.Timestamp("2024-03-01T00:00:00Z")
SPEED_MS = 250.0
STEP_S = 15.0
MIN_VISIT_S = 60.0

# (lat, lon) of the aerodromes
RJTT, PANC = (35.552, 139.780), (61.174, -149.996)
UHMM, PAOM = (59.911, 150.720), (64.512, -165.445)
RKSI = (37.463, 126.441)
KJFK, EGLL = (40.640, -73.779), (51.471, -0.462)
VTBS, OMDB = (13.690, 100.750), (25.253, 55.364)
HKJK = (-1.319, 36.928)

ROUTES = {
    1: (RJTT, PANC),
    2: (UHMM, PAOM),
    3: (RKSI, PANC),
    4: (KJFK, EGLL),
    5: (VTBS, OMDB),
    6: (OMDB, HKJK),
}


@pytest.fixture(scope="module")
def world():  # -> tuple[pd.DataFrame, ChargingZones]
    fir_set = default_fir_set("world")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FirDataWarning)
        firs = load_firs(fir_set.firs_path, check_overlaps=False)
    return firs, load_charging_zones(fir_set.zones_path, firs=firs)


@pytest.fixture(scope="module")
def index(world):  # the FIR index, built once
    return build_fir_index(world[0])


def great_circle(a: tuple[float, float], b: tuple[float, float], step_s: float):
    """lon, lat of points ``step_s`` of flight apart on the great circle a -> b (ends kept)."""
    (lat1, lon1), (lat2, lon2) = a, b
    dist = GEOD.inv(lon1, lat1, lon2, lat2)[2]
    n = max(int(dist / (SPEED_MS * step_s)), 1)
    pts = np.asarray(GEOD.npts(lon1, lat1, lon2, lat2, n), dtype=float).reshape(-1, 2)
    lon = np.r_[lon1, pts[:, 0], lon2]
    lat = np.r_[lat1, pts[:, 1], lat2]
    return lon, lat


def track(flight_id: int) -> pd.DataFrame:
    lon, lat = great_circle(*ROUTES[flight_id], STEP_S)
    return pd.DataFrame(
        {
            "flight_id": flight_id,
            "ts": T0 + pd.to_timedelta(np.arange(lon.size) * STEP_S, unit="s"),
            "lat": lat,
            "lon": lon,
        }
    )


@pytest.fixture(scope="module")
def crossings(index) -> pd.DataFrame:
    tracks = pd.concat([track(f) for f in ROUTES], ignore_index=True)
    return compute_crossings(tracks, index, jitter_s=0)


def reference_labels(firs: pd.DataFrame, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """FIR id (or "") of each point by shapely containment; first id wins on overlaps."""
    ids = firs["fir_id"].astype(str).to_numpy()
    order = np.argsort(ids)
    ids = ids[order]
    geoms = np.asarray(firs["geometry"].to_numpy(), dtype=object)[order]
    tree = shapely.STRtree(geoms)
    best = np.full(lon.size, len(ids), dtype=np.int64)
    for shift in (0.0, 360.0, -360.0):
        pts = shapely.points(lon + shift, lat)
        p, g = tree.query(pts, predicate="intersects")
        np.minimum.at(best, p, g)
    return np.where(best < len(ids), ids[np.minimum(best, len(ids) - 1)], "")


def runs(labels: np.ndarray, dt_s: float) -> list[tuple[str, float, int, int]]:
    """(label, duration s, first, last index) of each run of equal labels."""
    cut = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.r_[0, cut]
    ends = np.r_[cut, labels.size] - 1
    pairs = zip(starts, ends, strict=True)
    return [(str(labels[s]), (e - s + 1) * dt_s, int(s), int(e)) for s, e in pairs]


def squeeze(seq: list[str]) -> list[str]:
    return [s for k, s in enumerate(seq) if k == 0 or s != seq[k - 1]]


def reference_sequence(firs: pd.DataFrame, flight_id: int) -> tuple[list[str], list, np.ndarray]:
    lon, lat = great_circle(*ROUTES[flight_id], 1.0)
    labels = reference_labels(firs, lon, lat)
    kept = [r for r in runs(labels, 1.0) if r[0] and r[1] > MIN_VISIT_S]
    return squeeze([r[0] for r in kept]), kept, np.column_stack([lon, lat])


def engine_sequence(crossings: pd.DataFrame, flight_id: int) -> list[str]:
    cr = crossings[crossings["flight_id"] == flight_id]
    dur = (cr["exit_time"] - cr["entry_time"]).dt.total_seconds()
    return squeeze(cr.loc[dur > MIN_VISIT_S, "fir_id"].tolist())


def _wrap(lon: float) -> float:
    return (lon + 180.0) % 360.0 - 180.0


# ---------------------------------------------------------------------------------------------
# FIR sequences against the reference


@pytest.mark.parametrize(
    ("flight_id", "expected"),
    [
        (1, ["RJJJ", "UHHH", "PAZA"]),  # Tokyo -> Anchorage, PAZA across 180
        (2, ["UHMM"]),  # Magadan -> Nome, UHMM across 180
        (3, ["RKRR", "ZKKP", "UHHH", "UHPD", "UHPP", "UHMM"]),  # Seoul -> Anchorage
        (4, ["KZNY", "KZBW", "CZQM", "CZQX", "EGGX", "EISN", "EGTT"]),  # New York -> London
        (5, ["VTBB", "VYYF", "VECF", "VABF", "OPKR", "OOMM", "OIIX", "OOMM", "OMAE"]),
        (6, ["OMAE", "OEJD", "OYSC", "HCSM", "HAAA", "HKNA"]),  # Dubai -> Nairobi
    ],
)
def test_fir_sequence_matches_the_reference(world, crossings, flight_id, expected) -> None:
    firs, _ = world
    ref, _, _ = reference_sequence(firs, flight_id)
    assert ref == expected  # the route is what the test means it to be
    assert engine_sequence(crossings, flight_id) == ref


@pytest.mark.parametrize("flight_id", [1, 2, 3, 4, 5, 6])
def test_entry_and_exit_points_match_the_reference(world, crossings, flight_id) -> None:
    """Each FIR change of the reference (samples ~250 m apart) matches the engine's entry /
    exit point within 150 m (half a sample step plus slack), including the changes next to
    the antimeridian."""
    firs, _ = world
    _, kept, xy = reference_sequence(firs, flight_id)
    cr = crossings[crossings["flight_id"] == flight_id].reset_index(drop=True)
    dur = (cr["exit_time"] - cr["entry_time"]).dt.total_seconds().to_numpy()
    checked = 0
    for fir, _, first, last in kept:
        rows = cr.index[(cr["fir_id"] == fir) & (dur > MIN_VISIT_S)]
        assert len(rows), fir
        for end, a, b in (("entry", first - 1, first), ("exit", last, last + 1)):
            if a < 0 or b >= len(xy):
                continue  # the track starts / ends inside: no boundary
            # the boundary lies between samples a and b: compare with their midpoint
            az, _, gap = GEOD.inv(xy[a, 0], xy[a, 1], xy[b, 0], xy[b, 1])
            mid_lon, mid_lat, _ = GEOD.fwd(xy[a, 0], xy[a, 1], az, gap / 2.0)
            lon_e = cr.loc[rows, f"{end}_lon"].to_numpy()
            lat_e = cr.loc[rows, f"{end}_lat"].to_numpy()
            n = len(rows)
            d = GEOD.inv(lon_e, lat_e, np.full(n, mid_lon), np.full(n, mid_lat))[2]
            assert np.min(d) < 150.0, (flight_id, fir, end, np.min(d))
            checked += 1
    assert checked >= 2


def test_antimeridian_visits_are_single_visits(crossings) -> None:
    cr = crossings.set_index(["flight_id", "fir_id"])
    paza = cr.loc[(1, "PAZA")]
    assert paza["entry_lon"] > 170.0 and paza["exit_lon"] < -165.0  # one visit across 180
    uhmm = cr.loc[(2, "UHMM")]
    assert uhmm["exit_lon"] == pytest.approx(-170.0, abs=0.05)  # UHMM ends at 170 W
    assert (crossings["entry_lon"].abs() <= 180.0).all()
    assert (crossings["exit_lon"].abs() <= 180.0).all()
    # flown distance of the PAZA visit = the track length between its entry and exit
    d = GEOD.inv(paza["entry_lon"], paza["entry_lat"], paza["exit_lon"], paza["exit_lat"])[2]
    assert paza["flown_km"] == pytest.approx(d / 1000.0, rel=1e-3)
    assert paza["distance_km"] == pytest.approx(d / 1000.0, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# zone visits


def test_new_york_london_zone_visits_and_us_classes(world, crossings) -> None:
    _, zones = world
    split = split_zone_visits(crossings[crossings["flight_id"] == 4], zones)
    zv = split.visits
    assert zv["zone_id"].tolist() == ["US", "US", "EGGX", "EI", "EG"]
    assert zv["airspace_class"].tolist() == ["oceanic", "enroute", "enroute", "enroute", "enroute"]
    assert zv["fir_ids"].tolist() == ["KZNY", "KZBW", "EGGX", "EISN", "EGTT"]
    assert zv["departure_in_zone"].tolist() == [True, False, False, False, False]
    assert zv["arrival_in_zone"].tolist() == [False, False, False, False, True]
    # Canada (Moncton, Gander) is not charged: reported, not billed
    assert split.uncharged["zone_id"].tolist() == ["C"]
    assert split.uncharged["fir_ids"].tolist() == ["CZQM,CZQX"]


def test_bangkok_dubai_zone_visits(world, crossings) -> None:
    _, zones = world
    split = split_zone_visits(crossings[crossings["flight_id"] == 5], zones)
    assert split.visits["zone_id"].tolist() == ["VTBB"]
    vtbb = split.visits.iloc[0]
    assert vtbb["departure_in_zone"] and not vtbb["arrival_in_zone"]
    assert vtbb["airspace_class"] == "enroute"
    assert split.uncharged["zone_id"].tolist() == ["VY", "VA", "OP", "OO", "OI", "OO", "OM"]
    assert split.uncharged["fir_ids"].iloc[1] == "VECF,VABF"  # India: one zone, two FIRs


def test_dubai_nairobi_crosses_somalia(world, crossings) -> None:
    _, zones = world
    split = split_zone_visits(crossings[crossings["flight_id"] == 6], zones)
    assert split.visits["zone_id"].tolist() == ["HCSM"]
    hcsm = split.visits.iloc[0]
    assert not hcsm["departure_in_zone"] and not hcsm["arrival_in_zone"]
    assert hcsm["distance_km"] > 200.0
    # geometric check, independent of the engine: the great circle enters HCSM
    firs, _ = world
    lon, lat = great_circle(OMDB, HKJK, 1.0)
    geom = firs.set_index("fir_id").loc["HCSM", "geometry"]
    assert shapely.intersects_xy(geom, lon, lat).any()


def test_tokyo_anchorage_us_visit_is_oceanic(world, crossings) -> None:
    _, zones = world
    split = split_zone_visits(crossings[crossings["flight_id"] == 1], zones)
    us = split.visits[split.visits["zone_id"] == "US"]
    assert us["fir_ids"].tolist() == ["PAZA"] and us["airspace_class"].tolist() == ["oceanic"]
    assert _wrap(us["entry_lon"].iloc[0]) > 170.0
