"""Tests of the shared time helpers (to_utc_date is tested in test_money.py, its old home)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from flight_fees.lib.core.timeutil import as_utc, as_utc_timestamp, next_month

PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


def test_as_utc_naive_aware_text_and_none() -> None:
    naive = dt.datetime(2026, 1, 5, 10, 0)
    assert as_utc(naive) == dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)
    assert as_utc(naive).tzinfo is dt.UTC
    aware = as_utc(dt.datetime(2026, 1, 5, 1, 0, tzinfo=PLUS_TWO))
    assert aware == dt.datetime(2026, 1, 4, 23, 0, tzinfo=dt.UTC) and aware.tzinfo is dt.UTC
    assert as_utc("2026-01-05 10:00:00") == dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)
    assert as_utc("2026-01-05T12:00:00+02:00") == dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)
    assert as_utc(None) is None


def test_as_utc_timestamp() -> None:
    assert as_utc_timestamp("2026-01-05 10:00") == pd.Timestamp("2026-01-05 10:00", tz="UTC")
    shifted = as_utc_timestamp(pd.Timestamp("2026-01-05 01:00", tz="Europe/Paris"))
    assert shifted == pd.Timestamp("2026-01-05 00:00", tz="UTC") and str(shifted.tz) == "UTC"
    assert as_utc_timestamp(dt.date(2026, 1, 5)) == pd.Timestamp("2026-01-05", tz="UTC")
    assert as_utc_timestamp(None) is pd.NaT
    assert as_utc_timestamp(pd.NaT) is pd.NaT


@pytest.mark.parametrize(
    ("day", "first"),
    [
        (dt.date(2026, 1, 31), dt.date(2026, 2, 1)),
        (dt.date(2026, 2, 1), dt.date(2026, 3, 1)),
        (dt.date(2025, 12, 15), dt.date(2026, 1, 1)),
    ],
)
def test_next_month(day: dt.date, first: dt.date) -> None:
    assert next_month(day) == first
