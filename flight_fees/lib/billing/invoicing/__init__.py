"""Consolidated invoices: billing periods, consolidation, numbering, status transitions.

Billing periods
    A *weekly* customer is invoiced on its ``week_end_weekday`` (0 = Monday .. 6 = Sunday) for
    the 7 days ending that day; a *monthly* customer on the last day of each calendar month for
    that month. :func:`period_for` gives the last period that ended on or before a day.

Consolidation (:func:`consolidate`)
    For every customer due on ``day`` (every customer with ``force=True``) one transaction:

    1. locks the customer row (``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL, which still
       lets fee lines referencing the customer be inserted; SQLite serialises all writers with
       ``BEGIN IMMEDIATE``), so concurrent runs for the same customer queue up and the second
       one sees the first one's invoice;
    2. reads (and on PostgreSQL locks) the customer's un-invoiced fee lines dated up to the end
       of the period, so a concurrent re-processing of a flight cannot delete a line being
       invoiced;
    3. classifies them (see below), and when lines are left to invoice,
    4. allocates the next ``INV-YYYY-NNNNNN`` number (YYYY = issue year) from
       ``document_counters`` and inserts the invoice and stamps the lines' ``invoice_id`` in the
       same transaction: a rollback returns the number, numbering stays gapless.

    An invoice created for a period whose earlier invoice was voided is a *replacement*: it
    is issued on the day it is really created (the later of the planned issue date, ``today``
    and the day of the last void; never back-dated to the period end, so its due date gives
    the customer its full payment terms) and :attr:`InvoiceDetail.replaces` names the voided
    invoice(s) and their credit notes (derived from the rows: the VOID invoices of the same
    customer and period created before it; no extra column).

    The partial unique index on live invoices per (customer, period) is the last line of
    defence: should it fire, the transaction (and its number) is rolled back and the period is
    reported as skipped.

    Classification of the un-invoiced lines of a customer:

    - billing currency differs from the customer's -> ``currency_mismatch_lines`` (never mixed);
    - flight date covered by a live (non-VOID) invoice of the customer -> ``late_lines`` with
      that invoice's number. **Late lines are never added to an issued invoice and no
      supplementary invoice is created** (the unique index allows one live invoice per
      customer and period); they wait for a decision: void and re-issue, or a forced
      consolidation once the policy exists;
    - dated before the period and not covered by a live invoice (a missed run, a voided
      invoice) -> ``late_lines`` with ``invoice_number=None``; ``consolidate(period_end,
      force=True, customer_ids=[...])`` invoices them;
    - a zone with a minimum threshold (``thresholds``) whose lines in that period sum below it
      -> ``held_lines`` (left un-invoiced; they are reconsidered on every later run);
    - everything else dated within the period -> the new invoice.

Status transitions (each one transaction, guarded by the current status)
    PENDING/OVERDUE -> PAID (:func:`pay`), PENDING/OVERDUE -> VOID (:func:`void`, releases the
    fee lines and records a ``CN-YYYY-NNNNNN`` credit note), PENDING -> OVERDUE
    (:func:`mark_overdue`). Anything else raises :class:`InvoiceStateError`.
"""

from __future__ import annotations

from flight_fees.lib.billing.invoicing.consolidation import (
    ConsolidationResult,
    CreatedInvoice,
    FlaggedLine,
    LineFlag,
    SkippedPeriod,
    consolidate,
    replacement_issue_date,
)
from flight_fees.lib.billing.invoicing.lifecycle import (
    credit_note_of_void,
    mark_overdue,
    pay,
    void,
)
from flight_fees.lib.billing.invoicing.numbering import (
    format_number,
)
from flight_fees.lib.billing.invoicing.periods import (
    BillingSchedule,
    is_invoice_day,
    last_day_of_month,
    period_containing,
    period_for,
)
from flight_fees.lib.billing.invoicing.queries import (
    INVOICE_COLUMNS,
    CreditNoteDetail,
    CreditNoteInfo,
    CreditNoteNotFound,
    CustomerInfo,
    FlightGroup,
    FlightInvoice,
    InvoiceDetail,
    InvoiceLine,
    InvoiceRef,
    InvoiceSummary,
    VoidResult,
    credit_note_detail,
    invoice_detail,
    invoices_of_flights,
    list_invoices,
    totals_by_currency,
)
from flight_fees.lib.billing.invoicing.states import (
    CREDIT_NOTE_KIND,
    INVOICE_KIND,
    OPEN_STATUSES,
    OVERDUE,
    PAID,
    PENDING,
    VOID,
    InvoiceNotFound,
    InvoiceStateError,
    InvoicingError,
    Period,
)

__all__ = [
    "BillingSchedule",
    "CREDIT_NOTE_KIND",
    "ConsolidationResult",
    "CreatedInvoice",
    "CreditNoteDetail",
    "CreditNoteInfo",
    "CreditNoteNotFound",
    "CustomerInfo",
    "FlaggedLine",
    "FlightGroup",
    "FlightInvoice",
    "INVOICE_COLUMNS",
    "INVOICE_KIND",
    "InvoiceDetail",
    "InvoiceLine",
    "InvoiceNotFound",
    "InvoiceRef",
    "InvoiceStateError",
    "InvoiceSummary",
    "InvoicingError",
    "LineFlag",
    "OPEN_STATUSES",
    "OVERDUE",
    "PAID",
    "PENDING",
    "Period",
    "SkippedPeriod",
    "VOID",
    "VoidResult",
    "consolidate",
    "credit_note_detail",
    "credit_note_of_void",
    "format_number",
    "invoice_detail",
    "invoices_of_flights",
    "is_invoice_day",
    "last_day_of_month",
    "list_invoices",
    "mark_overdue",
    "pay",
    "period_containing",
    "period_for",
    "replacement_issue_date",
    "totals_by_currency",
    "void",
]
