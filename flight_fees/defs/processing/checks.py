"""Asset checks on the billing tables."""

import datetime as dt

import dagster as dg

from flight_fees.defs.metadata import md_rows
from flight_fees.defs.resources import BillingDatabase


@dg.asset_check(
    asset="fee_lines",
    description="No flight is blocked by an open attribute "
    "conflict (e.g. two MTOWs for one registration): such flights are not billed.",
)
def open_attribute_conflicts(billing: BillingDatabase) -> dg.AssetCheckResult:
    from flight_fees.lib.charging.attributes import open_conflicts

    frame = open_conflicts(billing.engine())
    rows = (
        frame[["flight_id", "field", "candidates"]].itertuples(index=False, name=None)
        if len(frame)
        else []
    )
    return dg.AssetCheckResult(
        passed=len(frame) == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "open_conflicts": len(frame),
            "conflicts": dg.MetadataValue.md(md_rows(["flight_id", "field", "candidates"], rows)),
        },
    )


@dg.asset_check(
    asset="fee_lines",
    blocking=True,
    description="Every fee line of the run's day (of the whole table outside a partitioned "
    "run) is reproducible: billing amount = local amount x FX rate rounded half-up to the "
    "billing currency's minor unit (rate 1 in its own currency), FX rate and tariff version "
    "recorded, amounts non-negative, no flight billed twice.",
)
def fee_lines_integrity(
    context: dg.AssetCheckExecutionContext, billing: BillingDatabase
) -> dg.AssetCheckResult:
    from flight_fees.lib.billing.integrity import check_fee_lines

    day = dt.date.fromisoformat(context.partition_key) if context.has_partition_key else None
    report = check_fee_lines(billing.engine(), flight_date=day)
    mismatches = [
        (m.flight_id, m.line_no, f"{m.local_amount} {m.local_currency}", m.fx_rate,
         f"{m.stored} {m.billing_currency}", f"{m.expected} {m.billing_currency}")
        for m in report.mismatches
    ]  # fmt: skip
    return dg.AssetCheckResult(
        passed=report.passed,
        metadata={
            "scope": day.isoformat() if day else "all fee lines",
            "lines": report.lines,
            "missing_tariff_or_fx": report.missing_tariff_or_fx,
            "negative_amounts": report.negative_amounts,
            "duplicate_lines": report.duplicate_lines,
            "wrong_billing_amounts": report.wrong_billing_amounts,
            "amount_mismatches": dg.MetadataValue.md(
                md_rows(
                    ["flight_id", "line_no", "local", "fx_rate", "stored", "expected"], mismatches
                )
            ),
        },
    )
