"""Tests of flight_fees.lib.charging.fx: policies, fallbacks, cross rates, loaders, sample data."""

from __future__ import annotations

import importlib.util
import zipfile
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from flight_fees.lib.charging.fx import (
    RATE_PLACES,
    FxDataError,
    FxRates,
    MissingFxRate,
    load_ecb_csv,
    load_fx_csv,
    load_fx_rates,
)

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "flight_fees" / "data" / "fx_rates_sample.csv"
RATE_Q = Decimal(1).scaleb(-RATE_PLACES)


def q10(value: Decimal) -> Decimal:
    return value.quantize(RATE_Q, rounding=ROUND_HALF_UP)


@pytest.fixture
def rates() -> FxRates:
    return FxRates.from_records(
        [
            # December 2025 (previous month of January 2026)
            ("2025-12-30", "USD", "1.0000"),
            ("2025-12-31", "USD", "1.2000"),
            # February 2026: 1.1, 1.2, 1.4 -> mean 1.2333...
            ("2026-02-02", "USD", "1.1"),
            ("2026-02-13", "USD", "1.2"),
            ("2026-02-27", "USD", "1.4"),
            ("2026-02-27", "GBP", "0.85"),
            ("2026-02-02", "GBP", "0.87"),
            # March 2026 (a rate on the 1st must not enter February's mean)
            ("2026-03-01", "GBP", "0.9900"),
            ("2026-03-06", "USD", "1.1000"),  # Friday
            ("2026-03-06", "GBP", "0.8500"),
            ("2026-03-06", "JPY", "160.12"),
            ("2026-03-09", "USD", "1.5000"),  # Monday
        ]
    )


def test_flight_date_exact_and_weekend_fallback(rates: FxRates) -> None:
    assert rates.rate_per_eur("USD", "2026-03-06") == (Decimal("1.1000"), date(2026, 3, 6))
    # Saturday and Sunday: no ECB rates -> Friday's
    assert rates.rate_per_eur("USD", date(2026, 3, 7)) == (Decimal("1.1000"), date(2026, 3, 6))
    assert rates.rate_per_eur("USD", date(2026, 3, 8)) == (Decimal("1.1000"), date(2026, 3, 6))
    assert rates.rate_per_eur("USD", date(2026, 3, 9)) == (Decimal("1.5000"), date(2026, 3, 9))


def test_flight_date_fallback_is_limited_to_seven_days(rates: FxRates) -> None:
    # last GBP rate 2026-03-06: usable up to 2026-03-13, not on 2026-03-14
    assert rates.rate_per_eur("GBP", "2026-03-13")[1] == date(2026, 3, 6)
    with pytest.raises(MissingFxRate) as info:
        rates.rate_per_eur("GBP", "2026-03-14")
    assert info.value.category == "missing_fx_rate"
    assert "GBP" in str(info.value) and "2026-03-14" in str(info.value)
    with pytest.raises(MissingFxRate):
        rates.rate_per_eur("USD", "2025-12-01")  # before any rate


def test_previous_month_average(rates: FxRates) -> None:
    rate, rate_date = rates.rate_per_eur("USD", "2026-03-15", "previous_month_average")
    expected = q10((Decimal("1.1") + Decimal("1.2") + Decimal("1.4")) / 3)
    assert rate == expected == Decimal("1.2333333333")
    assert rate_date == date(2026, 2, 1)
    # any day of March gives February's mean; March's own rates are not used
    assert rates.rate_per_eur("USD", "2026-03-31", "previous_month_average")[0] == expected
    assert rates.rate_per_eur("USD", "2026-03-01", "previous_month_average")[0] == expected
    # January -> December of the previous year
    january = rates.rate_per_eur("USD", "2026-01-20", "previous_month_average")
    assert january == ((Decimal("1.0000") + Decimal("1.2000")) / 2, date(2025, 12, 1))
    # no rates in the previous month
    with pytest.raises(MissingFxRate, match="2026-01"):
        rates.rate_per_eur("USD", "2026-02-10", "previous_month_average")


def test_eur_is_always_one(rates: FxRates) -> None:
    assert rates.rate_per_eur("EUR", "1999-01-04") == (Decimal(1), date(1999, 1, 4))
    assert rates.rate_per_eur("eur", "2026-03-10", "previous_month_average") == (
        Decimal(1),
        date(2026, 2, 1),
    )


def test_convert_from_and_to_eur(rates: FxRates) -> None:
    assert rates.convert(Decimal("100"), "EUR", "USD", "2026-03-06") == (
        Decimal("110.00"),
        Decimal("1.1000"),
        date(2026, 3, 6),
    )
    amount, rate, rate_date = rates.convert(Decimal("110"), "USD", "EUR", "2026-03-08")
    assert rate == q10(1 / Decimal("1.1")) == Decimal("0.9090909091")
    assert amount == (Decimal("110") * rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert amount == Decimal("100.00")
    assert rate_date == date(2026, 3, 6)


def test_cross_rate_through_eur(rates: FxRates) -> None:
    amount, rate, rate_date = rates.convert(Decimal("100"), "USD", "GBP", "2026-03-06")
    assert rate == q10(Decimal("0.8500") / Decimal("1.1000")) == Decimal("0.7727272727")
    assert amount == Decimal("77.27")
    assert rate_date == date(2026, 3, 6)
    # previous-month averages on both legs
    amount, rate, rate_date = rates.convert(
        Decimal("1000"), "USD", "GBP", "2026-03-20", "previous_month_average"
    )
    usd = q10((Decimal("1.1") + Decimal("1.2") + Decimal("1.4")) / 3)
    gbp = q10((Decimal("0.85") + Decimal("0.87")) / 2)
    assert rate == q10(gbp / usd)
    assert amount == (Decimal(1000) * rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert rate_date == date(2026, 2, 1)


def test_convert_rounds_to_target_minor_unit(rates: FxRates) -> None:
    amount, rate, _ = rates.convert(Decimal("10.004"), "EUR", "JPY", "2026-03-06")
    assert rate == Decimal("160.12")
    assert amount == (Decimal("10.004") * Decimal("160.12")).quantize(Decimal(1), ROUND_HALF_UP)
    assert amount == Decimal("1602")
    raw, _, _ = rates.convert(Decimal("10.004"), "EUR", "JPY", "2026-03-06", round_result=False)
    assert raw == Decimal("10.004") * Decimal("160.12")


def test_same_currency_needs_no_rate(rates: FxRates) -> None:
    assert rates.convert(Decimal("12.345"), "THB", "thb", "1990-01-01") == (
        Decimal("12.35"),
        Decimal(1),
        date(1990, 1, 1),
    )


def test_missing_currency_is_an_error_not_one(rates: FxRates) -> None:
    with pytest.raises(MissingFxRate, match="no THB rates"):
        rates.convert(Decimal("1"), "EUR", "THB", "2026-03-06")
    with pytest.raises(ValueError, match="unknown FX policy"):
        rates.rate_per_eur("USD", "2026-03-06", "monthly")


def test_conflicting_duplicates_rejected() -> None:
    with pytest.raises(FxDataError, match="conflicting USD rates on 2026-01-02"):
        FxRates.from_records([("2026-01-02", "USD", "1.1"), ("2026-01-02", "USD", "1.2")])
    same = FxRates.from_records([("2026-01-02", "USD", "1.1"), ("2026-01-02", "USD", "1.10")])
    assert len(same) == 1
    with pytest.raises(FxDataError, match="EUR rate"):
        FxRates.from_records([("2026-01-02", "EUR", "1.1")])
    with pytest.raises(FxDataError, match="positive"):
        FxRates.from_records([("2026-01-02", "USD", "0")])


def test_merge(rates: FxRates) -> None:
    extra = FxRates.from_records([("2026-03-06", "THB", "38.5")])
    merged = rates.merge(extra)
    assert merged.rate_per_eur("THB", "2026-03-06")[0] == Decimal("38.5")
    assert merged.rate_per_eur("USD", "2026-03-06")[0] == Decimal("1.1000")
    assert set(merged.currencies) == {"EUR", "USD", "GBP", "JPY", "THB"}


# --- loaders -------------------------------------------------------------------------------------

ECB_TEXT = (
    "Date,USD,JPY,CYP,GBP,\n"
    "2026-03-06,1.0850,160.12,N/A,0.84512,\n"
    "2026-03-05,1.0812,159.8,N/A,0.8449,\n"
)


def test_load_ecb_csv(tmp_path: Path) -> None:
    path = tmp_path / "eurofxref-hist.csv"
    path.write_text(ECB_TEXT, encoding="utf-8")
    for loaded in (load_ecb_csv(path), load_fx_rates(path)):
        assert loaded.rate_per_eur("USD", "2026-03-05") == (Decimal("1.0812"), date(2026, 3, 5))
        assert loaded.rate_per_eur("GBP", "2026-03-08") == (Decimal("0.84512"), date(2026, 3, 6))
        assert "CYP" not in loaded.currencies  # only N/A values
        assert len(loaded) == 6
    archive = tmp_path / "eurofxref-hist.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("eurofxref-hist.csv", ECB_TEXT)
    assert load_ecb_csv(archive).rate_per_eur("JPY", "2026-03-06")[0] == Decimal("160.12")


def test_load_ecb_csv_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("Date,USD,\n2026-03-06,abc,\n", encoding="utf-8")
    with pytest.raises(FxDataError, match="line 2: USD: bad rate 'abc'"):
        load_ecb_csv(path)
    path.write_text("Day,USD\n", encoding="utf-8")
    with pytest.raises(FxDataError, match="expected an ECB header"):
        load_ecb_csv(path)
    with pytest.raises(FxDataError, match="cannot read"):
        load_ecb_csv(tmp_path / "missing.csv")


def test_load_plain_csv(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text(
        "# comment\ndate,currency,rate_per_eur\n2026-01-02,usd,1.09\n\n2026-01-02,EUR,1\n",
        encoding="utf-8",
    )
    for loaded in (load_fx_csv(path), load_fx_rates(path)):
        assert loaded.rate_per_eur("USD", "2026-01-02")[0] == Decimal("1.09")
    path.write_text("date,currency,rate_per_eur\n2026-01-02,USD,-1\n", encoding="utf-8")
    with pytest.raises(FxDataError, match="line 2: rate_per_eur must be positive"):
        load_fx_csv(path)
    path.write_text("date,currency\n2026-01-02,USD\n", encoding="utf-8")
    with pytest.raises(FxDataError, match="missing column"):
        load_fx_csv(path)


# --- shipped sample ------------------------------------------------------------------------------


def test_sample_file_is_marked_synthetic() -> None:
    head = SAMPLE.read_text(encoding="utf-8").splitlines()[0]
    assert head.startswith("#") and "SYNTHETIC" in head


def test_sample_covers_2026() -> None:
    sample = load_fx_rates(SAMPLE)
    assert set(sample.currencies) == {"EUR", "USD", "GBP", "THB", "CHF"}
    day = date(2026, 1, 1)
    while day <= date(2026, 12, 31):
        for currency in ("USD", "GBP", "THB", "CHF"):
            rate, rate_date = sample.rate_per_eur(currency, day)
            assert 0 <= (day - rate_date).days <= 4  # at most a long weekend back
            if day.day == 1:
                average, _ = sample.rate_per_eur(currency, day, "previous_month_average")
                assert average > 0
        day += timedelta(days=1)
    # plausible levels
    assert Decimal("0.9") < sample.rate_per_eur("USD", "2026-06-15")[0] < Decimal("1.3")
    assert Decimal("30") < sample.rate_per_eur("THB", "2026-06-15")[0] < Decimal("45")


def test_sample_is_reproducible_from_script() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_sample_fx", REPO / "scripts" / "make_sample_fx.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generate() == SAMPLE.read_text(encoding="utf-8")
    # Easter 2026 is on 5 April: Good Friday and Easter Monday have no rates
    assert module.easter_sunday(2026) == date(2026, 4, 5)
    assert date(2026, 4, 3) not in module.business_days(date(2026, 4, 1), date(2026, 4, 10))
