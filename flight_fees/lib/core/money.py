"""Money primitives: ISO 4217 minor units, exact Decimal parsing and rounding.

Every amount in flight_fees is a :class:`decimal.Decimal`; floats never carry money. All
arithmetic that must be reproducible runs in :data:`CALC_CONTEXT` (34 significant digits,
IEEE 754 decimal128 precision) so a result does not depend on the caller's decimal context.

Rounding modes (:class:`Rounding`), for non-negative values:

- ``half_up``: to nearest, ties away from zero (commercial rounding; the default);
- ``half_even``: to nearest, ties to even (banker's rounding);
- ``down`` (alias ``truncate``): toward zero;
- ``up`` (alias ``ceiling`` for the non-negative values charged here): away from zero.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, Final

from flight_fees.lib.core.timeutil import to_utc_date  # re-exported: its home is timeutil

__all__ = [
    "CALC_CONTEXT",
    "DEFAULT_MINOR_UNIT",
    "MINOR_UNITS",
    "CategorizedError",
    "InvalidAmount",
    "InvalidCurrency",
    "Rounding",
    "decimal_sqrt",
    "format_money",
    "minor_unit",
    "normalize_currency",
    "quantize",
    "round_half_up",
    "round_money",
    "round_up",
    "to_decimal",
    "to_utc_date",
    "truncate",
]


class CategorizedError(Exception):
    """Base of the domain errors of flight_fees' charging code.

    ``category`` is a stable, machine-readable string (stored with failed flights, used in
    processing logs); the message is for humans.
    """

    category: ClassVar[str] = "error"


class InvalidAmount(CategorizedError, ValueError):
    """A value that cannot be read as a finite decimal number."""

    category: ClassVar[str] = "invalid_amount"


class InvalidCurrency(CategorizedError, ValueError):
    """A currency code that is not three ASCII letters."""

    category: ClassVar[str] = "invalid_currency"


#: Context of all reproducible computations: 34 significant digits, traps on invalid
#: operations, division by zero and overflow (never a silent NaN/Infinity).
CALC_CONTEXT: Final[Context] = Context(
    prec=34,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)

#: Minor units (decimal places) of ISO 4217 currencies that differ from 2 (ISO 4217
#: amendment list, 2024). Every other well-formed code has :data:`DEFAULT_MINOR_UNIT`.
MINOR_UNITS: Final[Mapping[str, int]] = MappingProxyType(
    {
        **dict.fromkeys(
            (
                "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
            ),
            0,
        ),
        **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
        **dict.fromkeys(("CLF", "UYW"), 4),
    }
)  # fmt: skip
DEFAULT_MINOR_UNIT: Final[int] = 2

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


class Rounding(StrEnum):
    """A rounding mode, by its name in tariff files."""

    HALF_UP = "half_up"
    HALF_EVEN = "half_even"
    DOWN = "down"
    UP = "up"

    @classmethod
    def parse(cls, value: object) -> Rounding:
        """The mode named ``value`` (case-insensitive; ``truncate`` = ``down``,
        ``ceiling`` = ``up``); :class:`ValueError` listing the valid names for anything else
        (any other value, e.g. one read from a file)."""
        if isinstance(value, Rounding):
            return value
        if isinstance(value, str):
            name = value.strip().lower()
            name = _ROUNDING_ALIASES.get(name, name)
            try:
                return cls(name)
            except ValueError:
                pass
        valid = ", ".join([m.value for m in cls] + sorted(_ROUNDING_ALIASES))
        raise ValueError(f"unknown rounding mode {value!r} (expected one of: {valid})")

    @property
    def decimal_mode(self) -> str:
        """The :mod:`decimal` rounding constant of this mode."""
        return _DECIMAL_MODES[self]


_ROUNDING_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {"truncate": "down", "ceiling": "up"}
)
_DECIMAL_MODES: Final[Mapping[Rounding, str]] = MappingProxyType(
    {
        Rounding.HALF_UP: ROUND_HALF_UP,
        Rounding.HALF_EVEN: ROUND_HALF_EVEN,
        Rounding.DOWN: ROUND_DOWN,
        Rounding.UP: ROUND_UP,
    }
)


def normalize_currency(code: object) -> str:
    """``code`` stripped and upper-cased; :class:`InvalidCurrency` unless three letters."""
    if not isinstance(code, str):
        raise InvalidCurrency(f"currency must be a 3-letter code, got {code!r}")
    norm = code.strip().upper()
    if not _CURRENCY_RE.match(norm):
        raise InvalidCurrency(f"currency must be a 3-letter code, got {code!r}")
    return norm


def minor_unit(currency: str) -> int:
    """Number of decimal places of ``currency`` (ISO 4217 minor unit; 2 if not tabled)."""
    return MINOR_UNITS.get(normalize_currency(currency), DEFAULT_MINOR_UNIT)


def to_decimal(value: object, *, what: str = "value") -> Decimal:
    """``value`` as a finite :class:`Decimal`.

    Accepts Decimal, int, float (through its shortest repr, so ``0.1`` gives
    ``Decimal('0.1')``, not the binary expansion), numpy scalars and numeric strings
    (surrounding blanks ignored). Rejects bools, None, NaN and infinities with
    :class:`InvalidAmount`, whose message starts with ``what``.
    """
    if isinstance(value, bool) or value is None:
        raise InvalidAmount(f"{what} must be a number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidAmount(f"{what} must be a finite number, got {value!r}")
        result = Decimal(repr(float(value)))  # float(): numpy floats have a different repr
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidAmount(f"{what} must be a number, got {value!r}") from None
    else:
        # numpy / pandas scalars without importing them here
        item = getattr(value, "item", None)
        if callable(item):
            return to_decimal(item(), what=what)
        raise InvalidAmount(f"{what} must be a number, got {value!r}")
    if not result.is_finite():
        raise InvalidAmount(f"{what} must be a finite number, got {value!r}")
    return result


def quantize(value: Decimal, places: int, mode: Rounding | str = Rounding.HALF_UP) -> Decimal:
    """``value`` rounded to ``places`` decimal places (negative: tens, hundreds...)."""
    exponent = Decimal(1).scaleb(-places)
    return value.quantize(
        exponent, rounding=Rounding.parse(mode).decimal_mode, context=CALC_CONTEXT
    )


def round_half_up(value: Decimal, places: int) -> Decimal:
    """``value`` to ``places`` decimals, ties away from zero."""
    return quantize(value, places, Rounding.HALF_UP)


def truncate(value: Decimal, places: int) -> Decimal:
    """``value`` to ``places`` decimals, toward zero."""
    return quantize(value, places, Rounding.DOWN)


def round_up(value: Decimal, places: int) -> Decimal:
    """``value`` to ``places`` decimals, away from zero (ceiling for non-negative values)."""
    return quantize(value, places, Rounding.UP)


def round_money(amount: Decimal, currency: str, mode: Rounding | str = Rounding.HALF_UP) -> Decimal:
    """``amount`` rounded to the minor unit of ``currency`` (JPY 0, KWD 3, EUR 2...)."""
    return quantize(amount, minor_unit(currency), mode)


def decimal_sqrt(value: Decimal) -> Decimal:
    """Correctly rounded square root of ``value`` to 34 significant digits (reproducible)."""
    if value < 0:
        raise InvalidAmount(f"square root of a negative number: {value}")
    return value.sqrt(context=CALC_CONTEXT)


def format_money(amount: Decimal, currency: str) -> str:
    """``amount`` with thousands separators at the currency's minor unit, e.g.
    ``'1,234.50 EUR'`` (display only)."""
    places = minor_unit(currency)
    return f"{round_money(amount, currency):,.{places}f} {normalize_currency(currency)}"
