"""``flight-fees customers / aircraft``: the administration commands, and the acceptance path
on PostgreSQL from an empty database: db upgrade -> customers import -> aircraft import (two
MTOW declarations) -> enqueue -> process bills each flight with the MTOW of its day."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from flight_fees.cli.main import app
from flight_fees.lib.db import make_engine
from flight_fees.lib.db.models import FeeLine, Flight
from flight_fees.lib.ops.registry import AIRCRAFT_CSV_HEADER, CUSTOMER_CSV_HEADER, WEEKDAYS

runner = CliRunner()


@pytest.fixture
def on_db(db_url, monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    return db_url


def _invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_customers_and_aircraft_commands(on_db, tmp_path):
    customers = tmp_path / "c.csv"
    customers.write_text(
        ",".join(CUSTOMER_CSV_HEADER) + "\nLH,Lufthansa,Köln,DE1,weekly,friday,EUR,30\n"
    )
    out = _invoke("customers", "import", str(customers), "--actor", "ops")
    assert out.exit_code == 0, out.output
    assert "1 created" in out.output
    added = _invoke("customers", "add", "BA", "--name", "British", "--currency", "gbp")
    assert added.exit_code == 0, added.output
    listed = _invoke("customers", "list", "--json")
    assert [(c["code"], c["billing_currency"]) for c in json.loads(listed.stdout)] == [
        ("BA", "GBP"), ("LH", "EUR"),
    ]  # fmt: skip
    plane = _invoke(
        "aircraft", "add", "d-airx", "--type", "A321", "--mtow-kg", "89000", "--operator", "LH"
    )
    assert plane.exit_code == 0, plane.output
    later = _invoke(
        "aircraft", "add", "D-AIRX", "--mtow-kg", "93500", "--effective-from", "2026-11-01"
    )
    assert later.exit_code == 0, later.output
    shown = _invoke("customers", "show", "LH", "--json")
    fleet = json.loads(shown.stdout)["fleet"]
    assert [(d["effective_from"], d["mtow_kg"]) for d in fleet[0]["declarations"]] == [
        (None, "89000.0"), ("2026-11-01", "93500.0"),
    ]  # fmt: skip
    text = _invoke("aircraft", "list")
    assert "93,500.0 kg from 2026-11-01" in text.output


def test_bad_import_reports_every_row_on_stderr_and_exits_1(on_db, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(
        ",".join(AIRCRAFT_CSV_HEADER) + "\nD-AIRX,,A321,-1,,\nD-AIRY,,A321,5,tomorrow,\n"
    )
    result = _invoke("aircraft", "import", str(path))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines)
    assert any("line 2: mtow_kg" in line for line in lines)
    assert any("line 3: effective_from" in line for line in lines)
    assert "Traceback" not in result.output
    listed = _invoke("aircraft", "list", "--json")
    assert json.loads(listed.stdout) == []


@pytest.mark.postgres
@pytest.mark.slow
def test_mtow_declared_from_a_day_bills_each_flight_with_its_day(
    postgres_server_url, tmp_path, monkeypatch, dagster_home
):
    from flight_fees.lib.core.settings import paths
    from flight_fees.lib.ops.demo import generate_demo
    from flight_fees.lib.tracks.store import write_track_store
    from flight_fees_tests.pg import create_database, drop_database

    name = f"ff_accept_{tmp_path.name[-20:].lower()}"
    url = create_database(postgres_server_url, name)
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", url)
    try:
        upgraded = _invoke("db", "upgrade")
        assert upgraded.exit_code == 0, upgraded.output
        day1 = dt.date(2026, 10, 27)
        data = generate_demo(n_flights=8, start_day=day1, n_days=2, seed=5)
        write_track_store(data.tracks, paths().tracks)
        flights = data.flights
        day2 = day1 + dt.timedelta(days=1)
        assert set(flights["flight_date"]) == {day1, day2}

        customers = tmp_path / "customers.csv"
        rows = [",".join(CUSTOMER_CSV_HEADER)]
        for c in data.customers.itertuples():
            rows.append(
                f'{c.code},"{c.name}",,,{c.billing_frequency},{WEEKDAYS[int(c.week_end_weekday)]},'
                f"{c.billing_currency},{c.payment_terms_days}"
            )
        customers.write_text("\n".join(rows) + "\n", encoding="utf-8")
        aircraft = tmp_path / "aircraft.csv"
        rows = [",".join(AIRCRAFT_CSV_HEADER)]
        for a in data.aircraft.itertuples():  # every aircraft: 60 t, and 65 t from day 2 on
            rows.append(f"{a.registration},{a.icao24},{a.icao_type},60000,,{a.customer_code}")
            rows.append(f"{a.registration},{a.icao24},{a.icao_type},65000,{day2},{a.customer_code}")
        aircraft.write_text("\n".join(rows) + "\n", encoding="utf-8")

        for command in (
            ("customers", "import", str(customers)),
            ("aircraft", "import", str(aircraft)),
        ):
            done = _invoke(*command)
            assert done.exit_code == 0, done.output
        ids = [str(f) for f in flights["flight_id"]]
        queued = _invoke("enqueue", *ids, "--date", str(day1))
        assert queued.exit_code == 0, queued.output
        for day in (day1, day2):
            of_day = [str(f) for f in flights.loc[flights["flight_date"] == day, "flight_id"]]
            processed = _invoke("process", *of_day, "--day", str(day))
            assert processed.exit_code == 0, processed.output

        engine = make_engine(url)
        with engine.connect() as conn:
            billed = conn.execute(
                select(Flight.flight_id, Flight.flight_date, Flight.mtow_kg, Flight.status)
            ).all()
            line_mtows = conn.execute(select(FeeLine.flight_date, FeeLine.mtow_kg)).all()
        engine.dispose()
        assert sorted(r.flight_id for r in billed) == sorted(int(f) for f in ids)
        assert {r.status for r in billed} == {"billed"}
        expected = {day1: Decimal("60000.0"), day2: Decimal("65000.0")}
        assert {r.flight_date for r in billed} == set(expected)
        assert all(r.mtow_kg == expected[r.flight_date] for r in billed)
        assert {d for d, _ in line_mtows} == set(expected)
        assert all(m == expected[d] for d, m in line_mtows)
    finally:
        drop_database(postgres_server_url, name)
