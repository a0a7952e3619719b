"""When a ``process_flights`` run fails as a whole (a crash, a bug, a killed worker, a failure at
launch), the flights it still held are settled at once instead of waiting for their lease:
those the run had adopted fail with one attempt (retried with back-off, ``dead`` after the
maximum), those of its claim that it never adopted (it failed before starting) go back to the
queue without an attempt. Settling is guarded by the holder, so evaluating the same run again
(a retried tick, two daemons by mistake) changes nothing."""

import dagster as dg

from flight_fees.defs.processing.assets import CLAIM_TAG
from flight_fees.defs.processing.jobs import process_flights, process_flights_celery
from flight_fees.defs.resources import BillingDatabase
from flight_fees.lib.ops.queue import SettleResult


def settle_failed_run(
    billing: BillingDatabase,
    run_id: str,
    claim_id: str | None,
    message: str,
    flight_ids: list[int] | None = None,
) -> SettleResult:
    """Settle a failed run; ``flight_ids``: the run's own flights (its run config), so that
    the other runs of the same claim keep theirs."""
    return billing.queue().settle_run(
        f"run:{run_id}",
        f"sensor:{claim_id}" if claim_id else None,
        "internal",
        f"run {run_id} failed: {message}"[:4000],
        flight_ids=flight_ids if claim_id else None,
    )


def run_flight_ids(run_config: dict) -> list[int]:
    """The flight ids in a process_flights run config (empty for a backfill)."""
    ops = (run_config or {}).get("ops", {})
    config = ops.get("flight_tracks", {}).get("config", {})
    return [int(f) for f in config.get("flight_ids", [])]


@dg.run_failure_sensor(
    name="process_flights_failure_sensor",
    monitored_jobs=[process_flights, process_flights_celery],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails, in the queue, the flights a crashed process_flights run still held.",
)
def process_flights_failure_sensor(
    context: dg.RunFailureSensorContext, billing: BillingDatabase
) -> None:
    run = context.dagster_run
    message = context.failure_event.message or "run failed"
    settled = settle_failed_run(
        billing,
        run.run_id,
        run.tags.get(CLAIM_TAG),
        message,
        run_flight_ids(run.run_config),
    )
    context.log.info(
        "[INGESTION] run %s failed; %d flight(s) failed %s, %d released without an attempt",
        run.run_id,
        sum(settled.failed.values()),
        settled.failed,
        settled.released,
    )
