"""``flight_queue_sensor``: every 30 s (FLIGHT_FEES_QUEUE_SENSOR_INTERVAL_S), claim queued flights
and request one ``process_flights`` run per UTC day (high-priority flights first, with a higher
``dagster/priority``); with FLIGHT_FEES_EXECUTOR=celery, runs of ``process_flights_celery``
(steps on Celery workers: ``flight_fees/defs/processing/scaleout.py``)."""

import datetime as dt
import json
import os
import time
from pathlib import Path

import dagster as dg

from flight_fees.defs.partitions import daily_partitions
from flight_fees.defs.processing.assets import CLAIM_TAG
from flight_fees.defs.processing.jobs import process_flights, process_flights_celery
from flight_fees.defs.processing.scaleout import PROCESSING_JOBS, processing_job_name
from flight_fees.defs.resources import BillingDatabase, TrackStore
from flight_fees.lib.usecases.queue_tick import (
    DEFAULT_CLAIM_BATCH,
    DEFAULT_MAX_FLIGHTS_PER_RUN,
    DEFAULT_MAX_WAITING_RUNS,
    queue_tick,
)

_WAITING = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
)


def _int_env(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def _valid_day(day: dt.date) -> bool:
    return daily_partitions.has_partition_key(day.isoformat())


#: seconds between two ticks (read when the code location loads)
QUEUE_SENSOR_INTERVAL_S = _int_env("FLIGHT_FEES_QUEUE_SENSOR_INTERVAL_S", 30)
#: TEST HOOK of the fault suite (flight_fees_tests/faults), never set in production: when this
#: variable names an existing file, the next tick that claims flights pauses right after the
#: claim commits for the number of seconds in the file (at most 45, under the 60 s tick
#: timeout) and removes the file, so that a test can kill the daemon between claim and runs
PAUSE_AFTER_CLAIM_ENV = "FLIGHT_FEES_TEST_PAUSE_AFTER_CLAIM"


def _test_pause_after_claim() -> None:
    path = os.environ.get(PAUSE_AFTER_CLAIM_ENV)
    if not path:
        return
    try:
        seconds = float(Path(path).read_text() or 0)
        os.remove(path)
    except (OSError, ValueError):
        return
    time.sleep(min(seconds, 45.0))


@dg.sensor(
    name="flight_queue_sensor",
    jobs=[process_flights, process_flights_celery],
    minimum_interval_seconds=QUEUE_SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Claims queued flights and requests one process_flights run per UTC day.",
)
def flight_queue_sensor(
    context: dg.SensorEvaluationContext, billing: BillingDatabase, track_store: TrackStore
) -> dg.SensorResult | dg.SkipReason:
    batch = _int_env("FLIGHT_FEES_CLAIM_BATCH", DEFAULT_CLAIM_BATCH)
    per_run = _int_env("FLIGHT_FEES_MAX_FLIGHTS_PER_RUN", DEFAULT_MAX_FLIGHTS_PER_RUN)
    not_ready = billing.not_ready_reason()
    if not_ready:
        return dg.SkipReason(f"[DATABASE] billing database not usable: {not_ready}")
    engine = billing.engine()
    source = track_store.source()
    waiting = (
        sum(
            context.instance.get_runs_count(dg.RunsFilter(job_name=job, statuses=list(_WAITING)))
            for job in PROCESSING_JOBS
        )
        if context.instance is not None
        else 0
    )
    tick = queue_tick(
        billing.queue(),
        source=source,
        breaker=track_store.breaker(engine, source.name),
        claim_batch=batch,
        max_flights_per_run=per_run,
        waiting_runs=waiting,
        max_waiting_runs=_int_env("FLIGHT_FEES_MAX_WAITING_RUNS", DEFAULT_MAX_WAITING_RUNS),
        valid_day=_valid_day,
        day_range=f"{daily_partitions.start:%Y-%m-%d} .. today",
        after_claim=_test_pause_after_claim,
    )
    if tick.skipped:
        return dg.SkipReason(f"[INGESTION] {tick.skipped}")
    claim_id = tick.claim_id
    job_name = processing_job_name()  # FLIGHT_FEES_EXECUTOR: in-process (default) or Celery
    run_requests = [
        dg.RunRequest(
            job_name=job_name,
            run_key=run.run_key,
            partition_key=run.day.isoformat(),
            run_config={"ops": {"flight_tracks": {"config": {"flight_ids": list(run.flight_ids)}}}},
            tags={
                "dagster/priority": str(run.run_priority),
                CLAIM_TAG: claim_id,
                "flight_fees/queue_priority": run.priority,
            },
        )
        for run in tick.runs
    ]
    previous = json.loads(context.cursor) if context.cursor else {}
    cursor = {
        "claims": int(previous.get("claims", 0)) + 1,
        "flights_claimed": int(previous.get("flights_claimed", 0)) + tick.claimed,
        "last_claim_id": claim_id,
        "last_claim_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    context.log.info(
        "[INGESTION] claim %s: %d flight(s) -> %d run(s); %d undatable, %d out of range",
        claim_id,
        tick.claimed,
        len(run_requests),
        len(tick.undatable),
        len(tick.out_of_range),
    )
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(cursor))
