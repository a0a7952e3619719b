"""Invoice status transitions, each one transaction guarded by the current status: pay,
void (with its credit note), mark overdue."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sqlalchemy import Engine, select, update

from flight_fees.lib.billing.invoicing.numbering import _next_number
from flight_fees.lib.billing.invoicing.queries import (
    CreditNoteDetail,
    InvoiceSummary,
    VoidResult,
    _credit_note,
    _detail,
    _get_summary,
)
from flight_fees.lib.billing.invoicing.states import (
    CREDIT_NOTE_KIND,
    OPEN_STATUSES,
    OVERDUE,
    PAID,
    PENDING,
    VOID,
    InvoiceNotFound,
    InvoiceStateError,
)
from flight_fees.lib.core.timeutil import as_utc
from flight_fees.lib.db.engine import rows_affected, transaction, utcnow
from flight_fees.lib.db.models import (
    CreditNote,
    FeeLine,
    Invoice,
)

# -- status transitions ----------------------------------------------------------------------


def pay(engine: Engine, number: str, paid_at: dt.datetime | None = None) -> InvoiceSummary:
    """Mark a PENDING or OVERDUE invoice PAID (at ``paid_at``, default now; a naive
    ``paid_at`` is taken as UTC).

    Raises :class:`InvoiceNotFound` or :class:`InvoiceStateError` (already paid, void).
    """
    when = as_utc(paid_at) or utcnow()
    with transaction(engine) as session:
        changed = rows_affected(
            session.execute(
                update(Invoice)
                .where(Invoice.number == number, Invoice.status.in_(OPEN_STATUSES))
                .values(status=PAID, paid_at=when)
                .execution_options(synchronize_session=False)
            )
        )
        summary = _get_summary(session, number)
        if not changed:
            raise InvoiceStateError(number, summary.status, "paid", OPEN_STATUSES)
        return summary


def void(
    engine: Engine, number: str, reason: str, *, voided_at: dt.datetime | None = None
) -> VoidResult:
    """Void a PENDING or OVERDUE invoice, in one transaction:

    lock the invoice row, check its status, release its fee lines (``invoice_id = NULL``, so
    the next consolidation of the period can re-invoice them), record a credit note
    ``CN-YYYY-NNNNNN`` (YYYY = year of ``voided_at``, UTC) for the invoice total, set status
    VOID. Raises :class:`InvoiceNotFound`, :class:`InvoiceStateError` (already VOID, PAID) or
    :class:`ValueError` (blank reason).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("a reason is required to void an invoice")
    when = as_utc(voided_at) or utcnow()
    with transaction(engine) as session:
        invoice = session.execute(
            select(Invoice).where(Invoice.number == number).with_for_update(key_share=True)
        ).scalar_one_or_none()
        if invoice is None:
            raise InvoiceNotFound(number)
        if invoice.status not in OPEN_STATUSES:
            raise InvoiceStateError(number, invoice.status, "voided", OPEN_STATUSES)
        before = _detail(session, number)
        released = rows_affected(
            session.execute(
                update(FeeLine)
                .where(FeeLine.invoice_id == invoice.id)
                .values(invoice_id=None)
                .execution_options(synchronize_session=False)
            )
        )
        cn_number = _next_number(session, CREDIT_NOTE_KIND, when.year)
        session.add(
            CreditNote(
                number=cn_number,
                invoice_id=invoice.id,
                amount=invoice.total_amount,
                currency=invoice.currency,
                reason=reason,
                created_at=when,
            )
        )
        invoice.status = VOID
        invoice.voided_at = when
        invoice.void_reason = reason
        session.flush()
        after = _get_summary(session, number)
        credit_note = _credit_note(session, invoice.id)
    return VoidResult(
        number=number,
        credit_note_number=cn_number,
        amount=invoice.total_amount,
        currency=invoice.currency,
        released_lines=released,
        detail=replace(before, invoice=after, credit_note=credit_note),
    )


def mark_overdue(engine: Engine, today: dt.date) -> list[str]:
    """Set PENDING invoices whose due date is before ``today`` to OVERDUE (an invoice due
    today is not overdue yet). Returns the numbers changed, sorted; a second run for the same
    day returns ``[]``."""
    with transaction(engine) as session:
        numbers = session.execute(
            update(Invoice)
            .where(Invoice.status == PENDING, Invoice.due_date < today)
            .values(status=OVERDUE)
            .returning(Invoice.number)
            .execution_options(synchronize_session=False)
        ).scalars()
        return sorted(numbers)


def credit_note_of_void(result: VoidResult) -> CreditNoteDetail:
    """The credit note recorded by :func:`void`, with the lines the invoice carried."""
    assert result.detail.credit_note is not None
    return CreditNoteDetail(result.detail.credit_note, result.detail)
