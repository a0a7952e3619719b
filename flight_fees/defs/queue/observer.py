"""``queued_flights_observer``: every 5 minutes (FLIGHT_FEES_QUEUE_OBSERVE_INTERVAL_S), record an
observation of ``queued_flights`` (depth, age, statuses, recent errors) and the result of its
check ``no_dead_flights`` in the instance's event log.

A sensor reporting asset events, not declarative automation: an observation run every few
minutes would hold one of the run queue's slots (``max_concurrent_runs``) that
``process_flights`` runs need, and a run worker costs seconds of CPU for a two-row query. The
events are the same as the UI's *Observe* / *Execute* buttons produce (``queue_observation``,
``dead_flights_verdict``), without a run."""

import os

import dagster as dg

from flight_fees.defs.queue.assets import (
    dead_flights_verdict,
    no_dead_flights,
    queue_observation,
    queued_flights,
)
from flight_fees.defs.resources import BillingDatabase

#: Dagster's tag for an observation's data version (what ``ObserveResult.data_version`` sets)
_DATA_VERSION_TAG = "dagster/data_version"


def _interval_s() -> int:
    try:
        return max(30, int(os.environ.get("FLIGHT_FEES_QUEUE_OBSERVE_INTERVAL_S", 300)))
    except ValueError:
        return 300


#: seconds between two observations (read when the code location loads; at least 30)
QUEUE_OBSERVE_INTERVAL_S = _interval_s()


@dg.sensor(
    name="queued_flights_observer",
    minimum_interval_seconds=QUEUE_OBSERVE_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records an observation of queued_flights and evaluates no_dead_flights (no run).",
)
def queued_flights_observer(billing: BillingDatabase) -> dg.SensorResult | dg.SkipReason:
    not_ready = billing.not_ready_reason()
    if not_ready:
        return dg.SkipReason(f"[DATABASE] billing database not usable: {not_ready}")
    stats = billing.queue().stats(last_errors=5)
    metadata, version = queue_observation(stats)
    verdict = dead_flights_verdict(stats)
    [check_key] = no_dead_flights.check_keys
    events = [
        dg.AssetObservation(
            asset_key=queued_flights.key,
            metadata=metadata,
            tags={_DATA_VERSION_TAG: version.value},
        ),
        dg.AssetCheckEvaluation(
            asset_key=check_key.asset_key, check_name=check_key.name, **verdict
        ),
    ]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(stats.by_status.items())) or "empty"
    return dg.SensorResult(
        asset_events=events,
        skip_reason=(
            f"[INGESTION] queued_flights observed ({counts}); no_dead_flights "
            f"{'passed' if verdict['passed'] else 'failed: ' + verdict['description']}"
        ),
    )
