"""Fee-line search: filters, stable keyset pagination and exact totals over the whole result.

One order for every page: ``flight_date, flight_id, line_no`` (unique: ``(flight_id,
line_no)`` is), so a cursor (the key of the last line of a page) continues exactly where the
page ended, with no gap or repeat even while other flights are billed. Totals are summed by
the database over every line that matches (exact: NUMERIC on PostgreSQL, integer minor units
on SQLite), not over the page.

A line's ``status``: ``invoiced`` (on a live invoice), ``void`` (on a VOID invoice), else
``billed`` (not invoiced yet; the lines of a voided invoice are released and billed again).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import pandas as pd
from sqlalchemy import Engine, Select, and_, case, func, literal, select, tuple_
from sqlalchemy.orm import Session

from flight_fees.lib.db.models import Customer, FeeLine, Flight, Invoice

LINE_STATUSES: Final = ("billed", "invoiced", "void")
#: the most lines one page returns
MAX_PAGE: Final = 10_000
_CURSOR_RE: Final = re.compile(r"^(\d{4}-\d{2}-\d{2})_(\d+)_(\d+)$")


class SearchError(ValueError):
    """A filter, cursor or page size that cannot be used."""


@dataclass(frozen=True)
class LineFilters:
    """Every filter is optional; text filters are exact (callsign and registration case-blind);
    ``day_from`` / ``day_to`` are inclusive UTC days of the flight."""

    flight_id: int | None = None
    callsign: str | None = None
    registration: str | None = None
    customer: str | None = None
    zone: str | None = None
    day_from: dt.date | None = None
    day_to: dt.date | None = None
    invoice: str | None = None
    status: str | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in LINE_STATUSES:
            raise SearchError(f"status {self.status!r} is not one of {', '.join(LINE_STATUSES)}")
        if self.day_from and self.day_to and self.day_from > self.day_to:
            raise SearchError(f"--from {self.day_from} is after --to {self.day_to}")


@dataclass(frozen=True)
class LinePage:
    """One page of lines (dicts, see :data:`LINE_FIELDS`), the totals per billing currency of
    the whole result, its size, and the cursor of the next page (None on the last)."""

    lines: list[dict[str, Any]]
    totals: dict[str, Decimal]
    count: int
    next_cursor: str | None


#: the fields of a line of :func:`search_lines`
LINE_FIELDS: Final = (
    "flight_id", "line_no", "zone_id", "day", "customer", "callsign", "registration",
    "fir_ids", "distance_km", "mtow_kg", "local_amount", "local_currency", "billing_amount",
    "billing_currency", "invoice", "status",
)  # fmt: skip


def _status_expr() -> Any:
    return case(
        (FeeLine.invoice_id.is_(None), "billed"),
        (Invoice.status == "VOID", "void"),
        else_="invoiced",
    )


def _filtered(stmt: Select[Any], f: LineFilters) -> Select[Any]:
    stmt = (
        stmt.select_from(FeeLine)
        .outerjoin(Customer, Customer.id == FeeLine.customer_id)
        .outerjoin(Flight, Flight.flight_id == FeeLine.flight_id)
        .outerjoin(Invoice, Invoice.id == FeeLine.invoice_id)
    )
    conditions = []
    if f.flight_id is not None:
        conditions.append(FeeLine.flight_id == f.flight_id)
    if f.callsign:
        conditions.append(func.upper(Flight.callsign) == f.callsign.strip().upper())
    if f.registration:
        conditions.append(func.upper(Flight.registration) == f.registration.strip().upper())
    if f.customer:
        conditions.append(Customer.code == f.customer.strip())
    if f.zone:
        conditions.append(FeeLine.zone_id == f.zone.strip().upper())
    if f.day_from:
        conditions.append(FeeLine.flight_date >= f.day_from)
    if f.day_to:
        conditions.append(FeeLine.flight_date <= f.day_to)
    if f.invoice:
        conditions.append(Invoice.number == f.invoice.strip())
    if f.status == "billed":
        conditions.append(FeeLine.invoice_id.is_(None))
    elif f.status == "invoiced":
        conditions.append(and_(FeeLine.invoice_id.is_not(None), Invoice.status != "VOID"))
    elif f.status == "void":
        conditions.append(Invoice.status == "VOID")
    return stmt.where(*conditions)


def parse_cursor(cursor: str) -> tuple[dt.date, int, int]:
    """The key ``(day, flight_id, line_no)`` of a cursor of :func:`search_lines`."""
    match = _CURSOR_RE.match(cursor.strip())
    if match is None:
        raise SearchError(f"cursor {cursor!r} is not one returned by a previous page")
    try:
        day = dt.date.fromisoformat(match.group(1))
    except ValueError:
        raise SearchError(f"cursor {cursor!r} is not one returned by a previous page") from None
    return day, int(match.group(2)), int(match.group(3))


def make_cursor(day: dt.date, flight_id: int, line_no: int) -> str:
    return f"{day.isoformat()}_{flight_id}_{line_no}"


def search_lines(
    engine: Engine,
    filters: LineFilters,
    *,
    limit: int = 50,
    cursor: str | None = None,
    offset: int | None = None,
) -> LinePage:
    """The page of lines matching ``filters`` after ``cursor`` (or from ``offset``), in the
    stable order, with the exact totals per currency of every matching line."""
    if not 1 <= limit <= MAX_PAGE:
        raise SearchError(f"limit must be 1 to {MAX_PAGE:,}, got {limit}")
    if offset is not None and offset < 0:
        raise SearchError(f"offset must be 0 or more, got {offset}")
    if cursor is not None and offset is not None:
        raise SearchError("give a cursor or an offset, not both")
    order = (FeeLine.flight_date, FeeLine.flight_id, FeeLine.line_no)
    stmt = _filtered(
        select(
            FeeLine.flight_id, FeeLine.line_no, FeeLine.zone_id, FeeLine.flight_date.label("day"),
            Customer.code.label("customer"), Flight.callsign, Flight.registration,
            FeeLine.fir_ids, FeeLine.distance_km, FeeLine.mtow_kg, FeeLine.local_amount,
            FeeLine.local_currency, FeeLine.billing_amount, FeeLine.billing_currency,
            Invoice.number.label("invoice"), _status_expr().label("status"),
        ),
        filters,
    ).order_by(*order)  # fmt: skip
    if cursor is not None:
        stmt = stmt.where(tuple_(*order) > tuple_(*(literal(v) for v in parse_cursor(cursor))))
    if offset:
        stmt = stmt.offset(offset)
    totals_stmt = _filtered(
        select(FeeLine.billing_currency, func.sum(FeeLine.billing_amount), func.count(FeeLine.id)),
        filters,
    ).group_by(FeeLine.billing_currency)
    with Session(engine) as session, session.begin():  # one snapshot for page and totals
        rows = [dict(r._mapping) for r in session.execute(stmt.limit(limit + 1))]
        sums = session.execute(totals_stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows and more else None
    return LinePage(
        lines=rows,
        totals={ccy: Decimal(total) for ccy, total, _ in sorted(sums)},
        count=sum(n for _, _, n in sums),
        next_cursor=make_cursor(last["day"], last["flight_id"], last["line_no"]) if last else None,
    )


def matching_invoice_numbers(engine: Engine, filters: LineFilters) -> set[str]:
    """The numbers of the invoices carrying at least one line that matches ``filters``."""
    stmt = _filtered(select(Invoice.number).distinct(), filters).where(
        FeeLine.invoice_id.is_not(None)
    )
    with Session(engine) as session:
        return set(session.execute(stmt).scalars())


def search_invoices(
    engine: Engine,
    filters: LineFilters,
    *,
    status: str | None = None,
    customer: str | None = None,
) -> pd.DataFrame:
    """:func:`~flight_fees.lib.billing.invoicing.list_invoices` (of one invoice status / customer)
    restricted, when any line filter is given, to the invoices carrying a matching line."""
    from flight_fees.lib.billing.invoicing import list_invoices

    frame = list_invoices(engine, status=status, customer_code=customer)
    if not any(v is not None for v in vars(filters).values()):
        return frame
    numbers = matching_invoice_numbers(engine, filters)
    return frame[frame["number"].isin(sorted(numbers))].reset_index(drop=True)


@dataclass(frozen=True)
class CreditNoteRow:
    number: str
    invoice: str
    customer: str
    amount: Decimal
    currency: str
    created_at: dt.datetime | None
    reason: str | None


def list_credit_notes(engine: Engine, *, customer: str | None = None) -> list[CreditNoteRow]:
    """Every credit note (of one customer code), oldest first, with the invoice it cancels."""
    from flight_fees.lib.core.timeutil import as_utc
    from flight_fees.lib.db.models import CreditNote

    stmt = (
        select(
            CreditNote.number, Invoice.number, Customer.code, CreditNote.amount,
            CreditNote.currency, CreditNote.created_at, CreditNote.reason,
        )
        .join(Invoice, Invoice.id == CreditNote.invoice_id)
        .join(Customer, Customer.id == Invoice.customer_id)
        .order_by(CreditNote.created_at, CreditNote.number)
    )  # fmt: skip
    if customer is not None:
        stmt = stmt.where(Customer.code == customer.strip())
    with Session(engine) as session:
        return [
            CreditNoteRow(n, inv, code, amount, ccy, as_utc(at), reason)
            for n, inv, code, amount, ccy, at, reason in session.execute(stmt)
        ]
