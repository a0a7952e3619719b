"""What a demo (or any) billing database holds, for the summary ``flight-fees demo`` prints:
flights billed and not, fee lines per billing currency and per zone in its own currency, the
failed flights, the invoices. Reads only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Engine, func, select

from flight_fees.lib.billing.invoicing import is_invoice_day
from flight_fees.lib.db.models import Customer, FeeLine, Flight, Invoice


@dataclass(frozen=True)
class InvoiceRow:
    number: str
    customer_code: str
    period_start: dt.date
    period_end: dt.date
    line_count: int
    total_amount: Decimal
    currency: str
    status: str
    due_date: dt.date


@dataclass(frozen=True)
class BillingSummary:
    flights_billed: int
    flights_not_billed: int
    first_flight_day: dt.date | None
    #: billing currency -> (lines, total)
    per_currency: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    #: (zone, local currency) -> (lines, total in the local currency)
    per_zone: dict[tuple[str, str], tuple[int, Decimal]] = field(default_factory=dict)
    #: (flight_id, failure category, message) of the flights not billed
    failed: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    invoices: list[InvoiceRow] = field(default_factory=list)

    @property
    def fee_lines(self) -> int:
        return sum(n for n, _ in self.per_currency.values())


def _add(into: dict, key: object, amount: object) -> None:
    count, total = into.get(key, (0, Decimal(0)))
    into[key] = (count + 1, total + Decimal(str(amount)))


def billing_summary(engine: Engine) -> BillingSummary:
    """The summary of the whole billing database (sums exact, in Python: SQLite has no
    exact decimal sum)."""
    with engine.connect() as conn:
        statuses = {
            str(s): int(n)
            for s, n in conn.execute(select(Flight.status, func.count()).group_by(Flight.status))
        }
        first_day = conn.execute(select(func.min(Flight.flight_date))).scalar_one()
        per_currency: dict[str, tuple[int, Decimal]] = {}
        per_zone: dict[tuple[str, str], tuple[int, Decimal]] = {}
        for ccy, amount, zone, local_ccy, local in conn.execute(
            select(
                FeeLine.billing_currency,
                FeeLine.billing_amount,
                FeeLine.zone_id,
                FeeLine.local_currency,
                FeeLine.local_amount,
            )
        ):
            _add(per_currency, ccy, amount)
            _add(per_zone, (zone, local_ccy), local)
        failed = [
            (int(fid), cat, msg)
            for fid, cat, msg in conn.execute(
                select(Flight.flight_id, Flight.error_category, Flight.last_error)
                .where(Flight.status != "billed")
                .order_by(Flight.flight_id)
            )
        ]
        invoices = [
            InvoiceRow(*row)
            for row in conn.execute(
                select(
                    Invoice.number,
                    Customer.code,
                    Invoice.period_start,
                    Invoice.period_end,
                    Invoice.line_count,
                    Invoice.total_amount,
                    Invoice.currency,
                    Invoice.status,
                    Invoice.due_date,
                )
                .join(Customer, Customer.id == Invoice.customer_id)
                .order_by(Invoice.number)
            )
        ]
    billed = int(statuses.pop("billed", 0))
    return BillingSummary(
        billed,
        sum(int(n) for n in statuses.values()),
        first_day,
        dict(sorted(per_currency.items())),
        dict(sorted(per_zone.items())),
        failed,
        invoices,
    )


def invoice_days(engine: Engine, first: dt.date, last: dt.date) -> list[dt.date]:
    """The days from ``first`` to ``last`` on which at least one customer is due an invoice
    (what the daily consolidation schedule would invoice over that span)."""
    with engine.connect() as conn:
        customers = conn.execute(
            select(Customer.billing_frequency, Customer.week_end_weekday)
        ).all()
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return [d for d in days if any(is_invoice_day(c, d) for c in customers)]
