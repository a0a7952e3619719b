"""Customers and aircraft: idempotent loading from DataFrames (CSV files, the demo)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flight_fees.lib.db.engine import transaction
from flight_fees.lib.db.models import Aircraft, Customer
from flight_fees.lib.money import InvalidAmount, to_decimal
from flight_fees.lib.plausibility import MAX_MTOW_KG

CUSTOMER_COLUMNS = (
    "code",
    "name",
    "billing_frequency",
    "week_end_weekday",
    "billing_currency",
    "payment_terms_days",
    "email",
    "address",
)
AIRCRAFT_COLUMNS = ("registration", "icao24", "icao_type", "mtow_kg", "customer_code", "flags")


class RegistryError(ValueError):
    pass


def _value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return v


def _upsert(session: Session, model: Any, rows: list[dict[str, Any]], key: str) -> int:
    if not rows:
        return 0
    insert_fn = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    stmt = insert_fn(model).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[key], set_={c: stmt.excluded[c] for c in rows[0] if c != key}
    )
    session.execute(stmt)
    return len(rows)


def _mtow(value: Any, row: int) -> Decimal | None:
    """A declared MTOW (kg): missing, or a positive plausible number; :class:`RegistryError`
    naming the row otherwise."""
    value = _value(value)
    if value is None:
        return None
    try:
        mtow = to_decimal(value, what="mtow_kg")
    except InvalidAmount as exc:
        raise RegistryError(f"aircraft row {row}: {exc}") from None
    if not 0 < mtow <= MAX_MTOW_KG:
        raise RegistryError(
            f"aircraft row {row}: mtow_kg {value!r} must be positive and at most {MAX_MTOW_KG:,} kg"
        )
    return mtow


def load_customers(engine: Engine, frame: pd.DataFrame) -> int:
    """Insert or update customers by ``code``."""
    missing = {"code", "name"} - set(frame.columns)
    if missing:
        raise RegistryError(f"customers: missing column(s) {', '.join(sorted(missing))}")
    rows = []
    for rec in frame.to_dict("records"):
        row = {c: _value(rec.get(c)) for c in CUSTOMER_COLUMNS if c in frame.columns}
        row["code"] = str(row["code"]).strip()
        if "billing_currency" in row and row["billing_currency"]:
            row["billing_currency"] = str(row["billing_currency"]).strip().upper()
        for c in ("week_end_weekday", "payment_terms_days"):
            if row.get(c) is not None:
                row[c] = int(row[c])
        rows.append(row)
    with transaction(engine) as session:
        return _upsert(session, Customer, rows, "code")


def load_aircraft(engine: Engine, frame: pd.DataFrame) -> int:
    """Insert or update aircraft by ``registration``; ``customer_code`` must name a customer."""
    if "registration" not in frame.columns:
        raise RegistryError("aircraft: missing column registration")
    with transaction(engine) as session:
        customers = dict(session.execute(select(Customer.code, Customer.id)).all())
        rows = []
        for i, rec in enumerate(frame.to_dict("records"), start=2):
            code = _value(rec.get("customer_code"))
            if code is not None and code not in customers:
                raise RegistryError(f"aircraft row {i}: unknown customer_code {code!r}")
            mtow = _mtow(rec.get("mtow_kg"), i)
            rows.append(
                {
                    "registration": str(rec["registration"]).strip().upper(),
                    "icao24": (
                        str(_value(rec.get("icao24"))).lower()
                        if _value(rec.get("icao24"))
                        else None
                    ),
                    "icao_type": (
                        str(_value(rec.get("icao_type"))).upper()
                        if _value(rec.get("icao_type"))
                        else None
                    ),
                    "mtow_kg": mtow,
                    "customer_id": customers.get(code) if code is not None else None,
                    "flags": _value(rec.get("flags")),
                }
            )
        return _upsert(session, Aircraft, rows, "registration")
