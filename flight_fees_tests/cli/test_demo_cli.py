"""End to end: `flight-fees demo` on a tiny dataset, then `flight-fees process`."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from flight_fees.cli.main import app
from flight_fees.lib.core.settings import paths
from flight_fees.lib.db import make_engine
from flight_fees.lib.db.models import FeeLine, FlightQueueItem, Invoice
from flight_fees.lib.documents.links import day_maps_url

runner = CliRunner()


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_demo_bills_flights_and_issues_invoices(dagster_home):
    result = runner.invoke(
        app, ["demo", "--flights", "9", "--start", "2026-10-29", "--days", "3", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    engine = make_engine()
    with engine.connect() as conn:
        lines = conn.execute(select(func.count()).select_from(FeeLine)).scalar_one()
        invoices = conn.execute(select(Invoice.number, Invoice.total_amount)).all()
        invoiced_total = conn.execute(
            select(func.count()).select_from(FeeLine).where(FeeLine.invoice_id.is_not(None))
        ).scalar_one()
    assert lines > 0 and invoices and invoiced_total > 0
    # every printed number is computed: the summary matches the database
    match = re.search(r"flights billed: (\d+)\s+failed: (\d+)\s+fee lines: (\d+)", result.output)
    assert match and int(match.group(3)) == lines and int(match.group(1)) == 9
    assert f"{len(invoices)} invoice(s)" in result.output
    for number, _ in invoices:
        assert (paths().invoices / f"{number}.html").exists() or any(
            number in p.name for p in paths().invoices.glob("*.html")
        )
    # maps are not made while billing: the demo points at the document server's day index
    assert day_maps_url(dt.date(2026, 10, 29)) in result.output
    assert not paths().maps.exists()
    # the runs are recorded in the Dagster instance, so the UI shows them
    assert (dagster_home / "dagster.yaml").exists()

    # an analyst re-processes an invoiced flight: refused, nothing billed twice
    with engine.connect() as conn:
        invoiced = conn.execute(
            select(FeeLine.flight_id).where(FeeLine.invoice_id.is_not(None)).limit(1)
        ).scalar_one()
    again = runner.invoke(app, ["process", str(invoiced)])
    assert again.exit_code == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(FeeLine)).scalar_one() == lines
        row = conn.execute(
            select(FlightQueueItem.status, FlightQueueItem.error_category).where(
                FlightQueueItem.flight_id == invoiced
            )
        ).one()
    assert tuple(row) == ("failed", "already_invoiced")


def test_process_requires_ids_or_a_day(dagster_home):
    result = runner.invoke(app, ["process"])
    assert result.exit_code == 2
    assert "give flight ids" in result.output
