"""``queued_flights``: the queue table, observed as an external source asset, and its check
``no_dead_flights``. ``queued_flights_observer`` (observer.py) records both on a schedule; the
UI's *Observe* / *Execute* buttons run the same code in a run."""

from typing import Any

import dagster as dg

from flight_fees.defs.resources import BillingDatabase
from flight_fees.lib.ops.queue import QueueStats

#: flights in these statuses are counted in the observation's metadata
_STATUSES = ("queued", "processing", "failed", "dead")


def queue_observation(stats: QueueStats) -> tuple[dict[str, Any], dg.DataVersion]:
    """Metadata and data version of one observation of the queue (``QueueStats``)."""
    age = stats.oldest_queued_age_s()
    metadata: dict[str, Any] = {
        "depth": stats.total,
        "oldest_queued_age_s": float(age) if age is not None else 0.0,
        **{f"status_{s}": stats.by_status.get(s, 0) for s in _STATUSES},
    }
    if stats.last_errors:
        metadata["recent_errors"] = dg.MetadataValue.md(
            "| flight | status | category | message |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {fid} | {status} | {cat or ''} | {(msg or '')[:80].replace('|', '/')} |"
                for fid, status, cat, msg, _ in stats.last_errors
            )
        )
    return metadata, dg.DataVersion(str(stats.total))


def dead_flights_verdict(stats: QueueStats) -> dict[str, Any]:
    """The ``no_dead_flights`` verdict on ``QueueStats``: keyword arguments shared by
    :class:`dagster.AssetCheckResult` and :class:`dagster.AssetCheckEvaluation`."""
    dead = stats.by_status.get("dead", 0)
    return {
        "passed": dead == 0,
        "severity": dg.AssetCheckSeverity.WARN,
        "metadata": {"dead": dead, "failed": stats.by_status.get("failed", 0)},
        "description": None
        if dead == 0
        else f"{dead} flight(s) exhausted their retries; re-enqueue after fixing",
    }


@dg.observable_source_asset(
    name="queued_flights",
    group_name="queue",
    description="Flights waiting in flight_processing_queue (observed: depth, oldest age).",
    automation_condition=None,
)
def queued_flights(billing: BillingDatabase) -> dg.ObserveResult:
    metadata, version = queue_observation(billing.queue().stats(last_errors=5))
    return dg.ObserveResult(metadata=metadata, data_version=version)


@dg.asset_check(asset=queued_flights, description="No flight is dead in the queue.")
def no_dead_flights(billing: BillingDatabase) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(**dead_flights_verdict(billing.queue().stats(last_errors=0)))
