"""``verify_bill`` and ``reprice_period``: launch the read-only analyses from the UI."""

import dagster as dg

verify_bill_job = dg.define_asset_job(
    name="verify_bill",
    selection=dg.AssetSelection.assets("bill_verification"),
    executor_def=dg.in_process_executor,
    description="Verify an authority's bill (config bill_path, else the newest CSV in "
    "<home>/bills) against our tracks and fee lines; nothing is written but the report.",
    tags={"flight_fees/pipeline": "verify_bill"},
)

reprice_period_job = dg.define_asset_job(
    name="reprice_period",
    selection=dg.AssetSelection.assets("repricing_scenario"),
    executor_def=dg.in_process_executor,
    description="Reprice a past period's fee lines under a scenario (tariffs, unit rates or "
    "FX); fee lines and invoices are untouched.",
    tags={"flight_fees/pipeline": "reprice_period"},
)
