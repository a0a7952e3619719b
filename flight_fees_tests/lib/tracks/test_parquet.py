"""ParquetTrackSource over a Hive-partitioned store."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from flight_fees.lib.tracks import (
    NOT_FOUND,
    SOURCE_UNAVAILABLE,
    ParquetTrackSource,
    TrackSource,
    TrackSourceError,
    make_track_source,
)
from flight_fees_tests.pinot_broker import synthetic_positions, write_parquet_store

DAY = dt.date(2024, 3, 1)


def test_fetch_by_day_is_complete_ordered_and_typed(parquet_store, positions):
    assert isinstance(parquet_store, TrackSource)
    shuffled = [103, 101]
    result = parquet_store.fetch(shuffled, day=DAY)
    assert result.failures == {} and result.queries == 1
    tracks = result.tracks
    expected = positions[positions["flight_id"].isin(shuffled)].sort_values(["flight_id", "ts"])
    assert len(tracks) == len(expected) == 80
    assert tracks["flight_id"].is_monotonic_increasing
    assert tracks.groupby("flight_id")["ts"].apply(lambda s: s.is_monotonic_increasing).all()
    assert (tracks["ts"].to_numpy() == expected["ts"].to_numpy()).all()
    assert tracks["flight_id"].dtype == "int64" and str(tracks["ts"].dt.tz) == "UTC"
    assert tracks["lat"].dtype == "float64" and tracks["callsign"].iloc[0] == "TST101"
    assert "origin" in tracks.columns and "destination" in tracks.columns


def test_missing_flight_and_wrong_day_are_not_found(parquet_store):
    result = parquet_store.fetch([101, 201, 999], day=DAY)
    assert result.flight_ids == [101]
    assert {f: x.category for f, x in result.failures.items()} == {201: NOT_FOUND, 999: NOT_FOUND}
    assert "2024-03-01" in result.failures[999].message


def test_without_day_every_partition_is_scanned(parquet_store):
    result = parquet_store.fetch([101, 201])
    assert result.failures == {} and result.flight_ids == [101, 201]
    assert result.stats["files"] == 2


def test_day_partition_is_pruned(parquet_store, tmp_path):
    # a corrupt file in another partition is never opened when the day is given
    bad = parquet_store.root / "day=2024-03-05"
    bad.mkdir()
    (bad / "broken.parquet").write_bytes(b"not parquet")
    result = parquet_store.fetch([101], day=DAY)
    assert result.failures == {} and result.stats["files"] == 1


def test_time_window_filters_points(parquet_store, positions):
    start = pd.Timestamp("2024-03-01 10:00:30", tz="UTC").to_pydatetime()
    end = pd.Timestamp("2024-03-01 10:01:00", tz="UTC").to_pydatetime()
    tracks = parquet_store.fetch([101], start=start, end=end).tracks
    assert len(tracks) == 6  # 10:00:30.123 .. 10:00:55.123 every 5 s
    assert tracks["ts"].min() >= start and tracks["ts"].max() < end
    with pytest.raises(ValueError, match="empty time window"):
        parquet_store.fetch([101], start=end, end=start)


def test_files_with_different_optional_columns(tmp_path):
    a = synthetic_positions([1], points=12)
    b = synthetic_positions([2], points=12).drop(columns=["origin", "destination", "icao24"])
    write_parquet_store(a, tmp_path / "s")
    (tmp_path / "s" / "day=2024-03-01" / "part-0.parquet").rename(
        tmp_path / "s" / "day=2024-03-01" / "a.parquet"
    )
    write_parquet_store(b, tmp_path / "s")
    result = ParquetTrackSource(tmp_path / "s").fetch([1, 2], day=DAY)
    assert result.failures == {} and len(result.tracks) == 24
    origin = result.tracks.set_index("flight_id")["origin"]
    assert (origin.loc[1] == "EDDF").all() and origin.loc[2].isna().all()


def test_sentinel_rows_are_dropped(tmp_path):
    frame = synthetic_positions([1], points=12)
    frame.loc[0, "lat"] = np.nan
    frame.loc[1, ["lat", "lon"]] = 0.0
    frame.loc[2, "lon"] = 181.0
    write_parquet_store(frame, tmp_path / "s")
    result = ParquetTrackSource(tmp_path / "s").fetch([1], day=DAY)
    assert len(result.tracks) == 9 and result.stats["rows_dropped"] == 3


def test_fetch_day_and_flight_ids_for_day(parquet_store):
    assert parquet_store.flight_ids_for_day(DAY) == [101, 102, 103]
    assert parquet_store.flight_ids_for_day(dt.date(2024, 3, 2)) == [201]
    assert parquet_store.flight_ids_for_day(dt.date(2024, 3, 9)) == []
    result = parquet_store.fetch_day(DAY)
    assert result.flight_ids == [101, 102, 103] and len(result.tracks) == 120


def test_flight_days_and_description(parquet_store):
    assert parquet_store.flight_days([201, 101, 999]) == {
        101: DAY,
        201: dt.date(2024, 3, 2),
    }
    assert str(parquet_store.root) in parquet_store.description


def test_missing_store(tmp_path):
    source = ParquetTrackSource(tmp_path / "nowhere")
    result = source.fetch([1, 2], day=DAY)
    assert result.tracks.empty and list(result.tracks.columns)[:2] == ["flight_id", "ts"]
    assert {f.category for f in result.failures.values()} == {NOT_FOUND}
    assert str(tmp_path / "nowhere") in result.failures[1].message
    with pytest.raises(TrackSourceError) as info:
        source.ping()
    assert info.value.category == SOURCE_UNAVAILABLE and "nowhere" in str(info.value)
    with pytest.raises(TrackSourceError):
        source.fetch_day(DAY)


def test_make_track_source_defaults_to_the_home_store(monkeypatch, tmp_path):
    source = make_track_source()
    assert isinstance(source, ParquetTrackSource)
    assert source.root == tmp_path / "ff_home" / "tracks"
    assert make_track_source("parquet", store=tmp_path / "x").root == tmp_path / "x"
    monkeypatch.setenv("PINOT_HTTP_BROKER_URL", "http://broker.invalid:8099")
    assert make_track_source().name == "pinot"
    with pytest.raises(ValueError, match="unknown track source"):
        make_track_source("kafka")
