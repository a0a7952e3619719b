"""``process_flights``: tracks -> crossings -> fee lines for one UTC day (no maps: they are
made on demand by the document server, or by the optional ``render_flight_maps`` job)."""

import dagster as dg

from flight_fees.defs.partitions import daily_partitions

process_flights = dg.define_asset_job(
    name="process_flights",
    selection=dg.AssetSelection.assets("flight_tracks", "fir_crossings", "fee_lines"),
    partitions_def=daily_partitions,
    description="Bill the flights of one UTC day: the ids in run config (queue sensor, "
    "`flight-fees process`) or, without ids, every flight of the day (backfill).",
    tags={"flight_fees/pipeline": "process_flights"},
)
