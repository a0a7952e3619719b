"""Time helpers shared by every layer: timestamps made aware UTC, UTC calendar days, months.

A naive datetime is always taken to be UTC already (SQLite returns naive UTC timestamps, the
track sources deliver UTC).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["as_utc", "as_utc_timestamp", "next_month", "to_utc_date"]


@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: dt.datetime | str) -> dt.datetime: ...
def as_utc(value: dt.datetime | str | None) -> dt.datetime | None:
    """An aware UTC datetime: a naive value is taken to be UTC, an aware one is converted, an
    ISO 8601 string is parsed first (SQLite server-default timestamps may come back as text);
    None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def as_utc_timestamp(value: object) -> pd.Timestamp:
    """:class:`pandas.Timestamp` in UTC of a datetime, date, ISO string or Timestamp (naive =
    UTC); NaT for a missing value."""
    import pandas as pd  # here: the CLI's light modules import this one, not pandas

    if value is None:
        return pd.NaT  # type: ignore[return-value]  # pandas-stubs: NaT is no Timestamp
    ts = pd.Timestamp(value)  # type: ignore[arg-type]  # pandas-stubs: a closed list of types
    if pd.isna(ts):
        return ts
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def to_utc_date(value: object) -> dt.date:
    """The UTC calendar day of ``value``.

    ``value`` may be a :class:`datetime.date`, a :class:`datetime.datetime` (pandas
    Timestamps included; a naive datetime is taken as UTC, an aware one is converted to
    UTC first) or an ISO 8601 string (``YYYY-MM-DD`` or a full timestamp).
    :class:`ValueError` for anything else, including None and NaT.
    """
    if isinstance(value, dt.datetime):
        if value != value:  # NaT
            raise ValueError("date is missing (NaT)")
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return dt.date(value.year, value.month, value.day)
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
        try:
            return to_utc_date(dt.datetime.fromisoformat(text))
        except ValueError:
            raise ValueError(f"not an ISO date: {value!r} (expected YYYY-MM-DD)") from None
    raise ValueError(f"not a date: {value!r}")


def next_month(day: dt.date) -> dt.date:
    """The first day of the month after ``day``'s month."""
    return dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
