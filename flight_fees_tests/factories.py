"""Small factories of billing rows for tests (customers, flights, fee lines).

They insert through the models in their own transaction and return plain values (ids), so a
test never holds ORM objects across sessions.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from flight_fees.lib.db import transaction
from flight_fees.lib.db.models import Customer, FeeLine, Flight

_flight_ids = itertools.count(1_000_001)


def make_customer(
    engine: Engine,
    code: str = "ACME",
    *,
    name: str | None = None,
    billing_frequency: str = "monthly",
    week_end_weekday: int = 6,
    billing_currency: str = "EUR",
    payment_terms_days: int = 30,
    address: str | None = "1 Runway Road\n12345 Airport City",
    email: str | None = None,
) -> int:
    """Insert a customer; returns its id."""
    with transaction(engine) as session:
        customer = Customer(
            code=code,
            name=name or f"{code} Airlines",
            billing_frequency=billing_frequency,
            week_end_weekday=week_end_weekday,
            billing_currency=billing_currency,
            payment_terms_days=payment_terms_days,
            address=address,
            email=email,
        )
        session.add(customer)
        session.flush()
        return customer.id


def make_flight(
    engine: Engine,
    flight_id: int | None = None,
    *,
    flight_date: dt.date = dt.date(2026, 1, 10),
    customer_id: int | None = None,
    callsign: str | None = "ACM123",
    registration: str | None = "FABCD",
    aircraft_type: str | None = "A320",
    origin: str | None = "LFPG",
    destination: str | None = "EGLL",
    map_path: str | None = None,
) -> int:
    """Insert a ``flights`` row; returns the flight id."""
    fid = flight_id if flight_id is not None else next(_flight_ids)
    with transaction(engine) as session:
        session.add(
            Flight(
                flight_id=fid,
                flight_date=flight_date,
                customer_id=customer_id,
                callsign=callsign,
                registration=registration,
                aircraft_type=aircraft_type,
                origin=origin,
                destination=destination,
                mtow_kg=Decimal("78000.0"),
                status="billed",
                map_path=map_path,
            )
        )
    return fid


def make_fee_line(
    engine: Engine,
    customer_id: int | None,
    flight_date: dt.date,
    billing_amount: Decimal | str,
    *,
    flight_id: int | None = None,
    line_no: int | None = None,
    zone_id: str = "EC",
    billing_currency: str = "EUR",
    local_amount: Decimal | str | None = None,
    local_currency: str | None = None,
    fx_rate: Decimal | str = "1",
    **extra: Any,
) -> int:
    """Insert a fee line; returns its id. ``line_no`` defaults to the flight's next one."""
    fid = flight_id if flight_id is not None else next(_flight_ids)
    amount = Decimal(billing_amount)
    entry = dt.datetime.combine(flight_date, dt.time(10, 0), tzinfo=dt.UTC)
    with transaction(engine) as session:
        if line_no is None:
            last = session.execute(
                select(func.max(FeeLine.line_no)).where(FeeLine.flight_id == fid)
            ).scalar()
            line_no = (last or 0) + 1
        values: dict[str, Any] = {
            "flight_id": fid,
            "line_no": line_no,
            "flight_date": flight_date,
            "customer_id": customer_id,
            "zone_id": zone_id,
            "fir_ids": "LFFF,LFEE",
            "entry_time": entry,
            "exit_time": entry + dt.timedelta(minutes=42),
            "distance_km": Decimal("412.500"),
            "mtow_kg": Decimal("78000.0"),
            "service_units": Decimal("2.780000"),
            "unit_rate": Decimal("61.250000"),
            "tariff_id": f"{zone_id}-ROUTE",
            "tariff_version": "2026-01",
            "local_amount": Decimal(local_amount) if local_amount is not None else amount,
            "local_currency": local_currency or billing_currency,
            "fx_rate": Decimal(fx_rate),
            "fx_date": flight_date,
            "billing_amount": amount,
            "billing_currency": billing_currency,
            "interpolated": False,
        }
        values.update(extra)
        line = FeeLine(**values)
        session.add(line)
        session.flush()
        return line.id
