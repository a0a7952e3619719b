"""Invoicing jobs: consolidation (asset job) and the overdue sweep (op job)."""

import datetime as dt

import dagster as dg

from flight_fees.defs.resources import BillingDatabase

consolidate_invoices = dg.define_asset_job(
    name="consolidate_invoices",
    selection=["invoices"],
    description="Create the consolidated invoices of the periods ending on the given day.",
)


@dg.op(description="PENDING invoices past their due date become OVERDUE (idempotent).")
def mark_overdue(context: dg.OpExecutionContext, billing: BillingDatabase) -> None:
    from flight_fees.lib.billing.invoicing import mark_overdue as sweep

    today = dt.datetime.now(dt.UTC).date()
    changed = sweep(billing.engine(), today)
    context.log.info(
        "[SCHEDULED] %d invoice(s) marked OVERDUE: %s", len(changed), ", ".join(changed)
    )


@dg.job(name="mark_overdue_invoices", description="Mark PENDING invoices past due as OVERDUE.")
def mark_overdue_invoices() -> None:
    mark_overdue()
