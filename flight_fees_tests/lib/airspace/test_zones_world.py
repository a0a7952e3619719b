"""World charging zones: the shipped world zone file, airspace classes, uncharged zones."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import shapely
import yaml

from flight_fees.lib.airspace.firs import FirDataWarning, default_fir_set, load_firs
from flight_fees.lib.airspace.zones import (
    ZONE_VISIT_COLUMNS,
    ZoneDataError,
    ZoneDataWarning,
    load_charging_zones,
    split_zone_visits,
    zone_visits,
)
from flight_fees.lib.charging.tariffs import load_tariffs

T0 = pd.Timestamp("2024-03-01T12:00:00Z")


@pytest.fixture(scope="module")
def world():  # -> ChargingZones
    fir_set = default_fir_set("world")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FirDataWarning)
        firs = load_firs(fir_set.firs_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZoneDataWarning)  # every FIR has a zone: no warning
        return load_charging_zones(fir_set.zones_path, firs=firs)


def five_firs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "fir_id": ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE"],
            "geometry": [shapely.box(k, -1, k + 1, 1) for k in range(5)],
        }
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "zones.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def chain(firs: list[str], *, flight_id: int = 1) -> pd.DataFrame:
    """Contiguous crossings of ``firs`` (10 min each, 1 degree of longitude each)."""
    t = pd.date_range(T0, periods=len(firs) + 1, freq="10min")
    return pd.DataFrame(
        {
            "flight_id": flight_id,
            "visit_index": range(len(firs)),
            "fir_id": firs,
            "entry_time": t[:-1],
            "exit_time": t[1:],
            "entry_lat": 0.0,
            "entry_lon": [float(k) for k in range(len(firs))],
            "exit_lat": 0.0,
            "exit_lon": [float(k + 1) for k in range(len(firs))],
            "flown_km": 111.0,
            "interpolated": False,
            "starts_inside": True,
            "ends_inside": True,
        }
    )


# ---------------------------------------------------------------------------------------------
# the shipped world zone file


def test_world_zone_file_covers_every_fir_once(world) -> None:
    on = date(2024, 6, 1)
    m = world.memberships
    assert set(m["fir_id"]) == set(world.firs["fir_id"]) and m["fir_id"].is_unique
    assert len(m) == 270
    assert world.zone_for_fir("VTBB", on) == "VTBB" and world.zone_for_fir("HCSM", on) == "HCSM"
    assert world.zone_for_fir("USSS", on) == "U"  # Russian "US" prefix: Russia, not the FAA
    assert world.zone_for_fir("ZBPE", on) == "Z" and world.zone_for_fir("ZKKP", on) == "ZK"
    assert world.zone_for_fir("CZQX", on) == "C" and world.zone_for_fir("VIDF", on) == "VA"


def test_european_zones_are_those_of_the_european_file(world) -> None:
    eu = default_fir_set("europe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FirDataWarning)
        eu_zones = load_charging_zones(eu.zones_path, firs=load_firs(eu.firs_path))
    cols = ["zone_id", "fir_id", "valid_from", "valid_to"]
    mine = world.memberships[world.memberships["zone_id"].isin(eu_zones.zone_ids)]
    pd.testing.assert_frame_equal(
        mine[cols].reset_index(drop=True), eu_zones.memberships[cols].reset_index(drop=True)
    )
    assert {z: world.names[z] for z in eu_zones.zone_ids} == dict(eu_zones.names)
    assert (mine["airspace_class"] == "enroute").all()


def test_us_zone_and_airspace_classes(world) -> None:
    m = world.memberships.set_index("fir_id")
    us = sorted(m.index[m["zone_id"] == "US"])
    assert [f for f in us if not f.startswith("KZ")] == ["PAZA", "PGZU", "PHZH", "TJZS"]
    assert len([f for f in us if f.startswith("KZ")]) == 19  # every K FIR of the set
    oceanic = sorted(m.index[m["airspace_class"] == "oceanic"])
    assert oceanic == ["KZNY", "PAZA", "TJZS"]


def test_every_zone_without_tariff_is_uncharged(world) -> None:
    tariffs = set(load_tariffs().zone_ids)
    assert set(world.charged_zone_ids) == tariffs & set(world.zone_ids)
    assert world.uncharged == frozenset(set(world.zone_ids) - tariffs)
    assert {"US", "VTBB", "HCSM", "LF", "EGGX"} <= set(world.charged_zone_ids)
    assert {"C", "U", "Z", "OM", "BI"} <= world.uncharged
    assert world.is_charged("US") and not world.is_charged("C") and not world.is_charged("XX")


def test_world_zone_file_yaml_keys() -> None:
    doc = yaml.safe_load(default_fir_set("world").zones_path.read_text(encoding="utf-8"))
    for zone_id, spec in doc["zones"].items():
        assert set(spec) <= {"name", "firs", "charged"}, zone_id


# ---------------------------------------------------------------------------------------------
# file format: class and charged


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "valid_from: 2020-01-01\nzones:\n  ZA: {charged: no-thanks, firs: [AAAA]}\n",
            "'charged' must be true or false",
        ),
        (
            "valid_from: 2020-01-01\nzones:\n  ZA: {firs: [{fir: AAAA, class: polar}]}\n",
            "unknown airspace class 'polar'",
        ),
        (
            "valid_from: 2020-01-01\nzones:\n  ZA: {class: Sea, firs: [AAAA]}\n",
            "unknown airspace class 'Sea'",
        ),
    ],
)
def test_invalid_class_and_charged(tmp_path: Path, text: str, match: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZoneDataWarning)
        with pytest.raises(ZoneDataError, match=match):
            load_charging_zones(write(tmp_path, text), firs=five_firs())


SPEC = """
valid_from: 2020-01-01
zones:
  ZA:
    firs: [AAAA, {fir: BBBB, class: Oceanic}, {fir: CCCC, class: oceanic}]
  ZB: {name: Zone B, charged: false, firs: [DDDD]}
  ZC: {class: oceanic, charged: true, firs: [EEEE]}
"""


def test_classes_and_flags_are_loaded(tmp_path: Path) -> None:
    zones = load_charging_zones(write(tmp_path, SPEC), firs=five_firs())
    m = zones.memberships.set_index("fir_id")["airspace_class"].to_dict()
    assert m == {"AAAA": "enroute", "BBBB": "oceanic", "CCCC": "oceanic", "DDDD": "enroute",
                 "EEEE": "oceanic"}  # fmt: skip
    assert zones.uncharged == frozenset({"ZB"}) and zones.charged_zone_ids == ["ZA", "ZC"]


def test_zone_visit_is_split_where_the_class_changes(tmp_path: Path) -> None:
    zones = load_charging_zones(write(tmp_path, SPEC), firs=five_firs())
    zv = zone_visits(chain(["AAAA", "BBBB", "CCCC", "AAAA"]), zones)
    assert list(zv.columns) == list(ZONE_VISIT_COLUMNS)
    assert zv["zone_id"].tolist() == ["ZA", "ZA", "ZA"]
    assert zv["airspace_class"].tolist() == ["enroute", "oceanic", "enroute"]
    assert zv["fir_ids"].tolist() == ["AAAA", "BBBB,CCCC", "AAAA"]
    assert zv["visit_index"].tolist() == [0, 1, 2]
    assert zv["flown_km"].tolist() == [111.0, 222.0, 111.0]
    assert zv["departure_in_zone"].tolist() == [True, False, False]
    assert zv["arrival_in_zone"].tolist() == [False, False, True]


def test_uncharged_visits_are_left_out_and_reported(tmp_path: Path) -> None:
    zones = load_charging_zones(write(tmp_path, SPEC), firs=five_firs())
    crossings = pd.concat(
        [chain(["DDDD", "EEEE", "DDDD", "AAAA"]), chain(["DDDD"], flight_id=2)],
        ignore_index=True,
    )
    split = split_zone_visits(crossings, zones)
    assert list(split.uncharged.columns) == list(ZONE_VISIT_COLUMNS)
    assert split.visits[["flight_id", "visit_index", "zone_id"]].values.tolist() == [
        [1, 0, "ZC"], [1, 1, "ZA"],
    ]  # fmt: skip
    assert split.uncharged[["flight_id", "visit_index", "zone_id"]].values.tolist() == [
        [1, 0, "ZB"], [1, 1, "ZB"], [2, 0, "ZB"],
    ]  # fmt: skip
    # the departure was in the uncharged zone: the first charged visit is no departure
    assert not split.visits["departure_in_zone"].any()
    assert split.visits["arrival_in_zone"].tolist() == [False, True]
    with pytest.warns(ZoneDataWarning, match=r"3 visit\(s\) in zone\(s\) not charged .*ZB 3"):
        zv = zone_visits(crossings, zones)
    pd.testing.assert_frame_equal(zv, split.visits)


def test_everything_charged_gives_an_empty_uncharged_frame() -> None:
    firs = five_firs()
    text = "valid_from: 2020-01-01\nzones:\n  ZA: {firs: [AAAA, BBBB, CCCC, DDDD, EEEE]}\n"
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        zones = load_charging_zones(write(Path(d), text), firs=firs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZoneDataWarning)
        split = split_zone_visits(chain(["AAAA", "BBBB"]), zones)
    assert len(split.visits) == 1 and split.uncharged.empty
    assert list(split.uncharged.columns) == list(ZONE_VISIT_COLUMNS)
    assert split.visits["airspace_class"].tolist() == ["enroute"]


def test_default_zone_file_with_another_fir_set_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLIGHT_FEES_FIR_SET", "world")
    with pytest.raises(ZoneDataError, match="FLIGHT_FEES_FIR_SET"):
        load_charging_zones(firs=five_firs())
    monkeypatch.setenv("FLIGHT_FEES_FIR_SET", "europe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FirDataWarning)
        zones = load_charging_zones()  # the European zone file with the European FIRs
    assert len(zones.zone_ids) == 42 and not zones.uncharged
    assert (zones.memberships["airspace_class"] == "enroute").all()
