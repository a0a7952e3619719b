"""Streaming a run's flights through the stages in chunks gives the unchunked result."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

import flight_fees
from flight_fees.lib.ops.demo import generate_demo
from flight_fees.lib.processing.pipeline import fetch_tracks_chunks, fetch_tracks_stage
from flight_fees.lib.tracks import TrackSource, TrackSourceError
from flight_fees.lib.tracks.parquet import ParquetTrackSource
from flight_fees.lib.tracks.store import write_track_store

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
        """A TrackSource whose second fetch fails as a whole; the rest is the store's."""

        name = "flaky"
        description = "flaky stand-in"
        calls = 0

        def fetch(self, flight_ids, day=None, start=None, end=None):
            Flaky.calls += 1
            if Flaky.calls == 2:
                raise TrackSourceError("broker down", category="source_unavailable")
            return src.fetch(flight_ids, day=day, start=start, end=end)

        def fetch_day(self, day):
            return src.fetch_day(day)

        def flight_ids_for_day(self, day):
            return src.flight_ids_for_day(day)

        def flight_days(self, flight_ids):
            return src.flight_days(flight_ids)

        def ping(self):
            src.ping()

        def close(self):
            src.close()

    assert isinstance(Flaky(), TrackSource)

    stages = list(fetch_tracks_chunks(Flaky(), DAY, ids, chunk_flights=2))
    assert len(stages) == 2 and stages[0].source_error is None
    assert stages[1].source_error[0] == "source_unavailable"
    assert "broker down" in stages[1].source_error[1]
    assert set(stages[1].failures) == set(sorted(ids)[2:])
    with pytest.raises(ValueError):
        list(fetch_tracks_chunks(src, DAY, ids, chunk_flights=0))


def _bill_day(engine, src, tmp_path, chunk):
    """Stream the day's flights through the three stages with ``chunk`` flights per chunk."""
    from flight_fees.lib.airspace.airports import read_airports
    from flight_fees.lib.airspace.firs import load_firs
    from flight_fees.lib.airspace.zones import load_charging_zones
    from flight_fees.lib.charging import tariffs as tariff_lib
    from flight_fees.lib.charging.aircraft_types import load_aircraft_types
    from flight_fees.lib.charging.fx import load_fx_rates
    from flight_fees.lib.ops.workstore import WorkStore
    from flight_fees.lib.processing.pipeline import stream_bills, stream_crossings, stream_tracks

    store = WorkStore(tmp_path / f"work{chunk}")
    fetched = stream_tracks(src, store, DAY, "r1", None, chunk_flights=chunk)
    firs = load_firs()
    crossings = stream_crossings(
        store, DAY, ["r1"], "r1", firs, load_charging_zones(firs=firs), airports=read_airports()
    )
    fx = load_fx_rates(Path(flight_fees.__file__).parent / "data" / "fx_rates_sample.csv")
    bills = stream_bills(
        engine,
        store,
        DAY,
        ["r1"],
        tariffs=tariff_lib.load_tariffs(None),
        fx=fx,
        aircraft_types=load_aircraft_types(None),
        batch_id=f"chunk{chunk}",
        backfill=True,
    )
    return fetched, crossings, bills


def test_streamed_run_bills_like_one_chunk(db_url, source, tmp_path):
    import warnings

    from sqlalchemy import select

    from flight_fees.lib.db import make_engine
    from flight_fees.lib.db.models import FeeLine
    from flight_fees.lib.ops.registry import load_aircraft, load_customers

    src, ids = source
    data = generate_demo(n_flights=7, start_day=DAY, n_days=1, seed=4)
    engine = make_engine(db_url)
    load_customers(engine, data.customers)
    load_aircraft(engine, data.aircraft)

    def lines():
        with engine.connect() as conn:
            return conn.execute(
                select(
                    FeeLine.flight_id, FeeLine.line_no, FeeLine.zone_id, FeeLine.billing_amount
                ).order_by(FeeLine.flight_id, FeeLine.line_no)
            ).all()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = _bill_day(engine, src, tmp_path, 100)
        first = lines()
        many = _bill_day(engine, src, tmp_path, 2)  # re-bills the same day, 2 flights a chunk
    assert one[0].chunks == 1 and many[0].chunks == 4
    assert one[1].crossings == many[1].crossings > 0
    assert many[2].written == one[2].written and len(one[2].written) == len(ids)
    assert many[2].totals == one[2].totals
    assert lines() == first and len(first) == one[2].lines
    engine.dispose()
