"""Flight attribute fields, their errors and the normalisation of raw values before comparison."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from flight_fees.lib.core.plausibility import MAX_MTOW_KG
from flight_fees.lib.core.values import is_null

#: every attribute field, in output order
FIELDS: tuple[str, ...] = (
    "registration",
    "aircraft_type",
    "icao24",
    "mtow_kg",
    "operator",
    "callsign",
    "origin",
    "destination",
    "flags",
)
DEFAULT_CRITICAL_FIELDS: tuple[str, ...] = ("mtow_kg", "operator")
#: two MTOW values closer than this are the same value
MTOW_TOLERANCE_KG = 0.5
#: ids / keys per ``IN (...)`` statement
_CHUNK = 1_000
_CONFLICT_STATUS_OPEN = "open"


class AttributeSourceError(ValueError):
    """A source is misconfigured or returned unusable data (bad CSV header, bad value...)."""

    category: ClassVar[str] = "attribute_source_error"


class ConflictNotFound(LookupError):
    """No open conflict matches the id or (flight_id, field) given."""


# -- normalisation -------------------------------------------------------------------------

_BLANKS = re.compile(r"\s+")
_FLAG_SPLIT = re.compile(r"[,;\s]+")
_ICAO24 = re.compile(r"^[0-9a-f]{6}$")


def normalise_value(field_name: str, value: Any) -> Any:
    """The canonical form of one value of ``field_name`` (``None`` when unknown/blank).

    registration, callsign: upper case, no blanks; aircraft_type, origin, destination: upper
    case, stripped; icao24: lower case, stripped; operator: stripped (compared case-blind);
    flags: lower-case, de-duplicated, sorted, comma-joined; mtow_kg: a float > 0.

    Raises :class:`ValueError` for an MTOW that is not a positive finite number.
    """
    if is_null(value):
        return None
    if field_name == "mtow_kg":
        if isinstance(value, bool):
            raise ValueError(f"mtow_kg must be a number, got {value!r}")
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"mtow_kg must be a number, got {value!r}") from None
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"mtow_kg must be a positive finite number, got {value!r}")
        if number > MAX_MTOW_KG:
            raise ValueError(f"mtow_kg {value!r} is implausible (at most {MAX_MTOW_KG:,} kg)")
        return number
    text = str(value).strip()
    if field_name in ("registration", "callsign"):
        text = _BLANKS.sub("", text).upper()
    elif field_name in ("aircraft_type", "origin", "destination"):
        text = text.upper()
    elif field_name == "icao24":
        text = text.lower()
    elif field_name == "flags":
        text = ",".join(sorted({f.lower() for f in _FLAG_SPLIT.split(text) if f}))
    elif field_name != "operator":
        raise ValueError(f"unknown attribute field {field_name!r}")
    return text or None


def _compare_key(field_name: str, value: Any) -> Any:
    """Values with equal keys agree (operator codes compare case-blind)."""
    return value.casefold() if field_name == "operator" and isinstance(value, str) else value


def _none_for_missing(series: pd.Series) -> pd.Series:
    out = series.astype(object)
    return out.where(out.notna(), None)


def _normalise_series(field_name: str, series: pd.Series) -> pd.Series:
    """Vectorised :func:`normalise_value` (each distinct value normalised once)."""
    values = series.astype(object)
    uniques = pd.unique(values[values.notna()])
    normalised = values.map({u: normalise_value(field_name, u) for u in uniques})
    if field_name == "mtow_kg":
        return normalised.astype("float64")
    return _none_for_missing(normalised)


def _none_series(index: pd.Index) -> pd.Series:
    """An object Series of ``None`` (``pd.Series(None, index=...)`` would hold NaN)."""
    return pd.Series([None] * len(index), index=index, dtype=object)


def _empty_field_column(field_name: str, index: pd.Index) -> pd.Series:
    if field_name == "mtow_kg":
        return pd.Series(np.nan, index=index, dtype="float64")
    return _none_series(index)


def _unique_flight_ids(flights: pd.DataFrame | Sequence[int]) -> pd.Index:
    if isinstance(flights, pd.DataFrame):
        if "flight_id" not in flights.columns:
            raise ValueError("flights frame needs a flight_id column")
        raw = flights["flight_id"]
    else:
        raw = pd.Series(list(flights))
    if raw.isna().any():
        raise ValueError("flight_id must not be missing")
    ids = pd.to_numeric(raw, errors="raise").astype("int64")
    return pd.Index(pd.unique(ids), dtype="int64", name="flight_id")
