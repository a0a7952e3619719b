"""``flight-fees reprice``: one zone's unit rate raised by 10 % on the demo, old vs new as
JSON and HTML, nothing written; a scenario is required."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from flight_fees.cli.main import app
from flight_fees.lib.charging.repricing import read_fee_lines
from flight_fees_tests.billed_demo import billed_demo_fixture, table_dump  # noqa: F401 - fixture billed_demo_db

runner = CliRunner()
PERIOD = ["--from", "2026-10-27", "--to", "2026-10-28"]


@pytest.fixture
def database(billed_demo_db, monkeypatch):
    monkeypatch.setenv(
        "FLIGHT_FEES_DATABASE_URL", billed_demo_db.url.render_as_string(hide_password=False)
    )
    return billed_demo_db


def test_reprice_a_raised_unit_rate(database, tmp_path):
    lines = read_fee_lines(database)
    lf = lines[lines["zone_id"] == "LF"]
    rate = lf["unit_rate"].iloc[0] * Decimal("1.1")
    scenario = tmp_path / "rates.csv"
    scenario.write_text(f"zone,month,rate,currency\nLF,2026-10,{rate.normalize()},EUR\n")
    before = table_dump(database)

    result = runner.invoke(
        app, ["reprice", *PERIOD, "--unit-rates", str(scenario), "--json",
              "--html", str(tmp_path / "r.html")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert table_dump(database) == before
    payload = json.loads(result.output)
    changed = [z for z in payload["zones"] if z["difference"] != "0.00"]
    assert {z["zone_id"] for z in changed} == {"LF"}
    assert payload["changed_lines"] == int((lf["local_amount"] != 0).sum())
    assert payload["not_reproduced"] == 0 and payload["failed_flights"] == []
    for ccy, total in payload["totals"].items():
        in_ccy = [ln for ln in payload["lines"] if ln["billing_currency"] == ccy]
        assert Decimal(total["difference"]) == sum(
            (Decimal(ln["difference"]) for ln in in_ccy), Decimal(0)
        )
    assert "rounded once" in payload["rounding"]
    assert "/maps/flight/" in (tmp_path / "r.html").read_text()

    text = runner.invoke(app, ["reprice", *PERIOD, "--unit-rates", str(scenario)])
    assert text.exit_code == 0, text.output
    assert "nothing written" in text.output and "LF" in text.output


def test_reprice_needs_a_scenario_and_an_ordered_period(database):
    assert runner.invoke(app, ["reprice", *PERIOD]).exit_code == 2
    backwards = ["--from", "2026-10-28", "--to", "2026-10-27", "--fx", "x.csv"]
    result = runner.invoke(app, ["reprice", *backwards])
    assert result.exit_code == 2 and "after" in result.output
    missing = runner.invoke(app, ["reprice", *PERIOD, "--fx", "/nonexistent/fx.csv"])
    assert missing.exit_code == 1 and "error:" in missing.output
