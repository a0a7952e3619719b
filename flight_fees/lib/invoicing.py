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

import calendar
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import ClassVar, Final, Protocol

import pandas as pd
from sqlalchemy import Engine, Select, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flight_fees.lib.db.engine import as_utc, transaction, utcnow
from flight_fees.lib.db.models import (
    INVOICE_STATUSES,
    CreditNote,
    Customer,
    DocumentCounter,
    FeeLine,
    Flight,
    Invoice,
)
from flight_fees.lib.money import CategorizedError, format_money, round_money, to_decimal

__all__ = [
    "ConsolidationResult",
    "CreatedInvoice",
    "CreditNoteDetail",
    "CreditNoteInfo",
    "CreditNoteNotFound",
    "CustomerInfo",
    "FlaggedLine",
    "FlightGroup",
    "FlightInvoice",
    "InvoiceDetail",
    "InvoiceLine",
    "InvoiceNotFound",
    "InvoiceRef",
    "InvoiceStateError",
    "InvoiceSummary",
    "InvoicingError",
    "LineFlag",
    "SkippedPeriod",
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

PENDING: Final = "PENDING"
PAID: Final = "PAID"
OVERDUE: Final = "OVERDUE"
VOID: Final = "VOID"
#: statuses from which an invoice can be paid or voided
OPEN_STATUSES: Final[tuple[str, ...]] = (PENDING, OVERDUE)

INVOICE_KIND: Final = "INV"
CREDIT_NOTE_KIND: Final = "CN"

#: ids per ``UPDATE ... WHERE id IN (...)`` (below SQLite's bound-parameter limit)
_ID_CHUNK: Final = 5_000

Period = tuple[dt.date, dt.date]


# -- errors ----------------------------------------------------------------------------------


class InvoicingError(CategorizedError):
    """Base of the invoicing errors."""

    category: ClassVar[str] = "invoicing_error"


class InvoiceNotFound(InvoicingError, LookupError):
    """No invoice has this number."""

    category: ClassVar[str] = "invoice_not_found"

    def __init__(self, number: str) -> None:
        super().__init__(f"no invoice numbered {number!r}")
        self.number = number


class InvoiceStateError(InvoicingError, ValueError):
    """A status transition that the invoice's current status does not allow."""

    category: ClassVar[str] = "invoice_state"

    def __init__(self, number: str, status: str, action: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"invoice {number} is {status}; only {' or '.join(allowed)} invoices can be {action}"
        )
        self.number = number
        self.status = status
        self.action = action


# -- periods ---------------------------------------------------------------------------------


class BillingSchedule(Protocol):
    """What the period logic needs of a customer (a :class:`Customer` row satisfies it)."""

    @property
    def billing_frequency(self) -> str: ...

    @property
    def week_end_weekday(self) -> int: ...


def last_day_of_month(d: dt.date) -> dt.date:
    """The last day of ``d``'s calendar month (28/29 February, 30, 31)."""
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def _weekday(customer: BillingSchedule) -> int:
    weekday = int(customer.week_end_weekday)
    if not 0 <= weekday <= 6:
        raise ValueError(f"week_end_weekday must be 0 (Monday) .. 6 (Sunday), got {weekday}")
    return weekday


def _frequency(customer: BillingSchedule) -> str:
    frequency = customer.billing_frequency
    if frequency not in ("weekly", "monthly"):
        raise ValueError(f"unknown billing frequency {frequency!r} (weekly or monthly)")
    return frequency


def is_invoice_day(customer: BillingSchedule, day: dt.date) -> bool:
    """Whether a period of ``customer`` ends on ``day`` (its week-end day / month end)."""
    if _frequency(customer) == "weekly":
        return day.weekday() == _weekday(customer)
    return day == last_day_of_month(day)


def period_for(customer: BillingSchedule, day: dt.date) -> Period:
    """``(start, end)`` of the last billing period of ``customer`` that ends on or before
    ``day`` (both inclusive); on an invoice day, the period ending that day."""
    if _frequency(customer) == "weekly":
        end = day - dt.timedelta(days=(day.weekday() - _weekday(customer)) % 7)
        return end - dt.timedelta(days=6), end
    if day == last_day_of_month(day):
        return day.replace(day=1), day
    end = day.replace(day=1) - dt.timedelta(days=1)
    return end.replace(day=1), end


def period_containing(customer: BillingSchedule, day: dt.date) -> Period:
    """``(start, end)`` of the billing period of ``customer`` that contains ``day``."""
    if _frequency(customer) == "weekly":
        end = day + dt.timedelta(days=(_weekday(customer) - day.weekday()) % 7)
        return end - dt.timedelta(days=6), end
    return day.replace(day=1), last_day_of_month(day)


# -- numbering -------------------------------------------------------------------------------


def format_number(kind: str, year: int, sequence: int) -> str:
    """``INV-2026-000042``: kind, issue year, 6-digit gapless sequence within the year."""
    return f"{kind}-{year:04d}-{sequence:06d}"


def _next_number(session: Session, kind: str, year: int) -> str:
    """Allocate the next number of ``kind`` in ``year`` inside the caller's transaction.

    The counter row is created if missing, then incremented with ``UPDATE ... RETURNING``:
    the UPDATE takes the same row lock as ``SELECT ... FOR UPDATE`` (held to the end of the
    transaction on PostgreSQL; SQLite writers are serialised by ``BEGIN IMMEDIATE``), so
    numbers are unique, and a rollback of the transaction gives the number back (gapless).
    """
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert_fn(DocumentCounter)
        .values(kind=kind, year=year, last_number=0)
        .on_conflict_do_nothing(index_elements=["kind", "year"])
    )
    sequence = session.execute(
        update(DocumentCounter)
        .where(DocumentCounter.kind == kind, DocumentCounter.year == year)
        .values(last_number=DocumentCounter.last_number + 1)
        .returning(DocumentCounter.last_number)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return format_number(kind, year, sequence)


# -- time helpers ----------------------------------------------------------------------------


def _as_utc(value: dt.datetime | str | None) -> dt.datetime | None:
    """:func:`~flight_fees.lib.db.engine.as_utc`, text included (SQLite server-default
    timestamps may come back as text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return as_utc(value)


# -- amounts ---------------------------------------------------------------------------------


def _sum_by_key(amounts: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """The exact sum of the amounts of each key, sorted by key."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for key, amount in amounts:
        totals[key] += amount
    return dict(sorted(totals.items()))


# -- consolidation results -------------------------------------------------------------------


class LineFlag:
    """Why a fee line was not put on an invoice (``FlaggedLine.reason``)."""

    PERIOD_INVOICED: Final = "period_already_invoiced"
    PERIOD_NOT_INVOICED: Final = "period_not_invoiced"
    BELOW_THRESHOLD: Final = "below_threshold"
    CURRENCY_MISMATCH: Final = "currency_mismatch"


@dataclass(frozen=True)
class CreatedInvoice:
    """An invoice created by a consolidation run."""

    number: str
    customer_id: int
    customer_code: str
    period_start: dt.date
    period_end: dt.date
    issue_date: dt.date
    due_date: dt.date
    currency: str
    total_amount: Decimal
    line_count: int
    #: number of the voided invoice of the same period that this one replaces (the latest)
    replaces: str | None = None


@dataclass(frozen=True)
class SkippedPeriod:
    """A due (customer, period) that already had a live invoice: nothing was created."""

    customer_id: int
    customer_code: str
    period_start: dt.date
    period_end: dt.date
    invoice_number: str


@dataclass(frozen=True)
class FlaggedLine:
    """An un-invoiced fee line that a consolidation run left out, and why (:class:`LineFlag`).

    ``period_start``/``period_end`` is the billing period the line belongs to (the covering
    live invoice's period when ``invoice_number`` is set).
    """

    line_id: int
    flight_id: int
    line_no: int
    customer_id: int
    customer_code: str
    flight_date: dt.date
    zone_id: str
    billing_amount: Decimal
    billing_currency: str
    local_amount: Decimal
    local_currency: str
    period_start: dt.date
    period_end: dt.date
    reason: str
    invoice_number: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class ConsolidationResult:
    """What :func:`consolidate` did for ``day``."""

    day: dt.date
    customers_due: int = 0
    created: tuple[CreatedInvoice, ...] = ()
    skipped: tuple[SkippedPeriod, ...] = ()
    #: due customers whose period had nothing to invoice
    empty: tuple[str, ...] = ()
    late_lines: tuple[FlaggedLine, ...] = ()
    held_lines: tuple[FlaggedLine, ...] = ()
    currency_mismatch_lines: tuple[FlaggedLine, ...] = ()

    @property
    def numbers(self) -> list[str]:
        """Numbers of the invoices created, in creation order."""
        return [c.number for c in self.created]

    @property
    def invoice_numbers(self) -> list[str]:
        """Alias of :attr:`numbers`."""
        return self.numbers

    @property
    def invoices(self) -> tuple[CreatedInvoice, ...]:
        """Alias of :attr:`created`."""
        return self.created

    def skipped_summary(self) -> dict[str, object]:
        """JSON-able account of what was not invoiced: periods already invoiced, customers
        with nothing to invoice, and the flagged lines per reason (ids and amounts)."""

        def lines(flags: Sequence[FlaggedLine]) -> list[dict[str, object]]:
            return [
                {
                    "line_id": f.line_id,
                    "flight_id": f.flight_id,
                    "customer": f.customer_code,
                    "flight_date": f.flight_date.isoformat(),
                    "zone_id": f.zone_id,
                    "amount": f"{f.billing_amount} {f.billing_currency}",
                    "period": f"{f.period_start.isoformat()}..{f.period_end.isoformat()}",
                    "reason": f.reason,
                    "invoice_number": f.invoice_number,
                    **({"detail": f.detail} if f.detail else {}),
                }
                for f in flags
            ]

        return {
            "periods_already_invoiced": [
                {
                    "customer": s.customer_code,
                    "period": f"{s.period_start.isoformat()}..{s.period_end.isoformat()}",
                    "invoice_number": s.invoice_number,
                }
                for s in self.skipped
            ],
            "customers_without_lines": list(self.empty),
            "late_lines": lines(self.late_lines),
            "held_lines": lines(self.held_lines),
            "currency_mismatch_lines": lines(self.currency_mismatch_lines),
        }

    def totals_by_currency(self) -> dict[str, Decimal]:
        """Sum of the created invoices' totals per currency."""
        return _sum_by_key((inv.currency, inv.total_amount) for inv in self.created)

    def metadata(self) -> dict[str, object]:
        """Plain JSON-able summary (for Dagster asset metadata, logs)."""
        return {
            "day": self.day.isoformat(),
            "customers_due": self.customers_due,
            "invoices_created": len(self.created),
            "invoice_numbers": self.numbers,
            "periods_skipped": len(self.skipped),
            "late_lines": len(self.late_lines),
            "held_lines": len(self.held_lines),
            "currency_mismatch_lines": len(self.currency_mismatch_lines),
            "totals_by_currency": {k: str(v) for k, v in self.totals_by_currency().items()},
        }


@dataclass
class _CustomerOutcome:
    created: CreatedInvoice | None = None
    skipped: SkippedPeriod | None = None
    late: list[FlaggedLine] = field(default_factory=list)
    held: list[FlaggedLine] = field(default_factory=list)
    mismatched: list[FlaggedLine] = field(default_factory=list)


# -- consolidation ---------------------------------------------------------------------------


def _normalise_thresholds(thresholds: Mapping[str, object] | None) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for zone, value in (thresholds or {}).items():
        amount = to_decimal(value, what=f"threshold of zone {zone}")
        if amount < 0:
            raise ValueError(f"threshold of zone {zone} must not be negative, got {amount}")
        out[str(zone).strip().upper()] = amount
    return out


def consolidate(
    engine: Engine,
    day: dt.date,
    *,
    customer_ids: Sequence[int] | None = None,
    issue_date: dt.date | None = None,
    force: bool = False,
    thresholds: Mapping[str, Decimal] | None = None,
    today: dt.date | None = None,
) -> ConsolidationResult:
    """Create one invoice per due customer for its period ending on ``day`` (idempotent).

    ``customer_ids`` restricts the run; ``force`` treats every (selected) customer as due,
    for its last period ending on or before ``day``. ``issue_date`` (default ``day``) sets the
    number's year and the due date (issue date + the customer's payment terms); it may not
    precede the period's end. A *replacement* of a voided invoice is issued no earlier than
    ``today`` (default: the current UTC day) nor the day of the last void, whatever ``day``
    and ``issue_date`` say: it is never back-dated (see the module documentation).

    ``thresholds`` maps a ``zone_id`` to a minimum amount in the zone's **local** currency
    (e.g. ``{"FAA": Decimal("400")}``, USD): when a customer's lines of that zone in one
    billing period sum (``local_amount``) below it, those lines stay un-invoiced and are
    reported in ``held_lines``; a zone whose lines in the period carry more than one local
    currency cannot be compared and is held too.

    One transaction per customer: an exception aborts the run after rolling back the current
    customer only; re-running is safe. See the module documentation for the line
    classification and the locking.
    """
    limits = _normalise_thresholds(thresholds)
    run_day = today or utcnow().date()
    stmt = select(Customer).order_by(Customer.id)
    if customer_ids is not None:
        stmt = stmt.where(Customer.id.in_([int(c) for c in customer_ids]))
    with Session(engine, expire_on_commit=False) as session:
        customers = list(session.execute(stmt).scalars())

    # plan first, so that a bad issue date fails before anything is written
    plan: list[tuple[Customer, Period, dt.date]] = []
    for customer in customers:
        if not force and not is_invoice_day(customer, day):
            continue
        period = period_for(customer, day)
        issue = issue_date or day
        if issue < period[1]:
            raise ValueError(
                f"issue date {issue} precedes the end of the billing period "
                f"{period[0]}..{period[1]} of customer {customer.code}"
            )
        plan.append((customer, period, issue))

    created: list[CreatedInvoice] = []
    skipped: list[SkippedPeriod] = []
    empty: list[str] = []
    late: list[FlaggedLine] = []
    held: list[FlaggedLine] = []
    mismatched: list[FlaggedLine] = []
    for customer, period, issue in plan:
        outcome = _consolidate_customer_safely(engine, customer.id, period, issue, limits, run_day)
        if outcome.created is not None:
            created.append(outcome.created)
        elif outcome.skipped is not None:
            skipped.append(outcome.skipped)
        else:
            empty.append(customer.code)
        late += outcome.late
        held += outcome.held
        mismatched += outcome.mismatched
    return ConsolidationResult(
        day=day,
        customers_due=len(plan),
        created=tuple(created),
        skipped=tuple(skipped),
        empty=tuple(empty),
        late_lines=tuple(late),
        held_lines=tuple(held),
        currency_mismatch_lines=tuple(mismatched),
    )


def _consolidate_customer_safely(
    engine: Engine,
    customer_id: int,
    period: Period,
    issue: dt.date,
    thresholds: Mapping[str, Decimal],
    today: dt.date,
) -> _CustomerOutcome:
    try:
        with transaction(engine) as session:
            return _consolidate_customer(session, customer_id, period, issue, thresholds, today)
    except IntegrityError:
        # the live-invoice unique index fired: someone created this period's invoice between
        # our check and our insert (a writer that did not lock the customer). Everything of
        # ours, the allocated number included, was rolled back.
        with Session(engine) as session:
            existing = _find_live_invoice(session, customer_id, period)
            code = session.execute(
                select(Customer.code).where(Customer.id == customer_id)
            ).scalar_one()
        if existing is None:
            raise
        return _CustomerOutcome(
            skipped=SkippedPeriod(customer_id, code, period[0], period[1], existing)
        )


def _find_live_invoice(session: Session, customer_id: int, period: Period) -> str | None:
    """Number of the live (non-VOID) invoice of (customer, period), if any."""
    return session.execute(
        select(Invoice.number).where(
            Invoice.customer_id == customer_id,
            Invoice.period_start == period[0],
            Invoice.period_end == period[1],
            Invoice.status != VOID,
        )
    ).scalar_one_or_none()


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
            voided_at=_as_utc(row.voided_at),
            credit_note_number=row.credit_note_number,
        )
        for row in session.execute(stmt)
    ]


def replacement_issue_date(
    planned: dt.date, today: dt.date, voided: Sequence[InvoiceRef]
) -> dt.date:
    """The issue date of an invoice replacing the ``voided`` ones: the latest of the planned
    issue date, ``today`` and the days of the voids (``planned`` when nothing was voided)."""
    if not voided:
        return planned
    void_days = [v.voided_at.date() for v in voided if v.voided_at is not None]
    return max([planned, today, *void_days])


def _lock_customer(session: Session, customer_id: int) -> Customer:
    """The customer row, locked until the end of the transaction on PostgreSQL.

    ``FOR NO KEY UPDATE``: it excludes a concurrent consolidation of the same customer but
    not the ``FOR KEY SHARE`` lock that an insert of a row referencing the customer takes
    (fee lines keep flowing in while a customer is being invoiced).
    """
    return session.execute(
        select(Customer).where(Customer.id == customer_id).with_for_update(key_share=True)
    ).scalar_one()


def _flag(
    line: FeeLine,
    customer: Customer,
    period: Period,
    reason: str,
    invoice_number: str | None = None,
    detail: str = "",
) -> FlaggedLine:
    return FlaggedLine(
        line_id=line.id,
        flight_id=line.flight_id,
        line_no=line.line_no,
        customer_id=customer.id,
        customer_code=customer.code,
        flight_date=line.flight_date,
        zone_id=line.zone_id,
        billing_amount=line.billing_amount,
        billing_currency=line.billing_currency,
        local_amount=line.local_amount,
        local_currency=line.local_currency,
        period_start=period[0],
        period_end=period[1],
        reason=reason,
        invoice_number=invoice_number,
        detail=detail,
    )


def _apply_thresholds(
    lines: Sequence[FeeLine], thresholds: Mapping[str, Decimal]
) -> tuple[list[FeeLine], dict[int, str]]:
    """Split the lines of one (customer, period) into kept lines and held ones.

    Returns the kept lines and ``{held line id: explanation}``.
    """
    if not thresholds:
        return list(lines), {}
    by_zone: dict[str, list[FeeLine]] = defaultdict(list)
    for line in lines:
        if line.zone_id in thresholds:
            by_zone[line.zone_id].append(line)
    held: dict[int, str] = {}
    for zone, zone_lines in by_zone.items():
        limit = thresholds[zone]
        currencies = sorted({ln.local_currency for ln in zone_lines})
        if len(currencies) > 1:
            why = (
                f"zone {zone}: lines in several local currencies ({', '.join(currencies)}) "
                f"cannot be compared with the threshold {limit}"
            )
        else:
            amount = sum((ln.local_amount for ln in zone_lines), Decimal(0))
            if amount >= limit:
                continue
            why = (
                f"zone {zone}: {format_money(amount, currencies[0])} below the threshold "
                f"{format_money(limit, currencies[0])}"
            )
        held.update({ln.id: why for ln in zone_lines})
    return [ln for ln in lines if ln.id not in held], held


def _consolidate_customer(
    session: Session,
    customer_id: int,
    period: Period,
    issue: dt.date,
    thresholds: Mapping[str, Decimal],
    today: dt.date,
) -> _CustomerOutcome:
    customer = _lock_customer(session, customer_id)
    outcome = _CustomerOutcome()
    current_number = _find_live_invoice(session, customer.id, period)
    if current_number is not None:
        outcome.skipped = SkippedPeriod(
            customer.id, customer.code, period[0], period[1], current_number
        )

    lines = list(
        session.execute(
            select(FeeLine)
            .where(
                FeeLine.customer_id == customer.id,
                FeeLine.invoice_id.is_(None),
                FeeLine.flight_date <= period[1],
            )
            .order_by(FeeLine.flight_date, FeeLine.flight_id, FeeLine.line_no)
            .with_for_update()
        ).scalars()
    )
    if not lines:
        return outcome

    earliest = lines[0].flight_date
    live = session.execute(
        select(Invoice.number, Invoice.period_start, Invoice.period_end)
        .where(
            Invoice.customer_id == customer.id,
            Invoice.status != VOID,
            Invoice.period_end >= earliest,
            Invoice.period_start <= period[1],
        )
        .order_by(Invoice.period_start)
    ).all()

    # group the lines in billing currency by the period they belong to
    groups: dict[tuple[dt.date, dt.date, str | None], list[FeeLine]] = defaultdict(list)
    for line in lines:
        covering = next(
            (r for r in live if r.period_start <= line.flight_date <= r.period_end), None
        )
        number: str | None = None
        if covering is not None:
            line_period: Period = (covering.period_start, covering.period_end)
            number = covering.number
        elif line.flight_date >= period[0]:
            line_period = period
        else:
            line_period = period_containing(customer, line.flight_date)
        if line.billing_currency != customer.billing_currency:
            outcome.mismatched.append(
                _flag(
                    line,
                    customer,
                    line_period,
                    LineFlag.CURRENCY_MISMATCH,
                    detail=(
                        f"billed in {line.billing_currency}, customer is invoiced in "
                        f"{customer.billing_currency}"
                    ),
                )
            )
            continue
        groups[(line_period[0], line_period[1], number)].append(line)

    to_invoice: list[FeeLine] = []
    for (start, end, number), group in groups.items():
        kept, held = _apply_thresholds(group, thresholds)
        outcome.held += [
            _flag(ln, customer, (start, end), LineFlag.BELOW_THRESHOLD, number, held[ln.id])
            for ln in group
            if ln.id in held
        ]
        if number is None and (start, end) == period:
            to_invoice = kept
            continue
        reason = LineFlag.PERIOD_INVOICED if number else LineFlag.PERIOD_NOT_INVOICED
        outcome.late += [_flag(ln, customer, (start, end), reason, number) for ln in kept]

    if to_invoice and current_number is None:
        voided = _voided_invoices(session, customer.id, period)
        outcome.created = _create_invoice(
            session,
            customer,
            period,
            replacement_issue_date(issue, today, voided),
            to_invoice,
            replaces=voided[0].number if voided else None,
        )
    return outcome


def _create_invoice(
    session: Session,
    customer: Customer,
    period: Period,
    issue: dt.date,
    lines: Sequence[FeeLine],
    *,
    replaces: str | None = None,
) -> CreatedInvoice:
    """Number, insert and stamp, in the caller's transaction (the number is allocated last
    so that the counter row is locked as briefly as possible)."""
    currency = customer.billing_currency
    total = round_money(sum((ln.billing_amount for ln in lines), Decimal(0)), currency)
    due = issue + dt.timedelta(days=customer.payment_terms_days)
    number = _next_number(session, INVOICE_KIND, issue.year)
    invoice = Invoice(
        number=number,
        customer_id=customer.id,
        period_start=period[0],
        period_end=period[1],
        issue_date=issue,
        due_date=due,
        currency=currency,
        total_amount=total,
        line_count=len(lines),
        status=PENDING,
    )
    session.add(invoice)
    session.flush()  # the unique indexes fire here; the id is known
    _stamp_lines(session, invoice.id, [ln.id for ln in lines])
    return CreatedInvoice(
        number=number,
        customer_id=customer.id,
        customer_code=customer.code,
        period_start=period[0],
        period_end=period[1],
        issue_date=issue,
        due_date=due,
        currency=currency,
        total_amount=total,
        line_count=len(lines),
        replaces=replaces,
    )


def _stamp_lines(session: Session, invoice_id: int, line_ids: Sequence[int]) -> None:
    """Attach the (locked, un-invoiced) lines to the invoice; every one of them or fail."""
    stamped = 0
    for start in range(0, len(line_ids), _ID_CHUNK):
        chunk = list(line_ids[start : start + _ID_CHUNK])
        result = session.execute(
            update(FeeLine)
            .where(FeeLine.id.in_(chunk), FeeLine.invoice_id.is_(None))
            .values(invoice_id=invoice_id)
            .execution_options(synchronize_session=False)
        )
        stamped += result.rowcount or 0
    if stamped != len(line_ids):
        raise InvoicingError(
            f"only {stamped} of {len(line_ids)} fee lines could be attached to invoice "
            f"{invoice_id}: lines changed during consolidation (rolled back)"
        )


# -- status transitions ----------------------------------------------------------------------


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


def _summary_query() -> Select:  # type: ignore[type-arg]
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


def _summary(row: object) -> InvoiceSummary:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["paid_at"] = _as_utc(values["paid_at"])
    values["voided_at"] = _as_utc(values["voided_at"])
    return InvoiceSummary(**values)


def _get_summary(session: Session, number: str) -> InvoiceSummary:
    row = session.execute(_summary_query().where(Invoice.number == number)).one_or_none()
    if row is None:
        raise InvoiceNotFound(number)
    return _summary(row)


def pay(engine: Engine, number: str, paid_at: dt.datetime | None = None) -> InvoiceSummary:
    """Mark a PENDING or OVERDUE invoice PAID (at ``paid_at``, default now; a naive
    ``paid_at`` is taken as UTC).

    Raises :class:`InvoiceNotFound` or :class:`InvoiceStateError` (already paid, void).
    """
    when = _as_utc(paid_at) or utcnow()
    with transaction(engine) as session:
        changed = session.execute(
            update(Invoice)
            .where(Invoice.number == number, Invoice.status.in_(OPEN_STATUSES))
            .values(status=PAID, paid_at=when)
            .execution_options(synchronize_session=False)
        ).rowcount
        summary = _get_summary(session, number)
        if not changed:
            raise InvoiceStateError(number, summary.status, "paid", OPEN_STATUSES)
        return summary


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
    when = _as_utc(voided_at) or utcnow()
    with transaction(engine) as session:
        invoice = session.execute(
            select(Invoice).where(Invoice.number == number).with_for_update(key_share=True)
        ).scalar_one_or_none()
        if invoice is None:
            raise InvoiceNotFound(number)
        if invoice.status not in OPEN_STATUSES:
            raise InvoiceStateError(number, invoice.status, "voided", OPEN_STATUSES)
        before = _detail(session, number)
        released = (
            session.execute(
                update(FeeLine)
                .where(FeeLine.invoice_id == invoice.id)
                .values(invoice_id=None)
                .execution_options(synchronize_session=False)
            ).rowcount
            or 0
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
    return CreditNoteInfo(row.number, row.amount, row.currency, row.reason, _as_utc(row.created_at))


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
        values["entry_time"] = _as_utc(values["entry_time"])
        values["exit_time"] = _as_utc(values["exit_time"])
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


def credit_note_of_void(result: VoidResult) -> CreditNoteDetail:
    """The credit note recorded by :func:`void`, with the lines the invoice carried."""
    assert result.detail.credit_note is not None
    return CreditNoteDetail(result.detail.credit_note, result.detail)


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
