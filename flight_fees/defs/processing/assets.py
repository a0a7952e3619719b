"""Processing assets, partitioned by UTC day: flight_tracks -> fir_crossings -> fee_lines
(maps are made on demand, off the billing path: ``flight_fees/defs/maps``).

A run of a day partition processes the flight ids in its run config (the queue sensor and
``flight-fees process`` set them) or, without ids, every flight of that day in the track source
(a backfill). Stage outputs are run-scoped Parquet frames in the work store; fee lines go to the
billing database.
"""

import os
import time
from pathlib import Path

import dagster as dg

from flight_fees.defs.metadata import (
    failures_table,
    md_table,
)
from flight_fees.defs.partitions import daily_partitions, partition_day
from flight_fees.defs.resources import (
    BillingDatabase,
    PipelineSettings,
    ReferenceData,
    TrackStore,
    Workspace,
)
from flight_fees.lib.usecases.processing import FAILURES_SHOWN, BatchOutcome

GROUP = "processing"
#: TEST HOOK of the scale-out suite (flight_fees_tests/faults/test_scaleout.py), never set in
#: production: when this variable names an existing file holding "<step>:<moment> <seconds>",
#: the first step to reach that moment takes the file (renamed to ``<file>.taken``, then
#: holding the step's pid) and sleeps that long (at most 60 s), so that a test can kill the
#: Celery worker executing it right there
PAUSE_IN_STEP_ENV = "FLIGHT_FEES_TEST_PAUSE_IN_STEP"


def _test_pause_in_step(moment: str) -> None:
    path = os.environ.get(PAUSE_IN_STEP_ENV)
    if not path:
        return
    hook = Path(path)
    taken = hook.with_suffix(".taken")
    try:
        wanted, seconds = hook.read_text().split()
        if wanted != moment:
            return
        hook.rename(taken)  # atomic: one step takes it
        taken.write_text(str(os.getpid()))
    except (OSError, ValueError):
        return
    time.sleep(min(float(seconds), 60.0))


class FlightSelection(dg.Config):
    flight_ids: list[int] = []
    """Flights to process; empty: every flight of the partition's day (backfill)."""


#: run tag of the queue claim a run of the queue sensor works for (absent: an analyst's run)
CLAIM_TAG = "flight_fees/claim"


def lineage_run_ids(context: dg.AssetExecutionContext) -> list[str]:
    """This run, then its parents: a re-execution from failure reads its parent's frames."""
    ids = [context.run.run_id]
    run = context.run
    instance = context.instance
    while run is not None and run.parent_run_id and len(ids) < 20:
        ids.append(run.parent_run_id)
        run = instance.get_run_by_id(run.parent_run_id)
    return ids


def _log_failures(
    context: dg.AssetExecutionContext,
    failures: dict[int, tuple[str, str]],
    statuses: dict[int, str],
    stage: str,
) -> None:
    for fid, (category, message) in sorted(failures.items())[:FAILURES_SHOWN]:
        context.log.warning(
            "[INGESTION] %s: flight %s failed (%s): %s -> %s",
            stage,
            fid,
            category,
            message,
            statuses.get(fid),
        )
    if len(failures) > FAILURES_SHOWN:
        context.log.warning(
            "[INGESTION] %s: %d more failed flight(s)", stage, len(failures) - FAILURES_SHOWN
        )


@dg.asset(
    name="flight_tracks",
    group_name=GROUP,
    partitions_def=daily_partitions,
    deps=["queued_flights"],
    kinds={"pinot", "parquet"},
    description="Cleaned tracks of the flights of one UTC day (queued ids or the whole day).",
)
def flight_tracks(
    context: dg.AssetExecutionContext,
    config: FlightSelection,
    billing: BillingDatabase,
    track_store: TrackStore,
    workspace: Workspace,
    settings: PipelineSettings,
) -> dg.MaterializeResult:
    from flight_fees.lib.usecases.processing import (
        ClaimLost,
        SourceUnavailable,
        fetch_day_tracks,
    )

    day = partition_day(context)
    source = track_store.source()
    try:
        fetch = fetch_day_tracks(
            queue=billing.queue(),
            engine=billing.engine(),
            source=source,
            breaker=track_store.breaker(billing.engine(), source.name),
            store=workspace.work_store(),
            day=day,
            run_id=context.run.run_id,
            flight_ids=config.flight_ids,
            claim_id=context.run.tags.get(CLAIM_TAG, ""),
            chunk_flights=settings.chunk_flights,
            max_gap_s=settings.gap_threshold_s,
            max_speed_kt=settings.max_speed_kt,
            min_points=settings.min_points,
        )
    except (ClaimLost, SourceUnavailable) as exc:
        raise dg.Failure(description=f"[INGESTION] {exc}", allow_retries=False) from exc
    if fetch.not_held:
        context.log.warning(
            "[INGESTION] %d of %d flight(s) of claim %s are no longer held by it (claimed "
            "again after the claim lease, or settled); this run leaves them alone",
            fetch.not_held,
            fetch.not_held + len(fetch.flight_ids),
            context.run.tags.get(CLAIM_TAG, ""),
        )
    fetched, failures = fetch.run, fetch.failures
    _log_failures(context, failures, fetch.settlement.statuses, "flight_tracks")
    context.log.info(
        "[INGESTION] %s: %d flight(s) with tracks, %d failed, %d points, %d queries, "
        "%d chunk(s), %.1f s",
        day,
        fetched.flights_with_tracks,
        len(failures),
        fetched.points,
        fetched.queries,
        fetched.chunks,
        fetch.seconds,
    )
    report = fetched.report
    return dg.MaterializeResult(
        metadata={
            "source": fetch.source_name,
            "mode": "selected flights" if fetch.flight_ids else "backfill (whole day)",
            "flights_requested": fetch.requested,
            "flights_with_tracks": fetched.flights_with_tracks,
            "flights_failed": len(failures),
            "points": fetched.points,
            "queries": fetched.queries,
            "chunks": fetched.chunks,
            "seconds": round(fetch.seconds, 2),
            "failed_flights": failures_table(failures),
            "cleaning": md_table(report.head(100)) if len(report) else "no cleaning report",
        }
    )


@dg.asset(
    name="fir_crossings",
    group_name=GROUP,
    partitions_def=daily_partitions,
    deps=[flight_tracks, "fir_boundaries", "charging_zones"],
    kinds={"shapely", "parquet"},
    description="FIR crossings (entry/exit time and point per FIR visit) and charging-zone "
    "visits of the day's flights.",
)
def fir_crossings(
    context: dg.AssetExecutionContext,
    reference: ReferenceData,
    workspace: Workspace,
    settings: PipelineSettings,
) -> dg.MaterializeResult:
    from flight_fees.lib.processing.pipeline import stream_crossings

    day = partition_day(context)
    store = workspace.work_store()
    run = stream_crossings(
        store,
        day,
        lineage_run_ids(context),
        context.run.run_id,
        reference.fir_index(),  # prepared FIR set, built once per FIR set (on-disk cache)
        reference.charging_zones(),
        airports=reference.airports(),
        gap_threshold_s=settings.gap_threshold_s,
        noise_tolerance_m=settings.noise_tolerance_m,
        jitter_s=settings.jitter_s,
    )
    context.log.info(
        "[INGESTION] %s: %d crossings, %d zone visits in %.2f s",
        day,
        run.crossings,
        run.zone_visits,
        run.seconds,
    )
    preview_cols = ["flight_id", "fir_id", "entry_time", "exit_time", "distance_km", "interpolated"]
    merged = run.merged_per_flight
    return dg.MaterializeResult(
        metadata={
            "flights": run.flights,
            "crossings": run.crossings,
            "zone_visits": run.zone_visits,
            "interpolated_crossings": run.interpolated,
            "flights_outside_every_fir": run.flights_without_crossings,
            "merged_excursions": int(merged.sum()),
            "flights_with_merged_excursions": len(merged),
            "merged_excursions_per_flight": md_table(
                merged.rename("merged_excursions").reset_index().head(50)
            )
            if len(merged)
            else "no excursion merged",
            "uncharged_zone_visits": sum(run.uncharged_per_zone.values()),
            "uncharged_zone_visits_per_zone": dg.MetadataValue.json(run.uncharged_per_zone),
            "points_per_second": round(run.points / run.seconds, 0) if run.seconds > 0 else 0.0,
            "crossings_per_fir": dg.MetadataValue.json(run.crossings_per_fir),
            "preview": md_table(run.preview[preview_cols]) if len(run.preview) else "no crossings",
            "path": dg.MetadataValue.path(
                str(store.path("crossings", day, context.run.run_id, ""))
            ),
        }
    )


def batch_check(outcome: BatchOutcome) -> dg.AssetCheckResult:
    """``batch_flights_billed``: green when every flight of the batch was billed, WARN when
    some failed, ERROR when all failed (both stages: tracks and pricing)."""
    verdict = outcome.verdict
    failed = len(outcome.failures)
    return dg.AssetCheckResult(
        check_name="batch_flights_billed",
        passed=verdict == "ok",
        severity=dg.AssetCheckSeverity.ERROR
        if verdict == "all_failed"
        else dg.AssetCheckSeverity.WARN,
        description={
            "ok": "every flight of the batch was billed",
            "some_failed": f"{failed} of {outcome.requested} flight(s) failed",
            "all_failed": f"all {failed} flight(s) of the batch failed",
        }[verdict],
        metadata={
            "verdict": verdict,
            "flights_failed": failed,
            "flights_billed": outcome.flights_billed,
            "failed_flights": failures_table(outcome.failures),
        },
    )


@dg.asset(
    name="fee_lines",
    group_name=GROUP,
    partitions_def=daily_partitions,
    deps=[fir_crossings, "tariffs", "fx_rates", "aircraft_registry"],
    kinds={"sqlalchemy"},
    check_specs=[
        dg.AssetCheckSpec(
            "batch_flights_billed",
            asset="fee_lines",
            description="Every flight of the run's batch was billed: WARN when some failed "
            "(tracks or pricing), ERROR when all failed.",
        )
    ],
    description="Fee lines per charging-zone visit (tariff, currency, FX), written with the "
    "deletion of the flights' queue rows in one transaction. The materialization of a day "
    "reports the whole day (day_*) and this batch's delta (batch_*).",
)
def fee_lines(
    context: dg.AssetExecutionContext,
    billing: BillingDatabase,
    reference: ReferenceData,
    workspace: Workspace,
    settings: PipelineSettings,
) -> dg.MaterializeResult:
    from flight_fees.lib.documents.links import day_maps_url, processing_log_url
    from flight_fees.lib.usecases.processing import bill_batch

    day = partition_day(context)
    _test_pause_in_step("fee_lines:before_lines")
    outcome = bill_batch(
        engine=billing.engine(),
        queue=billing.queue(),
        store=workspace.work_store(),
        day=day,
        run_id=context.run.run_id,
        run_ids=lineage_run_ids(context),
        tariffs=reference.tariffs(),
        fx=reference.fx_rates(),
        aircraft_types=reference.aircraft_types(),
        attributes_csv=reference.attributes_csv,
        logs_dir=workspace.paths().logs,
        partition_key=context.partition_key,
        keep_logs=workspace.keep_logs,
        keep_intermediates=settings.keep_intermediates(),
    )
    _test_pause_in_step("fee_lines:after_lines")
    run, state = outcome.run, outcome.day
    _log_failures(context, run.failures, outcome.statuses, "fee_lines")
    totals = {k: str(v) for k, v in run.totals.items()}
    context.log.info(
        "[DATABASE] batch %s: %d flight(s) billed with %d fee line(s), %d failed; %s",
        outcome.batch_id,
        outcome.flights_billed,
        run.lines,
        len(outcome.failures),
        totals,
    )
    preview = run.preview
    return dg.MaterializeResult(
        metadata={
            # the whole day, over every batch that billed it
            "day_flights_billed": state.flights_billed,
            "day_fee_lines": state.fee_lines,
            **{f"day_total_{ccy}": float(v) for ccy, v in state.totals.items()},
            "day_totals": dg.MetadataValue.json({k: str(v) for k, v in state.totals.items()}),
            "day_flights_failed_in_queue": len(state.failed),
            # this batch
            "batch_id": outcome.batch_id,
            "batch_mode": "backfill (whole day)" if outcome.backfill else "selected flights",
            "batch_flights_requested": outcome.requested,
            "batch_flights_billed": outcome.flights_billed,
            "batch_flights_failed": len(outcome.failures),
            "batch_flights_failed_tracks": len(outcome.track_failures),
            "batch_flights_already_invoiced_skipped": len(run.skipped_invoiced),
            "batch_fee_lines": run.lines,
            "batch_totals": dg.MetadataValue.json(totals),
            "failed_flights": failures_table(outcome.failures),
            "open_conflicts": run.conflicts,
            "preview": md_table(preview) if len(preview) else "no fee lines",
            "processing_log": dg.MetadataValue.url(processing_log_url(outcome.log_path)),
            "maps": dg.MetadataValue.url(day_maps_url(day)),
        },
        check_results=[batch_check(outcome)],
    )
