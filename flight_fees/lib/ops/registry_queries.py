"""Read models of the registry: customers and aircraft as the administration shows them (with
their MTOW declarations), and the audit trail. Writes and imports are in
:mod:`flight_fees.lib.ops.registry`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flight_fees.lib.db.models import Aircraft, AircraftMtowDeclaration, AuditEntry, Customer
from flight_fees.lib.ops.registry import SINCE_ALWAYS, WEEKDAYS, RegistryError

__all__ = [
    "AircraftView",
    "CustomerView",
    "MtowDeclarationView",
    "audit_entries",
    "customer_detail",
    "list_aircraft",
    "list_customers",
]


@dataclass(frozen=True)
class CustomerView:
    code: str
    name: str
    address: str | None
    tax_id: str | None
    billing_frequency: str
    week_end_day: str
    billing_currency: str
    payment_terms_days: int
    aircraft: int


@dataclass(frozen=True)
class MtowDeclarationView:
    effective_from: dt.date | None  # None = since always
    mtow_kg: Decimal
    recorded_by: str | None


@dataclass(frozen=True)
class AircraftView:
    registration: str
    icao24: str | None
    aircraft_type: str | None
    mtow_kg: Decimal | None
    operator: str | None
    declarations: tuple[MtowDeclarationView, ...]


def _customer_view(row: Any, aircraft: int) -> CustomerView:
    return CustomerView(
        row.code, row.name, row.address, row.tax_id, row.billing_frequency,
        WEEKDAYS[row.week_end_weekday], row.billing_currency, row.payment_terms_days, aircraft,
    )  # fmt: skip


def list_customers(engine: Engine) -> list[CustomerView]:
    """Every customer, by code, with its number of aircraft."""
    counts = (
        select(Aircraft.customer_id, func.count().label("n"))
        .group_by(Aircraft.customer_id)
        .subquery()
    )
    with Session(engine) as session:
        rows = session.execute(
            select(Customer, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.customer_id == Customer.id)
            .order_by(Customer.code)
        ).all()
        return [_customer_view(c, n) for c, n in rows]


def list_aircraft(
    engine: Engine, *, operator: str | None = None, registration: str | None = None
) -> list[AircraftView]:
    """Aircraft (of one operator / one registration) by registration, with their MTOW
    declarations oldest first."""
    stmt = (
        select(Aircraft, Customer.code)
        .outerjoin(Customer, Customer.id == Aircraft.customer_id)
        .order_by(Aircraft.registration)
    )
    if operator is not None:
        stmt = stmt.where(Customer.code == operator)
    if registration is not None:
        stmt = stmt.where(Aircraft.registration == registration.strip().upper())
    with Session(engine) as session:
        rows = session.execute(stmt).all()
        history: dict[int, list[MtowDeclarationView]] = {}
        ids = [a.id for a, _ in rows]
        for start in range(0, len(ids), 1000):
            for d in session.scalars(
                select(AircraftMtowDeclaration)
                .where(AircraftMtowDeclaration.aircraft_id.in_(ids[start : start + 1000]))
                .order_by(AircraftMtowDeclaration.effective_from)
            ):
                history.setdefault(d.aircraft_id, []).append(
                    MtowDeclarationView(
                        None if d.effective_from == SINCE_ALWAYS else d.effective_from,
                        d.mtow_kg,
                        d.recorded_by,
                    )
                )
        return [
            AircraftView(
                a.registration, a.icao24, a.icao_type, a.mtow_kg, code, tuple(history.get(a.id, ()))
            )
            for a, code in rows
        ]


def customer_detail(engine: Engine, code: str) -> tuple[CustomerView, list[AircraftView]]:
    """One customer and its aircraft (:class:`RegistryError` if unknown)."""
    found = [c for c in list_customers(engine) if c.code == code.strip()]
    if not found:
        raise RegistryError(f"no customer with code {code.strip()!r}")
    return found[0], list_aircraft(engine, operator=found[0].code)


def audit_entries(
    engine: Engine, *, entity: str | None = None, key: str | None = None, limit: int = 100
) -> list[AuditEntry]:
    """The latest ``limit`` audit entries (of one entity / key), newest first."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity is not None:
        stmt = stmt.where(AuditEntry.entity == entity)
    if key is not None:
        stmt = stmt.where(AuditEntry.entity_key == key)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(stmt))


@dataclass(frozen=True)
class RegistryCounts:
    """How complete the registry is: what the ``aircraft_registry`` asset reports."""

    aircraft: int
    aircraft_without_declared_mtow: int
    aircraft_without_customer: int
    customers: int


def registry_counts(engine: Engine) -> RegistryCounts:
    """Counts of aircraft (with and without a declared MTOW / a customer) and customers."""
    with engine.connect() as conn:
        n_aircraft, no_mtow, no_customer = conn.execute(
            select(
                func.count(),
                func.count().filter(Aircraft.mtow_kg.is_(None)),
                func.count().filter(Aircraft.customer_id.is_(None)),
            ).select_from(Aircraft)
        ).one()
        customers = conn.execute(select(func.count()).select_from(Customer)).scalar_one()
    return RegistryCounts(int(n_aircraft), int(no_mtow), int(no_customer), int(customers))
