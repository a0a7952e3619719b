"""What-if repricing of the demo's stored fee lines: one zone's unit rate raised by 10 %
changes exactly that zone's lines by 10 % (to the cent), and nothing is written."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from flight_fees.lib.charging.repricing import read_fee_lines, reprice_period
from flight_fees.lib.charging.scenario import current_pricing, scenario_pricing
from flight_fees.lib.core.money import quantize
from flight_fees.lib.documents.links import flight_map_url
from flight_fees.lib.documents.reports import reprice_html
from flight_fees_tests.billed_demo import billed_demo_fixture, table_dump  # noqa: F401 - fixture billed_demo_db

START, END = dt.date(2026, 10, 27), dt.date(2026, 10, 28)
ZONE = "LF"


@pytest.fixture
def billed(billed_demo_db):
    """The demo billed and invoiced (customers' periods up to 31 October), once per module
    and backend: repricing only reads it (which the tests check)."""
    return billed_demo_db


def _raised_rates(tmp_path, tariffs, factor: Decimal):
    """A unit-rate CSV raising ZONE's rate of October 2026 by ``factor``."""
    _, version = tariffs.version_on(ZONE, START)
    rate = version.formula.unit_rate * factor
    path = tmp_path / "scenario.csv"
    path.write_text(f"zone,month,rate,currency\n{ZONE},2026-10,{rate},{version.currency}\n")
    return path, version


def test_a_zone_rate_raised_by_ten_percent_changes_exactly_its_lines(billed, tmp_path):
    before = table_dump(billed)
    current = current_pricing()
    csv_path, version = _raised_rates(tmp_path, current.tariffs, Decimal("1.1"))
    scenario = scenario_pricing(unit_rates_csv=csv_path)

    report = reprice_period(billed, START, END, scenario, current=current)

    assert table_dump(billed) == before  # fee lines, invoices, flights: identical
    stored = read_fee_lines(billed, day_from=START, day_to=END)
    assert len(report.lines) == len(stored) > 0
    assert stored["invoice"].notna().any()  # invoiced lines are repriced too (read only)
    assert report.lines["reproduced"].all()  # the current data gives every stored amount
    assert not report.failures

    in_zone = (report.lines["zone_id"] == ZONE).to_numpy()
    assert in_zone.any() and (~in_zone).any()
    others = report.lines[~in_zone]
    assert (others["new_amount"] == others["old_amount"]).all()
    assert set(report.changed["zone_id"]) == {ZONE}
    for line, details in zip(
        report.lines[in_zone].to_dict("records"), stored.loc[in_zone, "details"], strict=True
    ):
        quote = json.loads(details)
        exact = sum(Decimal(c["amount"]) for c in quote["components"]) * Decimal(
            quote["multiplier"]
        )
        old_local = Decimal(quote["amount"])
        places = -old_local.as_tuple().exponent
        new_local = quantize(exact * Decimal("1.1"), places, version.rounding.amount_mode)
        # rounded once from the exact charge: within one cent of 1.1 x the old rounded amount
        assert line["new_local_amount"] == new_local
        assert abs(new_local - old_local * Decimal("1.1")) <= Decimal("0.01")
        assert line["new_unit_rate"] == line["old_unit_rate"] * Decimal("1.1")
        fx_rate = Decimal(quote["fx"]["rate"])
        assert line["new_amount"] == quantize(new_local * fx_rate, 2)
        assert line["difference"] == line["new_amount"] - line["old_amount"]

    totals = report.totals().set_index("billing_currency")
    for ccy, row in totals.iterrows():
        lines = report.lines[report.lines["billing_currency"] == ccy]
        assert row["old_amount"] == sum(lines["old_amount"], Decimal(0))
        assert row["new_amount"] == sum(lines["new_amount"], Decimal(0))
    zones = report.by_zone()
    assert set(zones.loc[zones["difference"] != 0, "zone_id"]) == {ZONE}
    payload = report.to_dict()
    nonzero = report.lines[in_zone & (report.lines["old_amount"] != 0).to_numpy()]
    assert payload["changed_lines"] == len(report.changed) == len(nonzero) > 0
    assert all(isinstance(v, str) for t in payload["totals"].values() for k, v in t.items()
               if k.endswith("amount") or k == "difference")  # fmt: skip
    html = reprice_html(report, base_url="http://docs.example")
    changed_flight = int(report.changed["flight_id"].iloc[0])
    assert flight_map_url(changed_flight, base="http://docs.example") in html


def test_a_scenario_that_cannot_price_a_flight_reports_it_without_writing(billed, tmp_path):
    before = table_dump(billed)
    tariffs = tmp_path / "tariffs.yaml"
    tariffs.write_text(  # only one zone: every flight crossing another one fails
        "schema_version: 1\nzones:\n  LF:\n    name: France\n    tariff_id: LF\n"
        "    currency: EUR\n    fx_policy: flight_date\n    source: test\n    versions:\n"
        "      - version: '2026'\n        valid_from: 2026-01-01\n"
        "        formula: {type: distance_weight, unit_rate: 100, distance_divisor: 100, "
        "deduction_per_movement: 20, weight_divisor_t: 50, weight_exponent: 0.5}\n"
    )
    report = reprice_period(billed, START, END, scenario_pricing(tariffs_path=tariffs))
    assert table_dump(billed) == before
    assert report.failures and all("no_tariff" in m for m in report.failures.values())
    failed = report.lines[report.lines["failure"].notna()]
    assert set(failed["flight_id"]) == set(report.failures)
    assert failed["new_amount"].isna().all()
    # sums cover only the flights priced in full
    assert report.totals()["lines"].sum() == len(report.lines) - len(failed)


def test_a_period_must_be_ordered(billed):
    current = current_pricing()
    with pytest.raises(ValueError, match="after"):
        reprice_period(billed, END, START, current)
    with pytest.raises(ValueError, match="scenario needs"):
        scenario_pricing()
