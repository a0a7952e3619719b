"""The billing seam of the pipeline: reads (``load_billing_context``), pricing
(``price_flights``, pure) and writes (``write_bills``) are separate functions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import warnings

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from flight_fees.lib.airspace.airports import read_airports
from flight_fees.lib.airspace.firs import load_firs
from flight_fees.lib.airspace.zones import load_charging_zones
from flight_fees.lib.billing.invoicing import consolidate
from flight_fees.lib.charging.aircraft_types import load_aircraft_types
from flight_fees.lib.charging.attributes import Conflict
from flight_fees.lib.charging.fx import load_fx_rates
from flight_fees.lib.charging.tariffs import load_tariffs
from flight_fees.lib.core.settings import DATA_DIR
from flight_fees.lib.db import make_engine
from flight_fees.lib.db.models import FeeLine, FlightConflict
from flight_fees.lib.ops.demo import generate_demo
from flight_fees.lib.ops.registry import load_aircraft, load_customers
from flight_fees.lib.processing.pipeline import (
    bill_stage,
    crossings_stage,
    fetch_tracks_stage,
    flight_attribute_rows,
    load_billing_context,
    price_flights,
    write_bills,
)
from flight_fees.lib.tracks.parquet import ParquetTrackSource
from flight_fees.lib.tracks.store import write_track_store

DAY = dt.date(2026, 10, 27)


@pytest.fixture(scope="module")
def chunk(tmp_path_factory):
    """Zone visits and attribute rows of a small demo day, as the bill stage receives them."""
    root = tmp_path_factory.mktemp("tracks")
    data = generate_demo(n_flights=6, start_day=DAY, n_days=1, seed=11)
    write_track_store(data.tracks, root)
    ids = [int(f) for f in data.flights["flight_id"]]
    tracks = fetch_tracks_stage(ParquetTrackSource(root), DAY, ids).tracks
    attrs = flight_attribute_rows(tracks)
    firs = load_firs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crossed = crossings_stage(
            tracks, firs, load_charging_zones(firs=firs), attrs=attrs, airports=read_airports()
        )
    return data, crossed.visits, attrs


@pytest.fixture(scope="module")
def reference():
    return {
        "tariffs": load_tariffs(None),
        "fx": load_fx_rates(DATA_DIR / "fx_rates_sample.csv"),
        "aircraft_types": load_aircraft_types(None),
    }


@pytest.fixture
def billing(db_url, chunk) -> Engine:
    data, _, _ = chunk
    engine = make_engine(db_url)
    load_customers(engine, data.customers)
    load_aircraft(engine, data.aircraft)
    yield engine
    engine.dispose()


def _count(engine: Engine, column) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count(column))).scalar_one())


def test_price_flights_reads_nothing_and_equals_the_composed_stage(
    billing, chunk, reference, monkeypatch
):
    _, visits, attrs = chunk
    context = load_billing_context(billing, attrs)
    assert set(context.customers) >= set(chunk[0].customers["code"])
    composed = bill_stage(billing, visits, attrs, **reference)

    def no_database(*args, **kwargs):
        raise AssertionError("price_flights touched the database")

    monkeypatch.setattr(Engine, "connect", no_database)
    monkeypatch.setattr(Engine, "begin", no_database)
    priced = price_flights(context, visits, attrs, **reference)
    monkeypatch.undo()

    assert [b.flight_id for b in priced.bills] == [b.flight_id for b in composed.bills]
    assert len(priced.bills) == len(attrs) and not priced.failures
    pd.testing.assert_frame_equal(priced.lines, composed.lines)
    # nothing was written by reading and pricing
    assert _count(billing, FeeLine.id) == 0


def test_price_flights_fails_flights_the_context_cannot_bill(billing, chunk, reference):
    _, visits, attrs = chunk
    context = load_billing_context(billing, attrs)
    ids = sorted(int(f) for f in attrs["flight_id"])
    blocked, conflicted = ids[0], ids[1]
    operator_of_third = str(
        context.resolved.attributes.set_index("flight_id").loc[ids[2], "operator"]
    )
    customers = {k: v for k, v in context.customers.items() if k != operator_of_third}
    conflict = Conflict(conflicted, "mtow_kg", {"track": 1.0, "aircraft_table": 2.0})
    resolved = dataclasses.replace(context.resolved, conflicts=[conflict])
    doctored = dataclasses.replace(
        context, blocked=frozenset({blocked}), customers=customers, resolved=resolved
    )
    stage = price_flights(doctored, visits, attrs, **reference)

    assert stage.failures[blocked][0] == "attribute_conflict"
    assert stage.failures[conflicted][0] == "attribute_conflict"
    assert "sources disagree on mtow_kg" in stage.failures[conflicted][1]
    unknown = {
        fid for fid, (category, _) in stage.failures.items() if category == "unknown_customer"
    }
    assert ids[2] in unknown
    billed = {b.flight_id for b in stage.bills}
    assert billed.isdisjoint(stage.failures) and billed | set(stage.failures) == set(ids)
    assert stage.conflicts == [conflict]


def test_write_bills_records_conflicts_then_bills_and_respects_invoices(billing, chunk, reference):
    _, visits, attrs = chunk
    stage = bill_stage(billing, visits, attrs, **reference)
    conflict = Conflict(stage.bills[0].flight_id, "operator", {"track": "AAA", "csv": "BBB"})
    with_conflict = dataclasses.replace(stage, conflicts=[conflict])

    written = write_bills(billing, with_conflict, batch_id="b1")
    assert written.conflicts_recorded == 1 and _count(billing, FlightConflict.id) == 1
    lines = _count(billing, FeeLine.id)
    assert set(written.persisted.written) == {b.flight_id for b in stage.bills}
    assert lines == sum(written.persisted.written.values()) > 0

    # the last period ending on or before 2 November holds 27 October, weekly or monthly
    consolidate(billing, dt.date(2026, 11, 2), force=True)
    # a whole-day backfill leaves the invoiced flights alone ...
    again = write_bills(billing, stage, batch_id="b2", skip_invoiced=True)
    assert set(again.skipped_invoiced) == set(written.persisted.written)
    assert not again.persisted.written and not again.persisted.failures
    # ... an explicit re-processing is refused flight by flight
    refused = write_bills(billing, stage, batch_id="b3")
    assert {c for c, _ in refused.persisted.failures.values()} == {"already_invoiced"}
    assert _count(billing, FeeLine.id) == lines
    # recording the same open conflict twice keeps one row
    assert write_bills(billing, with_conflict, batch_id="b4").conflicts_recorded == 0
