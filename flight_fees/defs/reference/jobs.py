"""``refresh_reference_data``: validate and record the reference files in one run."""

import dagster as dg

refresh_reference_data = dg.define_asset_job(
    name="refresh_reference_data",
    selection=dg.AssetSelection.groups("reference"),
    description="Load and validate FIRs, charging zones, tariffs, FX rates and the aircraft "
    "registry (run after changing any reference file).",
)
