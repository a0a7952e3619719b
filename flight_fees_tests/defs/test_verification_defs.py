"""``bill_verification`` and ``repricing_scenario`` in Dagster: a bill dropped in
``<home>/bills`` is verified, a scenario repriced; results in the materialization metadata,
the HTML report linked through the document server, nothing written to billing."""

from __future__ import annotations

from decimal import Decimal

import dagster as dg
import pytest

from flight_fees.definitions import defs
from flight_fees.lib.charging.repricing import read_fee_lines
from flight_fees.lib.core.settings import paths
from flight_fees_tests.billed_demo import billed_demo_fixture, table_dump  # noqa: F401 - fixture billed_demo_db
from flight_fees_tests.defs.test_processing import _meta
from flight_fees_tests.lib.billing.test_verification import clean_bill, write_bill

BASE = "http://docs.example:8090"


@pytest.fixture
def database(billed_demo_db, monkeypatch):
    monkeypatch.setenv(
        "FLIGHT_FEES_DATABASE_URL", billed_demo_db.url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("FLIGHT_FEES_PUBLIC_URL", BASE)
    return billed_demo_db


def test_jobs_and_assets_are_defined():
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    for job, asset in (("verify_bill", "bill_verification"),
                       ("reprice_period", "repricing_scenario")):  # fmt: skip
        resolved = definitions.resolve_job_def(job)
        assert resolved.asset_layer.executable_asset_keys == {dg.AssetKey(asset)}
        assert graph.get(dg.AssetKey(asset)).group_name == "analysis"


def test_a_dropped_bill_is_verified_and_reported(database):
    lines = read_fee_lines(database)
    rows = clean_bill(lines)
    k = int(lines["local_amount"].astype(float).idxmax())
    rows[k]["mtow_kg"] = lines.loc[k, "mtow_kg"] + 20_000
    rows[k]["amount"] = rows[k]["amount"] + Decimal("99.99")
    rows.append(dict(rows[0]))  # billed twice
    folder = paths().home / "bills"
    folder.mkdir(parents=True)
    write_bill(folder / "crco-2026-10.csv", rows)
    before = table_dump(database)
    with dg.instance_for_test() as instance:
        result = defs().resolve_job_def("verify_bill").execute_in_process(instance=instance)
    assert result.success
    meta = _meta(result, "bill_verification")
    assert meta["bill"] == str(folder / "crco-2026-10.csv")
    assert meta["bill_lines"] == len(rows) and meta["findings"] == 2
    assert meta["findings_mtow"] == 1 and meta["findings_duplicate"] == 1
    assert meta["findings_distance"] == 0
    over = Decimal("99.99") + rows[0]["amount"]  # the MTOW's difference and the duplicate
    assert f"| {over} | 0.00 | {over} |" in meta["totals"]
    url = meta["report"]
    assert url.startswith(f"{BASE}/reports/verification-crco-2026-10-")
    report = paths().home / "reports" / url.rsplit("/", 1)[1]
    assert f"{BASE}/maps/flight/{int(lines.loc[k, 'flight_id'])}" in report.read_text()
    assert table_dump(database) == before


def test_no_bill_fails_with_the_reason(database):
    with dg.instance_for_test() as instance:
        result = (
            defs()
            .resolve_job_def("verify_bill")
            .execute_in_process(instance=instance, raise_on_error=False)
        )
    assert not result.success
    assert "no bill to verify" in str(result.all_events)


def test_a_scenario_is_repriced_without_writing(database, tmp_path):
    lines = read_fee_lines(database)
    rate = lines.loc[lines["zone_id"] == "LF", "unit_rate"].iloc[0] * Decimal("1.1")
    scenario = tmp_path / "rates.csv"
    scenario.write_text(f"zone,month,rate,currency\nLF,2026-10,{rate.normalize()},EUR\n")
    before = table_dump(database)
    config = {"day_from": "2026-10-27", "day_to": "2026-10-28", "unit_rates_csv": str(scenario)}
    with dg.instance_for_test() as instance:
        result = (
            defs()
            .resolve_job_def("reprice_period")
            .execute_in_process(
                run_config={"ops": {"repricing_scenario": {"config": config}}},
                instance=instance,
            )
        )
    assert result.success
    meta = _meta(result, "repricing_scenario")
    assert meta["lines"] == len(lines)
    lf = lines[(lines["zone_id"] == "LF") & (lines["local_amount"] != 0)]
    assert meta["changed_lines"] == len(lf) > 0 and meta["failed_flights"] == 0
    assert "| LF |" in meta["per_zone"] and "rounded once" in meta["rounding"]
    assert meta["report"].startswith(f"{BASE}/reports/repricing-2026-10-27_2026-10-28-")
    assert table_dump(database) == before
