"""``render_flight_maps``: the optional, low-priority map pre-rendering of one UTC day.

Never part of ``process_flights`` and started by no sensor or schedule: billing never waits
for it. Runs in one process (maps are light) at a lower priority than any billing run.
"""

import dagster as dg

from flight_fees.defs.partitions import daily_partitions

render_flight_maps = dg.define_asset_job(
    name="render_flight_maps",
    selection=dg.AssetSelection.assets("flight_maps"),
    partitions_def=daily_partitions,
    executor_def=dg.in_process_executor,
    description="Pre-render the flight maps of one UTC day into the document server's cache "
    "(optional: `flight-fees serve` renders a map when it is opened).",
    tags={"dagster/priority": "-10", "flight_fees/pipeline": "render_flight_maps"},
)
