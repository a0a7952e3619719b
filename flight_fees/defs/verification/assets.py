"""``bill_verification`` and ``repricing_scenario``: the bill check and the what-if repricing
of ``flight_fees.lib`` (``verify_bill``, ``reprice_period``), with their results in the UI.

Both only read the billing database; each writes one HTML report under ``<home>/reports``,
linked from the materialization through the document server (``flight-fees serve``).
"""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import dagster as dg

from flight_fees.defs.metadata import md_rows
from flight_fees.defs.resources import BillingDatabase, ReferenceData, Workspace


class BillVerificationConfig(dg.Config):
    bill_path: str = ""
    """The bill (CSV); empty: the newest ``*.csv`` in ``<home>/bills``."""
    bill_format: str = "generic"
    """``generic`` or ``crco`` (column names, see the README)."""
    customers: list[str] = []
    """Customer codes the bill is for; empty: the customers of the flights it names."""
    zones: list[str] = []
    """Zones the bill covers; empty: the zones it bills."""
    amount_tolerance: str = "0.01"
    distance_tolerance_km: str = "1"
    mtow_tolerance_kg: str = "0"
    unit_rate_tolerance: str = "0"


def bill_to_verify(config: BillVerificationConfig, home: Path) -> Path:
    """The configured bill, else the newest CSV dropped in ``<home>/bills``."""
    if config.bill_path.strip():
        return Path(config.bill_path.strip()).expanduser()
    folder = home / "bills"
    bills = sorted(folder.glob("*.csv"), key=lambda p: (p.stat().st_mtime, p.name))
    if not bills:
        raise dg.Failure(f"no bill to verify: set bill_path or drop a CSV into {folder}")
    return bills[-1]


def _money_rows(totals: dict) -> str:
    return md_rows(
        ["currency", "billed", "expected", "over-billed", "under-billed", "net"],
        [
            (c, t["billed"], t["expected"], t["over"], t["under"], t["net"])
            for c, t in totals.items()
        ],
    )


@dg.asset(
    name="bill_verification",
    group_name="analysis",
    deps=["fee_lines"],
    kinds={"python", "html"},
    description="An authority's route-charges bill checked against our tracks and fee lines: "
    "per line the verdict and cause (distance, MTOW, unit rate, FX, exemption, not tracked, "
    "not billed, duplicate), over- and under-billing per zone and currency.",
)
def bill_verification(
    context: dg.AssetExecutionContext,
    config: BillVerificationConfig,
    billing: BillingDatabase,
    reference: ReferenceData,
    workspace: Workspace,
) -> dg.MaterializeResult:
    from flight_fees.lib.billing.verification import BillError, Tolerances, read_bill, verify_bill
    from flight_fees.lib.charging.scenario import PricingReference
    from flight_fees.lib.documents.links import report_url
    from flight_fees.lib.documents.reports import verification_html, write_report

    home = workspace.paths().home
    path = bill_to_verify(config, home)
    try:
        bill = read_bill(path, format=config.bill_format)
        tolerances = Tolerances(
            amount=Decimal(config.amount_tolerance),
            distance_km=Decimal(config.distance_tolerance_km),
            mtow_kg=Decimal(config.mtow_tolerance_kg),
            unit_rate=Decimal(config.unit_rate_tolerance),
        )
    except (BillError, ArithmeticError, ValueError) as exc:
        raise dg.Failure(f"cannot verify {path}: {exc}") from None
    report = verify_bill(
        billing.engine(),
        bill,
        PricingReference(reference.tariffs(), reference.fx_rates()),
        tolerances=tolerances,
        customers=config.customers or None,
        zones=config.zones or None,
        source=str(path),
    )
    written = write_report(home, "verification", path.stem, verification_html(report))
    causes = report.by_cause()
    metadata: dict = {
        "bill": str(path),
        "bill_lines": report.bill_lines,
        "matched_lines": report.matched_lines,
        "findings": len(report.findings),
        **{f"findings_{cause}": n for cause, n in causes.items()},
        "totals": dg.MetadataValue.md(_money_rows(report.by_currency())),
        "per_zone": dg.MetadataValue.md(
            md_rows(
                ["zone", "currency", "over-billed", "under-billed", "net", "findings"],
                [tuple(z.values()) for z in report.by_zone()],
            )
        ),
        "findings_preview": dg.MetadataValue.md(
            md_rows(
                ["line", "flight", "zone", "cause", "billed", "expected", "difference", "ccy"],
                [
                    (
                        f.line,
                        f.flight_id,
                        f.zone,
                        f.cause,
                        f.billed_amount,
                        f.expected_amount,
                        f.difference,
                        f.currency,
                    )
                    for f in report.findings
                ],
            )
        ),  # fmt: skip
        "report": dg.MetadataValue.url(report_url(written.name)),
    }
    context.log.info("%s: %d line(s), %d finding(s)", path, report.bill_lines, len(report.findings))
    return dg.MaterializeResult(metadata=metadata)


class RepricingConfig(dg.Config):
    day_from: str
    """First UTC day of the period (YYYY-MM-DD)."""
    day_to: str
    """Last UTC day of the period (inclusive)."""
    tariffs_path: str = ""
    """Alternative tariff YAML (the imported monthly unit rates are laid over it)."""
    unit_rates_csv: str = ""
    """Alternative monthly unit rates (zone,month,rate,currency), laid over the tariffs."""
    fx_rates_path: str = ""
    """Alternative FX rates."""


@dg.asset(
    name="repricing_scenario",
    group_name="analysis",
    deps=["fee_lines", "tariffs", "fx_rates"],
    kinds={"python", "html"},
    description="What a past period would have billed under other tariffs, unit rates or FX "
    "rates: old and new amounts per zone, customer and flight. Writes no fee line and "
    "touches no invoice.",
)
def repricing_scenario(
    context: dg.AssetExecutionContext,
    config: RepricingConfig,
    billing: BillingDatabase,
    reference: ReferenceData,
    workspace: Workspace,
) -> dg.MaterializeResult:
    from flight_fees.lib.charging.repricing import ROUNDING_NOTE, reprice_period
    from flight_fees.lib.charging.scenario import PricingReference, scenario_pricing
    from flight_fees.lib.core.money import CategorizedError
    from flight_fees.lib.documents.links import report_url
    from flight_fees.lib.documents.reports import reprice_html, write_report

    try:
        day_from = dt.date.fromisoformat(config.day_from)
        day_to = dt.date.fromisoformat(config.day_to)
        scenario = scenario_pricing(
            tariffs_path=config.tariffs_path or None,
            unit_rates_csv=config.unit_rates_csv or None,
            fx_path=config.fx_rates_path or None,
            base=(reference.tariffs_path, reference.unit_rates_csv, reference.fx_rates_path),
            home=workspace.paths().home,
        )
    except (CategorizedError, OSError, ValueError) as exc:
        raise dg.Failure(f"scenario: {exc}") from None
    current = PricingReference(reference.tariffs(), reference.fx_rates())
    report = reprice_period(billing.engine(), day_from, day_to, scenario, current=current)
    name = f"{day_from}_{day_to}"
    written = write_report(workspace.paths().home, "repricing", name, reprice_html(report))

    def rows(frame, key):  # type: ignore[no-untyped-def]
        return [
            (*([r[key]] if key else []), r["billing_currency"], r["lines"], r["changed_lines"],
             r["old_amount"], r["new_amount"], r["difference"])
            for r in frame.to_dict("records")
        ]  # fmt: skip

    header = ["currency", "lines", "changed", "old", "new", "difference"]
    metadata: dict = {
        "period": f"{day_from} to {day_to}",
        "scenario": dg.MetadataValue.md(md_rows(["what", "file"], list(report.scenario))),
        "lines": len(report.lines),
        "changed_lines": len(report.changed),
        "failed_flights": len(report.failures),
        "totals": dg.MetadataValue.md(md_rows(header, rows(report.totals(), None))),
        "per_zone": dg.MetadataValue.md(
            md_rows(["zone", *header], rows(report.by_zone(), "zone_id"))
        ),
        "per_customer": dg.MetadataValue.md(
            md_rows(["customer", *header], rows(report.by_customer(), "customer"))
        ),
        "rounding": ROUNDING_NOTE,
        "report": dg.MetadataValue.url(report_url(written.name)),
    }
    context.log.info("%d line(s) repriced, %d changed", len(report.lines), len(report.changed))
    return dg.MaterializeResult(metadata=metadata)
