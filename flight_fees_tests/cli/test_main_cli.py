from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flight_fees.cli.main import app
from flight_fees.lib.ops.queue import FlightQueue

runner = CliRunner()


@pytest.fixture
def cli_db(db_url, monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    return db_url


def test_enqueue_reports_invalid_ids_and_queues_the_rest(cli_db, engine):
    result = runner.invoke(app, ["enqueue", "1", "2", "abc", "3"])
    assert result.exit_code != 0
    assert "abc" in result.output and "invalid" in result.output
    assert "queued 3 new flight(s)" in result.output
    assert FlightQueue(engine).stats().by_status == {"queued": 3}
    again = runner.invoke(app, ["enqueue", "1", "2", "3"])
    assert again.exit_code == 0
    assert "queued 0 new flight(s)" in again.output and "3 already queued" in again.output
    assert FlightQueue(engine).stats().total == 3
    shown = runner.invoke(app, ["queue"])
    assert shown.exit_code == 0
    assert "queued" in shown.output and "│      3 │" in shown.output


def test_bulk_enqueue_from_csv_names_bad_lines(cli_db, engine, tmp_path):
    path = tmp_path / "ids.csv"
    lines = ["flight_id,comment", *[f"{i},ok" for i in range(1, 20_001)], "x12,bad", "-5,bad", ""]
    path.write_text("\n".join(lines))
    result = runner.invoke(app, ["enqueue", "--file", str(path), "--priority", "high"])
    assert result.exit_code == 1
    assert "ids.csv:20002" in result.output and "ids.csv:20003" in result.output
    stats = FlightQueue(engine).stats()
    assert stats.by_status_priority == {("queued", "high"): 20_000}


def test_enqueue_rejects_unknown_priority_without_writing(cli_db, engine):
    result = runner.invoke(app, ["enqueue", "1", "--priority", "urgent"])
    assert result.exit_code == 2
    assert "unknown priority" in result.output
    assert FlightQueue(engine).stats().total == 0


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://nobody@127.0.0.1:1/none",
        "sqlite:////proc/forbidden/billing.db",
        "bogus://x",
        "not a url",
    ],
)
def test_doctor_explains_a_bad_database_url_without_traceback(monkeypatch, url):
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", url)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "billing database" in result.output
    assert "FAIL" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_doctor_passes_on_a_migrated_database_with_a_store(cli_db, tmp_path, monkeypatch):
    from flight_fees.lib.core.settings import paths

    paths().tracks.mkdir(parents=True)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output


def test_db_upgrade_and_downgrade(tmp_path, monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    up = runner.invoke(app, ["db", "upgrade"])
    assert up.exit_code == 0 and "empty ->" in up.output
    down = runner.invoke(app, ["db", "downgrade", "base"])
    assert down.exit_code == 0 and "base" in down.output
    current = runner.invoke(app, ["db", "current"])
    assert "current: none" in current.output


@pytest.mark.postgres
def test_queue_on_unmigrated_postgres_says_what_to_do(postgres_server_url, monkeypatch):
    from flight_fees_tests.pg import create_database, drop_database

    url = create_database(postgres_server_url, "ff_cli_unmigrated")
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", url)
    try:
        result = runner.invoke(app, ["queue"])
        assert result.exit_code == 1  # a failure, not a usage error
        assert "flight-fees db upgrade" in result.output
    finally:
        drop_database(postgres_server_url, "ff_cli_unmigrated")
