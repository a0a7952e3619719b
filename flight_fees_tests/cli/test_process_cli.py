"""``flight-fees process`` tells the truth in its exit code and message."""

from __future__ import annotations

import datetime as dt

from typer.testing import CliRunner

from flight_fees.cli.main import app
from flight_fees.lib.core.settings import paths
from flight_fees.lib.db import make_engine
from flight_fees.lib.ops.demo import generate_demo
from flight_fees.lib.ops.registry import load_aircraft, load_customers
from flight_fees.lib.tracks.store import write_track_store

DAY = dt.date(2026, 10, 27)
runner = CliRunner()


def _world(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    data = generate_demo(n_flights=3, start_day=DAY, n_days=1, seed=2)
    write_track_store(data.tracks, paths().tracks)
    engine = make_engine()
    load_customers(engine, data.customers)
    load_aircraft(engine, data.aircraft)
    return [int(f) for f in data.flights["flight_id"]]


def test_exit_1_when_every_flight_failed(tmp_path, monkeypatch):
    _world(tmp_path, monkeypatch)
    missing = ["2026102799991", "2026102799992"]  # no track at all
    result = runner.invoke(app, ["process", *missing, "--day", DAY.isoformat()])
    assert result.exit_code == 1, result.output
    assert "billed 0, failed 2" in result.output
    assert "all 2 flight(s) failed" in result.output


def test_exit_1_when_some_failed_and_0_when_none(tmp_path, monkeypatch):
    ids = _world(tmp_path, monkeypatch)
    some = runner.invoke(app, ["process", str(ids[0]), "2026102799993", "--day", DAY.isoformat()])
    assert some.exit_code == 1, some.output
    assert "1 of 2 flight(s) failed" in some.output
    ok = runner.invoke(app, ["process", str(ids[1]), "--day", DAY.isoformat()])
    assert ok.exit_code == 0, ok.output
    assert "billed 1, failed 0" in ok.output
