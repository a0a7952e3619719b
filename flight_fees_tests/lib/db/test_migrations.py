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
