"""Tests of the embedded track store writer (layout, round trip, idempotent rewrites)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from flight_fees.lib.ops.demo import DemoData, generate_demo
from flight_fees.lib.tracks.store import TRACK_SCHEMA, write_track_store


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo(n_flights=40, start_day=date(2026, 1, 5), seed=7)


def _read_store(root: Path) -> pd.DataFrame:
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    return table.to_pandas()


def test_store_layout_and_round_trip(demo: DemoData, tmp_path: Path) -> None:
    root = tmp_path / "tracks"
    files = write_track_store(demo.tracks, root)
    days = sorted({d.isoformat() for d in demo.flights["flight_date"]})
    assert sorted(p.parent.name for p in files) == [f"day={d}" for d in days]
    assert all(re.fullmatch(r"part-\d+\.parquet", p.name) for p in files)
    assert sorted(p.name for p in root.iterdir()) == [f"day={d}" for d in days]
    schema = pq.read_schema(files[0])
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.remove_metadata().equals(TRACK_SCHEMA.remove_metadata(), check_metadata=False)
    assert "day" not in schema.names

    back = _read_store(root)
    assert len(back) == len(demo.tracks)
    back = back.sort_values(["flight_id", "ts"], kind="stable").reset_index(drop=True)
    # every flight in exactly one partition: the UTC day of its first position
    parts = back.groupby("flight_id")["day"].agg(lambda s: set(s.astype(str)))
    assert (parts.map(len) == 1).all()
    expected = demo.flights.set_index("flight_id")["flight_date"].map(lambda d: {d.isoformat()})
    assert parts.equals(expected.loc[parts.index])
    back = back.drop(columns="day")
    pd.testing.assert_frame_equal(
        back, demo.tracks.reset_index(drop=True), check_dtype=False, check_exact=True
    )
    assert back["ts"].dtype == demo.tracks["ts"].dtype


def test_store_flight_crossing_midnight_stays_in_departure_day(
    demo: DemoData, tmp_path: Path
) -> None:
    fid = int(demo.flights.sort_values("great_circle_km")["flight_id"].iloc[-1])
    tr = demo.tracks[demo.tracks["flight_id"] == fid].copy()
    tr["ts"] = tr["ts"] - tr["ts"].iloc[0] + pd.Timestamp("2026-02-01 23:30", tz="UTC")
    assert tr["ts"].iloc[-1].date() == date(2026, 2, 2)
    files = write_track_store(tr.sample(frac=1.0, random_state=1), tmp_path)  # any order
    assert [p.parent.name for p in files] == ["day=2026-02-01"]
    back = pq.read_table(files[0]).to_pandas()
    assert len(back) == len(tr) and back["ts"].is_monotonic_increasing


def test_store_rewrite_is_idempotent(demo: DemoData, tmp_path: Path) -> None:
    first = write_track_store(demo.tracks, tmp_path)
    second = write_track_store(demo.tracks, tmp_path)
    assert first == second
    assert len(_read_store(tmp_path)) == len(demo.tracks)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".parquet"]
    # rewriting one day with fewer flights replaces that day only
    day0 = demo.flights["flight_date"].min()
    keep = demo.flights.loc[demo.flights["flight_date"] == day0, "flight_id"].iloc[:2]
    other_day = tmp_path / f"day={day0 + timedelta(days=1)}" / "part-0.parquet"
    before = other_day.read_bytes()
    written = write_track_store(demo.tracks[demo.tracks["flight_id"].isin(keep)], tmp_path)
    assert written == [tmp_path / f"day={day0}" / "part-0.parquet"]
    back = _read_store(tmp_path)
    assert set(back.loc[back["day"].astype(str) == str(day0), "flight_id"]) == set(keep)
    assert other_day.read_bytes() == before
    # a day split in several parts, then rewritten as one: stale parts are removed
    many = write_track_store(demo.tracks, tmp_path, rows_per_file=1_000)
    assert len(many) > len(first)
    assert write_track_store(demo.tracks, tmp_path) == first
    assert sorted(tmp_path.rglob("*.parquet")) == sorted(first)
    assert len(_read_store(tmp_path)) == len(demo.tracks)


def test_store_minimal_columns_and_empty(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "flight_id": [1, 1, 2],
            "ts": pd.to_datetime(
                ["2026-03-01T10:00:00", "2026-03-01T10:00:05", "2026-03-02T00:00:00"]
            ),  # naive: taken as UTC
            "lat": [50.0, 50.01, 40.0],
            "lon": [8.0, 8.01, -3.0],
        }
    )
    files = write_track_store(frame, tmp_path)
    assert [p.parent.name for p in files] == ["day=2026-03-01", "day=2026-03-02"]
    back = pq.read_table(files[0])
    assert back.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert back.column("callsign").null_count == 2 and back.column("alt_ft").null_count == 2
    assert write_track_store(frame.iloc[:0], tmp_path / "empty") == []
    with pytest.raises(ValueError, match="lacks columns"):
        write_track_store(frame.drop(columns="lat"), tmp_path)
