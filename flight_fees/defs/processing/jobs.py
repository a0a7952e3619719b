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
    # one process per run: the steps share the loaded code, reference data and FIR index
    # instead of spawning a process each (the multiprocess executor cost ~22 s CPU of code
    # loading per run for 6-10 s of work); re-execution from failure works the same way
    executor_def=dg.in_process_executor,
)
