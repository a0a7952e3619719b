"""Customers and aircraft: idempotent loading from DataFrames (the demo), the administration
CSV imports (every bad value reported with its line and field, one transaction per file), the
history of declared MTOWs with the day each takes effect, and the audit of every change. The read
models (customer and aircraft views, audit entries) are in :mod:`.registry_queries`."""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flight_fees.lib.core.money import (
    InvalidAmount,
    InvalidCurrency,
    normalize_currency,
    to_decimal,
)
from flight_fees.lib.core.plausibility import MAX_MTOW_KG
from flight_fees.lib.core.values import is_null
from flight_fees.lib.db.engine import transaction
from flight_fees.lib.db.models import (
    BILLING_FREQUENCIES,
    Aircraft,
    AircraftMtowDeclaration,
    AuditEntry,
    Customer,
)

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
    return None if is_null(v) else v


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
        customers = {c: i for c, i in session.execute(select(Customer.code, Customer.id))}
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


# -- administration: CSV imports, add / list / show, MTOW history, audit ---------------------

#: the ``effective_from`` of a declaration in force since always (migration 0003's backfill)
SINCE_ALWAYS: Final = dt.date(1, 1, 1)
WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CUSTOMER_CSV_HEADER: Final = (
    "code",
    "name",
    "address",
    "tax_id",
    "billing_frequency",
    "week_end_day",
    "billing_currency",
    "payment_terms_days",
)
AIRCRAFT_CSV_HEADER: Final = (
    "registration",
    "icao24",
    "aircraft_type",
    "mtow_kg",
    "effective_from",
    "operator",
)
#: longest payment terms accepted (days)
MAX_PAYMENT_TERMS_DAYS: Final = 365
_REGISTRATION_RE: Final = re.compile(r"^[A-Z0-9-]{2,10}$")
_ICAO24_RE: Final = re.compile(r"^[0-9a-f]{6}$")
_ICAO_TYPE_RE: Final = re.compile(r"^[A-Z0-9]{2,4}$")
_CUSTOMER_DEFAULTS: Final = {
    "billing_frequency": "monthly",
    "week_end_weekday": 6,
    "billing_currency": "EUR",
    "payment_terms_days": 30,
}


@dataclass(frozen=True)
class RowError:
    """A bad value of an import file: its line (1 = header), field and why."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


class ImportRejected(RegistryError):
    """A file with bad rows: nothing of it was applied."""

    def __init__(self, source: str, errors: Sequence[RowError]) -> None:
        self.source = source
        self.errors = list(errors)
        super().__init__(
            f"{source}: {len(self.errors)} bad value(s), nothing imported "
            "(fix them, or import the valid rows with --skip-invalid)"
        )


@dataclass(frozen=True)
class CustomerRecord:
    """One customer as entered (CSV row or ``customers add``); None = not given."""

    code: str
    name: str
    address: str | None = None
    tax_id: str | None = None
    billing_frequency: str | None = None
    week_end_weekday: int | None = None
    billing_currency: str | None = None
    payment_terms_days: int | None = None


@dataclass(frozen=True)
class AircraftRecord:
    """One aircraft as entered; ``mtow_kg`` is declared from ``effective_from`` (None = since
    always); None elsewhere = not given (the stored value stays)."""

    registration: str
    icao24: str | None = None
    aircraft_type: str | None = None
    mtow_kg: Decimal | None = None
    effective_from: dt.date | None = None
    operator: str | None = None


@dataclass
class ImportResult:
    """What an import (or an add) changed; ``errors`` are the rows skipped."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    declarations: int = 0
    errors: list[RowError] = field(default_factory=list)


def _text_or_none(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def parse_customer(
    values: Mapping[str, str | None], line: int = 0
) -> tuple[CustomerRecord | None, list[RowError]]:
    """A :class:`CustomerRecord` from text fields (CSV names, see :data:`CUSTOMER_CSV_HEADER`),
    or the errors of every bad field."""
    errors: list[RowError] = []

    def bad(name: str, message: str) -> None:
        errors.append(RowError(line, name, message))

    code = _text_or_none(values.get("code"))
    if code is None:
        bad("code", "is required")
    elif len(code) > 40 or any(c.isspace() for c in code):
        bad("code", f"{code!r} must be at most 40 characters without blanks")
    name = _text_or_none(values.get("name"))
    if name is None:
        bad("name", "is required")
    elif len(name) > 200:
        bad("name", "must be at most 200 characters")
    tax_id = _text_or_none(values.get("tax_id"))
    if tax_id is not None and len(tax_id) > 40:
        bad("tax_id", "must be at most 40 characters")
    frequency = _text_or_none(values.get("billing_frequency"))
    if frequency is not None:
        frequency = frequency.lower()
        if frequency not in BILLING_FREQUENCIES:
            bad(
                "billing_frequency", f"{frequency!r} is not one of {', '.join(BILLING_FREQUENCIES)}"
            )
    weekday_text = _text_or_none(values.get("week_end_day"))
    weekday = None
    if weekday_text is not None:
        if weekday_text.lower() in WEEKDAYS:
            weekday = WEEKDAYS.index(weekday_text.lower())
        else:
            bad("week_end_day", f"{weekday_text!r} is not a day name (monday..sunday)")
    currency = _text_or_none(values.get("billing_currency"))
    if currency is not None:
        try:
            currency = normalize_currency(currency)
        except InvalidCurrency:
            bad("billing_currency", f"{currency!r} is not a 3-letter currency code")
    terms_text = _text_or_none(values.get("payment_terms_days"))
    terms = None
    if terms_text is not None:
        try:
            terms = int(terms_text)
        except ValueError:
            bad("payment_terms_days", f"{terms_text!r} is not a whole number of days")
        else:
            if not 0 <= terms <= MAX_PAYMENT_TERMS_DAYS:
                bad("payment_terms_days", f"{terms} must be 0 to {MAX_PAYMENT_TERMS_DAYS}")
    if errors:
        return None, errors
    assert code is not None and name is not None
    return (
        CustomerRecord(
            code=code,
            name=name,
            address=_text_or_none(values.get("address")),
            tax_id=tax_id,
            billing_frequency=frequency,
            week_end_weekday=weekday,
            billing_currency=currency,
            payment_terms_days=terms,
        ),
        [],
    )


def parse_aircraft(
    values: Mapping[str, str | None], line: int = 0
) -> tuple[AircraftRecord | None, list[RowError]]:
    """An :class:`AircraftRecord` from text fields (see :data:`AIRCRAFT_CSV_HEADER`), or the
    errors of every bad field; the MTOW must be plausible (:data:`MAX_MTOW_KG`)."""
    errors: list[RowError] = []

    def bad(name: str, message: str) -> None:
        errors.append(RowError(line, name, message))

    registration = _text_or_none(values.get("registration"))
    if registration is None:
        bad("registration", "is required")
    else:
        registration = registration.upper()
        if not _REGISTRATION_RE.match(registration):
            bad("registration", f"{registration!r} must be 2-10 letters, digits or '-'")
    icao24 = _text_or_none(values.get("icao24"))
    if icao24 is not None:
        icao24 = icao24.lower()
        if not _ICAO24_RE.match(icao24):
            bad("icao24", f"{icao24!r} must be 6 hexadecimal digits")
    icao_type = _text_or_none(values.get("aircraft_type"))
    if icao_type is not None:
        icao_type = icao_type.upper()
        if not _ICAO_TYPE_RE.match(icao_type):
            bad("aircraft_type", f"{icao_type!r} must be an ICAO type designator (2-4 characters)")
    mtow_text = _text_or_none(values.get("mtow_kg"))
    mtow = None
    if mtow_text is not None:
        try:
            mtow = to_decimal(mtow_text, what="mtow_kg")
        except InvalidAmount:
            bad("mtow_kg", f"{mtow_text!r} is not a number")
        else:
            if not 0 < mtow <= MAX_MTOW_KG:
                bad(
                    "mtow_kg",
                    f"{mtow_text} kg is implausible "
                    f"(must be above 0 and at most {MAX_MTOW_KG:,} kg)",
                )
    day_text = _text_or_none(values.get("effective_from"))
    day = None
    if day_text is not None:
        try:
            day = dt.date.fromisoformat(day_text)
        except ValueError:
            bad("effective_from", f"{day_text!r} is not a UTC day (YYYY-MM-DD)")
        else:
            if mtow_text is None:
                bad("effective_from", "given without mtow_kg")
    if errors:
        return None, errors
    assert registration is not None
    return (
        AircraftRecord(
            registration=registration,
            icao24=icao24,
            aircraft_type=icao_type,
            mtow_kg=mtow,
            effective_from=day,
            operator=_text_or_none(values.get("operator")),
        ),
        [],
    )


def read_import_csv(path: str | Path, header: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """``(line, {column: text})`` of every data row of ``path``, whose header must hold
    exactly the columns ``header`` (any order, case-blind); :class:`ImportRejected` otherwise."""
    source = str(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise ImportRejected(
            source, [RowError(0, "file", f"not UTF-8 text ({exc.reason})")]
        ) from None
    except OSError as exc:
        raise RegistryError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise ImportRejected(source, [RowError(0, "file", f"not a CSV file: {exc}")]) from None
    if not rows:
        raise ImportRejected(
            source, [RowError(1, "header", f"empty file; expected {','.join(header)}")]
        )
    names = [cell.strip().lower() for cell in rows[0]]
    if sorted(names) != sorted(header):
        missing = [c for c in header if c not in names]
        extra = [c for c in names if c not in header]
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unexpected {', '.join(repr(e) for e in extra)}" if extra else "",
                "duplicate column" if not missing and not extra else "",
            )
            if part
        )
        raise ImportRejected(
            source, [RowError(1, "header", f"must be exactly {','.join(header)} ({detail})")]
        )
    out: list[tuple[int, dict[str, str]]] = []
    for line, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(names):
            raise_or = RowError(line, "row", f"has {len(cells)} field(s), the header {len(names)}")
            out.append((line, {"__error__": str(raise_or.message)}))
            continue
        out.append((line, dict(zip(names, cells, strict=True))))
    return out


def default_actor() -> str:
    """Who makes a change: ``FLIGHT_FEES_ACTOR``, else the login name."""
    actor = os.environ.get("FLIGHT_FEES_ACTOR", "").strip()
    if actor:
        return actor[:120]
    try:
        return getpass.getuser()[:120]
    except Exception:  # no login name (containers)
        return "unknown"


def audit(
    session: Session, actor: str, action: str, entity: str, key: str, details: Mapping[str, Any]
) -> None:
    """Record one change in ``audit_log`` (in the caller's transaction)."""
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            entity=entity,
            entity_key=key[:200],
            details=json.dumps(details, default=str, sort_keys=True),
        )
    )


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {k: [old.get(k), v] for k, v in new.items() if v is not None and old.get(k) != v}


def _apply_customers(
    session: Session, records: Sequence[CustomerRecord], actor: str, result: ImportResult
) -> None:
    codes = [r.code for r in records]
    existing = {
        c.code: c for c in session.scalars(select(Customer).where(Customer.code.in_(codes)))
    }
    for record in records:
        values = {
            "name": record.name,
            "address": record.address,
            "tax_id": record.tax_id,
            "billing_frequency": record.billing_frequency,
            "week_end_weekday": record.week_end_weekday,
            "billing_currency": record.billing_currency,
            "payment_terms_days": record.payment_terms_days,
        }
        row = existing.get(record.code)
        if row is None:
            full = {**_CUSTOMER_DEFAULTS, **{k: v for k, v in values.items() if v is not None}}
            row = Customer(code=record.code, **full)
            session.add(row)
            existing[record.code] = row
            audit(session, actor, "create", "customer", record.code, full)
            result.created += 1
            continue
        changed = _changes({k: getattr(row, k) for k in values}, values)
        if not changed:
            result.unchanged += 1
            continue
        for name, (_old, new) in changed.items():
            setattr(row, name, new)
        audit(session, actor, "update", "customer", record.code, changed)
        result.updated += 1
    session.flush()


def _declarations(session: Session, aircraft_id: int) -> dict[dt.date, AircraftMtowDeclaration]:
    return {
        d.effective_from: d
        for d in session.scalars(
            select(AircraftMtowDeclaration).where(
                AircraftMtowDeclaration.aircraft_id == aircraft_id
            )
        )
    }


def _declare(session: Session, aircraft: Aircraft, day: dt.date, mtow: Decimal, actor: str) -> bool:
    """Record ``mtow`` in force from ``day`` (an existing declaration of that day is replaced);
    ``aircraft.mtow_kg`` follows the latest declaration. False when nothing changed."""
    declared = _declarations(session, aircraft.id)
    if not declared and aircraft.mtow_kg is not None and day != SINCE_ALWAYS:
        # an MTOW written before the history existed stays in force before the new one
        declared[SINCE_ALWAYS] = AircraftMtowDeclaration(
            aircraft_id=aircraft.id, effective_from=SINCE_ALWAYS, mtow_kg=aircraft.mtow_kg,
            recorded_by=actor,
        )  # fmt: skip
        session.add(declared[SINCE_ALWAYS])
    current = declared.get(day)
    if current is not None and current.mtow_kg == mtow:
        return False
    old = current.mtow_kg if current is not None else None
    if current is None:
        current = AircraftMtowDeclaration(
            aircraft_id=aircraft.id, effective_from=day, mtow_kg=mtow, recorded_by=actor
        )
        session.add(current)
        declared[day] = current
    else:
        current.mtow_kg = mtow
        current.recorded_by = actor
    aircraft.mtow_kg = declared[max(declared)].mtow_kg
    audit(
        session, actor, "declare_mtow", "aircraft", aircraft.registration,
        {"effective_from": day if day != SINCE_ALWAYS else "always", "mtow_kg": [old, mtow]},
    )  # fmt: skip
    return True


def _apply_aircraft(
    session: Session, records: Sequence[AircraftRecord], actor: str, result: ImportResult
) -> None:
    customers = dict(session.execute(select(Customer.code, Customer.id)).tuples().all())
    regs = sorted({r.registration for r in records})
    existing = {
        a.registration: a
        for a in session.scalars(select(Aircraft).where(Aircraft.registration.in_(regs)))
    }
    touched: dict[str, str] = {}  # registration -> created / updated / unchanged
    for record in records:
        values = {
            "icao24": record.icao24,
            "icao_type": record.aircraft_type,
            "customer_id": customers[record.operator] if record.operator else None,
        }
        row = existing.get(record.registration)
        if row is None:
            row = Aircraft(registration=record.registration, **values)
            session.add(row)
            session.flush()
            existing[record.registration] = row
            audit(
                session, actor, "create", "aircraft", record.registration,
                {"icao24": record.icao24, "icao_type": record.aircraft_type,
                 "operator": record.operator},
            )  # fmt: skip
            touched[record.registration] = "created"
        else:
            changed = _changes({k: getattr(row, k) for k in values}, values)
            if changed:
                for name, (_old, new) in changed.items():
                    setattr(row, name, new)
                if "customer_id" in changed:
                    ids = {v: k for k, v in customers.items()}
                    changed["operator"] = [ids.get(changed["customer_id"][0]), record.operator]
                    del changed["customer_id"]
                audit(session, actor, "update", "aircraft", record.registration, changed)
                touched[record.registration] = "updated"
            else:
                touched.setdefault(record.registration, "unchanged")
        day = record.effective_from or SINCE_ALWAYS
        if record.mtow_kg is not None and _declare(session, row, day, record.mtow_kg, actor):
            result.declarations += 1
            if touched[record.registration] == "unchanged":
                touched[record.registration] = "updated"
        session.flush()
    for state in touched.values():
        setattr(result, state, getattr(result, state) + 1)


def _check_customer_rows(
    rows: Sequence[tuple[int, Mapping[str, str | None]]],
) -> tuple[list[CustomerRecord], list[RowError]]:
    records: list[CustomerRecord] = []
    errors: list[RowError] = []
    first: dict[str, int] = {}
    for line, values in rows:
        if (unreadable := values.get("__error__")) is not None:
            errors.append(RowError(line, "row", unreadable))
            continue
        record, bad = parse_customer(values, line)
        if record is not None and record.code in first:
            bad = [RowError(line, "code", f"{record.code!r} repeats line {first[record.code]}")]
        errors += bad
        if record is not None and not bad:
            first[record.code] = line
            records.append(record)
    return records, errors


def _check_aircraft_rows(
    session: Session, rows: Sequence[tuple[int, Mapping[str, str | None]]]
) -> tuple[list[AircraftRecord], list[RowError]]:
    customers = set(session.execute(select(Customer.code)).scalars())
    records: list[AircraftRecord] = []
    errors: list[RowError] = []
    seen: dict[tuple[str, dt.date | None], int] = {}
    attributes: dict[str, dict[str, tuple[str, int]]] = {}
    for line, values in rows:
        if (unreadable := values.get("__error__")) is not None:
            errors.append(RowError(line, "row", unreadable))
            continue
        record, bad = parse_aircraft(values, line)
        if record is not None:
            if record.operator is not None and record.operator not in customers:
                bad.append(
                    RowError(
                        line,
                        "operator",
                        f"{record.operator!r} is not a customer code (import the customers first)",
                    )
                )
            key = (record.registration, record.effective_from)
            if record.mtow_kg is not None and key in seen:
                bad.append(
                    RowError(
                        line,
                        "effective_from",
                        f"a second MTOW for {record.registration} from the same day "
                        f"(line {seen[key]})",
                    )
                )
            known = attributes.setdefault(record.registration, {})
            for name in ("icao24", "aircraft_type", "operator"):
                value = getattr(record, name)
                if value is None:
                    continue
                if name in known and known[name][0] != value:
                    bad.append(
                        RowError(
                            line,
                            name,
                            f"{value!r} contradicts {known[name][0]!r} of line "
                            f"{known[name][1]} for {record.registration}",
                        )
                    )
        errors += bad
        if record is not None and not bad:
            if record.mtow_kg is not None:
                seen[(record.registration, record.effective_from)] = line
            for name in ("icao24", "aircraft_type", "operator"):
                value = getattr(record, name)
                if value is not None:
                    attributes[record.registration].setdefault(name, (value, line))
            records.append(record)
    return records, errors


def import_customers(
    engine: Engine, path: str | Path, *, actor: str, skip_invalid: bool = False
) -> ImportResult:
    """Create or update the customers of a CSV file (header :data:`CUSTOMER_CSV_HEADER`) in
    one transaction. Every bad value is reported (:class:`ImportRejected`, nothing applied)
    unless ``skip_invalid``: then the valid rows are applied and the bad ones returned."""
    rows = read_import_csv(path, CUSTOMER_CSV_HEADER)
    records, errors = _check_customer_rows(rows)
    if errors and not skip_invalid:
        raise ImportRejected(str(path), errors)
    result = ImportResult(errors=errors)
    with transaction(engine) as session:
        _apply_customers(session, records, actor, result)
    return result


def import_aircraft(
    engine: Engine, path: str | Path, *, actor: str, skip_invalid: bool = False
) -> ImportResult:
    """Create or update the aircraft of a CSV file (header :data:`AIRCRAFT_CSV_HEADER`) and
    record their MTOW declarations, in one transaction; errors as :func:`import_customers`."""
    rows = read_import_csv(path, AIRCRAFT_CSV_HEADER)
    with transaction(engine) as session:
        records, errors = _check_aircraft_rows(session, rows)
        if errors and not skip_invalid:
            raise ImportRejected(str(path), errors)
        result = ImportResult(errors=errors)
        _apply_aircraft(session, records, actor, result)
    return result


def add_customer(engine: Engine, values: Mapping[str, str | None], *, actor: str) -> ImportResult:
    """Create or update one customer from text fields (as a CSV row)."""
    records, errors = _check_customer_rows([(0, dict(values))])
    if errors:
        raise RegistryError("; ".join(f"{e.field}: {e.message}" for e in errors))
    result = ImportResult()
    with transaction(engine) as session:
        _apply_customers(session, records, actor, result)
    return result


def add_aircraft(engine: Engine, values: Mapping[str, str | None], *, actor: str) -> ImportResult:
    """Create or update one aircraft (and declare its MTOW) from text fields (as a CSV row)."""
    with transaction(engine) as session:
        records, errors = _check_aircraft_rows(session, [(0, dict(values))])
        if errors:
            raise RegistryError("; ".join(f"{e.field}: {e.message}" for e in errors))
        result = ImportResult()
        _apply_aircraft(session, records, actor, result)
    return result


def mtow_in_force(
    declarations: Sequence[tuple[dt.date, Decimal]], day: dt.date | None, fallback: Decimal | None
) -> Decimal | None:
    """The MTOW declared for ``day``: the declaration with the latest ``effective_from`` on or
    before it; ``fallback`` (the aircraft's current MTOW) when there is no history or no day;
    None when every declaration takes effect after ``day``."""
    if not declarations or day is None:
        return fallback
    best: tuple[dt.date, Decimal] | None = None
    for effective, mtow in declarations:
        if effective <= day and (best is None or effective > best[0]):
            best = (effective, mtow)
    return best[1] if best else None
