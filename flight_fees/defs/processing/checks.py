"""Asset checks on the billing tables."""

import dagster as dg
from sqlalchemy import func, select

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
    description="Every fee line is reproducible: "
    "billing amount = local amount / rate(local) x rate(billing), FX rate and tariff "
    "version recorded, amounts non-negative, no flight billed twice.",
)
def fee_lines_integrity(billing: BillingDatabase) -> dg.AssetCheckResult:
    from flight_fees.lib.db.models import FeeLine

    engine = billing.engine()
    with engine.connect() as conn:
        missing = conn.execute(
            select(func.count())
            .select_from(FeeLine)
            .where(
                (FeeLine.tariff_version == "") | FeeLine.fx_rate.is_(None) | (FeeLine.fx_rate <= 0)
            )
        ).scalar_one()
        negative = conn.execute(
            select(func.count())
            .select_from(FeeLine)
            .where((FeeLine.billing_amount < 0) | (FeeLine.local_amount < 0))
        ).scalar_one()
        duplicates = conn.execute(
            select(func.count()).select_from(
                select(FeeLine.flight_id, FeeLine.line_no)
                .group_by(FeeLine.flight_id, FeeLine.line_no)
                .having(func.count() > 1)
                .subquery()
            )
        ).scalar_one()
        total = conn.execute(select(func.count()).select_from(FeeLine)).scalar_one()
    passed = missing == 0 and negative == 0 and duplicates == 0
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "lines": total,
            "missing_tariff_or_fx": missing,
            "negative_amounts": negative,
            "duplicate_lines": duplicates,
        },
    )
