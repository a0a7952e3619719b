from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from flight_fees.lib.db import current_revision, downgrade, head_revision, make_engine, upgrade
from flight_fees.lib.db.models import Base


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    from flight_fees_tests.pg import create_database

    server = request.getfixturevalue("postgres_server_url")
    return create_database(server, f"ff_migr_{tmp_path.name[-20:].lower()}")


def test_upgrade_from_empty_creates_every_model_table_and_downgrade_works(empty_url):
    engine = make_engine(empty_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    downgrade(engine, "-1")
    assert current_revision(engine) != head_revision()
    upgrade(engine)  # and up again
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_schema_matches_models(engine):
    """Autogenerate finds nothing to do: the migrations and the models agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO customers (code, name, billing_frequency, week_end_weekday, billing_currency,"
        " payment_terms_days) VALUES ('C1', 'x', 'weekly', 6, 'eur', 30)",
        "INSERT INTO customers (code, name, billing_frequency, week_end_weekday, billing_currency,"
        " payment_terms_days) VALUES ('C1', 'x', 'daily', 6, 'EUR', 30)",
        "INSERT INTO customers (code, name, billing_frequency, week_end_weekday, billing_currency,"
        " payment_terms_days) VALUES ('C1', 'x', 'weekly', 7, 'EUR', 30)",
        "INSERT INTO aircraft (registration, icao_type) VALUES ('D-AIRX', 'a320')",
        "INSERT INTO aircraft (registration, icao24) VALUES ('D-AIRX', '3C65A')",
        "INSERT INTO aircraft (registration, mtow_kg) VALUES ('D-AIRX', -1)",
        "INSERT INTO flight_processing_queue (flight_id, priority, priority_rank, status, attempts)"
        " VALUES (1, 'urgent', 0, 'queued', 0)",
        "INSERT INTO flight_processing_queue (flight_id, priority, priority_rank, status, attempts)"
        " VALUES (1, 'high', 0, 'done', 0)",
    ],
)
def test_check_constraints_reject_bad_rows(engine, sql):
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(sql))


_CUSTOMER = (
    "INSERT INTO customers (code, name, billing_frequency, week_end_weekday, billing_currency,"
    " payment_terms_days) VALUES ('C1', 'x', 'weekly', 6, 'EUR', 30)"
)


def _line(flight_id: int, amount: str) -> str:
    return (
        "INSERT INTO fee_lines (flight_id, line_no, flight_date, customer_id, zone_id, fir_ids,"
        " entry_time, exit_time, entry_lat, distance_km, tariff_id, tariff_version,"
        " local_amount, local_currency, fx_rate, billing_amount, billing_currency,"
        f" interpolated) VALUES ({flight_id}, 1, '2026-01-10', 1, 'LF', 'LFFF',"
        " '2026-01-10 10:00:00', '2026-01-10 11:00:00', -45.123456, 412.5, 't', 'v',"
        f" {amount}, 'EUR', 1.0812, {amount}, 'EUR', false)"
    )


def test_0002_converts_existing_numbers_exactly(empty_url):
    """Rows written under 0001 (SQLite: binary REALs) read back as the exact decimals."""
    from decimal import Decimal

    from sqlalchemy import func, select

    from flight_fees.lib.db.models import FeeLine

    engine = make_engine(empty_url)
    upgrade(engine, "0001")
    amounts = ["0.1", "0.2", "9999.9", "0.3"]
    with engine.begin() as conn:
        conn.execute(text(_CUSTOMER))
        for i, amount in enumerate(amounts):
            conn.execute(text(_line(i + 1, amount)))
        before = conn.execute(text("SELECT SUM(billing_amount) FROM fee_lines")).scalar_one()
    if engine.dialect.name == "sqlite":
        assert before != 10000.5  # the REAL sum of 0001 drifts
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            select(FeeLine.billing_amount, FeeLine.fx_rate, FeeLine.entry_lat).order_by(
                FeeLine.flight_id
            )
        ).all()
        total = conn.execute(select(func.sum(FeeLine.billing_amount))).scalar_one()
    assert [r.billing_amount for r in rows] == [Decimal(a) for a in amounts]
    assert {(r.fx_rate, r.entry_lat) for r in rows} == {(Decimal("1.0812"), Decimal("-45.123456"))}
    assert total == Decimal("10000.5")
    engine.dispose()


def test_0002_refuses_rows_it_cannot_convert(empty_url):
    """A NaN amount (PostgreSQL and SQLite accepted it under 0001) stops the upgrade with the
    row named; nothing is half-converted."""
    engine = make_engine(empty_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text(_CUSTOMER))
        conn.execute(text(_line(7, "12.5")))
        conn.execute(text(_line(8, "'NaN'")))
    with pytest.raises(Exception, match=r"fee_lines id=2: billing_amount = 'NaN'"):
        upgrade(engine)
    assert current_revision(engine) == "0001"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM fee_lines WHERE flight_id = 8"))
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()
