"""``queued_flights_observer``: the automation that observes ``queued_flights`` and evaluates
``no_dead_flights``, called directly and ticked by Dagster's sensor daemon code over the real
code location (the events land in the instance's event log)."""

from __future__ import annotations

import datetime as dt
import logging
import sys

import dagster as dg

from flight_fees.defs.queue.assets import no_dead_flights, queued_flights
from flight_fees.defs.queue.observer import queued_flights_observer
from flight_fees.defs.resources import BillingDatabase
from flight_fees.lib.ops.queue import FlightQueue

DAY = dt.date(2026, 10, 26)


def _one_dead_one_failed(engine) -> None:
    """Flight 41 dead (retries exhausted), 42 failed (not retryable): no sensor claims them."""
    FlightQueue(engine, max_attempts=1).fail(41, "unknown_mtow", "no MTOW for type ZZZZ")
    FlightQueue(engine).fail(42, "bad_date", "outside the partitions", retryable=False)


def test_observer_reports_an_observation_and_the_check_result(db_url, engine):
    _one_dead_one_failed(engine)
    FlightQueue(engine).enqueue([43], flight_date=DAY)
    with dg.build_sensor_context(resources={"billing": BillingDatabase(url=db_url)}) as context:
        result = queued_flights_observer(context)
    assert isinstance(result, dg.SensorResult) and not result.run_requests
    observation, evaluation = result.asset_events
    assert isinstance(observation, dg.AssetObservation)
    assert observation.asset_key == queued_flights.key
    meta = {k: v.value for k, v in observation.metadata.items()}
    assert (meta["depth"], meta["status_dead"], meta["status_failed"]) == (3, 1, 1)
    assert meta["status_queued"] == 1 and "unknown_mtow" in meta["recent_errors"]
    assert observation.tags["dagster/data_version"] == "3"
    assert isinstance(evaluation, dg.AssetCheckEvaluation)
    assert evaluation.asset_check_key == next(iter(no_dead_flights.check_keys))
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["dead"].value == 1
    assert "1 flight(s) exhausted their retries" in evaluation.description
    # the tick says what it recorded
    assert "1 dead" in result.skip_reason.skip_message
    assert "no_dead_flights failed" in result.skip_reason.skip_message
    # the UI's Execute button (the asset check itself) reaches the same verdict
    direct = no_dead_flights(billing=BillingDatabase(url=db_url))
    assert (direct.passed, direct.metadata["dead"].value) == (False, 1)


def test_observer_skips_with_the_fix_on_an_unmigrated_database(tmp_path):
    billing = BillingDatabase(url=f"sqlite:///{tmp_path / 'empty.db'}")
    with dg.build_sensor_context(resources={"billing": billing}) as context:
        result = queued_flights_observer(context)
    assert isinstance(result, dg.SkipReason)
    assert "flight-fees db upgrade" in result.skip_message


def test_the_sensor_daemon_records_observation_and_check_in_the_event_log(
    db_url, engine, monkeypatch
):
    """One iteration of Dagster's sensor daemon over the code location flight_fees: the
    observer runs by default (no one has to switch it on) and its events are stored."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import (
        InProcessTestWorkspaceLoadTarget,
        create_test_daemon_workspace_context,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._daemon.sensor import execute_sensor_iteration

    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    _one_dead_one_failed(engine)  # the queue sensor of the same location ticks too
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable, module_name="flight_fees.definitions", attribute="defs"
        ),
        location_name="flight_fees",
    )
    [check_key] = no_dead_flights.check_keys
    with (
        dg.instance_for_test() as instance,
        create_test_daemon_workspace_context(
            InProcessTestWorkspaceLoadTarget(origin), instance
        ) as workspace,
    ):
        location = workspace.create_request_context().get_code_location("flight_fees")
        [observer] = [
            sensor
            for repo in location.get_repositories().values()
            for sensor in repo.get_sensors()
            if sensor.name == "queued_flights_observer"
        ]
        assert instance.get_runs_count() == 0
        list(execute_sensor_iteration(workspace, logging.getLogger("test"), None, None))
        observations = instance.fetch_observations(queued_flights.key, limit=5).records
        checks = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=5)
        ticks = instance.get_ticks(observer.get_remote_origin_id(), observer.selector_id)
        runs = instance.get_runs_count()
    [record] = observations
    meta = {k: v.value for k, v in record.asset_observation.metadata.items()}
    assert (meta["depth"], meta["status_dead"], meta["status_failed"]) == (2, 1, 1)
    [execution] = checks
    assert execution.status.value == "FAILED"
    evaluation = execution.event.dagster_event.event_specific_data
    assert evaluation.check_name == "no_dead_flights" and evaluation.metadata["dead"].value == 1
    # recorded by the tick itself: no run was launched for it
    assert runs == 0
    [tick] = ticks
    assert "queued_flights observed (1 dead, 1 failed)" in tick.skip_reason
