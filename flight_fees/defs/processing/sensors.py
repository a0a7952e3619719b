"""When a ``process_flights`` run fails as a whole (a crash, a bug, a killed worker), the
flights it still held are failed in the queue — an attempt is counted, retried with back-off,
``dead`` after the maximum — instead of waiting for their lease to expire, forever."""

import dagster as dg

from flight_fees.defs.processing.jobs import process_flights
from flight_fees.defs.resources import BillingDatabase


def settle_failed_run(billing: BillingDatabase, run_id: str, message: str) -> dict[int, str]:
    return billing.queue().fail_claimed(
        f"run:{run_id}", "internal", f"run {run_id} failed: {message}"[:4000]
    )


@dg.run_failure_sensor(
    name="process_flights_failure_sensor",
    monitored_jobs=[process_flights],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails, in the queue, the flights a crashed process_flights run still held.",
)
def process_flights_failure_sensor(
    context: dg.RunFailureSensorContext, billing: BillingDatabase
) -> None:
    run_id = context.dagster_run.run_id
    message = context.failure_event.message or "run failed"
    statuses = settle_failed_run(billing, run_id, message)
    context.log.info(
        "[INGESTION] run %s failed; %d flight(s) settled: %s", run_id, len(statuses), statuses
    )
