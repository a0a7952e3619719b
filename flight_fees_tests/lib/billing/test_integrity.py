"""check_fee_lines: a day priced by compute_fee_lines and stored by persist_bills passes; a
doctored billing amount or rate, a same-currency line at a rate other than 1 or a line without
tariff version fails it, named."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import select, update

from flight_fees.lib.billing.fee_lines import FlightBill, persist_bills
from flight_fees.lib.billing.integrity import (
    amount_mismatches,
    check_fee_lines,
    expected_billing_amount,
)
from flight_fees.lib.charging.fees import compute_fee_lines
from flight_fees.lib.charging.fx import FxRates
from flight_fees.lib.charging.tariffs import parse_tariffs
from flight_fees.lib.core.money import minor_unit
from flight_fees.lib.db import transaction
from flight_fees.lib.db.models import FeeLine

DAY = dt.date(2026, 3, 10)
OTHER_DAY = dt.date(2026, 3, 11)
#: billing currencies of 0, 2 and 3 decimals; GBP/JPY/KWD from USD/EUR are cross rates
BILLING = ("EUR", "USD", "GBP", "JPY", "KWD")

TARIFFS = {
    "zones": {
        "AA": {  # EUR, monthly average rates (means of daily rates: many decimals)
            "currency": "EUR",
            "fx_policy": "previous_month_average",
            "versions": [
                {
                    "valid_from": "2026-01-01",
                    "formula": {"type": "distance_weight", "unit_rate": "71.37"},
                }
            ],
        },
        "BB": {  # USD, the day's rate: USD -> GBP/JPY/KWD go through EUR
            "currency": "USD",
            "versions": [
                {
                    "valid_from": "2026-01-01",
                    "formula": {"type": "distance_weight", "unit_rate": "53.9"},
                }
            ],
        },
    }
}


def _fx() -> FxRates:
    records = []
    for day in pd.date_range("2026-02-01", "2026-03-11", freq="D"):
        step = Decimal(day.day) / 1000
        records += [
            (day.date(), "USD", Decimal("1.0813") + step),
            (day.date(), "GBP", Decimal("0.8417") - step),
            (day.date(), "JPY", Decimal("161.37") + step * 7),
            (day.date(), "KWD", Decimal("0.33241") + step / 3),
        ]
    return FxRates.from_records(records)


def _bill_day(engine: Any, day: dt.date, flights: int, seed: int) -> int:
    """Price ``flights`` flights of ``day`` through both zones and store them; returns the
    number of lines."""
    rng = random.Random(seed)
    base = 1_000 * seed
    visits, attrs = [], []
    for n in range(flights):
        fid = base + n
        entry = pd.Timestamp(dt.datetime.combine(day, dt.time(6), tzinfo=dt.UTC))
        for index, zone in enumerate(("AA", "BB")):
            visits.append(
                {
                    "flight_id": fid,
                    "visit_index": index,
                    "zone_id": zone,
                    "fir_ids": zone + "FF",
                    "entry_time": entry + pd.Timedelta(minutes=50 * index),
                    "exit_time": entry + pd.Timedelta(minutes=50 * index + 45),
                    "distance_km": rng.uniform(20, 1900),
                    "departure_in_zone": index == 0,
                    "arrival_in_zone": index == 1,
                }
            )
        attrs.append(
            {
                "flight_id": fid,
                "flight_date": day,
                "mtow_kg": Decimal(rng.randrange(5_000, 560_000, 100)),
                "billing_currency": BILLING[n % len(BILLING)],
            }
        )
    result = compute_fee_lines(
        pd.DataFrame(visits), pd.DataFrame(attrs), parse_tariffs(TARIFFS, source="t"), _fx()
    )
    assert not result.failures
    by_flight: dict[int, list[dict]] = {}
    for line in result.lines.to_dict("records"):
        by_flight.setdefault(int(line["flight_id"]), []).append(line)
    bills = [FlightBill(fid, lines, {"flight_date": day}) for fid, lines in by_flight.items()]
    assert persist_bills(engine, bills).lines == len(result.lines)
    return len(result.lines)


def _doctor(engine: Any, flight_id: int, line_no: int, **values: Any) -> None:
    with transaction(engine) as session:
        session.execute(
            update(FeeLine)
            .where(FeeLine.flight_id == flight_id, FeeLine.line_no == line_no)
            .values(**values)
        )


def _stored(engine: Any, flight_id: int, line_no: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(FeeLine).where(FeeLine.flight_id == flight_id, FeeLine.line_no == line_no)
        ).one()


def test_expected_billing_amount_rounds_half_up_to_the_billing_minor_unit():
    assert expected_billing_amount(Decimal("10.005"), Decimal(1), "EUR") == Decimal("10.01")
    assert expected_billing_amount(Decimal("0.5"), Decimal(1), "JPY") == Decimal("1")
    assert expected_billing_amount(Decimal("100"), Decimal("0.3324125"), "KWD") == Decimal("33.241")
    assert expected_billing_amount(Decimal("2.50"), Decimal("161.3"), "JPY") == Decimal("403")


def test_the_converter_and_the_check_agree_on_every_amount():
    """What FxRates.convert stores recomputes exactly, over many amounts, pairs, policies."""
    fx, rng = _fx(), random.Random(7)
    rows = []
    for n in range(3_000):
        source, target = rng.choice(BILLING), rng.choice(BILLING)
        amount = Decimal(rng.randrange(0, 10**8)).scaleb(-minor_unit(source))
        policy = rng.choice(["flight_date", "previous_month_average"])
        converted, rate, _ = fx.convert(amount, source, target, DAY, policy)
        rows.append((n, 0, amount, source, rate, converted, target))
    assert amount_mismatches(rows) == []
    n, _, amount, source, rate, converted, target = rows[17]
    off = converted + Decimal(1).scaleb(-minor_unit(target))
    (found,) = amount_mismatches([(n, 0, amount, source, rate, off, target)])
    assert (found.flight_id, found.stored, found.expected) == (n, off, converted)


def test_a_clean_day_passes(engine):
    lines = _bill_day(engine, DAY, flights=25, seed=1)
    report = check_fee_lines(engine, flight_date=DAY)
    assert report.passed and report.lines == lines == 50
    assert report.wrong_billing_amounts == 0 and report.mismatches == ()
    with engine.connect() as conn:  # the day really converts: cross rates, 0 and 3 decimals
        currencies = set(conn.execute(select(FeeLine.billing_currency)).scalars())
        rates = set(conn.execute(select(FeeLine.fx_rate)).scalars())
    assert currencies == set(BILLING) and len(rates) > 5


def test_a_doctored_billing_amount_fails_and_is_named(engine):
    _bill_day(engine, DAY, flights=10, seed=2)
    line = _stored(engine, 2_002, 1)  # a USD tariff billed in GBP: a cross rate
    assert (line.local_currency, line.billing_currency) == ("USD", "GBP")
    _doctor(engine, 2_002, 1, billing_amount=line.billing_amount + Decimal("0.01"))
    report = check_fee_lines(engine, flight_date=DAY)
    assert not report.passed and report.wrong_billing_amounts == 1
    (mismatch,) = report.mismatches
    assert (mismatch.flight_id, mismatch.line_no) == (2_002, 1)
    assert mismatch.expected == line.billing_amount
    assert mismatch.stored == line.billing_amount + Decimal("0.01")
    assert report.missing_tariff_or_fx == report.negative_amounts == report.duplicate_lines == 0


def test_a_doctored_rate_fails_too(engine):
    _bill_day(engine, DAY, flights=5, seed=3)
    line = _stored(engine, 3_001, 0)  # EUR billed in USD
    _doctor(engine, 3_001, 0, fx_rate=line.fx_rate * 2)
    report = check_fee_lines(engine, flight_date=DAY)
    assert not report.passed and [(m.flight_id, m.line_no) for m in report.mismatches] == [
        (3_001, 0)
    ]


def test_a_same_currency_line_must_carry_rate_one(engine):
    _bill_day(engine, DAY, flights=5, seed=4)
    line = _stored(engine, 4_000, 0)  # EUR billed in EUR
    assert line.local_currency == line.billing_currency == "EUR" and line.fx_rate == 1
    _doctor(engine, 4_000, 0, fx_rate=Decimal("1.0000000001"))
    report = check_fee_lines(engine, flight_date=DAY)
    assert report.wrong_billing_amounts == 1 and report.mismatches[0].flight_id == 4_000


def test_the_day_scope_and_the_whole_table(engine):
    _bill_day(engine, DAY, flights=5, seed=5)
    _bill_day(engine, OTHER_DAY, flights=5, seed=6)
    line = _stored(engine, 6_002, 1)
    _doctor(engine, 6_002, 1, billing_amount=line.billing_amount + 1)
    assert check_fee_lines(engine, flight_date=DAY).passed
    assert not check_fee_lines(engine, flight_date=OTHER_DAY).passed
    whole = check_fee_lines(engine)
    assert (whole.lines, whole.wrong_billing_amounts, whole.passed) == (20, 1, False)


def test_a_line_without_tariff_version_fails(engine):
    """(Negative amounts and non-positive rates are refused by the table's constraints.)"""
    _bill_day(engine, DAY, flights=3, seed=8)
    _doctor(engine, 8_001, 0, tariff_version="")
    report = check_fee_lines(engine, flight_date=DAY)
    assert (report.missing_tariff_or_fx, report.wrong_billing_amounts) == (1, 0)
    assert not report.passed


def test_examples_are_capped_but_all_counted(engine):
    _bill_day(engine, DAY, flights=10, seed=9)
    with transaction(engine) as session:
        session.execute(update(FeeLine).values(billing_amount=FeeLine.billing_amount + 1))
    report = check_fee_lines(engine, examples=3)
    assert report.wrong_billing_amounts == 20 and len(report.mismatches) == 3
    assert [(m.flight_id, m.line_no) for m in report.mismatches] == [
        (9_000, 0),
        (9_000, 1),
        (9_001, 0),
    ]
