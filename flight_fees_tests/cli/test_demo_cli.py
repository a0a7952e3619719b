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


@pytest.mark.slow
@pytest.mark.timeout(900)  # two demos (each seeds, bills and invoices through Dagster runs)
def test_a_second_demo_keeps_the_data_and_reset_starts_over(dagster_home):
    import dagster as dg

    from flight_fees.lib.ops.queue import FlightQueue

    args = ["demo", "--flights", "3", "--start", "2026-10-30", "--days", "1", "--seed", "3"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    engine = make_engine()

    def billing_state():
        with engine.connect() as conn:
            lines = conn.execute(select(func.count()).select_from(FeeLine)).scalar_one()
            invoices = conn.execute(
                select(Invoice.number, Invoice.total_amount).order_by(Invoice.number)
            ).all()
        return lines, invoices

    def store_files():
        return {(str(f), f.stat().st_mtime_ns) for f in paths().home.rglob("*") if f.is_file()} - {
            (str(f), f.stat().st_mtime_ns) for f in paths().home.glob("billing.db*")
        }

    lines, invoices = billing_state()
    files = store_files()
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs_count()
    assert lines > 0 and runs > 0

    # again: nothing deleted, seeded or run; it says what the home holds and how to reset
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "already holds data; kept as it is" in again.output
    assert f"{lines} fee_lines" in again.output and "3 flights" in again.output
    assert "make demo RESET=1" in again.output and "flight-fees demo --reset" in again.output
    match = re.search(r"flights billed: (\d+)\s+failed: (\d+)\s+fee lines: (\d+)", again.output)
    assert match and (int(match.group(1)), int(match.group(3))) == (3, lines)
    assert billing_state() == (lines, invoices) and store_files() == files
    with dg.DagsterInstance.get() as instance:
        assert instance.get_runs_count() == runs

    # --reset lists what it deletes (with the rows counted), then runs the demo on an empty home
    FlightQueue(engine).enqueue([999])  # a row the demo never writes
    engine.dispose()  # no pooled connection to the file being deleted: later reads see the new
    n_tracks = len(list(paths().tracks.rglob("*.parquet")))
    reset = runner.invoke(app, [*args, "--reset"])
    assert reset.exit_code == 0, reset.output
    deleted = reset.output.split("[RESET] deleted:")[1].split("[RESET] kept")[0]
    assert f"{paths().home / 'billing.db'}: " in deleted
    assert "1 flight_processing_queue" in deleted and f"{lines} fee_lines" in deleted
    assert f"{paths().tracks}: {n_tracks} file(s)" in deleted
    assert f"{paths().invoices}: " in deleted
    assert billing_state() == (lines, invoices)  # same seed, same numbers (invoices from 000001)
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count())
                .select_from(FlightQueueItem)
                .where(FlightQueueItem.flight_id == 999)
            ).scalar_one()
            == 0
        )
    with dg.DagsterInstance.get() as instance:
        assert instance.get_runs_count() > runs
