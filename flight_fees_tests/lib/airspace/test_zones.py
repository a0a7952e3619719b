"""Charging zones: loading / validation and zone visits from crossings."""

from __future__ import annotations

import warnings
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from flight_fees.lib.airspace.crossings import compute_crossings
from flight_fees.lib.airspace.zones import (
    ZONE_VISIT_COLUMNS,
    ZoneDataError,
    ZoneDataWarning,
    load_charging_zones,
    zone_visits,
)

GEOD = pyproj.Geod(ellps="WGS84")
T0 = pd.Timestamp("2024-03-01T12:00:00Z")


@pytest.fixture(scope="module")
def shipped():  # -> tuple[pd.DataFrame, ChargingZones]
    """The European shipped set (``FLIGHT_FEES_FIR_SET=europe``); world: test_zones_world.py."""
    from flight_fees.lib.airspace.firs import default_fir_set, load_firs

    europe = default_fir_set("europe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        firs = load_firs(europe.firs_path)
        zones = load_charging_zones(europe.zones_path, firs=firs)
    return firs, zones


def small_firs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "fir_id": ["AAAA", "BBBB", "CCCC"],
            "name": ["A", "B", "C"],
            "country": ["X", "X", "Y"],
            "geometry": [
                shapely.box(0, -1, 1, 1),
                shapely.box(1, -1, 2, 1),
                shapely.box(2, -1, 3, 1),
            ],
        }
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "zones.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def crossing_rows(rows: list[dict]) -> pd.DataFrame:
    """A crossings frame from partial rows (defaults fill the rest)."""
    base = {
        "flight_id": 1,
        "entry_lat": 0.0,
        "exit_lat": 0.0,
        "flown_km": 10.0,
        "interpolated": False,
        "starts_inside": False,
        "ends_inside": False,
    }
    frame = pd.DataFrame([{**base, **r} for r in rows])
    frame["entry_time"] = pd.to_datetime(frame["entry_time"], utc=True)
    frame["exit_time"] = pd.to_datetime(frame["exit_time"], utc=True)
    return frame


# ---------------------------------------------------------------------------------------------
# loading


def test_shipped_zone_file_covers_every_shipped_fir_once(shipped) -> None:
    firs, zones = shipped
    assert set(zones.memberships["fir_id"]) == set(firs["fir_id"])
    assert zones.memberships["fir_id"].is_unique
    assert all(z == z.upper() for z in zones.zone_ids)
    on = date(2024, 6, 1)
    assert zones.zone_for_fir("LFEE", on) == "LF"
    assert zones.zone_for_fir("LECM", on) == "LE" and zones.zone_for_fir("LECB", on) == "LE"
    assert zones.zone_for_fir("GCCC", on) == "GC"
    assert zones.zone_for_fir("LPPC", on) == "LP" and zones.zone_for_fir("LPPO", on) == "LPPO"
    assert zones.zone_for_fir("EGGX", on) == "EGGX"
    assert zones.firs_of_zone("EG", on) == ["EGPX", "EGTT"]
    assert zones.zone_for_fir("LFEE", date(2014, 1, 1)) is None  # before valid_from
    assert zones.zone_for_fir("XXXX", on) is None
    assert len(zones.zone_ids) == 42


def test_membership_dates_and_datetime_lookup(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
valid_from: 2020-01-01
zones:
  ZA:
    name: Zone A
    firs:
      - AAAA
      - {fir: BBBB, valid_to: 2024-07-01}
  ZB:
    firs:
      - {fir: BBBB, valid_from: 2024-07-01}
      - CCCC
""",
    )
    zones = load_charging_zones(path, firs=small_firs())
    assert zones.zone_for_fir("BBBB", date(2024, 6, 30)) == "ZA"
    assert zones.zone_for_fir("BBBB", "2024-07-01") == "ZB"  # valid_to is exclusive
    # a datetime counts by its UTC date
    late = datetime(2024, 7, 1, 1, 30, tzinfo=timezone(pd.Timedelta(hours=3).to_pytimedelta()))
    assert zones.zone_for_fir("BBBB", late) == "ZA"  # 2024-06-30 22:30 UTC
    assert zones.zone_for_fir("AAAA", "2019-12-31") is None
    assert zones.names["ZA"] == "Zone A" and zones.names["ZB"] == "ZB"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "valid_from: 2020-01-01\nzones:\n  ZA: {firs: [AAAA, QQQQ]}\n"
            "  ZB: {firs: [BBBB, CCCC]}\n",
            r"zone ZA: QQQQ",
        ),
        ("valid_from: 2020-01-01\nzones:\n  za: {firs: [AAAA, BBBB, CCCC]}\n", "upper-case"),
        (
            "valid_from: 2020-01-01\nzones:\n  ZA: {firs: [AAAA, BBBB]}\n"
            "  ZB: {firs: [BBBB, CCCC]}\n",
            "BBBB is in zones ZA and ZB",
        ),
        (
            "valid_from: 2020-01-01\nzones:\n  ZA: {firs: [AAAA]}\n  ZA: {firs: [BBBB, CCCC]}\n",
            "duplicate key",
        ),
        ("zones:\n  ZA: {firs: [AAAA, BBBB, CCCC]}\n", "no valid_from"),
        (
            "valid_from: 2020-01-01\nzones:\n  ZA: {firs: [{fir: AAAA, valid_to: 2019-01-01}]}\n",
            "not after",
        ),
        ("valid_from: 2020-01-01\nzones:\n  ZA: {firs: []}\n", "non-empty list"),
        ("zones: [", "invalid YAML"),
    ],
)
def test_invalid_zone_files(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ZoneDataError, match=match):
        load_charging_zones(write(tmp_path, text), firs=small_firs())


def test_fir_without_zone_warns_and_unreadable_file_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "valid_from: 2020-01-01\nzones:\n  ZA: {firs: [AAAA, BBBB]}\n")
    with pytest.warns(ZoneDataWarning, match="CCCC"):
        load_charging_zones(path, firs=small_firs())
    with pytest.raises(ZoneDataError, match="cannot read"):
        load_charging_zones(tmp_path / "nope.yaml", firs=small_firs())


# ---------------------------------------------------------------------------------------------
# zone visits


def test_consecutive_firs_of_one_zone_merge_into_one_visit(shipped) -> None:
    _, zones = shipped
    t = pd.date_range(T0, periods=4, freq="10min")
    cr = crossing_rows(
        [
            {"visit_index": 0, "fir_id": "LFFF", "entry_time": t[0], "exit_time": t[1],
             "entry_lon": 2.0, "entry_lat": 48.5, "exit_lon": 4.0, "exit_lat": 48.6,
             "flown_km": 150.0, "starts_inside": True},
            {"visit_index": 1, "fir_id": "LFEE", "entry_time": t[1], "exit_time": t[2],
             "entry_lon": 4.0, "entry_lat": 48.6, "exit_lon": 6.0, "exit_lat": 48.9,
             "flown_km": 151.0, "interpolated": True},
            {"visit_index": 2, "fir_id": "EDGG", "entry_time": t[2], "exit_time": t[3],
             "entry_lon": 6.0, "entry_lat": 48.9, "exit_lon": 8.5, "exit_lat": 50.0,
             "flown_km": 210.0, "ends_inside": True},
        ]
    )  # fmt: skip
    zv = zone_visits(cr, zones)
    assert list(zv.columns) == list(ZONE_VISIT_COLUMNS)
    assert zv["zone_id"].tolist() == ["LF", "ED"]
    assert zv["fir_ids"].tolist() == ["LFFF,LFEE", "EDGG"]
    assert zv["visit_index"].tolist() == [0, 1]
    lf = zv.iloc[0]
    assert lf["entry_time"] == t[0] and lf["exit_time"] == t[2]
    assert (lf["entry_lon"], lf["exit_lon"]) == (2.0, 6.0)
    assert lf["flown_km"] == pytest.approx(301.0)
    assert lf["distance_km"] == pytest.approx(GEOD.inv(2.0, 48.5, 6.0, 48.9)[2] / 1000)
    assert lf["interpolated"] and not zv.iloc[1]["interpolated"]
    # no aerodromes: fallback on starts_inside / ends_inside
    assert zv["departure_in_zone"].tolist() == [True, False]
    assert zv["arrival_in_zone"].tolist() == [False, True]


def test_madrid_to_canarias_are_separate_zones_and_reentry_is_a_new_visit(shipped) -> None:
    _, zones = shipped
    t = pd.date_range(T0, periods=5, freq="20min")
    rows = [
        ("LECM", 0, 1), ("GCCC", 1, 2), ("LECM", 2, 3), ("LECB", 3, 4),
    ]  # fmt: skip
    cr = crossing_rows(
        [
            {"visit_index": i, "fir_id": f, "entry_time": t[a], "exit_time": t[b],
             "entry_lon": -4.0 - i, "exit_lon": -5.0 - i}
            for i, (f, a, b) in enumerate(rows)
        ]
    )  # fmt: skip
    zv = zone_visits(cr, zones)
    assert zv["zone_id"].tolist() == ["LE", "GC", "LE"]
    # FIR ids: one per crossing, re-entries included
    t2 = pd.date_range(T0, periods=4, freq="10min")
    lf = crossing_rows(
        [
            {"visit_index": i, "fir_id": f, "entry_time": t2[i], "exit_time": t2[i + 1],
             "entry_lon": 2.0 + i, "exit_lon": 3.0 + i}
            for i, f in enumerate(["LFFF", "LFEE", "LFFF"])
        ]
    )  # fmt: skip
    assert zone_visits(lf, zones)["fir_ids"].tolist() == ["LFFF,LFEE,LFFF"]
    assert zv["fir_ids"].tolist() == ["LECM", "GCCC", "LECM,LECB"]
    assert zv.iloc[2]["entry_time"] == t[2] and zv.iloc[2]["exit_time"] == t[4]


def test_same_zone_separated_by_a_stretch_outside_is_two_visits() -> None:
    firs = small_firs()
    path_zones = {"ZA": ["AAAA", "CCCC"], "ZB": ["BBBB"]}
    zones = _zones(firs, path_zones)
    t = pd.date_range(T0, periods=4, freq="10min")
    cr = crossing_rows(
        [
            {"visit_index": 0, "fir_id": "AAAA", "entry_time": t[0], "exit_time": t[1],
             "entry_lon": 0.1, "exit_lon": 1.0},
            {"visit_index": 1, "fir_id": "CCCC", "entry_time": t[2], "exit_time": t[3],
             "entry_lon": 2.0, "exit_lon": 2.9},
        ]
    )  # fmt: skip
    zv = zone_visits(cr, zones)
    assert zv["zone_id"].tolist() == ["ZA", "ZA"]
    assert zv["visit_index"].tolist() == [0, 1]


def _zones(firs: pd.DataFrame, spec: dict[str, list[str]], tmp: Path | None = None):
    import tempfile

    text = "valid_from: 2000-01-01\nzones:\n" + "".join(
        f"  {z}: {{firs: [{', '.join(f)}]}}\n" for z, f in spec.items()
    )
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "z.yaml"
        path.write_text(text, encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ZoneDataWarning)
            return load_charging_zones(path, firs=firs)


def test_crossing_without_zone_is_left_out_with_a_warning() -> None:
    firs = small_firs()
    zones = _zones(firs, {"ZA": ["AAAA", "CCCC"]})  # BBBB has no zone
    t = pd.date_range(T0, periods=4, freq="10min")
    cr = crossing_rows(
        [
            {"visit_index": i, "fir_id": f, "entry_time": t[i], "exit_time": t[i + 1],
             "entry_lon": float(i), "exit_lon": float(i + 1)}
            for i, f in enumerate(["AAAA", "BBBB", "CCCC"])
        ]
    )  # fmt: skip
    with pytest.warns(ZoneDataWarning, match="BBBB"):
        zv = zone_visits(cr, zones)
    # AAAA and CCCC are not contiguous once BBBB is out: two ZA visits
    assert zv["zone_id"].tolist() == ["ZA", "ZA"]
    assert zv["flown_km"].tolist() == [10.0, 10.0]


def test_departure_and_arrival_from_aerodromes_and_fallback() -> None:
    firs = small_firs()
    zones = _zones(firs, {"ZA": ["AAAA"], "ZB": ["BBBB"], "ZC": ["CCCC"]})
    lons = np.linspace(0.5, 2.5, 300)
    n = lons.size
    trk = pd.DataFrame(
        {
            "flight_id": np.repeat([1, 2, 3], n),
            "ts": np.tile(T0 + pd.to_timedelta(np.arange(n) * 5, unit="s"), 3),
            "lat": 0.0,
            "lon": np.tile(lons, 3),
        }
    )
    cr = compute_crossings(trk, firs)
    aerodromes = pd.DataFrame(
        {
            "flight_id": [1, 2],
            "origin_lat": [0.3, 0.3],
            "origin_lon": [0.4, 1.5],  # flight 2: origin in ZB although the track starts in ZA
            "destination_lat": [0.0, np.nan],
            "destination_lon": [2.6, np.nan],
        }
    )
    zv = zone_visits(cr, zones, aerodromes=aerodromes)
    assert zv.groupby("flight_id")["zone_id"].apply(list).to_dict() == {
        1: ["ZA", "ZB", "ZC"], 2: ["ZA", "ZB", "ZC"], 3: ["ZA", "ZB", "ZC"],
    }  # fmt: skip
    dep = zv.pivot(index="flight_id", columns="zone_id", values="departure_in_zone")
    arr = zv.pivot(index="flight_id", columns="zone_id", values="arrival_in_zone")
    first, last, neither = [True, False, False], [False, False, True], [False, False, False]
    # flight 1: both aerodromes known and in the first / last zone
    assert dep.loc[1].tolist() == first and arr.loc[1].tolist() == last
    # flight 2: origin known but not in the first zone visited; destination unknown -> fallback
    assert dep.loc[2].tolist() == neither and arr.loc[2].tolist() == last
    # flight 3: not in the aerodromes frame -> fallback on the track (starts / ends inside)
    assert dep.loc[3].tolist() == first and arr.loc[3].tolist() == last
    # a track starting outside every FIR does not count as a departure in the first zone
    cr_out = compute_crossings(trk.assign(lon=trk["lon"] - 0.6), firs)
    zv_out = zone_visits(cr_out, zones)
    assert not zv_out["departure_in_zone"].any()


def test_zone_visits_from_engine_on_shipped_firs(shipped) -> None:
    firs, zones = shipped
    # Paris -> Stuttgart: LFFF, LFEE (one LF visit), then EDGG
    az, _, dist = GEOD.inv(2.35, 48.85, 9.22, 48.69)
    n = int(dist / 1100) + 1
    lon, lat, _ = GEOD.fwd(
        np.full(n, 2.35), np.full(n, 48.85), np.full(n, az), np.arange(n) * 1100.0
    )
    trk = pd.DataFrame(
        {
            "flight_id": 9,
            "ts": T0 + pd.to_timedelta(np.arange(n) * 5, unit="s"),
            "lat": lat,
            "lon": lon,
        }
    )
    cr = compute_crossings(trk, firs)
    assert cr["fir_id"].tolist() == ["LFFF", "LFEE", "EDGG"]
    zv = zone_visits(cr, zones)
    assert zv["zone_id"].tolist() == ["LF", "ED"]
    lf = zv.iloc[0]
    assert lf["fir_ids"] == "LFFF,LFEE"
    assert lf["exit_time"] == cr.iloc[1]["exit_time"] == zv.iloc[1]["entry_time"]
    assert lf["flown_km"] == pytest.approx(
        cr.loc[cr["fir_id"].str.startswith("LF"), "flown_km"].sum()
    )
    assert lf["departure_in_zone"]
    assert zv["flown_km"].sum() == pytest.approx(cr["flown_km"].sum())


def test_empty_crossings_give_empty_zone_visits(shipped) -> None:
    _, zones = shipped
    empty = compute_crossings(
        pd.DataFrame({"flight_id": [], "ts": pd.to_datetime([], utc=True), "lat": [], "lon": []}),
        zones.firs,
    )
    zv = zone_visits(empty, zones)
    assert zv.empty and list(zv.columns) == list(ZONE_VISIT_COLUMNS)
    with pytest.raises(ValueError, match="fir_id"):
        zone_visits(empty.drop(columns="fir_id"), zones)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: 1\nvalid_from: 2026-02-30\nzones:\n  AA: {name: A, firs: [AAAA]}\n",
            "bad valid_from '2026-02-30'",
        ),
        ("zones: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 32 levels"),
    ],
)
def test_impossible_dates_and_deep_yaml_are_refused_cleanly(tmp_path, text, message):
    with pytest.raises(ZoneDataError, match=message):
        load_charging_zones(write(tmp_path, text), firs=small_firs())
