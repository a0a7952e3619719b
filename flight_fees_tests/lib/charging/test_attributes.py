from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select, update

from flight_fees.lib.charging.attributes import (
    AircraftTableSource,
    AttributeSourceError,
    Conflict,
    ConflictNotFound,
    CsvAttributeSource,
    FrameAttributeSource,
    ManualResolutionSource,
    TrackRowsSource,
    TTLCache,
    blocked_flight_ids,
    default_attribute_sources,
    normalise_value,
    open_conflicts,
    record_conflicts,
    resolve_attributes,
    resolve_conflict,
)
from flight_fees.lib.db import transaction
from flight_fees.lib.db.models import Aircraft, Customer, FlightConflict


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _flights(*ids: int) -> pd.DataFrame:
    return pd.DataFrame({"flight_id": list(ids)})


def _row(result, flight_id: int) -> dict:
    frame = result.attributes
    return frame[frame["flight_id"] == flight_id].iloc[0].to_dict()


def _tracks() -> pd.DataFrame:
    ts = pd.date_range("2024-05-01 10:00", periods=4, freq="min", tz="UTC")
    return pd.DataFrame(
        {
            "flight_id": [1, 1, 1, 1, 2, 2, 2, 2],
            "ts": list(ts) * 2,
            "lat": 50.0,
            "lon": 8.0,
            "callsign": ["dlh4ab ", "DLH4AB", "XXX1", None, "BAW1", "baw2", "BAW2", "BAW1"],
            "registration": ["d-aiab", "D-AIAB", "D-AIAB", None, None, None, None, None],
            "icao24": [None, None, None, None, "ABC123", "abc123", None, None],
            "aircraft_type": ["a320", None, None, None, None, None, None, None],
            "origin": ["eddf"] * 4 + [None] * 4,
            "destination": ["egll"] * 4 + [None] * 4,
        }
    )


def _seed_aircraft(engine) -> None:
    with transaction(engine) as s:
        dlh = Customer(code="DLH", name="Lufthansa")
        baw = Customer(code="BAW", name="British Airways")
        s.add_all([dlh, baw])
        s.flush()
        s.add_all(
            [
                Aircraft(
                    registration="D-AIAB",
                    icao24="3c6444",
                    icao_type="A320",
                    mtow_kg=Decimal("73500.0"),
                    customer_id=dlh.id,
                    flags="training",
                ),
                Aircraft(
                    registration="G-EUPA",
                    icao24="abc123",
                    icao_type="A319",
                    mtow_kg=Decimal("64000.0"),
                    customer_id=baw.id,
                ),
            ]
        )


def test_normalise_value():
    assert normalise_value("registration", " d-ai ab ") == "D-AIAB"
    assert normalise_value("icao24", " ABC123") == "abc123"
    assert normalise_value("flags", "Training, state;training") == "state,training"
    assert normalise_value("mtow_kg", " 73500 ") == 73500.0
    assert normalise_value("operator", "  ") is None
    assert normalise_value("callsign", float("nan")) is None
    for bad in ("heavy", "-1", "0", "inf", True):
        with pytest.raises(ValueError):
            normalise_value("mtow_kg", bad)


def test_track_rows_take_most_frequent_normalised_value():
    src = TrackRowsSource(_tracks())
    out = src.lookup(_flights(1, 2, 3)).set_index("flight_id")
    # "dlh4ab " and "DLH4AB" are the same callsign: 2 votes against 1
    assert out.loc[1, "callsign"] == "DLH4AB"
    assert out.loc[1, "registration"] == "D-AIAB"
    assert out.loc[1, "aircraft_type"] == "A320"
    assert (out.loc[1, "origin"], out.loc[1, "destination"]) == ("EDDF", "EGLL")
    # BAW1 x2 vs BAW2 x2 (after normalising baw2): the earliest seen wins
    assert out.loc[2, "callsign"] == "BAW1"
    assert out.loc[2, "icao24"] == "abc123"
    assert pd.isna(out.loc[2, "registration"])
    assert out.loc[3].isna().all()  # unknown flight


def test_priority_resolves_ordinary_fields():
    high = FrameAttributeSource(
        "high", pd.DataFrame({"flight_id": [1], "callsign": ["ABC1"], "origin": [None]})
    )
    low = FrameAttributeSource(
        "low",
        pd.DataFrame(
            {"flight_id": [1, 2], "callsign": ["ZZZ9", "QQQ1"], "origin": ["lfpg", "EDDM"]}
        ),
    )
    result = resolve_attributes(_flights(2, 1, 2), [high, low])
    assert result.conflicts == []
    assert result.attributes["flight_id"].tolist() == [2, 1]  # input order, de-duplicated
    r1 = _row(result, 1)
    assert (r1["callsign"], r1["callsign_source"]) == ("ABC1", "high")
    assert (r1["origin"], r1["origin_source"]) == ("LFPG", "low")  # high does not know it
    assert r1["registration"] is None and r1["registration_source"] is None
    assert not r1["has_conflict"] and r1["conflict_fields"] is None
    assert _row(result, 2)["callsign_source"] == "low"
    # reversing the priority flips the winner
    flipped = resolve_attributes(_flights(1), [low, high])
    assert (_row(flipped, 1)["callsign"], _row(flipped, 1)["callsign_source"]) == ("ZZZ9", "low")


def test_critical_fields_tolerance_and_case():
    a = FrameAttributeSource(
        "a",
        pd.DataFrame(
            {"flight_id": [1, 2], "mtow_kg": [70000.0, 70000.0], "operator": ["DLH", "DLH"]}
        ),
    )
    b = FrameAttributeSource(
        "b",
        pd.DataFrame(
            {"flight_id": [1, 2], "mtow_kg": [70000.4, 70000.6], "operator": ["dlh", "DLH"]}
        ),
    )
    result = resolve_attributes(_flights(1, 2), [a, b])
    assert result.conflicts == [Conflict(2, "mtow_kg", {"a": 70000.0, "b": 70000.6})]
    r1, r2 = _row(result, 1), _row(result, 2)
    assert (r1["mtow_kg"], r1["mtow_kg_source"], r1["operator"]) == (70000.0, "a", "DLH")
    assert pd.isna(r2["mtow_kg"]) and r2["mtow_kg_source"] is None  # never billable by mistake
    assert r2["has_conflict"] and r2["conflict_fields"] == "mtow_kg"
    assert result.blocked_flight_ids == {2}
    # a disagreement on a non-critical field is no conflict
    relaxed = resolve_attributes(_flights(2), [a, b], critical_fields=("operator",))
    assert relaxed.conflicts == [] and _row(relaxed, 2)["mtow_kg"] == 70000.0


def test_conflict_recorded_blocks_and_resolution_wins(engine):
    _seed_aircraft(engine)
    csv_says = FrameAttributeSource(
        "declared", pd.DataFrame({"flight_id": [1], "mtow_kg": [77000], "operator": ["DLH"]})
    )
    tracks = TrackRowsSource(_tracks())
    sources = [ManualResolutionSource(engine), AircraftTableSource(engine), csv_says, tracks]

    result = resolve_attributes(_flights(1, 2), sources)
    assert result.conflicts == [
        Conflict(1, "mtow_kg", {"aircraft_table": 73500.0, "declared": 77000.0})
    ]
    with transaction(engine) as s:
        assert record_conflicts(s, result.conflicts) == 1
    with transaction(engine) as s:  # idempotent while open
        assert record_conflicts(s, result.conflicts + result.conflicts) == 0
    assert blocked_flight_ids(engine, [1, 2, 3]) == {1}
    conflicts = open_conflicts(engine)
    assert conflicts[["flight_id", "field"]].values.tolist() == [[1, "mtow_kg"]]
    assert conflicts.loc[0, "candidates"] == {"aircraft_table": 73500.0, "declared": 77000.0}
    assert open_conflicts(engine, [2]).empty

    # a human decides (neither candidate is required): the flight is unblocked...
    conflict_id = resolve_conflict(engine, (1, "mtow_kg"), " 75000 ")
    assert conflict_id == int(conflicts.loc[0, "id"])
    assert blocked_flight_ids(engine, [1, 2]) == set()
    assert open_conflicts(engine).empty
    # ...and the chosen value wins from now on, with no new conflict
    again = resolve_attributes(_flights(1, 2), sources)
    assert again.conflicts == []
    r1 = _row(again, 1)
    assert (r1["mtow_kg"], r1["mtow_kg_source"]) == (75000.0, "manual")
    assert (r1["operator"], r1["operator_source"]) == ("DLH", "aircraft_table")
    with transaction(engine) as s:
        assert record_conflicts(s, again.conflicts) == 0
    # the manual source wins even if listed last
    last = resolve_attributes(_flights(1), [*sources[1:], sources[0]])
    assert _row(last, 1)["mtow_kg_source"] == "manual" and last.conflicts == []

    # a new disagreement on a resolved field can be recorded again (partial unique index)
    with transaction(engine) as s:
        assert record_conflicts(s, [Conflict(1, "mtow_kg", {"x": 1.0, "y": 2.0})]) == 1
    assert blocked_flight_ids(engine, [1]) == {1}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(FlightConflict)).scalar() == 2


def test_resolve_conflict_errors(engine):
    with transaction(engine) as s:
        record_conflicts(s, [Conflict(5, "operator", {"a": "DLH", "b": "BAW"})])
    with pytest.raises(ConflictNotFound):
        resolve_conflict(engine, (5, "mtow_kg"), "1000")
    with pytest.raises(ConflictNotFound):
        resolve_conflict(engine, 999_999, "DLH")
    with pytest.raises(ValueError, match="empty resolution"):
        resolve_conflict(engine, (5, "operator"), "  ")
    assert blocked_flight_ids(engine, [5]) == {5}  # failed attempts changed nothing
    with transaction(engine) as s:
        record_conflicts(s, [Conflict(6, "mtow_kg", {"a": 1.0, "b": 9.0})])
    with pytest.raises(ValueError, match="mtow_kg"):
        resolve_conflict(engine, (6, "mtow_kg"), "heavy")
    resolve_conflict(engine, (5, "operator"), "baw")
    with pytest.raises(ConflictNotFound):  # already resolved
        resolve_conflict(engine, (5, "operator"), "DLH")
    manual = ManualResolutionSource(engine).lookup(_flights(5, 6)).set_index("flight_id")
    assert manual.loc[5, "operator"] == "baw" and list(manual.index) == [5]


def test_aircraft_table_by_registration_with_icao24_fallback(engine):
    _seed_aircraft(engine)
    result = resolve_attributes(_flights(1, 2, 3), default_attribute_sources(engine, _tracks()))
    assert result.conflicts == []
    r1, r2, r3 = (_row(result, i) for i in (1, 2, 3))
    # flight 1: registration from the track rows, the rest from the table
    assert (r1["registration"], r1["registration_source"]) == ("D-AIAB", "aircraft_table")
    assert (r1["mtow_kg"], r1["operator"], r1["flags"]) == (73500.0, "DLH", "training")
    assert (r1["icao24"], r1["callsign_source"]) == ("3c6444", "track_rows")
    # flight 2: no registration in the tracks, matched by icao24
    assert (r2["registration"], r2["aircraft_type"], r2["mtow_kg"]) == ("G-EUPA", "A319", 64000.0)
    assert (r2["operator"], r2["operator_source"]) == ("BAW", "aircraft_table")
    # flight 3: nobody knows it
    assert r3["registration"] is None and pd.isna(r3["mtow_kg"]) and not r3["has_conflict"]


def test_ambiguous_icao24_matches_nothing(engine):
    with transaction(engine) as s:
        s.add_all(
            [
                Aircraft(registration="N1", icao24="aaaaaa", mtow_kg=Decimal("1000")),
                Aircraft(registration="N2", icao24="aaaaaa", mtow_kg=Decimal("2000")),
            ]
        )
    out = AircraftTableSource(engine).lookup(
        pd.DataFrame(
            {"flight_id": [1, 2], "registration": [None, "n2"], "icao24": ["AAAAAA", None]}
        )
    )
    assert out.set_index("flight_id")["mtow_kg"].to_dict() == {2: 2000.0}


def test_ttl_cache_hit_miss_expiry():
    clock = FakeClock()
    cache: TTLCache[str, int | None] = TTLCache(ttl_s=300, clock=clock)
    assert cache.get("a", "absent") == "absent"
    cache.set_many({"a": 1, "b": None})
    found, missing = cache.get_many(["a", "b", "c", "a"])
    assert found == {"a": 1, "b": None} and missing == ["c"]  # None is a cached value
    assert (cache.hits, cache.misses) == (2, 2)
    clock.t += 299.9
    assert cache.get("a") == 1
    clock.t += 0.1
    assert cache.get("a", "expired") == "expired"
    assert len(cache) == 0  # expired entries are not counted (a and b expired together)
    loads = []
    assert cache.get_or_load("x", lambda: loads.append(1) or 42) == 42
    assert cache.get_or_load("x", lambda: loads.append(1) or 43) == 42
    assert loads == [1]
    small: TTLCache[int, int] = TTLCache(ttl_s=10, clock=clock, max_entries=2)
    small.set_many({1: 1, 2: 2, 3: 3})
    assert small.get_many([1, 2, 3]) == ({2: 2, 3: 3}, [1])


def test_aircraft_table_cache_avoids_rereads_until_expiry(engine):
    _seed_aircraft(engine)
    clock = FakeClock()
    source = AircraftTableSource(engine, cache=TTLCache(ttl_s=300, clock=clock))
    flights = pd.DataFrame({"flight_id": [1, 2], "registration": ["D-AIAB", "N-NEW"]})
    assert source.lookup(flights)["mtow_kg"].tolist() == [73500.0]
    with transaction(engine) as s:
        s.execute(update(Aircraft).where(Aircraft.registration == "D-AIAB").values(mtow_kg=1))
        s.add(Aircraft(registration="N-NEW", mtow_kg=Decimal("5000")))
    clock.t += 299
    assert source.lookup(flights)["mtow_kg"].tolist() == [73500.0]  # hit (incl. the miss)
    assert source.cache.misses == 2 and source.cache.hits == 2
    clock.t += 1
    assert source.lookup(flights)["mtow_kg"].tolist() == [1.0, 5000.0]  # expired: re-read


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_source_by_flight_id_and_by_registration(tmp_path):
    by_flight = CsvAttributeSource(
        _write(tmp_path / "f.csv", "Flight_ID,mtow_kg,operator,flags\n1,70000,dlh,State\n\n7,,,\n")
    )
    out = by_flight.lookup(_flights(7, 1, 3)).set_index("flight_id")
    assert out.loc[1, "mtow_kg"] == 70000.0 and out.loc[1, "operator"] == "dlh"
    assert out.loc[1, "flags"] == "state"
    assert pd.isna(out.loc[7, "mtow_kg"]) and out.loc[3].isna().all()
    assert by_flight.name == "csv:f.csv"

    by_reg = CsvAttributeSource(
        _write(tmp_path / "r.csv", "registration,aircraft_type,mtow_kg\nd-aiab,a320,73000\n")
    )
    result = resolve_attributes(_flights(1, 2), [by_reg, TrackRowsSource(_tracks())])
    r1 = _row(result, 1)
    assert (r1["mtow_kg"], r1["mtow_kg_source"], r1["aircraft_type"]) == (
        73000.0,
        "csv:r.csv",
        "A320",
    )
    assert pd.isna(_row(result, 2)["mtow_kg"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("flight_id,mtow,operator\n1,2,3\n", "unknown column 'mtow'"),
        ("operator,mtow_kg\nDLH,1\n", "missing key column 'registration'"),
        ("flight_id,operator,Operator\n1,a,b\n", "duplicate column(s) in the header: operator"),
        ("", "empty attribute CSV"),
        ("flight_id\n1\n", "no attribute column besides the key column 'flight_id'"),
        ("flight_id,mtow_kg\n1,heavy\n", "line 2, column 'mtow_kg'"),
        ("flight_id,mtow_kg\n1,10\nx,10\n", "line 3, column 'flight_id'"),
        ("flight_id,mtow_kg\n1,10\n1,11\n", "line 3: duplicate flight_id 1 (first on line 2)"),
        ("registration,icao24\nD-X,12345g\n", "line 2, column 'icao24'"),
        ("flight_id,mtow_kg\n1,10,3\n", "line 2: 3 cells, the header has 2"),
    ],
)
def test_csv_source_rejects_bad_files(tmp_path, content, message):
    path = _write(tmp_path / "attrs.csv", content)
    with pytest.raises(AttributeSourceError) as info:
        CsvAttributeSource(path).lookup(_flights(1))
    assert str(path) in str(info.value)
    assert message in str(info.value)
    assert info.value.category == "attribute_source_error"


def test_csv_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(AttributeSourceError, match="cannot read attribute CSV"):
        CsvAttributeSource(tmp_path / "nope.csv").table()


def test_csv_cache_until_expiry(tmp_path):
    path = _write(tmp_path / "a.csv", "flight_id,mtow_kg\n1,1000\n")
    clock = FakeClock()
    source = CsvAttributeSource(path, cache=TTLCache(ttl_s=300, clock=clock))
    assert source.lookup(_flights(1))["mtow_kg"].tolist() == [1000.0]
    _write(path, "flight_id,mtow_kg\n1,2000\n")
    clock.t += 299
    assert source.lookup(_flights(1))["mtow_kg"].tolist() == [1000.0]
    clock.t += 1
    assert source.lookup(_flights(1))["mtow_kg"].tolist() == [2000.0]


def test_bad_source_output_is_rejected():
    dupes = FrameAttributeSource("dupes", pd.DataFrame({"flight_id": [1, 1], "origin": ["A", "B"]}))
    with pytest.raises(AttributeSourceError, match="several rows"):
        resolve_attributes(_flights(1), [dupes])
    bad_mtow = FrameAttributeSource("bad", pd.DataFrame({"flight_id": [1], "mtow_kg": [-3]}))
    with pytest.raises(AttributeSourceError, match="'bad', field mtow_kg"):
        resolve_attributes(_flights(1), [bad_mtow])
    with pytest.raises(ValueError, match="unique"):
        resolve_attributes(_flights(1), [bad_mtow, bad_mtow])
    with pytest.raises(ValueError, match="unknown critical"):
        resolve_attributes(_flights(1), [], critical_fields=("weight",))
