"""``invoices``: consolidated invoices per customer and billing period."""

import datetime as dt

import dagster as dg

from flight_fees.defs.resources import BillingDatabase, ReferenceData, Workspace


class ConsolidationConfig(dg.Config):
    as_of: str | None = None
    """The day whose ending periods are invoiced (YYYY-MM-DD); default: yesterday (UTC)."""
    force: bool = False
    """Invoice every customer's period ending on/before ``as_of`` even if it is not an
    invoice day (catch-up after an outage, or the demo)."""


def consolidation_day(config: ConsolidationConfig) -> dt.date:
    """``as_of``, else the UTC day that just ended."""
    from flight_fees.lib.usecases.invoicing import default_consolidation_day

    return dt.date.fromisoformat(config.as_of) if config.as_of else default_consolidation_day()


@dg.asset(
    name="invoices",
    group_name="invoicing",
    deps=["fee_lines", "tariffs"],
    kinds={"sqlalchemy", "html"},
    description="Consolidated invoices per customer (weekly on the week-end day, monthly on the "
    "last day of the month), with HTML documents.",
)
def invoices(
    context: dg.AssetExecutionContext,
    config: ConsolidationConfig,
    billing: BillingDatabase,
    reference: ReferenceData,
    workspace: Workspace,
) -> dg.MaterializeResult:
    from flight_fees.lib.documents.links import invoice_url
    from flight_fees.lib.usecases.invoicing import issue_invoices

    day = consolidation_day(config)
    issued = issue_invoices(
        billing.engine(),
        day,
        reference.tariffs(),
        force=config.force,
        documents_dir=workspace.paths().invoices,
    )
    result, thresholds, out_dir = issued.result, issued.thresholds, workspace.paths().invoices
    totals = result.totals_by_currency()
    context.log.info(
        "[SCHEDULED] consolidation for %s: %d invoice(s) %s",
        day,
        len(result.invoice_numbers),
        {k: str(v) for k, v in totals.items()},
    )
    rows = "\n".join(
        f"| {inv.number} | {inv.customer_code} | {inv.period_start} .. {inv.period_end} | "
        f"{inv.line_count} | {inv.total_amount} {inv.currency} | {inv.due_date} | "
        f"{invoice_url(inv.number)} |"
        for inv in result.invoices
    )
    return dg.MaterializeResult(
        metadata={
            "as_of": day.isoformat(),
            "invoices_created": len(result.invoice_numbers),
            **{f"total_{ccy}": float(v) for ccy, v in totals.items()},
            "invoices": dg.MetadataValue.md(
                "| number | customer | period | lines | total | due | document |\n"
                "|---|---|---|---|---|---|---|\n" + rows
                if rows
                else "no invoice due on this day"
            ),
            "documents_dir": dg.MetadataValue.path(str(out_dir)),
            **{  # links open from the UI (document server, `flight-fees serve`)
                f"document {inv.number}": dg.MetadataValue.url(invoice_url(inv.number))
                for inv in result.invoices[:20]
            },
            "skipped": dg.MetadataValue.json(result.skipped_summary()),
            "zone_thresholds": dg.MetadataValue.json({k: str(v) for k, v in thresholds.items()}),
        }
    )
