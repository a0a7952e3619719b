"""``process_flights``: tracks -> crossings -> fee lines for one UTC day (no maps: they are
made on demand by the document server, or by the optional ``render_flight_maps`` job)."""

import dagster as dg
from dagster_celery import celery_executor

from flight_fees.defs.partitions import daily_partitions
from flight_fees.defs.processing.scaleout import CELERY_JOB, celery_config

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

#: the scale-out variant: the same three assets, each step a Celery task run by any worker
#: (`make workers`; README "Scale-out", docs/DEPLOYMENT.md). The queue sensor requests it when
#: FLIGHT_FEES_EXECUTOR=celery; in-process above stays the single-machine default
process_flights_celery = dg.define_asset_job(
    name=CELERY_JOB,
    selection=dg.AssetSelection.assets("flight_tracks", "fir_crossings", "fee_lines"),
    partitions_def=daily_partitions,
    description="process_flights with its steps on Celery workers (scale-out mode).",
    tags={"flight_fees/pipeline": CELERY_JOB},
    executor_def=celery_executor.configured(celery_config(), name="flight_fees_celery"),
)
