"""``process_flights`` against a stand-in Pinot broker: faults never bill anything, flights stay
queued with their category; an MTOW conflict blocks billing and shows in the asset check."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
from sqlalchemy import func, select

from flight_fees.defs.processing.assets import fee_lines, fir_crossings, flight_tracks
from flight_fees.defs.processing.checks import open_attribute_conflicts
from flight_fees.defs.resources import (
    BillingDatabase,
    PipelineSettings,
    ReferenceData,
    TrackStore,
    Workspace,
)
from flight_fees.lib.db import make_engine
from flight_fees.lib.db.models import FeeLine, FlightQueueItem
from flight_fees.lib.ops.demo import generate_demo
from flight_fees.lib.ops.queue import FlightQueue
from flight_fees.lib.ops.registry import load_aircraft, load_customers
from flight_fees_tests.pinot_broker import StandInPinotBroker

DAY = dt.date(2026, 10, 28)
ASSETS = [flight_tracks, fir_crossings, fee_lines]


@pytest.fixture
def world(db_url, monkeypatch):
    data = generate_demo(n_flights=4, start_day=DAY, n_days=1, seed=5)
    engine = make_engine(db_url)
    load_customers(engine, data.customers)
    load_aircraft(engine, data.aircraft)
    with StandInPinotBroker(data.tracks) as broker:
        monkeypatch.setenv("PINOT_HTTP_BROKER_URL", broker.url)
        monkeypatch.setenv("PINOT_RETRIES", "0")
        monkeypatch.setenv("PINOT_TIMEOUT_S", "2")
        yield data, engine, broker
    engine.dispose()


def _resources(db_url, **reference):
    return {
        "billing": BillingDatabase(url=db_url),
        "track_store": TrackStore(kind="pinot", breaker_failure_threshold=3),
        "reference": ReferenceData(**reference),
        "workspace": Workspace(),
        "settings": PipelineSettings(render_maps=False),
    }


def _materialize(ids, resources):
    with dg.instance_for_test() as instance:
        return dg.materialize(
            ASSETS,
            partition_key=DAY.isoformat(),
            run_config={"ops": {"flight_tracks": {"config": {"flight_ids": list(ids)}}}},
            resources=resources,
            instance=instance,
            selection=["flight_tracks", "fir_crossings", "fee_lines"],
            raise_on_error=False,
        )


def _queue_rows(engine):
    with engine.connect() as conn:
        return {
            r.flight_id: (r.status, r.error_category, r.attempts)
            for r in conn.execute(select(FlightQueueItem))
        }


def _line_count(engine):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(FeeLine)).scalar_one()


def test_pinot_path_bills_every_flight(world, db_url):
    data, engine, broker = world
    ids = [int(f) for f in data.flights["flight_id"]]
    FlightQueue(engine).enqueue(ids, flight_date=DAY)
    result = _materialize(ids, _resources(db_url))
    assert result.success
    assert _queue_rows(engine) == {}  # every flight billed and dequeued
    assert _line_count(engine) > 0
    sqls = [q.sql for q in broker.queries]
    assert all("LIMIT" in s.upper() for s in sqls)  # never Pinot's implicit LIMIT 10


@pytest.mark.parametrize("fault", ["partial", "servers_short", "partial_flag", "broker_timeout"])
def test_partial_or_timed_out_answers_bill_nothing_and_keep_flights_queued(world, db_url, fault):
    data, engine, broker = world
    ids = [int(f) for f in data.flights["flight_id"]]
    FlightQueue(engine).enqueue(ids, flight_date=DAY)
    broker.inject(fault, times=100, match=lambda sql: " IN (" in sql)
    result = _materialize(ids, _resources(db_url))
    assert result.success  # the run settles the flights; it does not crash
    assert _line_count(engine) == 0
    rows = _queue_rows(engine)
    assert set(rows) == set(ids)
    expected = "timeout" if fault == "broker_timeout" else "partial_result"
    assert {status for status, _, _ in rows.values()} == {"queued"}  # retried after back-off
    assert {cat for _, cat, _ in rows.values()} == {expected}
    # a fault of the whole source is not the flights' fault: no attempt spent (issue 13)
    assert {attempts for _, _, attempts in rows.values()} == {0}


def test_unreachable_broker_releases_flights_and_opens_the_circuit(world, db_url):
    data, engine, broker = world
    ids = [int(f) for f in data.flights["flight_id"]]
    FlightQueue(engine).enqueue(ids, flight_date=DAY)
    broker.stop()
    resources = _resources(db_url)
    for _ in range(3):
        result = _materialize(ids, resources)
        assert not result.success  # the source is down: the run fails loudly...
    rows = _queue_rows(engine)
    # ...and the flights wait in the queue without losing an attempt
    assert {(s, c, a) for s, c, a in rows.values()} == {("queued", "source_unavailable", 0)}
    source = resources["track_store"].source()
    state = resources["track_store"].breaker(engine, source.name).state()
    assert state.state == "open" and state.consecutive_failures == 3
    assert _line_count(engine) == 0


def test_mtow_conflict_blocks_billing_and_shows_in_the_check(world, db_url, tmp_path):
    data, engine, broker = world
    flight = data.flights.iloc[0]
    declared = data.aircraft.set_index("registration").loc[flight["registration"], "mtow_kg"]
    other = float(declared) + 5_000 if declared == declared else 50_000.0
    csv = tmp_path / "attributes.csv"
    csv.write_text(f"registration,mtow_kg\n{flight['registration']},{other}\n")
    ids = [int(f) for f in data.flights["flight_id"]]
    blocked = {
        int(f)
        for f in data.flights.loc[
            data.flights["registration"] == flight["registration"], "flight_id"
        ]
    }
    FlightQueue(engine).enqueue(ids, flight_date=DAY)
    result = _materialize(ids, _resources(db_url, attributes_csv=str(csv)))
    assert result.success
    rows = _queue_rows(engine)
    assert set(rows) == blocked
    assert {(s, c) for s, c, _ in rows.values()} == {("failed", "attribute_conflict")}
    with engine.connect() as conn:
        billed = set(conn.execute(select(FeeLine.flight_id).distinct()).scalars())
    assert billed == set(ids) - blocked
    check = open_attribute_conflicts(billing=BillingDatabase(url=db_url))
    assert not check.passed
    assert check.metadata["open_conflicts"].value == len(blocked)


def test_resolving_the_conflict_unblocks_billing_with_the_chosen_mtow(
    world, db_url, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from flight_fees.cli.main import app
    from flight_fees.lib.charging.attributes import open_conflicts

    data, engine, broker = world
    flight = data.flights.iloc[0]
    csv = tmp_path / "attributes.csv"
    csv.write_text(f"registration,mtow_kg\n{flight['registration']},99999\n")
    ids = [int(f) for f in data.flights["flight_id"]]
    FlightQueue(engine).enqueue(ids, flight_date=DAY)
    resources = _resources(db_url, attributes_csv=str(csv))
    assert _materialize(ids, resources).success
    conflicts = open_conflicts(engine)
    assert len(conflicts) >= 1
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    runner = CliRunner()
    listed = runner.invoke(app, ["conflicts", "list"])
    assert listed.exit_code == 0 and "mtow_kg" in listed.output
    blocked = sorted(int(f) for f in conflicts["flight_id"])
    for conflict_id in conflicts["id"]:
        done = runner.invoke(app, ["conflicts", "resolve", str(conflict_id), "77000"])
        assert done.exit_code == 0, done.output
    # re-queued with a fresh attempt count, the last error kept for the record
    assert _queue_rows(engine) == {fid: ("queued", "attribute_conflict", 0) for fid in blocked}
    assert _materialize(blocked, resources).success
    assert _queue_rows(engine) == {}
    with engine.connect() as conn:
        mtows = set(
            conn.execute(select(FeeLine.mtow_kg).where(FeeLine.flight_id.in_(blocked))).scalars()
        )
    assert {float(m) for m in mtows} == {77000.0}
    bad = runner.invoke(app, ["conflicts", "resolve", "999999", "1"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output  # no such conflict
