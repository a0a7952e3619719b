"""Issuing invoices: the consolidation of the periods ending on a day, with the minimum
monthly amounts of the tariffs and the invoice documents — the same for the 01:00 schedule,
the ``invoices`` asset and ``flight-fees invoice consolidate``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select

from flight_fees.lib.billing.invoicing import ConsolidationResult, consolidate
from flight_fees.lib.core.money import CategorizedError
from flight_fees.lib.db.models import Customer

if TYPE_CHECKING:
    from flight_fees.lib.charging.tariffs import Tariffs
    from flight_fees.lib.core.storage import StoragePath
    from flight_fees.lib.documents.issuer import Issuer


class UnknownCustomers(CategorizedError, LookupError):
    """Customer codes that name no customer."""

    category = "unknown_customer"

    def __init__(self, codes: Sequence[str]) -> None:
        self.codes = tuple(codes)
        super().__init__(f"unknown customer code(s): {', '.join(self.codes)}")


def customer_ids_by_code(engine: Engine, codes: Sequence[str]) -> dict[str, int]:
    """``{code: customer id}`` of ``codes``; :class:`UnknownCustomers` if any is unknown."""
    wanted = [c.strip() for c in codes]
    with engine.connect() as conn:
        found = {
            str(code): int(cid)
            for code, cid in conn.execute(
                select(Customer.code, Customer.id).where(Customer.code.in_(wanted))
            )
        }
    unknown = sorted(set(wanted) - set(found))
    if unknown:
        raise UnknownCustomers(unknown)
    return found


def default_consolidation_day(now: dt.datetime | None = None) -> dt.date:
    """The day whose ending periods a consolidation invoices when none is given: the UTC day
    that just ended (the 01:00 run on day D invoices the periods ending on D - 1)."""
    current = now or dt.datetime.now(dt.UTC)
    return current.date() - dt.timedelta(days=1)


@dataclass(frozen=True)
class IssuedInvoices:
    """What :func:`issue_invoices` did: the consolidation, the thresholds it applied (zone ->
    minimum monthly amount in the zone's currency) and the document of each new invoice."""

    day: dt.date
    result: ConsolidationResult
    thresholds: Mapping[str, Decimal]
    documents: Mapping[str, StoragePath]


def issue_invoices(
    engine: Engine,
    day: dt.date,
    tariffs: Tariffs,
    *,
    force: bool = False,
    customer_codes: Sequence[str] | None = None,
    documents_dir: StoragePath | None = None,
    issuer: Issuer | None = None,
    zone_names: Mapping[str, str] | None = None,
    today: dt.date | None = None,
) -> IssuedInvoices:
    """Create the invoices of the periods ending on ``day`` (every due customer, or
    ``customer_codes``; ``force``: every selected customer's last period ending on/before
    ``day``), holding a zone's lines below its tariff's minimum monthly amount
    (:meth:`~flight_fees.lib.charging.tariffs.Tariffs.monthly_invoice_thresholds`), then write
    each new invoice's HTML and PDF into ``documents_dir`` (none when ``None``).

    The issuer configuration is loaded and validated before anything is created: an invalid
    issuer file stops the run with no invoice issued. Idempotent (see
    :func:`~flight_fees.lib.billing.invoicing.consolidate`).
    """
    from flight_fees.lib.documents.invoices import default_zone_names, write_invoice_document
    from flight_fees.lib.documents.issuer import load_issuer

    if documents_dir is not None:
        issuer = issuer or load_issuer()
        zone_names = zone_names if zone_names is not None else default_zone_names()
    customer_ids = (
        list(customer_ids_by_code(engine, customer_codes).values()) if customer_codes else None
    )
    thresholds = tariffs.monthly_invoice_thresholds(day)
    result = consolidate(
        engine,
        day,
        customer_ids=customer_ids,
        force=force,
        thresholds=thresholds,
        today=today,
    )
    documents: dict[str, StoragePath] = {}
    if documents_dir is not None:
        for invoice in result.created:
            documents[invoice.number] = write_invoice_document(
                engine, invoice.number, documents_dir, issuer=issuer, zone_names=zone_names
            )
    return IssuedInvoices(day, result, thresholds, documents)
