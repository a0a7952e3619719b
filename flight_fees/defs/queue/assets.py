"""``queued_flights``: the queue table, observed as an external source asset."""

import dagster as dg

from flight_fees.defs.resources import BillingDatabase


@dg.observable_source_asset(
    name="queued_flights",
    group_name="queue",
    description="Flights waiting in flight_processing_queue (observed: depth, oldest age).",
    automation_condition=None,
)
def queued_flights(billing: BillingDatabase) -> dg.ObserveResult:
    stats = billing.queue().stats(last_errors=5)
    age = stats.oldest_queued_age_s()
    metadata: dict[str, dg.RawMetadataValue] = {
        "depth": stats.total,
        "oldest_queued_age_s": float(age) if age is not None else 0.0,
        **{
            f"status_{s}": stats.by_status.get(s, 0)
            for s in ("queued", "processing", "failed", "dead")
        },
    }
    if stats.last_errors:
        metadata["recent_errors"] = dg.MetadataValue.md(
            "| flight | status | category | message |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {fid} | {status} | {cat or ''} | {(msg or '')[:80].replace('|', '/')} |"
                for fid, status, cat, msg, _ in stats.last_errors
            )
        )
    return dg.ObserveResult(metadata=metadata, data_version=dg.DataVersion(str(stats.total)))


@dg.asset_check(asset=queued_flights, description="No flight is dead in the queue.")
def no_dead_flights(billing: BillingDatabase) -> dg.AssetCheckResult:
    stats = billing.queue().stats(last_errors=0)
    dead = stats.by_status.get("dead", 0)
    return dg.AssetCheckResult(
        passed=dead == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"dead": dead, "failed": stats.by_status.get("failed", 0)},
        description=None
        if dead == 0
        else f"{dead} flight(s) exhausted their retries; re-enqueue after fixing",
    )
