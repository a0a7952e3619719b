"""Consolidation: one invoice per customer and billing period, one transaction per
customer (the rules: the package docstring)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flight_fees.lib.billing.invoicing.numbering import _next_number
from flight_fees.lib.billing.invoicing.periods import is_invoice_day, period_containing, period_for
from flight_fees.lib.billing.invoicing.queries import InvoiceRef, _voided_invoices
from flight_fees.lib.billing.invoicing.states import (
    _ID_CHUNK,
    INVOICE_KIND,
    PENDING,
    VOID,
    InvoicingError,
    Period,
    _sum_by_key,
)
from flight_fees.lib.core.money import format_money, round_money, to_decimal
from flight_fees.lib.db.engine import rows_affected, transaction, utcnow
from flight_fees.lib.db.models import (
    Customer,
    FeeLine,
    Invoice,
)

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
        stamped += rows_affected(
            session.execute(
                update(FeeLine)
                .where(FeeLine.id.in_(chunk), FeeLine.invoice_id.is_(None))
                .values(invoice_id=invoice_id)
                .execution_options(synchronize_session=False)
            )
        )
    if stamped != len(line_ids):
        raise InvoicingError(
            f"only {stamped} of {len(line_ids)} fee lines could be attached to invoice "
            f"{invoice_id}: lines changed during consolidation (rolled back)"
        )
