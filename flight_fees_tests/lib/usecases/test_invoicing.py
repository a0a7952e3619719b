"""Issuing invoices is one use case: the 01:00 schedule (through the ``invoices`` asset) and
``flight-fees invoice consolidate`` give the same invoices, the FAA minimum monthly amount
included."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from flight_fees.cli.invoice import invoice_app
from flight_fees.defs.invoicing.schedules import consolidate_invoices_daily
from flight_fees.lib.billing.invoicing import list_invoices
from flight_fees.lib.charging.reference import tariffs_in_force
from flight_fees.lib.db import make_engine
from flight_fees.lib.db.migrate import upgrade
from flight_fees.lib.db.models import FeeLine
from flight_fees.lib.usecases.invoicing import (
    UnknownCustomers,
    customer_ids_by_code,
    default_consolidation_day,
    issue_invoices,
)
from flight_fees_tests.factories import make_customer, make_fee_line

JAN_31 = dt.date(2026, 1, 31)


def _seed(engine: Engine) -> None:
    """Two monthly customers flying through the FAA zone (minimum USD 400 a month) and one
    European zone in January 2026: SMALL's US lines sum to USD 300 (held), BIG's to USD 500."""
    small = make_customer(engine, "SMALL")
    big = make_customer(engine, "BIG")
    for customer, usd in ((small, "150.00"), (big, "250.00")):
        for day in (5, 19):
            make_fee_line(
                engine,
                customer,
                dt.date(2026, 1, day),
                Decimal(usd) * Decimal("0.92"),
                zone_id="US",
                local_amount=usd,
                local_currency="USD",
                fx_rate="0.92",
            )
        make_fee_line(engine, customer, dt.date(2026, 1, 12), "120.00", zone_id="EC")


def _invoices(engine: Engine) -> list[tuple]:
    rows = list_invoices(engine)
    return sorted(
        (r.customer_code, r.period_start, r.period_end, r.line_count, r.total_amount, r.currency)
        for r in rows.itertuples()
    )


def _uninvoiced(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(
            conn.execute(
                select(FeeLine.zone_id, FeeLine.local_amount).where(FeeLine.invoice_id.is_(None))
            ).all()
        )


@pytest.fixture
def two_databases(tmp_path, monkeypatch):
    """Two identical billing databases (SQLite files), one per entry point."""
    engines = []
    for name in ("schedule", "cli"):
        url = f"sqlite:///{tmp_path / name}.db"
        engine = make_engine(url)
        upgrade(engine)
        _seed(engine)
        engines.append((url, engine))
    yield engines
    for _, engine in engines:
        engine.dispose()


def test_schedule_and_cli_issue_the_same_invoices_with_the_monthly_minimum(
    two_databases, tmp_path, monkeypatch
):
    from flight_fees.definitions import defs

    (schedule_url, schedule_db), (cli_url, cli_db) = two_databases

    # the 01:00 run of 1 February, as the daemon would launch it
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 2, 1, 1, tzinfo=dt.UTC)
    )
    request = consolidate_invoices_daily(context)
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", schedule_url)
    monkeypatch.setenv("FLIGHT_FEES_HOME", str(tmp_path / "home-schedule"))
    job = defs().resolve_job_def("consolidate_invoices")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(run_config=request.run_config, instance=instance)
    assert result.success

    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", cli_url)
    monkeypatch.setenv("FLIGHT_FEES_HOME", str(tmp_path / "home-cli"))
    out = CliRunner().invoke(invoice_app, ["consolidate", "--date", JAN_31.isoformat()])
    assert out.exit_code == 0, out.output
    assert "2 line(s) held below a zone threshold" in out.output

    assert _invoices(schedule_db) == _invoices(cli_db)
    # SMALL's USD 300 of FAA lines stay un-invoiced; its invoice carries the EC line only
    assert _invoices(cli_db) == [
        ("BIG", dt.date(2026, 1, 1), JAN_31, 3, Decimal("580.00"), "EUR"),
        ("SMALL", dt.date(2026, 1, 1), JAN_31, 1, Decimal("120.00"), "EUR"),
    ]
    assert _uninvoiced(schedule_db) == _uninvoiced(cli_db) == [("US", 150), ("US", 150)]
    # both wrote the documents of their invoices
    for home in ("home-schedule", "home-cli"):
        assert len(list((tmp_path / home / "invoices").glob("INV-*.pdf"))) == 2


def test_thresholds_come_from_the_tariffs_in_force_on_the_day():
    tariffs = tariffs_in_force()
    assert tariffs.monthly_invoice_thresholds(JAN_31) == {"US": Decimal("400")}
    # no FAA tariff version before 2019: no threshold
    assert tariffs.monthly_invoice_thresholds(dt.date(2018, 6, 30)) == {}


def test_customer_lookup_and_unknown_codes(engine):
    cid = make_customer(engine, "ACME")
    assert customer_ids_by_code(engine, [" ACME"]) == {"ACME": cid}
    with pytest.raises(UnknownCustomers, match="NOPE, ZED"):
        customer_ids_by_code(engine, ["ACME", "ZED", "NOPE"])
    with pytest.raises(UnknownCustomers):
        issue_invoices(engine, JAN_31, tariffs_in_force(), customer_codes=["ZED"])


def test_default_day_is_the_utc_day_that_just_ended():
    now = dt.datetime(2026, 3, 1, 0, 30, tzinfo=dt.UTC)
    assert default_consolidation_day(now) == dt.date(2026, 2, 28)
