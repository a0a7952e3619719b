from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest

from flight_fees.defs.queue.sensors import flight_queue_sensor
from flight_fees.defs.resources import BillingDatabase, TrackStore
from flight_fees.lib.ops.queue import FlightQueue

DAY1 = dt.date(2026, 10, 26)
DAY2 = dt.date(2026, 10, 27)


@pytest.fixture
def resources(db_url, tmp_path):
    return {
        "billing": BillingDatabase(url=db_url),
        "track_store": TrackStore(
            kind="parquet",
            parquet_root=str(tmp_path / "tracks"),
            breaker_failure_threshold=2,
            breaker_cooldown_s=600,
        ),
    }


def _tick(resources, cursor=None):
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context,
    ):
        return flight_queue_sensor(context)


def test_empty_queue_skips_with_a_reason(resources):
    result = _tick(resources)
    assert isinstance(result, dg.SkipReason)
    assert "no claimable flight" in result.skip_message


def test_one_run_per_day_high_priority_first(resources, engine):
    queue = FlightQueue(engine)
    queue.enqueue([11, 12], flight_date=DAY1)
    queue.enqueue([21], flight_date=DAY2)
    queue.enqueue([22], flight_date=DAY2, priority="high")
    result = _tick(resources)
    assert isinstance(result, dg.SensorResult)
    requests = result.run_requests
    assert [r.partition_key for r in requests] == [
        DAY2.isoformat(),
        DAY1.isoformat(),
        DAY2.isoformat(),
    ]
    high, normal1, normal2 = requests
    assert high.tags["dagster/priority"] == "10" and normal1.tags["dagster/priority"] == "0"
    ids = {
        r.partition_key + r.tags["flight_fees/queue_priority"]: r.run_config["ops"][
            "flight_tracks"
        ]["config"]["flight_ids"]
        for r in requests
    }
    assert ids == {f"{DAY2}high": [22], f"{DAY1}normal": [11, 12], f"{DAY2}normal": [21]}
    assert len({r.run_key for r in requests}) == 3
    cursor = json.loads(result.cursor)
    assert cursor["claims"] == 1 and cursor["flights_claimed"] == 4
    # the flights are claimed: a second tick finds nothing and keeps counting from the cursor
    again = _tick(resources, cursor=result.cursor)
    assert isinstance(again, dg.SkipReason)
    queue.enqueue([31], flight_date=DAY1)
    third = _tick(resources, cursor=result.cursor)
    assert json.loads(third.cursor)["claims"] == 2
    assert third.run_requests[0].run_key not in {r.run_key for r in requests}


def test_runs_are_capped_in_size(resources, engine, monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_MAX_FLIGHTS_PER_RUN", "2")
    FlightQueue(engine).enqueue([1, 2, 3, 4, 5], flight_date=DAY1)
    result = _tick(resources)
    sizes = [
        len(r.run_config["ops"]["flight_tracks"]["config"]["flight_ids"])
        for r in result.run_requests
    ]
    assert sizes == [2, 2, 1]


def test_claim_batch_bounds_a_tick(resources, engine, monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_CLAIM_BATCH", "3")
    FlightQueue(engine).enqueue(range(1, 11), flight_date=DAY1)
    result = _tick(resources)
    claimed = sum(
        len(r.run_config["ops"]["flight_tracks"]["config"]["flight_ids"])
        for r in result.run_requests
    )
    assert claimed == 3
    assert FlightQueue(engine).stats().by_status == {"processing": 3, "queued": 7}


def test_undatable_flight_fails_instead_of_running(resources, engine):
    queue = FlightQueue(engine)
    queue.enqueue([5])  # no date, and the (empty) track store has no position for it
    result = _tick(resources)
    assert result.run_requests == []
    assert queue.stats().by_status == {"failed": 1}


def test_open_circuit_skips_and_leaves_flights_queued(resources, engine):
    FlightQueue(engine).enqueue([1], flight_date=DAY1)
    source = resources["track_store"].source()
    breaker = resources["track_store"].breaker(engine, source.name)
    breaker.record_failure("connection refused")
    breaker.record_failure("connection refused")
    result = _tick(resources)
    assert isinstance(result, dg.SkipReason)
    assert "circuit is open" in result.skip_message
    assert FlightQueue(engine).stats().by_status == {"queued": 1}


def test_unmigrated_database_skips_with_the_fix(tmp_path):
    resources = {
        "billing": BillingDatabase(url=f"sqlite:///{tmp_path / 'empty.db'}"),
        "track_store": TrackStore(kind="parquet", parquet_root=str(tmp_path)),
    }
    result = _tick(resources)
    assert isinstance(result, dg.SkipReason)
    assert "flight-fees db upgrade" in result.skip_message


def test_queued_flights_observation_reports_depth_and_age(resources, engine):
    from flight_fees.defs.queue.assets import no_dead_flights, queued_flights

    queue = FlightQueue(engine)
    queue.enqueue([1, 2, 3], flight_date=DAY1)
    queue.fail(3, "unknown_mtow", "no MTOW for type ZZZZ")
    defs = dg.Definitions(
        assets=[queued_flights],
        jobs=[dg.define_asset_job("observe", selection=[queued_flights])],
        resources={"billing": resources["billing"]},
    )
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("observe").execute_in_process(instance=instance)
    assert result.success
    [observation] = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    meta = {k: v.value for k, v in observation.metadata.items()}
    assert meta["depth"] == 3 and meta["status_queued"] == 2 and meta["status_failed"] == 1
    assert 0 <= meta["oldest_queued_age_s"] < 120
    assert "unknown_mtow" in meta["recent_errors"]
    check = no_dead_flights(billing=resources["billing"])
    assert check.passed and check.metadata["failed"].value == 1


def test_no_claim_while_runs_wait_to_start(resources, engine, monkeypatch):
    import uuid

    queue = FlightQueue(engine)
    queue.enqueue([31, 32], flight_date=DAY1)
    monkeypatch.setenv("FLIGHT_FEES_MAX_WAITING_RUNS", "2")
    with dg.instance_for_test() as instance:
        for status in (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING):
            instance.add_run(
                dg.DagsterRun(job_name="process_flights", run_id=str(uuid.uuid4()), status=status)
            )
        instance.add_run(  # a running one does not hold claims back
            dg.DagsterRun(
                job_name="process_flights",
                run_id=str(uuid.uuid4()),
                status=dg.DagsterRunStatus.STARTED,
            )
        )
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            result = flight_queue_sensor(context)
        assert isinstance(result, dg.SkipReason)
        assert "2 process_flights run(s) waiting to start" in result.skip_message
        assert queue.stats().by_status == {"queued": 2}  # nothing claimed
        monkeypatch.setenv("FLIGHT_FEES_MAX_WAITING_RUNS", "3")
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            result = flight_queue_sensor(context)
        assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1


def test_celery_executor_requests_the_celery_job(resources, engine, monkeypatch):
    """FLIGHT_FEES_EXECUTOR=celery (scale-out): runs of process_flights_celery, whose waiting
    runs hold claims back like those of process_flights; unset: the in-process job."""
    import uuid

    queue = FlightQueue(engine)
    queue.enqueue([41], flight_date=DAY1)
    monkeypatch.setenv("FLIGHT_FEES_EXECUTOR", "celery")
    result = _tick(resources)
    assert [r.job_name for r in result.run_requests] == ["process_flights_celery"]
    monkeypatch.delenv("FLIGHT_FEES_EXECUTOR")
    queue.enqueue([42], flight_date=DAY1)
    result = _tick(resources)
    assert [r.job_name for r in result.run_requests] == ["process_flights"]

    queue.enqueue([43], flight_date=DAY1)
    monkeypatch.setenv("FLIGHT_FEES_MAX_WAITING_RUNS", "1")
    with dg.instance_for_test() as instance:
        instance.add_run(
            dg.DagsterRun(
                job_name="process_flights_celery",
                run_id=str(uuid.uuid4()),
                status=dg.DagsterRunStatus.NOT_STARTED,
            )
        )
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            result = flight_queue_sensor(context)
    assert isinstance(result, dg.SkipReason) and "waiting to start" in result.skip_message
