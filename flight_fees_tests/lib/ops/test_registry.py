"""Administration of customers and aircraft (lib.registry): CSV imports that report every bad
value and apply nothing, --skip-invalid, the MTOW history by effective day, the audit log."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import select

from flight_fees.lib.charging.attributes import AircraftTableSource, flight_dates_of
from flight_fees.lib.db.models import Aircraft, AircraftMtowDeclaration, AuditEntry, Customer
from flight_fees.lib.ops.registry import (
    AIRCRAFT_CSV_HEADER,
    CUSTOMER_CSV_HEADER,
    SINCE_ALWAYS,
    ImportRejected,
    RegistryError,
    add_aircraft,
    import_aircraft,
    import_customers,
    load_aircraft,
    mtow_in_force,
)
from flight_fees.lib.ops.registry_queries import list_aircraft

CUSTOMERS = (
    ",".join(CUSTOMER_CSV_HEADER) + "\n"
    'LH,Lufthansa,"Venloer Str. 151, Köln",DE122119035,weekly,sunday,EUR,30\n'
    "BA,British Airways,,GB123,monthly,,gbp,45\n"
)
AIRCRAFT = (
    ",".join(AIRCRAFT_CSV_HEADER) + "\n"
    "D-AIRX,3c65a1,A321,89000,,LH\n"
    "D-AIRX,3c65a1,A321,93500,2026-10-28,LH\n"
    "G-EUPT,400a0b,A319,,,BA\n"
)


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _customers(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        return {
            r.code: tuple(r)
            for r in conn.execute(
                select(
                    Customer.code, Customer.name, Customer.tax_id, Customer.billing_frequency,
                    Customer.week_end_weekday, Customer.billing_currency,
                    Customer.payment_terms_days,
                )
            )
        }  # fmt: skip


def test_customers_import_creates_updates_and_audits(engine, tmp_path):
    result = import_customers(engine, _write(tmp_path, "c.csv", CUSTOMERS), actor="alice")
    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
    assert _customers(engine) == {
        "LH": ("LH", "Lufthansa", "DE122119035", "weekly", 6, "EUR", 30),
        "BA": ("BA", "British Airways", "GB123", "monthly", 6, "GBP", 45),
    }
    again = import_customers(
        engine,
        _write(
            tmp_path,
            "c2.csv",
            CUSTOMERS.replace("GB123,monthly,,gbp,45", "GB123,weekly,friday,GBP,45"),
        ),
        actor="bob",
    )
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    assert _customers(engine)["BA"][3:5] == ("weekly", 4)
    with engine.connect() as conn:
        entries = conn.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.entity_key, AuditEntry.details)
            .where(AuditEntry.entity == "customer")
            .order_by(AuditEntry.id)
        ).all()
    assert [(e.actor, e.action, e.entity_key) for e in entries] == [
        ("alice", "create", "LH"), ("alice", "create", "BA"), ("bob", "update", "BA"),
    ]  # fmt: skip
    assert json.loads(entries[-1].details) == {
        "billing_frequency": ["monthly", "weekly"], "week_end_weekday": [6, 4],
    }  # fmt: skip


def test_a_file_with_bad_rows_reports_each_and_applies_nothing(engine, tmp_path):
    bad = (
        ",".join(CUSTOMER_CSV_HEADER) + "\n"
        "LH,Lufthansa,,,weekly,sunday,EUR,30\n"
        "XX,,,,daily,funday,EURO,-3\n"
        "LH,Again,,,monthly,,EUR,30\n"
    )
    with pytest.raises(ImportRejected) as info:
        import_customers(engine, _write(tmp_path, "bad.csv", bad), actor="t")
    found = {(e.line, e.field) for e in info.value.errors}
    assert found == {
        (3, "name"), (3, "billing_frequency"), (3, "week_end_day"), (3, "billing_currency"),
        (3, "payment_terms_days"), (4, "code"),
    }  # fmt: skip
    assert _customers(engine) == {}
    skipped = import_customers(engine, tmp_path / "bad.csv", actor="t", skip_invalid=True)
    assert skipped.created == 1 and len(skipped.errors) == 6
    assert set(_customers(engine)) == {"LH"}


def test_header_must_be_exact(engine, tmp_path):
    path = _write(tmp_path, "h.csv", "code,name,currency\nLH,x,EUR\n")
    with pytest.raises(ImportRejected, match="nothing imported") as info:
        import_customers(engine, path, actor="t")
    assert info.value.errors[0].line == 1
    assert "missing address" in info.value.errors[0].message


def test_aircraft_import_keeps_the_mtow_history(engine, tmp_path):
    import_customers(engine, _write(tmp_path, "c.csv", CUSTOMERS), actor="t")
    result = import_aircraft(engine, _write(tmp_path, "a.csv", AIRCRAFT), actor="t")
    assert (result.created, result.declarations) == (2, 2)
    (airx,) = list_aircraft(engine, registration="d-airx")
    assert airx.mtow_kg == Decimal("93500.0")  # the latest declaration
    assert [(d.effective_from, d.mtow_kg) for d in airx.declarations] == [
        (None, Decimal("89000.0")), (dt.date(2026, 10, 28), Decimal("93500.0")),
    ]  # fmt: skip
    # re-importing the same file changes nothing
    again = import_aircraft(engine, tmp_path / "a.csv", actor="t")
    assert (again.created, again.updated, again.unchanged, again.declarations) == (0, 0, 2, 0)
    # a correction of one declaration replaces it and is audited
    add_aircraft(
        engine, {"registration": "D-AIRX", "mtow_kg": "94000", "effective_from": "2026-10-28"},
        actor="carol",
    )  # fmt: skip
    with engine.connect() as conn:
        declared = conn.execute(
            select(
                AircraftMtowDeclaration.effective_from, AircraftMtowDeclaration.mtow_kg
            ).order_by(AircraftMtowDeclaration.effective_from)
        ).all()
        last = conn.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.entity_key, AuditEntry.details)
            .order_by(AuditEntry.id.desc())
            .limit(1)
        ).one()
    assert [tuple(r) for r in declared] == [
        (SINCE_ALWAYS, Decimal("89000.0")), (dt.date(2026, 10, 28), Decimal("94000.0")),
    ]  # fmt: skip
    assert (last.actor, last.action, last.entity_key) == ("carol", "declare_mtow", "D-AIRX")
    assert json.loads(last.details)["mtow_kg"] == ["93500.0", "94000"]


def test_aircraft_rows_are_checked_against_limits_and_customers(engine, tmp_path):
    import_customers(engine, _write(tmp_path, "c.csv", CUSTOMERS), actor="t")
    bad = (
        ",".join(AIRCRAFT_CSV_HEADER) + "\n"
        "D-AIRX,3c65a1,A321,2000000,,LH\n"  # above the plausible MTOW
        "D-AIRY,zz,A321,abc,2026-10-28,LH\n"
        "D-AIRZ,,A321,,2026-10-28,NOPE\n"  # effective_from without MTOW; unknown operator
        "D AIR,,,,,\n"
    )
    with pytest.raises(ImportRejected) as info:
        import_aircraft(engine, _write(tmp_path, "a.csv", bad), actor="t")
    found = {(e.line, e.field) for e in info.value.errors}
    assert found == {
        (2, "mtow_kg"), (3, "icao24"), (3, "mtow_kg"), (4, "effective_from"),
        (5, "registration"),
    }  # fmt: skip
    assert "implausible" in str(info.value.errors[0])
    unknown = ",".join(AIRCRAFT_CSV_HEADER) + "\nD-AIRZ,,A321,,,NOPE\n"
    with pytest.raises(ImportRejected, match="nothing imported") as info:
        import_aircraft(engine, _write(tmp_path, "b.csv", unknown), actor="t")
    assert [(e.line, e.field) for e in info.value.errors] == [(2, "operator")]
    with engine.connect() as conn:
        assert conn.execute(select(Aircraft.id)).first() is None
    with pytest.raises(RegistryError, match="mtow_kg"):
        add_aircraft(engine, {"registration": "D-AIRX", "mtow_kg": "-1"}, actor="t")


def test_mtow_in_force():
    history = [(SINCE_ALWAYS, Decimal(1)), (dt.date(2026, 10, 28), Decimal(2))]
    assert mtow_in_force(history, dt.date(2026, 10, 27), Decimal(9)) == Decimal(1)
    assert mtow_in_force(history, dt.date(2026, 10, 28), Decimal(9)) == Decimal(2)
    assert mtow_in_force(history, None, Decimal(9)) == Decimal(9)
    assert mtow_in_force([], dt.date(2026, 10, 28), Decimal(9)) == Decimal(9)
    assert mtow_in_force(history[1:], dt.date(2026, 10, 27), Decimal(9)) is None


def test_aircraft_table_source_gives_the_mtow_of_the_flight_day(engine, tmp_path):
    import_customers(engine, _write(tmp_path, "c.csv", CUSTOMERS), actor="t")
    import_aircraft(engine, _write(tmp_path, "a.csv", AIRCRAFT), actor="t")
    load_aircraft(  # written the demo's way: an MTOW without history
        engine,
        pd.DataFrame([{"registration": "G-EUPT", "mtow_kg": 75500.0, "customer_code": "BA"}]),
    )
    flights = pd.DataFrame(
        {
            "flight_id": [1, 2, 3],
            "flight_date": [dt.date(2026, 10, 27), dt.date(2026, 10, 28), dt.date(2026, 10, 27)],
            "registration": ["D-AIRX", "D-AIRX", "G-EUPT"],
        }
    )
    source = AircraftTableSource(engine, flight_dates=flight_dates_of(flights))
    found = source.lookup(flights).set_index("flight_id")["mtow_kg"].to_dict()
    assert found == {1: 89000.0, 2: 93500.0, 3: 75500.0}
    tracks = pd.DataFrame(
        {
            "flight_id": [5, 5],
            "ts": pd.to_datetime(["2026-10-28 23:50", "2026-10-29 00:10"], utc=True),
        }
    )
    assert flight_dates_of(tracks) == {5: dt.date(2026, 10, 28)}
