"""``process_flights`` materialized on a small embedded store, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest
from sqlalchemy import delete, func, select

from flight_fees.definitions import defs
from flight_fees.lib.core.settings import paths
from flight_fees.lib.db import make_engine
from flight_fees.lib.db.engine import transaction
from flight_fees.lib.db.models import Aircraft, FeeLine, Flight, FlightQueueItem
from flight_fees.lib.ops.demo import generate_demo
from flight_fees.lib.ops.queue import FlightQueue, utcnow
from flight_fees.lib.ops.registry import load_aircraft, load_customers
from flight_fees.lib.tracks.store import write_track_store

DAY = dt.date(2026, 10, 27)


@pytest.fixture
def world(db_url, monkeypatch):
    """A day of 6 demo flights in the embedded store, customers and aircraft loaded."""
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    data = generate_demo(n_flights=6, start_day=DAY, n_days=1, seed=11)
    write_track_store(data.tracks, paths().tracks)
    engine = make_engine(db_url)
    load_customers(engine, data.customers)
    load_aircraft(engine, data.aircraft)
    yield data, engine
    engine.dispose()


def _run(flight_ids, instance):
    job = defs().resolve_job_def("process_flights")
    return job.execute_in_process(
        run_config={"ops": {"flight_tracks": {"config": {"flight_ids": list(flight_ids)}}}},
        partition_key=DAY.isoformat(),
        instance=instance,
        raise_on_error=False,
    )


def _lines(engine, flight_id=None):
    query = select(FeeLine.batch_id, FeeLine.flight_id, FeeLine.line_no, FeeLine.billing_amount)
    if flight_id is not None:
        query = query.where(FeeLine.flight_id == flight_id)
    with engine.connect() as conn:
        return conn.execute(query.order_by(FeeLine.flight_id, FeeLine.line_no)).all()


def _meta(result, asset):
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key == dg.AssetKey(asset):
            return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    raise AssertionError(f"{asset} not materialized")


def _batch_check(result):
    return [
        c for c in result.get_asset_check_evaluations() if c.check_name == "batch_flights_billed"
    ]


def test_process_flights_bills_the_good_and_fails_the_bad(world):
    data, engine = world
    ids = [int(f) for f in data.flights["flight_id"]]
    # one flight has no track at all; one flight's aircraft is unknown to billing
    missing = 2026_10_27_99999
    orphan = data.flights.iloc[0]
    with transaction(engine) as session:
        session.execute(delete(Aircraft).where(Aircraft.registration == orphan["registration"]))
    orphan_ids = [
        int(f)
        for f in data.flights.loc[
            data.flights["registration"] == orphan["registration"], "flight_id"
        ]
    ]
    queue = FlightQueue(engine)
    queue.enqueue([*ids, missing], flight_date=DAY)
    queue.claim("test", 100)

    with dg.instance_for_test() as instance:
        result = _run([*ids, missing], instance)
    assert result.success
    good = sorted(set(ids) - set(orphan_ids))
    fee_meta = _meta(result, "fee_lines")
    assert fee_meta["batch_flights_billed"] == fee_meta["day_flights_billed"] == len(good)
    lines = _lines(engine)
    assert {row.flight_id for row in lines} <= set(good)
    assert len(lines) == fee_meta["batch_fee_lines"] == fee_meta["day_fee_lines"] > 0
    # the flights that failed, in either stage, show on fee_lines and its check warns
    assert fee_meta["batch_flights_failed"] == 1 + len(orphan_ids)
    assert fee_meta["batch_flights_failed_tracks"] == 1
    assert str(missing) in fee_meta["failed_flights"]
    [check] = _batch_check(result)
    assert check.check_name == "batch_flights_billed" and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["verdict"].value == "some_failed"
    with engine.connect() as conn:
        queue_rows = dict(
            conn.execute(select(FlightQueueItem.flight_id, FlightQueueItem.error_category)).all()
        )
        flights = dict(conn.execute(select(Flight.flight_id, Flight.status)).all())
    # billed flights left the queue; failed ones stay with their category
    assert queue_rows == {missing: "not_found", **{f: "unknown_aircraft" for f in orphan_ids}}
    assert all(flights[f] == "billed" for f in good)
    assert _meta(result, "flight_tracks")["flights_failed"] == 1
    assert _meta(result, "fir_crossings")["crossings"] >= len(good)
    # no maps on the billing path: links to the document server instead
    assert "flight_maps" not in {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    }
    assert fee_meta["maps"].endswith(f"/maps/{DAY.isoformat()}/")
    assert fee_meta["processing_log"].startswith("http")
    # the audit file of the batch lists both outcomes
    log_files = sorted(paths().logs.glob("*.json"))
    assert len(log_files) == 1
    audit = json.loads(log_files[0].read_text())
    assert {f["flight_id"] for f in audit["processed"]} == set(good)
    assert {(f["flight_id"], f["category"]) for f in audit["failed"]} == {
        (missing, "not_found"),
        *((f, "unknown_aircraft") for f in orphan_ids),
    }


def test_reprocessing_a_flight_replaces_its_lines(world):
    data, engine = world
    flight_id = int(data.flights["flight_id"].iloc[-1])
    with dg.instance_for_test() as instance:
        assert _run([flight_id], instance).success
        first = _lines(engine, flight_id)
        assert first
        assert _run([flight_id], instance).success  # an analyst re-processes it
    second = _lines(engine, flight_id)
    assert [(r.line_no, r.billing_amount) for r in second] == [
        (r.line_no, r.billing_amount) for r in first
    ]
    # replaced by the second run's batch, not kept from the first
    assert {r.batch_id for r in second}.isdisjoint({r.batch_id for r in first})
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(FeeLine).where(FeeLine.flight_id == flight_id)
        ).scalar_one()
    assert total == len(first)


def test_backfill_without_ids_processes_the_whole_day(world):
    data, engine = world
    with dg.instance_for_test() as instance:
        result = _run([], instance)
    assert result.success
    billed = {row.flight_id for row in _lines(engine)}
    assert billed == {int(f) for f in data.flights["flight_id"]}


def test_backfill_again_after_invoicing_leaves_invoiced_flights_alone(world):
    from flight_fees.lib.billing.invoicing import consolidate

    data, engine = world
    with dg.instance_for_test() as instance:
        assert _run([], instance).success
        # the daily schedule over the following days and the month end
        numbers = [
            n
            for offset in range(0, 8)
            for n in consolidate(engine, DAY + dt.timedelta(days=offset)).invoice_numbers
        ]
        assert numbers
        before = _lines(engine)
        with engine.connect() as conn:
            invoiced = set(
                conn.execute(
                    select(FeeLine.flight_id).where(FeeLine.invoice_id.is_not(None))
                ).scalars()
            )
        again = _run([], instance)
    assert again.success
    meta = _meta(again, "fee_lines")
    assert meta["batch_flights_already_invoiced_skipped"] == len(invoiced) > 0
    assert meta["batch_flights_failed"] == 0
    assert meta["batch_fee_lines"] == 0 and meta["day_fee_lines"] == len(before)
    assert [(r.flight_id, r.line_no, r.billing_amount) for r in _lines(engine)] == [
        (r.flight_id, r.line_no, r.billing_amount) for r in before
    ]
    with engine.connect() as conn:  # nothing was pushed into the queue as a failure
        assert conn.execute(select(func.count()).select_from(FlightQueueItem)).scalar_one() == 0


def test_a_crashed_run_hands_its_flights_back_through_the_failure_sensor(world, monkeypatch):
    from flight_fees.defs.processing.sensors import process_flights_failure_sensor
    from flight_fees.defs.resources import BillingDatabase
    from flight_fees.lib.processing import pipeline

    data, engine = world
    ids = [int(f) for f in data.flights["flight_id"]]
    queue = FlightQueue(engine)
    queue.enqueue(ids, flight_date=DAY)
    queue.claim("sensor", 100)

    def boom(*args, **kwargs):
        raise RuntimeError("crossing engine exploded")

    monkeypatch.setattr(pipeline, "crossings_stage", boom)
    with dg.instance_for_test() as instance:
        result = _run(ids, instance)
        assert not result.success
        assert queue.stats().by_status == {"processing": len(ids)}  # held by the dead run
        with dg.build_run_status_sensor_context(
            sensor_name="process_flights_failure_sensor",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
            resources={"billing": BillingDatabase(url=engine.url.render_as_string(False))},
        ) as context:
            process_flights_failure_sensor(context.for_run_failure())
    rows = _queue_rows_with_errors(engine)
    assert {r[0] for r in rows} == set(ids)
    # retried after the back-off, an attempt counted, the reason kept
    assert {(r[1], r[2], r[3]) for r in rows} == {("queued", "internal", 1)}
    assert all(result.run_id in r[4] for r in rows)
    assert _lines(engine) == []


def _queue_rows_with_errors(engine):
    with engine.connect() as conn:
        return conn.execute(
            select(
                FlightQueueItem.flight_id,
                FlightQueueItem.status,
                FlightQueueItem.error_category,
                FlightQueueItem.attempts,
                FlightQueueItem.last_error,
            )
        ).all()


def process_flights_job():  # module level: reconstructable for dg.execute_job
    return defs().resolve_job_def("process_flights")


def test_process_flights_runs_in_one_process_and_reexecutes_from_failure(world, monkeypatch):
    import os

    import flight_fees.lib.processing.pipeline as pipeline

    data, engine = world
    ids = [int(f) for f in data.flights["flight_id"]]
    FlightQueue(engine).enqueue(ids, flight_date=DAY)

    def broken(*args, **kwargs):
        raise RuntimeError("billing database hiccup")

    real_price_flights = pipeline.price_flights
    monkeypatch.setattr(pipeline, "price_flights", broken)
    config = {"ops": {"flight_tracks": {"config": {"flight_ids": ids}}}}
    with dg.instance_for_test() as instance:
        job = dg.reconstructable(process_flights_job)
        with dg.execute_job(
            job, instance, run_config=config, tags={"dagster/partition": DAY.isoformat()}
        ) as failed:
            assert not failed.success
            pids = {
                e.dagster_event.pid
                for e in instance.all_logs(failed.run_id)
                if e.dagster_event is not None and e.dagster_event.pid is not None
            }
            assert pids == {os.getpid()}  # every step in this process: no process per step
            done = {e.step_key for e in failed.all_events if e.is_step_success}
            assert {"flight_tracks", "fir_crossings"} <= done
        assert _lines(engine) == []
        monkeypatch.setattr(pipeline, "price_flights", real_price_flights)
        options = dg.ReexecutionOptions.from_failure(failed.run_id, instance)
        # the UI's "re-execute from failure" keeps the run's partition tag; so does this
        tags = {"dagster/partition": DAY.isoformat()}
        with dg.execute_job(job, instance, reexecution_options=options, tags=tags) as again:
            assert again.success
            steps = {e.step_key for e in again.all_events if e.is_step_success}
            assert "fee_lines" in steps and "flight_tracks" not in steps
            assert _meta(again, "fee_lines")["batch_flights_billed"] == len(ids)
    assert {row.flight_id for row in _lines(engine)} == set(ids)


def _run_claim(flight_ids, claim_id, instance):
    job = defs().resolve_job_def("process_flights")
    config = {"flight_ids": list(flight_ids)}
    return job.execute_in_process(
        run_config={"ops": {"flight_tracks": {"config": config}}},
        partition_key=DAY.isoformat(),
        instance=instance,
        raise_on_error=False,
        tags={"flight_fees/claim": claim_id},
    )


def test_a_sensor_run_bills_only_what_its_claim_still_holds(world):
    data, engine = world
    ids = sorted(int(f) for f in data.flights["flight_id"])
    queue = FlightQueue(engine, claim_lease_s=600)
    queue.enqueue(ids, flight_date=DAY)
    t0 = utcnow()
    queue.claim("sensor:late", 3, now=t0)  # its run waits in the run queue...
    queue.claim("sensor:next", 100, now=t0 + dt.timedelta(seconds=601))  # ...too long
    with dg.instance_for_test() as instance:
        late = _run_claim(ids[:3], "late", instance)
        assert not late.success  # it holds nothing any more: it bills nothing
        assert _lines(engine) == []
        assert queue.stats().by_status == {"processing": len(ids)}  # all with "next"
        result = _run_claim(ids, "next", instance)
        assert result.success
    assert {row.flight_id for row in _lines(engine)} == set(ids)
    assert queue.stats().by_status == {}


def test_a_run_that_never_started_gives_its_claim_back_without_an_attempt(world):
    from flight_fees.defs.processing.sensors import settle_failed_run
    from flight_fees.defs.resources import BillingDatabase

    data, engine = world
    ids = [int(f) for f in data.flights["flight_id"]]
    queue = FlightQueue(engine)
    queue.enqueue(ids, flight_date=DAY)
    queue.claim("sensor:c1", 100)
    billing = BillingDatabase(url=engine.url.render_as_string(False))
    # the run of claim c1 failed at launch (e.g. code server unreachable): nothing adopted
    settled = settle_failed_run(billing, "never-started", "c1", "could not launch", ids)
    assert settled.released == len(ids) and settled.failed == {}
    rows = _queue_rows_with_errors(engine)
    assert {(r[1], r[3]) for r in rows} == {("queued", 0)}  # claimable now, no attempt
    assert settle_failed_run(billing, "never-started", "c1", "again").total == 0


def test_a_day_reports_its_whole_state_and_the_batch_its_delta(world):
    """A one-flight re-process after a backfill: the day still shows every line (not 0 or
    1), the batch shows its own."""
    data, engine = world
    flight_id = int(data.flights["flight_id"].iloc[-1])
    with dg.instance_for_test() as instance:
        day_run = _run([], instance)
        assert day_run.success
        again = _run([flight_id], instance)
    assert again.success
    meta = _meta(again, "fee_lines")
    day_lines = _lines(engine)
    mine = _lines(engine, flight_id)
    assert meta["batch_flights_billed"] == 1 and meta["batch_fee_lines"] == len(mine) > 0
    assert meta["day_fee_lines"] == len(day_lines) > len(mine)
    assert meta["day_flights_billed"] == len(data.flights)
    assert sum(float(v) for v in meta["day_totals"].values()) == pytest.approx(
        float(sum(r.billing_amount for r in day_lines))
    )
    [check] = _batch_check(again)
    assert check.passed and check.metadata["verdict"].value == "ok"


def test_a_batch_where_every_flight_failed_is_not_green(world):
    data, engine = world
    ids = [int(f) for f in data.flights["flight_id"]]
    with transaction(engine) as session:  # no aircraft known: every flight fails pricing
        session.execute(delete(Aircraft))
    queue = FlightQueue(engine)
    queue.enqueue(ids, flight_date=DAY)
    queue.claim("test", 100)
    with dg.instance_for_test() as instance:
        result = _run(ids, instance)
    meta = _meta(result, "fee_lines")
    assert meta["batch_flights_billed"] == 0 and meta["batch_flights_failed"] == len(ids)
    [check] = _batch_check(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["verdict"].value == "all_failed"
    # back in the queue with their failure, and counted on the day
    assert meta["day_flights_failed_in_queue"] == len(ids)
