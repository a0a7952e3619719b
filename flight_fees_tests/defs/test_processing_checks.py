"""fee_lines_integrity: in a day's run it recomputes that day's billing amounts (a doctored
line fails it, named in the metadata); invoked alone it covers the whole table."""

import datetime as dt

import dagster as dg

from flight_fees.defs.partitions import daily_partitions
from flight_fees.defs.processing.checks import fee_lines_integrity
from flight_fees.defs.resources import BillingDatabase
from flight_fees_tests.factories import make_fee_line

DAY = dt.date(2026, 3, 10)
OTHER_DAY = dt.date(2026, 3, 9)


@dg.asset(name="fee_lines", partitions_def=daily_partitions)
def stored_fee_lines() -> None:
    """Stands for the real asset: the lines are already in the database."""


def _lines(engine, day: dt.date, *, doctored: bool = False) -> None:
    """Three lines of ``day`` as the converter stores them; ``doctored``: one cent more on
    the USD line."""
    make_fee_line(engine, None, day, "100.00", flight_id=1_000 + day.day)
    make_fee_line(
        engine, None, day, "108.13" if doctored else "108.12", flight_id=2_000 + day.day,
        local_amount="100.00", local_currency="EUR", billing_currency="USD", fx_rate="1.0812",
    )  # fmt: skip
    make_fee_line(
        engine, None, day, "17338", flight_id=3_000 + day.day, local_amount="107.45",
        local_currency="EUR", billing_currency="JPY", fx_rate="161.3594000000",
    )  # fmt: skip


def _run_day(engine, day: dt.date) -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [stored_fee_lines, fee_lines_integrity],
        partition_key=day.isoformat(),
        resources={"billing": BillingDatabase(url=engine.url.render_as_string(False))},
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_a_clean_day_passes_though_another_day_is_doctored(engine):
    _lines(engine, DAY)
    _lines(engine, OTHER_DAY, doctored=True)
    evaluation = _run_day(engine, DAY)
    assert evaluation.passed
    assert evaluation.metadata["scope"].value == DAY.isoformat()
    assert evaluation.metadata["lines"].value == 3
    assert evaluation.metadata["wrong_billing_amounts"].value == 0


def test_a_doctored_line_fails_the_day_and_is_named(engine):
    _lines(engine, DAY, doctored=True)
    evaluation = _run_day(engine, DAY)
    assert not evaluation.passed
    assert evaluation.metadata["wrong_billing_amounts"].value == 1
    table = evaluation.metadata["amount_mismatches"].value
    assert f"| {2_000 + DAY.day} | 1 | 100.000 EUR |" in table
    assert "| 108.130 USD | 108.12 USD |" in table


def test_outside_a_partitioned_run_every_line_is_checked(engine):
    _lines(engine, DAY)
    _lines(engine, OTHER_DAY, doctored=True)
    billing = BillingDatabase(url=engine.url.render_as_string(False))
    result = fee_lines_integrity(dg.build_asset_check_context(), billing=billing)
    assert not result.passed
    assert result.metadata["scope"].value == "all fee lines"
    assert result.metadata["lines"].value == 6
    assert result.metadata["wrong_billing_amounts"].value == 1
