"""Invoice statuses, document kinds and the invoicing errors."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import ClassVar, Final

from flight_fees.lib.core.money import CategorizedError

PENDING: Final = "PENDING"

PAID: Final = "PAID"

OVERDUE: Final = "OVERDUE"

VOID: Final = "VOID"

OPEN_STATUSES: Final[tuple[str, ...]] = (PENDING, OVERDUE)

INVOICE_KIND: Final = "INV"

CREDIT_NOTE_KIND: Final = "CN"

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


def _sum_by_key(amounts: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """The exact sum of the amounts of each key, sorted by key."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for key, amount in amounts:
        totals[key] += amount
    return dict(sorted(totals.items()))
