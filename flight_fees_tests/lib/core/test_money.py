"""Tests of flight_fees.lib.core.money: minor units, parsing, rounding, sqrt, dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, localcontext

import numpy as np
import pandas as pd
import pytest

from flight_fees.lib.core.money import (
    InvalidAmount,
    InvalidCurrency,
    Rounding,
    decimal_sqrt,
    format_money,
    minor_unit,
    normalize_currency,
    quantize,
    round_half_up,
    round_money,
    round_up,
    to_decimal,
    to_utc_date,
    truncate,
)


@pytest.mark.parametrize(
    ("currency", "places"),
    [
        ("JPY", 0),
        ("KRW", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("JOD", 3),
        ("IQD", 3),
        ("LYD", 3),
        ("EUR", 2),
        ("USD", 2),
        ("THB", 2),
        ("eur", 2),
        (" jpy ", 0),
    ],
)
def test_minor_units(currency: str, places: int) -> None:
    assert minor_unit(currency) == places


def test_unlisted_well_formed_currency_has_two_decimals() -> None:
    assert minor_unit("XYZ") == 2


@pytest.mark.parametrize("bad", ["EURO", "E1R", "", None, 978])
def test_invalid_currency(bad: object) -> None:
    with pytest.raises(InvalidCurrency) as info:
        normalize_currency(bad)
    assert info.value.category == "invalid_currency"


@pytest.mark.parametrize(
    ("amount", "currency", "mode", "expected"),
    [
        ("2.345", "EUR", "half_up", "2.35"),
        ("2.345", "EUR", "half_even", "2.34"),
        ("2.349", "EUR", "down", "2.34"),
        ("2.349", "EUR", "truncate", "2.34"),
        ("2.341", "EUR", "up", "2.35"),
        ("1234.5", "JPY", "half_up", "1235"),
        ("1234.4", "JPY", "half_up", "1234"),
        ("1.2345", "KWD", "half_up", "1.235"),
        ("1.2344", "KWD", "half_up", "1.234"),
        ("7", "EUR", "half_up", "7.00"),
    ],
)
def test_round_money(amount: str, currency: str, mode: str, expected: str) -> None:
    result = round_money(Decimal(amount), currency, mode)
    assert result == Decimal(expected)
    assert str(result) == expected  # exponent = minor unit


def test_helpers_and_negative_places() -> None:
    assert round_half_up(Decimal("0.125"), 2) == Decimal("0.13")
    assert truncate(Decimal("0.129"), 2) == Decimal("0.12")
    assert round_up(Decimal("100.01"), 0) == Decimal("101")
    assert quantize(Decimal("1250"), -2, Rounding.HALF_UP) == Decimal("1300")
    assert quantize(Decimal("1249"), -2, Rounding.HALF_UP) == Decimal("1200")


def test_rounding_parse() -> None:
    assert Rounding.parse("truncate") is Rounding.DOWN
    assert Rounding.parse("ceiling") is Rounding.UP
    assert Rounding.parse(" Half_Up ") is Rounding.HALF_UP
    with pytest.raises(ValueError, match="unknown rounding mode"):
        Rounding.parse("nearest")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, Decimal("0.1")),  # shortest repr, not the binary expansion
        (np.float64(70000.5), Decimal("70000.5")),
        (np.int64(12), Decimal(12)),
        (12, Decimal(12)),
        (" 12.50 ", Decimal("12.50")),
        (Decimal("3.14"), Decimal("3.14")),
    ],
)
def test_to_decimal(value: object, expected: Decimal) -> None:
    assert to_decimal(value) == expected


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, None, "abc", "NaN", [1]])
def test_to_decimal_rejects(bad: object) -> None:
    with pytest.raises(InvalidAmount) as info:
        to_decimal(bad, what="rate")
    assert info.value.category == "invalid_amount"
    assert str(info.value).startswith("rate")


def test_decimal_sqrt_exact_and_context_independent() -> None:
    assert decimal_sqrt(Decimal("0.04")) == Decimal("0.2")
    root2 = decimal_sqrt(Decimal(2))
    assert abs(root2 * root2 - 2) < Decimal("1e-32")
    with localcontext() as ctx:
        ctx.prec = 5
        assert decimal_sqrt(Decimal(2)) == root2
        assert ctx.prec == 5  # the caller's context is left alone
    with pytest.raises(InvalidAmount):
        decimal_sqrt(Decimal(-1))


def test_format_money() -> None:
    assert format_money(Decimal("1234.5"), "EUR") == "1,234.50 EUR"
    assert format_money(Decimal("1234.5"), "jpy") == "1,235 JPY"


def test_to_utc_date() -> None:
    assert to_utc_date(date(2025, 1, 1)) == date(2025, 1, 1)
    assert to_utc_date("2025-01-01") == date(2025, 1, 1)
    # 00:30 at UTC+01:00 is still the previous day in UTC
    plus_one = timezone(timedelta(hours=1))
    assert to_utc_date(datetime(2025, 1, 1, 0, 30, tzinfo=plus_one)) == date(2024, 12, 31)
    assert to_utc_date(pd.Timestamp("2025-01-01T23:30:00-02:00")) == date(2025, 1, 2)
    assert to_utc_date(datetime(2025, 1, 1, 23, 59, tzinfo=UTC)) == date(2025, 1, 1)
    assert to_utc_date("2025-01-01T23:30:00-02:00") == date(2025, 1, 2)
    with pytest.raises(ValueError):
        to_utc_date(pd.NaT)
    with pytest.raises(ValueError):
        to_utc_date("01/02/2025")
