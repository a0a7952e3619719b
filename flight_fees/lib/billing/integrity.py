"""Integrity of the stored fee lines: every line is reproducible from what it records.

One use case, :func:`check_fee_lines` (the blocking asset check ``fee_lines_integrity`` calls
it), over the lines of one flight day or of the whole table:

- **billing amount**: ``billing_amount`` must equal :func:`expected_billing_amount` of the
  line's ``local_amount``, ``fx_rate`` and ``billing_currency`` - ``local_amount x fx_rate``
  in :data:`~flight_fees.lib.core.money.CALC_CONTEXT`, rounded half-up to the billing
  currency's minor unit (:func:`~flight_fees.lib.core.money.round_money`): exactly what
  :meth:`flight_fees.lib.charging.fx.FxRates.convert` stored, since ``fx_rate`` is the rate
  the amount was converted with (derived rates are rounded to the column's 10 places before
  use). A line in its own currency must carry ``fx_rate = 1``;
- **recorded provenance**: a tariff version and a positive FX rate;
- **signs**: no negative local or billing amount;
- **uniqueness**: no ``(flight_id, line_no)`` twice (the unique constraint's backstop).

Reads are streamed (:data:`READ_CHUNK` rows at a time); the recomputation is exact
``Decimal`` arithmetic per line (an exact decimal product has no vectorised form).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, Final

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.sql import ColumnElement

from flight_fees.lib.core.money import CALC_CONTEXT, Rounding, round_money
from flight_fees.lib.db.models import FeeLine

__all__ = [
    "READ_CHUNK",
    "AmountMismatch",
    "FeeLineIntegrity",
    "amount_mismatches",
    "check_fee_lines",
    "expected_billing_amount",
]

#: rows fetched per round trip while recomputing amounts
READ_CHUNK: Final[int] = 20_000
_ONE: Final = Decimal(1)


def expected_billing_amount(
    local_amount: Decimal, fx_rate: Decimal, billing_currency: str
) -> Decimal:
    """``local_amount x fx_rate`` rounded half-up to ``billing_currency``'s minor unit (the
    conversion of :meth:`~flight_fees.lib.charging.fx.FxRates.convert`)."""
    with localcontext(CALC_CONTEXT):
        converted = local_amount * fx_rate
    return round_money(converted, billing_currency, Rounding.HALF_UP)


@dataclass(frozen=True, slots=True)
class AmountMismatch:
    """A stored line whose billing amount (or same-currency rate) does not recompute."""

    flight_id: int
    line_no: int
    local_amount: Decimal
    local_currency: str
    fx_rate: Decimal
    billing_currency: str
    stored: Decimal
    expected: Decimal


def amount_mismatches(rows: Iterable[Sequence[Any]]) -> list[AmountMismatch]:
    """The rows ``(flight_id, line_no, local_amount, local_currency, fx_rate, billing_amount,
    billing_currency)`` whose ``billing_amount`` is not :func:`expected_billing_amount`, or
    that convert a currency into itself at a rate other than 1 (then ``expected`` is the
    amount at rate 1). Rows without a rate are left to the provenance count."""
    found: list[AmountMismatch] = []
    for flight_id, line_no, local, local_ccy, rate, stored, billing_ccy in rows:
        if rate is None or local is None or stored is None:
            continue
        same = local_ccy == billing_ccy
        expected = expected_billing_amount(local, _ONE if same else rate, billing_ccy)
        if stored != expected or (same and rate != _ONE):
            found.append(
                AmountMismatch(
                    int(flight_id),
                    int(line_no),
                    local,
                    local_ccy,
                    rate,
                    billing_ccy,
                    stored,
                    expected,
                )  # fmt: skip
            )
    return found


@dataclass(frozen=True, slots=True)
class FeeLineIntegrity:
    """The outcome of :func:`check_fee_lines`; ``passed`` when every count is 0."""

    flight_date: dt.date | None
    lines: int
    missing_tariff_or_fx: int
    negative_amounts: int
    duplicate_lines: int
    wrong_billing_amounts: int
    #: the first mismatches (by flight and line), at most ``examples`` of them
    mismatches: tuple[AmountMismatch, ...] = ()

    @property
    def passed(self) -> bool:
        return not (
            self.missing_tariff_or_fx
            or self.negative_amounts
            or self.duplicate_lines
            or self.wrong_billing_amounts
        )


def check_fee_lines(
    engine: Engine, *, flight_date: dt.date | None = None, examples: int = 20
) -> FeeLineIntegrity:
    """Check the stored fee lines of ``flight_date`` (every line when None); see the module
    doc for the rules."""
    scope: list[ColumnElement[bool]] = (
        [] if flight_date is None else [FeeLine.flight_date == flight_date]
    )

    def count(conn: Connection, *where: ColumnElement[bool]) -> int:
        query = select(func.count()).select_from(FeeLine).where(*scope, *where)
        return int(conn.execute(query).scalar_one())

    with engine.connect() as conn:
        total = count(conn)
        missing = count(
            conn,
            (FeeLine.tariff_version == "") | FeeLine.fx_rate.is_(None) | (FeeLine.fx_rate <= 0),
        )
        negative = count(conn, (FeeLine.billing_amount < 0) | (FeeLine.local_amount < 0))
        duplicates = conn.execute(
            select(func.count()).select_from(
                select(FeeLine.flight_id, FeeLine.line_no)
                .where(*scope)
                .group_by(FeeLine.flight_id, FeeLine.line_no)
                .having(func.count() > 1)
                .subquery()
            )
        ).scalar_one()
        result = conn.execution_options(yield_per=READ_CHUNK).execute(
            select(
                FeeLine.flight_id,
                FeeLine.line_no,
                FeeLine.local_amount,
                FeeLine.local_currency,
                FeeLine.fx_rate,
                FeeLine.billing_amount,
                FeeLine.billing_currency,
            )
            .where(*scope)
            .order_by(FeeLine.flight_id, FeeLine.line_no)
        )
        wrong = 0
        shown: list[AmountMismatch] = []
        for chunk in result.partitions():
            found = amount_mismatches(chunk)
            wrong += len(found)
            shown.extend(found[: max(0, examples - len(shown))])
    return FeeLineIntegrity(
        flight_date=flight_date,
        lines=total,
        missing_tariff_or_fx=missing,
        negative_amounts=negative,
        duplicate_lines=int(duplicates),
        wrong_billing_amounts=wrong,
        mismatches=tuple(shown),
    )
