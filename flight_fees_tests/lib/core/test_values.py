"""Tests of flight_fees.lib.core.values: what counts as "no value"."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from flight_fees.lib.core.values import is_missing, is_null

NULLS = [
    None, pd.NA, pd.NaT, float("nan"), np.float64("nan"), np.float32("nan"),
    np.datetime64("NaT"), np.timedelta64("NaT"),
]  # fmt: skip
#: missing, but not null: unusable values that pandas would keep
UNUSABLE = [Decimal("NaN"), Decimal("sNaN"), "", "  ", "\t\n"]
VALUES = [
    0, 0.0, -1.5, Decimal(0), Decimal("12.5"), "x", " A ", False, True, pd.Timestamp(0),
    np.float32(1.5), np.int64(0), np.datetime64("2026-01-05"),
]  # fmt: skip


@pytest.mark.parametrize("value", NULLS)
def test_nulls_are_null_and_missing(value: object) -> None:
    assert is_null(value)
    assert is_missing(value)


@pytest.mark.parametrize("value", UNUSABLE)
def test_unusable_values_are_missing_but_not_null(value: object) -> None:
    assert is_missing(value)
    assert not is_null(value)


@pytest.mark.parametrize("value", VALUES)
def test_values_are_neither(value: object) -> None:
    assert not is_null(value)
    assert not is_missing(value)
