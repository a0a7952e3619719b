"""Read models of invoices and credit notes: lists, totals, details, the invoice of each flight."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Final

import pandas as pd
from sqlalchemy import Engine, Row, Select, select
from sqlalchemy.orm import Session

from flight_fees.lib.billing.invoicing.states import (
    _ID_CHUNK,
    VOID,
    InvoiceNotFound,
    InvoicingError,
    Period,
    _sum_by_key,
)
from flight_fees.lib.core.timeutil import as_utc
from flight_fees.lib.db.models import (
    INVOICE_STATUSES,
    CreditNote,
    Customer,
    FeeLine,
    Flight,
    Invoice,
)

# -- reading ---------------------------------------------------------------------------------


def _check_status(status: str | None) -> str | None:
    if status is None:
        return None
    norm = status.strip().upper()
    if norm not in INVOICE_STATUSES:
        raise ValueError(
            f"unknown invoice status {status!r}; expected one of {', '.join(INVOICE_STATUSES)}"
        )
    return norm


#: columns of :func:`list_invoices`
INVOICE_COLUMNS: Final[tuple[str, ...]] = (
    "number",
    "customer_code",
    "customer_name",
    "period_start",
    "period_end",
    "issue_date",
    "due_date",
    "currency",
    "total_amount",
    "line_count",
    "status",
    "paid_at",
    "voided_at",
    "document_path",
)


def list_invoices(
    engine: Engine, *, status: str | None = None, customer_code: str | None = None
) -> pd.DataFrame:
    """Invoices (optionally of one status / customer code) ordered by issue date and number.

    Columns: :data:`INVOICE_COLUMNS`; ``total_amount`` holds :class:`Decimal` objects, the
    date columns :class:`datetime.date` objects, ``paid_at``/``voided_at`` aware UTC
    timestamps (or None).
    """
    stmt = _summary_query().order_by(Invoice.issue_date, Invoice.number)
    norm = _check_status(status)
    if norm is not None:
        stmt = stmt.where(Invoice.status == norm)
    if customer_code is not None:
        stmt = stmt.where(Customer.code == customer_code)
    with Session(engine) as session:
        summaries = [_summary(r) for r in session.execute(stmt)]
    records = [{c: getattr(s, c) for c in INVOICE_COLUMNS} for s in summaries]
    frame = pd.DataFrame.from_records(records, columns=list(INVOICE_COLUMNS))
    return frame.astype({"total_amount": object, "line_count": "int64"})


def totals_by_currency(
    engine: Engine,
    *,
    statuses: Iterable[str] | None = None,
    issued_from: dt.date | None = None,
    issued_to: dt.date | None = None,
) -> dict[str, Decimal]:
    """Sum of invoice totals per currency (default: every status but VOID), optionally for
    issue dates within ``issued_from..issued_to`` (inclusive). Summed exactly in Python."""
    wanted = (
        [s for s in (_check_status(s) for s in statuses) if s]
        if statuses is not None
        else [s for s in INVOICE_STATUSES if s != VOID]
    )
    stmt = select(Invoice.currency, Invoice.total_amount).where(Invoice.status.in_(wanted))
    if issued_from is not None:
        stmt = stmt.where(Invoice.issue_date >= issued_from)
    if issued_to is not None:
        stmt = stmt.where(Invoice.issue_date <= issued_to)
    with Session(engine) as session:
        return _sum_by_key(session.execute(stmt).tuples())


@dataclass(frozen=True)
class CustomerInfo:
    id: int
    code: str
    name: str
    address: str | None
    email: str | None
    billing_currency: str
    payment_terms_days: int


@dataclass(frozen=True)
class InvoiceLine:
    """A fee line of an invoice with its flight's attributes (None when no ``flights`` row)."""

    line_id: int
    flight_id: int
    line_no: int
    flight_date: dt.date
    zone_id: str
    fir_ids: str
    entry_time: dt.datetime
    exit_time: dt.datetime
    distance_km: Decimal
    mtow_kg: Decimal | None
    category: str | None
    unit_rate: Decimal | None
    service_units: Decimal | None
    tariff_id: str
    tariff_version: str
    local_amount: Decimal
    local_currency: str
    fx_rate: Decimal
    fx_date: dt.date | None
    billing_amount: Decimal
    billing_currency: str
    exemption: str | None
    callsign: str | None
    registration: str | None
    aircraft_type: str | None
    origin: str | None
    destination: str | None
    map_path: str | None
    #: JSON of the tariff computation (``fee_lines.details``: the quote, its inputs, the FX)
    details: str | None = None


@dataclass(frozen=True)
class FlightGroup:
    """The lines of one flight on an invoice, with their subtotal (billing currency)."""

    flight_id: int
    flight_date: dt.date
    callsign: str | None
    registration: str | None
    aircraft_type: str | None
    origin: str | None
    destination: str | None
    map_path: str | None
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal


@dataclass(frozen=True)
class CreditNoteInfo:
    number: str
    amount: Decimal
    currency: str
    reason: str | None
    created_at: dt.datetime | None


@dataclass(frozen=True)
class InvoiceRef:
    """A voided invoice that a later invoice of the same customer and period replaces."""

    number: str
    issue_date: dt.date
    total_amount: Decimal
    currency: str
    voided_at: dt.datetime | None
    credit_note_number: str | None


@dataclass(frozen=True)
class InvoiceDetail:
    """An invoice, its customer, its lines (joined with ``flights``) and its credit note.

    ``replaces``: the VOID invoices of the same customer and period created before this one,
    latest first (this invoice re-issues their charges); ``replaced_by``: the number of the
    invoice of the same period created right after this one, when this one is VOID.
    """

    invoice: InvoiceSummary
    customer: CustomerInfo
    lines: tuple[InvoiceLine, ...]
    credit_note: CreditNoteInfo | None = None
    replaces: tuple[InvoiceRef, ...] = ()
    replaced_by: str | None = None

    @property
    def flights(self) -> tuple[FlightGroup, ...]:
        """Lines grouped per flight, in line order, with subtotals."""
        groups: dict[int, list[InvoiceLine]] = {}
        for line in self.lines:
            groups.setdefault(line.flight_id, []).append(line)
        out = []
        for flight_id, lines in groups.items():
            first = lines[0]
            out.append(
                FlightGroup(
                    flight_id=flight_id,
                    flight_date=first.flight_date,
                    callsign=first.callsign,
                    registration=first.registration,
                    aircraft_type=first.aircraft_type,
                    origin=first.origin,
                    destination=first.destination,
                    map_path=first.map_path,
                    lines=tuple(lines),
                    subtotal=sum((ln.billing_amount for ln in lines), Decimal(0)),
                )
            )
        return tuple(out)

    def zone_totals(self) -> dict[str, Decimal]:
        """Billing amount per charging zone, sorted by zone."""
        return _sum_by_key((line.zone_id, line.billing_amount) for line in self.lines)

    @property
    def lines_total(self) -> Decimal:
        """Sum of the lines shown (equals the invoice total while the lines are attached)."""
        return sum((ln.billing_amount for ln in self.lines), Decimal(0))


_LINE_COLUMNS = (
    FeeLine.id.label("line_id"),
    FeeLine.flight_id,
    FeeLine.line_no,
    FeeLine.flight_date,
    FeeLine.zone_id,
    FeeLine.fir_ids,
    FeeLine.entry_time,
    FeeLine.exit_time,
    FeeLine.distance_km,
    FeeLine.mtow_kg,
    FeeLine.category,
    FeeLine.unit_rate,
    FeeLine.service_units,
    FeeLine.tariff_id,
    FeeLine.tariff_version,
    FeeLine.local_amount,
    FeeLine.local_currency,
    FeeLine.fx_rate,
    FeeLine.fx_date,
    FeeLine.billing_amount,
    FeeLine.billing_currency,
    FeeLine.exemption,
    Flight.callsign,
    Flight.registration,
    Flight.aircraft_type,
    Flight.origin,
    Flight.destination,
    Flight.map_path,
    FeeLine.details,
)


def _credit_note(session: Session, invoice_id: int) -> CreditNoteInfo | None:
    row = session.execute(
        select(
            CreditNote.number,
            CreditNote.amount,
            CreditNote.currency,
            CreditNote.reason,
            CreditNote.created_at,
        ).where(CreditNote.invoice_id == invoice_id)
    ).one_or_none()
    if row is None:
        return None
    return CreditNoteInfo(row.number, row.amount, row.currency, row.reason, as_utc(row.created_at))


def _detail(session: Session, number: str) -> InvoiceDetail:
    summary = _get_summary(session, number)
    customer = session.execute(
        select(Customer).where(Customer.id == summary.customer_id)
    ).scalar_one()
    rows = session.execute(
        select(*_LINE_COLUMNS)
        .outerjoin(Flight, Flight.flight_id == FeeLine.flight_id)
        .where(FeeLine.invoice_id == summary.id)
        .order_by(FeeLine.flight_date, FeeLine.flight_id, FeeLine.line_no)
    ).all()
    lines = []
    for row in rows:
        values = dict(row._mapping)
        values["entry_time"] = as_utc(values["entry_time"])
        values["exit_time"] = as_utc(values["exit_time"])
        lines.append(InvoiceLine(**values))
    return InvoiceDetail(
        invoice=summary,
        customer=CustomerInfo(
            id=customer.id,
            code=customer.code,
            name=customer.name,
            address=customer.address,
            email=customer.email,
            billing_currency=customer.billing_currency,
            payment_terms_days=customer.payment_terms_days,
        ),
        lines=tuple(lines),
        credit_note=_credit_note(session, summary.id),
        replaces=tuple(
            _voided_invoices(
                session,
                summary.customer_id,
                (summary.period_start, summary.period_end),
                before_id=summary.id,
            )
        ),
        replaced_by=_replaced_by(session, summary) if summary.status == VOID else None,
    )


def _replaced_by(session: Session, summary: InvoiceSummary) -> str | None:
    return session.execute(
        select(Invoice.number)
        .where(
            Invoice.customer_id == summary.customer_id,
            Invoice.period_start == summary.period_start,
            Invoice.period_end == summary.period_end,
            Invoice.id > summary.id,
        )
        .order_by(Invoice.id)
        .limit(1)
    ).scalar_one_or_none()


def invoice_detail(engine: Engine, number: str) -> InvoiceDetail:
    """The invoice ``number`` with customer, lines and credit note (:class:`InvoiceNotFound`
    if unknown). A VOID invoice has no lines any more (released); see :class:`VoidResult`."""
    with Session(engine) as session:
        return _detail(session, number)


class CreditNoteNotFound(InvoicingError, LookupError):
    """No credit note has this number."""

    category: ClassVar[str] = "credit_note_not_found"

    def __init__(self, number: str) -> None:
        super().__init__(f"no credit note numbered {number!r}")
        self.number = number


@dataclass(frozen=True)
class CreditNoteDetail:
    """A credit note and the (VOID) invoice it cancels.

    ``invoice.lines`` is empty when read back after the void (the lines were released); a
    :class:`VoidResult` gives them (see :func:`credit_note_of_void`).
    """

    credit_note: CreditNoteInfo
    invoice: InvoiceDetail


def credit_note_detail(engine: Engine, number: str) -> CreditNoteDetail:
    """The credit note ``number`` and its invoice (:class:`CreditNoteNotFound` if unknown)."""
    with Session(engine) as session:
        invoice_number = session.execute(
            select(Invoice.number)
            .join(CreditNote, CreditNote.invoice_id == Invoice.id)
            .where(CreditNote.number == number)
        ).scalar_one_or_none()
        if invoice_number is None:
            raise CreditNoteNotFound(number)
        detail = _detail(session, invoice_number)
    assert detail.credit_note is not None
    return CreditNoteDetail(detail.credit_note, detail)


@dataclass(frozen=True)
class FlightInvoice:
    """The live invoice carrying (some of) a flight's fee lines."""

    flight_id: int
    number: str
    status: str
    customer_code: str
    period_start: dt.date
    period_end: dt.date


def invoices_of_flights(engine: Engine, flight_ids: Sequence[int]) -> dict[int, FlightInvoice]:
    """The invoice carrying each of ``flight_ids`` that is on one (flights not invoiced are
    left out). A flight on an invoice is refused by re-processing until that invoice is
    voided."""
    out: dict[int, FlightInvoice] = {}
    ids = [int(f) for f in flight_ids]
    with Session(engine) as session:
        for start in range(0, len(ids), _ID_CHUNK):
            rows = session.execute(
                select(
                    FeeLine.flight_id,
                    Invoice.number,
                    Invoice.status,
                    Customer.code,
                    Invoice.period_start,
                    Invoice.period_end,
                )
                .join(Invoice, Invoice.id == FeeLine.invoice_id)
                .join(Customer, Customer.id == Invoice.customer_id)
                .where(FeeLine.flight_id.in_(ids[start : start + _ID_CHUNK]))
                .distinct()
            )
            for row in rows:
                out.setdefault(row.flight_id, FlightInvoice(*row))
    return out


@dataclass(frozen=True)
class InvoiceSummary:
    """One invoice row with its customer's code and name."""

    id: int
    number: str
    customer_id: int
    customer_code: str
    customer_name: str
    period_start: dt.date
    period_end: dt.date
    issue_date: dt.date
    due_date: dt.date
    currency: str
    total_amount: Decimal
    line_count: int
    status: str
    paid_at: dt.datetime | None
    voided_at: dt.datetime | None
    void_reason: str | None
    document_path: str | None


def _summary_query() -> Select[Any]:
    return select(
        Invoice.id,
        Invoice.number,
        Invoice.customer_id,
        Customer.code.label("customer_code"),
        Customer.name.label("customer_name"),
        Invoice.period_start,
        Invoice.period_end,
        Invoice.issue_date,
        Invoice.due_date,
        Invoice.currency,
        Invoice.total_amount,
        Invoice.line_count,
        Invoice.status,
        Invoice.paid_at,
        Invoice.voided_at,
        Invoice.void_reason,
        Invoice.document_path,
    ).join(Customer, Customer.id == Invoice.customer_id)


def _summary(row: Row[Any]) -> InvoiceSummary:
    values = dict(row._mapping)
    values["paid_at"] = as_utc(values["paid_at"])
    values["voided_at"] = as_utc(values["voided_at"])
    return InvoiceSummary(**values)


def _get_summary(session: Session, number: str) -> InvoiceSummary:
    row = session.execute(_summary_query().where(Invoice.number == number)).one_or_none()
    if row is None:
        raise InvoiceNotFound(number)
    return _summary(row)


@dataclass(frozen=True)
class VoidResult:
    """The outcome of :func:`void`.

    ``detail`` is the voided invoice as it was, **with** the fee lines it carried (they are
    released by the void, so :func:`invoice_detail` cannot show them afterwards): render it to
    keep a watermarked copy of the cancelled document.
    """

    number: str
    credit_note_number: str
    amount: Decimal
    currency: str
    released_lines: int
    detail: InvoiceDetail


def _voided_invoices(
    session: Session, customer_id: int, period: Period, before_id: int | None = None
) -> list[InvoiceRef]:
    """The VOID invoices of (customer, period), latest first (only those created before the
    invoice ``before_id`` when given), each with its credit note."""
    stmt = (
        select(
            Invoice.number,
            Invoice.issue_date,
            Invoice.total_amount,
            Invoice.currency,
            Invoice.voided_at,
            CreditNote.number.label("credit_note_number"),
        )
        .outerjoin(CreditNote, CreditNote.invoice_id == Invoice.id)
        .where(
            Invoice.customer_id == customer_id,
            Invoice.period_start == period[0],
            Invoice.period_end == period[1],
            Invoice.status == VOID,
        )
        .order_by(Invoice.id.desc())
    )
    if before_id is not None:
        stmt = stmt.where(Invoice.id < before_id)
    return [
        InvoiceRef(
            number=row.number,
            issue_date=row.issue_date,
            total_amount=row.total_amount,
            currency=row.currency,
            voided_at=as_utc(row.voided_at),
            credit_note_number=row.credit_note_number,
        )
        for row in session.execute(stmt)
    ]
