"""Scalar values that stand for "no value".

:func:`is_null` is what pandas stores in an empty cell; :func:`is_missing` also refuses the
values that cannot be used either (a Decimal NaN, a blank string).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

__all__ = ["is_missing", "is_null", "printable"]

#: C0 controls but tab and newline, DEL, C1 controls, bidirectional overrides and isolates
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def is_null(value: object) -> bool:
    """``None``, ``pd.NA``, ``pd.NaT``, a float NaN, or a NumPy scalar NaN / NaT (``float32``,
    ``datetime64``: object columns hand them over as they are)."""
    import numpy as np  # here: the CLI's terminal helpers import this module, not pandas
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, np.floating | np.complexfloating | np.datetime64 | np.timedelta64):
        return bool(pd.isna(value))
    return False


def is_missing(value: object) -> bool:
    """:func:`is_null`, a Decimal NaN or a blank string."""
    if isinstance(value, Decimal):
        return value.is_nan()
    if isinstance(value, str):
        return not value.strip()
    return is_null(value)


def printable(text: object) -> str:
    """``str(text)`` without control characters (escape sequences lose their ESC, C1 and
    bidirectional-override characters are dropped; tab and newline stay): data from files,
    the database or a source printed to a terminal can never drive it."""
    return _CONTROL.sub("", str(text))
