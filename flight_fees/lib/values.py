"""Scalar values that stand for "no value".

:func:`is_null` is what pandas stores in an empty cell; :func:`is_missing` also refuses the
values that cannot be used either (a Decimal NaN, a blank string).
"""

from __future__ import annotations

import math
from decimal import Decimal

import pandas as pd

__all__ = ["is_missing", "is_null"]


def is_null(value: object) -> bool:
    """``None``, ``pd.NA``, ``pd.NaT`` or a float NaN."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def is_missing(value: object) -> bool:
    """:func:`is_null`, a Decimal NaN or a blank string."""
    if isinstance(value, Decimal):
        return value.is_nan()
    if isinstance(value, str):
        return not value.strip()
    return is_null(value)
