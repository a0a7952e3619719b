"""Migration 0003: an MTOW stored before it becomes a declaration in force since always; the
downgrade drops the history, the audit log and customers.tax_id."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import inspect, select, text

from flight_fees.lib.db import current_revision, downgrade, head_revision, make_engine, upgrade
from flight_fees.lib.db.models import AircraftMtowDeclaration
from flight_fees.lib.ops.registry import SINCE_ALWAYS
from flight_fees_tests.lib.db.test_migrations import empty_url  # noqa: F401 (fixture)


def test_0003_keeps_the_stored_mtow_as_the_first_declaration(empty_url):  # noqa: F811
    engine = make_engine(empty_url)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO aircraft (registration, mtow_kg) VALUES ('D-AIRX', 785000)"))
        conn.execute(text("INSERT INTO aircraft (registration) VALUES ('D-AIRY')"))
    upgrade(engine, "0003")
    with engine.connect() as conn:
        rows = conn.execute(
            select(AircraftMtowDeclaration.effective_from, AircraftMtowDeclaration.mtow_kg)
        ).all()
    stored = Decimal("78500.0") if engine.dialect.name == "sqlite" else Decimal("785000.0")
    assert [tuple(r) for r in rows] == [(SINCE_ALWAYS, stored)]
    assert "tax_id" in {c["name"] for c in inspect(engine).get_columns("customers")}
    downgrade(engine, "0002")
    tables = set(inspect(engine).get_table_names())
    assert not {"aircraft_mtow_declarations", "audit_log"} & tables
    assert "tax_id" not in {c["name"] for c in inspect(engine).get_columns("customers")}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()
