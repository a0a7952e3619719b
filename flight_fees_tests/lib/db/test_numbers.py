"""Exact, finite numbers in the billing database (``ExactDecimal`` columns and their CHECKs).

Bad values are written with raw SQL, past the ORM: only the database's CHECKs stand between
them and the stored invoices.
"""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal

import pytest
from sqlalchemy import Numeric, select, text
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from flight_fees.lib.billing.fee_lines import fee_line_totals
from flight_fees.lib.db import transaction
from flight_fees.lib.db.models import EXACT_COLUMNS, Base, ExactDecimal, FeeLine, Invoice
from flight_fees_tests.factories import make_customer, make_fee_line, make_flight

#: values that are no number of a billing record; SQLite also stores a REAL (inexact) as is
BAD_VALUES = ["'NaN'", "'Infinity'", "'-Infinity'", "'abc'", "9e999"]
#: row keys changed when a valid row is copied with one bad value
UNIQUE_OVERRIDES = {
    "fee_lines": {"flight_id": "flight_id + 1000"},
    "invoices": {"number": "'INV-BAD'", "status": "'VOID'"},
    "flights": {"flight_id": "flight_id + 1000"},
    "aircraft": {"registration": "'DBAD'"},
    "aircraft_mtow_declarations": {"effective_from": "'2027-01-01'"},
}


@pytest.fixture
def valid_rows(engine) -> dict[str, int]:
    """One valid row in every table with an ExactDecimal column; table -> row id."""
    customer = make_customer(engine)
    flight = make_flight(engine, customer_id=customer)
    line = make_fee_line(engine, customer, dt.date(2026, 1, 10), "100.00", flight_id=flight)
    with engine.begin() as conn:
        invoice = conn.execute(
            text(
                "INSERT INTO invoices (number, customer_id, period_start, period_end, issue_date,"
                " due_date, currency, total_amount, line_count, status) VALUES ('INV-1', :c,"
                " '2026-01-01', '2026-01-31', '2026-02-01', '2026-03-01', 'EUR', :t, 1,"
                " 'PENDING') RETURNING id"
            ),
            {"c": customer, "t": 100 if engine.dialect.name == "postgresql" else 100_000},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO credit_notes (number, invoice_id, amount, currency) "
                "VALUES ('CN-1', :i, 0, 'EUR')"
            ),
            {"i": invoice},
        )
        conn.execute(
            text("INSERT INTO aircraft (registration, mtow_kg) VALUES ('FABCD', :m)"),
            {"m": 78000 if engine.dialect.name == "postgresql" else 780_000},
        )
        conn.execute(
            text(
                "INSERT INTO aircraft_mtow_declarations (aircraft_id, effective_from, mtow_kg) "
                "SELECT id, '2026-01-01', mtow_kg FROM aircraft"
            )
        )
    return {"fee_lines": line, "invoices": invoice, "flights": flight}


def _write_raw(conn, table: str, column: str, value: str) -> None:
    """Copy the table's valid row with ``column = value`` (credit notes: update it)."""
    if table == "credit_notes":
        conn.execute(text(f"UPDATE credit_notes SET {column} = {value}"))
        return
    overrides = {**UNIQUE_OVERRIDES[table], column: value}
    columns = [c.name for c in Base.metadata.tables[table].columns if c.name != "id"]
    select_list = ", ".join(overrides.get(c, c) for c in columns)
    conn.execute(
        text(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select_list} FROM {table}")
    )


@pytest.mark.parametrize("value", BAD_VALUES)
@pytest.mark.parametrize(("table", "column"), [(t, c) for t, c, _cond, _name in EXACT_COLUMNS])
def test_database_refuses_non_finite_and_non_numbers(engine, valid_rows, table, column, value):
    with pytest.raises((IntegrityError, DataError)), engine.begin() as conn:
        _write_raw(conn, table, column, value)


@pytest.mark.parametrize(("table", "column"), [(t, c) for t, c, _cond, _name in EXACT_COLUMNS])
def test_a_real_is_never_stored_inexactly(engine, valid_rows, table, column):
    """SQLite would keep 1.5 as a binary REAL: refused there; PostgreSQL's NUMERIC stores the
    literal exactly."""
    if engine.dialect.name == "sqlite":
        with pytest.raises(IntegrityError), engine.begin() as conn:
            _write_raw(conn, table, column, "1.5")
        return
    with engine.begin() as conn:
        _write_raw(conn, table, column, "1.5")
        stored = conn.execute(text(f"SELECT {column} FROM {table} WHERE {column} = 1.5")).scalars()
        assert set(stored) == {Decimal("1.5")}


def test_a_valid_raw_copy_is_accepted(engine, valid_rows):
    """The raw writes above fail because of the value, not because of the copying."""
    for table, column, _cond, _name in EXACT_COLUMNS:
        with engine.connect() as conn:
            before = conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            _write_raw(conn, table, column, column)
            after = conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            conn.rollback()
        assert after == before + (table != "credit_notes")


def test_sums_are_exact(engine):
    amounts = [Decimal(a) for a in ("0.10", "0.20", "9999.90", "0.30")]
    assert sum(float(a) for a in amounts) != float(sum(amounts))  # floats would drift
    customer = make_customer(engine)
    ids = [
        make_fee_line(engine, customer, dt.date(2026, 1, 10), amount, flight_id=9_000 + i)
        for i, amount in enumerate(amounts)
    ]
    assert ids
    assert fee_line_totals(engine, [9_000 + i for i in range(len(amounts))]) == {
        "EUR": sum(amounts)
    }
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT SUM(billing_amount) FROM fee_lines")).scalar_one()
    assert Decimal(raw) == sum(amounts) * (1000 if engine.dialect.name == "sqlite" else 1)


def test_values_round_trip_exactly_as_decimal(engine):
    customer = make_customer(engine)
    line = make_fee_line(
        engine,
        customer,
        dt.date(2026, 1, 10),
        "12345678901.235",
        fx_rate="0.0000123457",
        entry_lat=Decimal("-45.123456"),
        flown_km=Decimal("0.001"),
    )
    with engine.connect() as conn:
        row = conn.execute(
            select(
                FeeLine.billing_amount, FeeLine.fx_rate, FeeLine.entry_lat, FeeLine.flown_km
            ).where(FeeLine.id == line)
        ).one()
    assert tuple(row) == (
        Decimal("12345678901.235"),
        Decimal("0.0000123457"),
        Decimal("-45.123456"),
        Decimal("0.001"),
    )
    assert all(isinstance(v, Decimal) for v in row)


@pytest.mark.parametrize("value", [Decimal("NaN"), float("inf"), "abc", Decimal("1e15"), True])
def test_exact_decimal_refuses_before_the_database(engine, value):
    customer = make_customer(engine)
    with pytest.raises(StatementError, match="number|fit"):
        make_fee_line(engine, customer, dt.date(2026, 1, 10), "1", flown_km=value)


def test_exact_decimal_rounds_half_up_to_the_scale():
    column = ExactDecimal(18, 3)
    assert column.exact(Decimal("1.0005")) == Decimal("1.001")
    assert column.exact(0.1) == Decimal("0.100")
    assert column.exact(2) == Decimal("2.000")


def test_every_numeric_column_is_exact_and_checked():
    numeric = {
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, Numeric | ExactDecimal)
    }
    assert all(
        isinstance(Base.metadata.tables[t].columns[c].type, ExactDecimal) for t, c in numeric
    )
    assert numeric == {(t, c) for t, c, _cond, _name in EXACT_COLUMNS}
    migration = importlib.import_module("flight_fees.migrations.versions.0002_exact_finite_numbers")
    # 0002 made these exact; later migrations may add columns (with their own CHECKs)
    frozen = [(t, c, cond, name) for t, c, _s, _d, cond, name, _old in migration.COLUMNS]
    assert set(frozen) <= set(EXACT_COLUMNS)
    for t, c, scale, digits, *_ in migration.COLUMNS:
        column_type = Base.metadata.tables[t].columns[c].type
        assert (column_type.precision, column_type.scale) == (digits + scale, scale)


def test_invoice_totals_are_decimal(engine):
    customer = make_customer(engine)
    with transaction(engine) as session:
        session.add(
            Invoice(
                number="INV-2",
                customer_id=customer,
                period_start=dt.date(2026, 1, 1),
                period_end=dt.date(2026, 1, 31),
                issue_date=dt.date(2026, 2, 1),
                due_date=dt.date(2026, 3, 1),
                currency="EUR",
                total_amount=Decimal("21437.8"),
                line_count=2,
            )
        )
    with engine.connect() as conn:
        assert conn.execute(select(Invoice.total_amount)).scalar_one() == Decimal("21437.800")
