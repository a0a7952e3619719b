"""``flight-fees verify``: a bill checked against the demo's fee lines, as JSON, text and an
HTML report; a bad bill is refused line by line."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from flight_fees.cli.main import app
from flight_fees.lib.charging.repricing import read_fee_lines
from flight_fees.lib.documents.links import flight_map_url
from flight_fees_tests.billed_demo import billed_demo_fixture, table_dump  # noqa: F401 - fixture billed_demo_db
from flight_fees_tests.lib.billing.test_verification import FIELDS, clean_bill, write_bill

runner = CliRunner()


@pytest.fixture
def database(billed_demo_db, monkeypatch):
    monkeypatch.setenv(
        "FLIGHT_FEES_DATABASE_URL", billed_demo_db.url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("FLIGHT_FEES_PUBLIC_URL", "http://docs.example:8090")
    return billed_demo_db


def test_verify_reports_an_inflated_distance_as_json_text_and_html(database, tmp_path):
    lines = read_fee_lines(database)
    rows = clean_bill(lines)
    k = int(lines["local_amount"].astype(float).idxmax())
    rows[k]["distance_km"] = lines.loc[k, "distance_km"] + 150
    rows[k]["amount"] = rows[k]["amount"] + Decimal("123.45")
    bill = write_bill(tmp_path / "bill.csv", rows)
    before = table_dump(database)

    result = runner.invoke(app, ["verify", str(bill), "--json", "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["findings"] == [
        {
            **payload["findings"][0],
            "line": k + 1,
            "flight_id": int(lines.loc[k, "flight_id"]),
            "zone": lines.loc[k, "zone_id"],
            "cause": "distance",
            "billed_amount": str(rows[k]["amount"]),
            "expected_amount": str(rows[k]["amount"] - Decimal("123.45")),
            "difference": "123.45",
        }
    ]
    assert payload["findings"][0]["detail"]["distance_km"]["difference"] == "150.000"
    assert payload["totals"]["by_currency"]["EUR"]["over"] == "123.45"
    assert payload["totals"]["by_cause"]["distance"] == 1
    page = (tmp_path / "r.html").read_text()
    assert flight_map_url(int(lines.loc[k, "flight_id"])) in page
    assert "http://docs.example:8090/maps/flight/" in page

    text = runner.invoke(app, ["verify", str(bill)])
    assert text.exit_code == 0, text.output
    assert "1 finding(s)" in text.output and "over-billed 123.45 EUR" in text.output
    assert table_dump(database) == before  # verification writes nothing


def test_a_bad_bill_is_refused_with_every_bad_value(database, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(FIELDS) + "\n2026-10-27,X1,D-A,EDDF,LFPG,LF,ten,1,1,1,EUR\n"
                   "2026-10-27,X1,D-A,EDDF,LFPG,LF,10,1,1,1,E\n")  # fmt: skip
    result = runner.invoke(app, ["verify", str(bad)])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert "line 1, distance_km" in errors[0] and "line 2, currency" in errors[1]
    missing = runner.invoke(app, ["verify", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1 and "cannot read the bill" in missing.output
    usage = runner.invoke(app, ["verify", str(bad), "--amount-tolerance", "lots"])
    assert usage.exit_code == 2 and "--amount-tolerance" in usage.output
