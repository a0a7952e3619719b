"""Streaming a run's flights through the stages in chunks gives the unchunked result."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from flight_fees.lib.demo import generate_demo, write_track_store
from flight_fees.lib.pipeline import fetch_tracks_chunks, fetch_tracks_stage
from flight_fees.lib.tracks import TrackSourceError
from flight_fees.lib.tracks.parquet import ParquetTrackSource

DAY = dt.date(2026, 10, 27)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracks")
    data = generate_demo(n_flights=7, start_day=DAY, n_days=1, seed=4)
    write_track_store(data.tracks, root)
    return ParquetTrackSource(root), [int(f) for f in data.flights["flight_id"]]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["flight_id", "ts"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_chunks_cover_the_flights_once_and_match_one_fetch(source, chunk):
    src, ids = source
    whole = fetch_tracks_stage(src, DAY, ids)
    stages = list(fetch_tracks_chunks(src, DAY, [*ids, 999], chunk_flights=chunk))
    assert len(stages) == -(-(len(ids) + 1) // chunk)
    got = pd.concat([s.tracks for s in stages], ignore_index=True)
    pd.testing.assert_frame_equal(_sorted(got), _sorted(whole.tracks))
    failures = {k: v for s in stages for k, v in s.failures.items()}
    assert set(failures) == {999} and failures[999][0] == "not_found"
    # without ids: the day's flights, listed by the source
    backfill = list(fetch_tracks_chunks(src, DAY, None, chunk_flights=chunk))
    got = pd.concat([s.tracks for s in backfill], ignore_index=True)
    pd.testing.assert_frame_equal(_sorted(got), _sorted(whole.tracks))


def test_a_source_outage_ends_the_stream_and_fails_every_flight_not_fetched(source):
    src, ids = source

    class Flaky:
        name = "flaky"
        calls = 0

        def fetch(self, flight_ids, day=None):
            Flaky.calls += 1
            if Flaky.calls == 2:
                raise TrackSourceError("broker down", category="source_unavailable")
            return src.fetch(flight_ids, day=day)

    stages = list(fetch_tracks_chunks(Flaky(), DAY, ids, chunk_flights=2))
    assert len(stages) == 2 and stages[0].source_error is None
    assert stages[1].source_error[0] == "source_unavailable"
    assert "broker down" in stages[1].source_error[1]
    assert set(stages[1].failures) == set(sorted(ids)[2:])
    with pytest.raises(ValueError):
        list(fetch_tracks_chunks(src, DAY, ids, chunk_flights=0))
