"""``flight_queue_sensor``: every 30 s (FLIGHT_FEES_QUEUE_SENSOR_INTERVAL_S), claim queued flights
and request one ``process_flights`` run per UTC day (high-priority flights first, with a higher
``dagster/priority``); with FLIGHT_FEES_EXECUTOR=celery, runs of ``process_flights_celery``
(steps on Celery workers: ``flight_fees/defs/processing/scaleout.py``)."""

import datetime as dt
import json
import os
import time
import uuid
from pathlib import Path

import dagster as dg

from flight_fees.defs.partitions import daily_partitions
from flight_fees.defs.processing.jobs import process_flights, process_flights_celery
from flight_fees.defs.processing.scaleout import PROCESSING_JOBS, processing_job_name
from flight_fees.defs.resources import BillingDatabase, TrackStore
from flight_fees.lib.ops.claims import chunked, group_by_day

#: flights claimed per tick (the system this replaces claimed 10; a run handles hundreds of
#: flights in one vectorised pass, so claim enough to keep the run queue fed)
DEFAULT_CLAIM_BATCH = 5_000
#: largest number of flights in one run (bounds a failed run's blast radius; memory is bounded
#: by the run's chunks, see PipelineSettings.chunk_flights)
DEFAULT_MAX_FLIGHTS_PER_RUN = 2_500
#: no new claim while this many process_flights runs wait to start: flights stay queued (and
#: claimable by whoever has capacity) instead of aging in claims that runs adopt late
DEFAULT_MAX_WAITING_RUNS = 4
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
    queue = billing.queue()

    source = track_store.source()
    breaker = track_store.breaker(engine, source.name)
    if not breaker.allow():
        state = breaker.state()
        return dg.SkipReason(
            f"[INGESTION] track source {source.name!r} circuit is {state.state} after "
            f"{state.consecutive_failures} failures ({state.last_error}); retry in "
            f"{state.retry_after_s:.0f} s; flights stay queued"
        )

    max_waiting = _int_env("FLIGHT_FEES_MAX_WAITING_RUNS", DEFAULT_MAX_WAITING_RUNS)
    if context.instance is not None:
        waiting = sum(
            context.instance.get_runs_count(dg.RunsFilter(job_name=job, statuses=list(_WAITING)))
            for job in PROCESSING_JOBS
        )
        if waiting >= max_waiting:
            return dg.SkipReason(
                f"[INGESTION] {waiting} process_flights run(s) waiting to start (limit "
                f"{max_waiting}); flights stay queued until the runs catch up"
            )

    claim_id = uuid.uuid4().hex[:16]
    claimed = queue.claim(f"sensor:{claim_id}", batch)
    if not claimed:
        stats = queue.stats(last_errors=0)
        waiting = ", ".join(f"{n} {s}" for s, n in sorted(stats.by_status.items())) or "empty"
        return dg.SkipReason(f"[INGESTION] no claimable flight in the queue ({waiting})")
    _test_pause_after_claim()

    requests, unplaced = group_by_day(claimed, source.flight_days)
    for flight_id, reason in unplaced.items():
        queue.fail(flight_id, "not_found", reason)

    run_requests: list[dg.RunRequest] = []
    job_name = processing_job_name()  # FLIGHT_FEES_EXECUTOR: in-process (default) or Celery
    out_of_range: list[int] = []
    for request in requests:
        if not _valid_day(request.day):
            out_of_range.extend(request.flight_ids)
            continue
        for part, ids in enumerate(chunked(request.flight_ids, per_run)):
            run_requests.append(
                dg.RunRequest(
                    job_name=job_name,
                    run_key=f"claim-{claim_id}-{request.day.isoformat()}-{request.priority}-{part}",
                    partition_key=request.day.isoformat(),
                    run_config={
                        "ops": {
                            "flight_tracks": {
                                "config": {"flight_ids": list(ids), "claim_id": claim_id}
                            }
                        }
                    },
                    tags={
                        "dagster/priority": str(request.run_priority),
                        "flight_fees/claim": claim_id,
                        "flight_fees/queue_priority": request.priority,
                    },
                )
            )
    for flight_id in out_of_range:
        queue.fail(
            flight_id,
            "bad_date",
            f"flight day outside the partitions ({daily_partitions.start:%Y-%m-%d} .. today)",
            retryable=False,
        )

    previous = json.loads(context.cursor) if context.cursor else {}
    cursor = {
        "claims": int(previous.get("claims", 0)) + 1,
        "flights_claimed": int(previous.get("flights_claimed", 0)) + len(claimed),
        "last_claim_id": claim_id,
        "last_claim_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    context.log.info(
        "[INGESTION] claim %s: %d flight(s) -> %d run(s); %d undatable, %d out of range",
        claim_id,
        len(claimed),
        len(run_requests),
        len(unplaced),
        len(out_of_range),
    )
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(cursor))
