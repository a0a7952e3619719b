"""``flight_maps``: optional warming of the flight-map cache of a UTC day.

Maps are not part of billing: ``flight-fees serve`` renders a flight's map when someone opens
it (``/maps/flight/<id>``, tens of milliseconds) and caches it. Materializing this asset (job
``render_flight_maps``, low priority, never started by automation) renders the day's billed
flights ahead of time into the same cache; per-country maps stay on demand.
"""

from pathlib import Path

import dagster as dg

from flight_fees.defs.partitions import daily_partitions, partition_day
from flight_fees.defs.resources import (
    BillingDatabase,
    PipelineSettings,
    ReferenceData,
    TrackStore,
    Workspace,
)


@dg.asset(
    name="flight_maps",
    group_name="maps",
    partitions_def=daily_partitions,
    deps=["fee_lines"],
    kinds={"leaflet", "html"},
    description="Flight maps of the day's billed flights (track, FIR crossings coloured per "
    "FIR, entry/exit markers), pre-rendered into the document server's cache. Optional: "
    "maps are rendered on demand anyway.",
)
def flight_maps(
    context: dg.AssetExecutionContext,
    billing: BillingDatabase,
    reference: ReferenceData,
    track_store: TrackStore,
    workspace: Workspace,
    settings: PipelineSettings,
) -> dg.MaterializeResult:
    from flight_fees.lib.airspace.firs import default_fir_set
    from flight_fees.lib.documents.links import day_maps_url, flight_map_url
    from flight_fees.lib.documents.map_service import MapService
    from flight_fees.lib.documents.maps import map_assets_from_env

    day = partition_day(context)
    if not settings.render_maps:
        return dg.MaterializeResult(metadata={"maps": 0, "note": "render_maps is off"})
    service = MapService(
        billing.engine(),
        home=workspace.paths().home,
        storage=workspace.paths().storage,
        firs=reference.firs,
        fir_index=lambda _firs: reference.fir_index(),
        source=track_store.source,
        assets=map_assets_from_env("/static"),
        fir_file=Path(reference.firs_path or default_fir_set().firs_path),
    )
    result = service.prerender_day(day)
    for fid, message in sorted(result.failures.items())[:20]:
        context.log.warning("map of flight %s failed: %s", fid, message)
    metadata: dict = {
        "maps": len(result.flight_ids),
        "maps_rendered": result.maps,
        "maps_already_cached": result.already_cached,
        "map_failures": len(result.failures),
        "bytes": result.bytes,
        "ms_per_rendered_map": round(1000 * result.seconds / max(1, result.maps), 1),
        "index": dg.MetadataValue.url(day_maps_url(day)),
    }
    if result.flight_ids:
        metadata["example_map"] = dg.MetadataValue.url(flight_map_url(result.flight_ids[0]))
    return dg.MaterializeResult(metadata=metadata)
