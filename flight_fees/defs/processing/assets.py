"""Processing assets, partitioned by UTC day: flight_tracks -> fir_crossings -> fee_lines
(maps are made on demand, off the billing path: ``flight_fees/defs/maps``).

A run of a day partition processes the flight ids in its run config (the queue sensor and
``flight-fees process`` set them) or, without ids, every flight of that day in the track source
(a backfill). Stage outputs are run-scoped Parquet frames in the work store; fee lines go to the
billing database.
"""

import datetime as dt
import os
import time
import uuid
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
    claim_id: str = ""
    """Set by the queue sensor: the claim these flights came from."""


def lineage_run_ids(context: dg.AssetExecutionContext) -> list[str]:
    """This run, then its parents: a re-execution from failure reads its parent's frames."""
    ids = [context.run.run_id]
    run = context.run
    instance = context.instance
    while run is not None and run.parent_run_id and len(ids) < 20:
        ids.append(run.parent_run_id)
        run = instance.get_run_by_id(run.parent_run_id)
    return ids


def _mark_failures(
    context: dg.AssetExecutionContext,
    billing: BillingDatabase,
    failures: dict[int, tuple[str, str]],
    stage: str,
) -> None:
    if not failures:
        return
    from flight_fees.lib.billing.fee_lines import record_flight_failures

    statuses = record_flight_failures(
        billing.engine(), billing.queue(), failures, batch_id=context.run.run_id
    )
    _log_failures(context, failures, statuses, stage)


def _log_failures(
    context: dg.AssetExecutionContext,
    failures: dict[int, tuple[str, str]],
    statuses: dict[int, str],
    stage: str,
) -> None:
    for fid, (category, message) in sorted(failures.items())[:20]:
        context.log.warning(
            "[INGESTION] %s: flight %s failed (%s): %s -> %s",
            stage,
            fid,
            category,
            message,
            statuses.get(fid),
        )
    if len(failures) > 20:
        context.log.warning("[INGESTION] %s: %d more failed flight(s)", stage, len(failures) - 20)


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
    from flight_fees.lib.billing.fee_lines import settle_track_failures
    from flight_fees.lib.processing.pipeline import stream_tracks

    day = partition_day(context)
    ids = list(config.flight_ids)
    queue = billing.queue()
    worker = f"run:{context.run.run_id}"
    if ids and config.claim_id and not config.claim_id.startswith("cli-"):
        # a run requested by the queue sensor adopts the flights its claim still holds; the
        # others were claimed again after the claim lease expired: another run bills them
        adopted = queue.adopt(ids, f"sensor:{config.claim_id}", worker)
        if len(adopted) < len(ids):
            context.log.warning(
                "[INGESTION] %d of %d flight(s) of claim %s are no longer held by it (claimed "
                "again after the claim lease, or settled); this run leaves them alone",
                len(ids) - len(adopted),
                len(ids),
                config.claim_id,
            )
        ids = adopted
        if not ids:
            raise dg.Failure(
                description=f"claim {config.claim_id} holds none of its flights any more",
                allow_retries=False,
            )
    elif ids:
        queue.touch(ids, worker)  # an analyst's run: take the flights, renew their lease
    source = track_store.source()
    breaker = track_store.breaker(billing.engine(), source.name)
    if not breaker.allow():
        queue.release(ids, "source_unavailable", f"circuit of {source.name} is open")
        raise dg.Failure(
            description=f"track source {source.name!r} circuit is open; {len(ids)} flight(s) "
            "left queued",
            allow_retries=False,
        )
    started = time.perf_counter()
    store = workspace.work_store()
    fetched = stream_tracks(
        source,
        store,
        day,
        context.run.run_id,
        ids or None,
        chunk_flights=settings.chunk_flights,
        max_gap_s=settings.gap_threshold_s,
        max_speed_kt=settings.max_speed_kt,
        min_points=settings.min_points,
    )
    failures = fetched.failures
    # the breaker learns whether the source itself failed; whole-source faults (outage,
    # timeout, partial result) hand the flights back without an attempt, data faults count one
    settlement = settle_track_failures(
        billing.engine(),
        queue,
        breaker,
        failures,
        source_error=fetched.source_error,
        delivered=fetched.flights_with_tracks,
        batch_id=context.run.run_id,
    )
    _log_failures(context, failures, settlement.statuses, "flight_tracks")
    unavailable = {f for f, (cat, _) in failures.items() if cat == "source_unavailable"}
    if fetched.source_error is not None or (unavailable and fetched.flights_with_tracks == 0):
        # the source is down: fail the run loudly (partial answers and timeouts of some
        # queries were settled above and the run goes on with what was delivered)
        category, message = fetched.source_error or failures[min(unavailable)]
        raise dg.Failure(
            description=f"[INGESTION] track source {source.name!r} failed ({category}): "
            f"{message}; {len(failures)} flight(s) left in the queue",
            allow_retries=False,
        )

    store.write_json(
        "selection",
        day,
        context.run.run_id,
        {
            "flight_ids": ids,
            # failures of this stage, for the batch's processing log
            "failed": [
                {"flight_id": fid, "category": cat, "message": msg}
                for fid, (cat, msg) in sorted(failures.items())
            ],
        },
    )
    elapsed = time.perf_counter() - started
    context.log.info(
        "[INGESTION] %s: %d flight(s) with tracks, %d failed, %d points, %d queries, "
        "%d chunk(s), %.1f s",
        day,
        fetched.flights_with_tracks,
        len(failures),
        fetched.points,
        fetched.queries,
        fetched.chunks,
        elapsed,
    )
    report = fetched.report
    return dg.MaterializeResult(
        metadata={
            "source": source.name,
            "mode": "selected flights" if ids else "backfill (whole day)",
            "flights_requested": len(ids) if ids else fetched.flights_with_tracks + len(failures),
            "flights_with_tracks": fetched.flights_with_tracks,
            "flights_failed": len(failures),
            "points": fetched.points,
            "queries": fetched.queries,
            "chunks": fetched.chunks,
            "seconds": round(elapsed, 2),
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


@dg.asset(
    name="fee_lines",
    group_name=GROUP,
    partitions_def=daily_partitions,
    deps=[fir_crossings, "tariffs", "fx_rates", "aircraft_registry"],
    kinds={"sqlalchemy"},
    description="Fee lines per charging-zone visit (tariff, currency, FX), written with the "
    "deletion of the flights' queue rows in one transaction.",
)
def fee_lines(
    context: dg.AssetExecutionContext,
    billing: BillingDatabase,
    reference: ReferenceData,
    workspace: Workspace,
    settings: PipelineSettings,
) -> dg.MaterializeResult:
    from flight_fees.lib.billing.batches import finish_batch, start_batch
    from flight_fees.lib.documents.links import day_maps_url, processing_log_url
    from flight_fees.lib.ops.audit import FlightTiming, ProcessingLog, write_processing_log
    from flight_fees.lib.processing.pipeline import stream_bills

    day = partition_day(context)
    store = workspace.work_store()
    runs = lineage_run_ids(context)
    engine = billing.engine()
    batch_id = f"{day.isoformat()}-{context.run.run_id[:8]}-{uuid.uuid4().hex[:6]}"
    log = ProcessingLog(
        batch_id=batch_id,
        started_at=dt.datetime.now(dt.UTC),
        run_id=context.run.run_id,
        partition_key=context.partition_key,
    )
    started = time.perf_counter()
    selection = store.read_json("selection", day, runs) or {}
    requested = store.count_rows("flight_attributes", day, runs) + len(selection.get("failed", []))
    # the batch is visible while it runs (`flight-fees batches` follows its billed flights)
    start_batch(
        engine,
        batch_id,
        run_id=context.run.run_id,
        day=day,
        requested=requested,
        started_at=log.started_at,
    )
    _test_pause_in_step("fee_lines:before_lines")
    run = stream_bills(
        engine,
        store,
        day,
        runs,
        tariffs=reference.tariffs(),
        fx=reference.fx_rates(),
        aircraft_types=reference.aircraft_types(),
        attributes_csv=reference.attributes_csv,
        batch_id=batch_id,
        backfill=not selection.get("flight_ids"),
    )
    failures = run.failures
    _mark_failures(context, billing, failures, "fee_lines")
    _test_pause_in_step("fee_lines:after_lines")
    elapsed = time.perf_counter() - started

    per_flight = elapsed / max(1, len(run.written))
    log.processed = [
        FlightTiming(fid, n, round(per_flight, 4)) for fid, n in sorted(run.written.items())
    ]
    log.failed = [
        *selection.get("failed", []),  # flights that failed while fetching their tracks
        *(
            {"flight_id": fid, "category": cat, "message": msg}
            for fid, (cat, msg) in sorted(failures.items())
        ),
    ]
    totals = run.totals
    log.summary = {"fee_lines": run.lines, "totals": {k: str(v) for k, v in totals.items()}}
    log.finished_at = dt.datetime.now(dt.UTC)
    log_path = write_processing_log(log, workspace.paths().logs, keep=workspace.keep_logs)
    finish_batch(
        engine,
        batch_id,
        run_id=context.run.run_id,
        day=day,
        started_at=log.started_at,
        finished_at=log.finished_at,
        requested=requested,
        billed=len(log.processed),
        failed=len(log.failed),
        fee_lines=run.lines,
    )
    store.prune(settings.keep_intermediates())
    context.log.info(
        "[DATABASE] batch %s: %d flight(s) billed with %d fee line(s), %d failed; %s",
        batch_id,
        len(run.written),
        run.lines,
        len(failures),
        {k: str(v) for k, v in totals.items()},
    )
    preview = run.preview
    return dg.MaterializeResult(
        metadata={
            "batch_id": batch_id,
            "flights_billed": len(run.written),
            "flights_failed": len(failures),
            "flights_already_invoiced_skipped": len(run.skipped_invoiced),
            "fee_lines": run.lines,
            **{f"total_{ccy}": float(v) for ccy, v in sorted(totals.items())},
            "totals": dg.MetadataValue.json({k: str(v) for k, v in totals.items()}),
            "failed_flights": failures_table(failures),
            "open_conflicts": run.conflicts,
            "preview": md_table(preview) if len(preview) else "no fee lines",
            "processing_log": dg.MetadataValue.url(processing_log_url(log_path)),
            "maps": dg.MetadataValue.url(day_maps_url(day)),
        }
    )
