"""Errors of the tariff engine, each with a stable ``category``."""

from __future__ import annotations

from typing import ClassVar

from flight_fees.lib.core.money import CategorizedError

__all__ = [
    "ImplausibleCharge",
    "QuoteInputError",
    "TariffError",
    "TariffNotFound",
    "TariffValidationError",
]


class TariffError(CategorizedError):
    """Base of the tariff errors."""

    category: ClassVar[str] = "tariff_error"


class TariffValidationError(TariffError, ValueError):
    """A tariff file (YAML or unit-rate CSV) is invalid.

    The message names the file, the zone, the version and the field, e.g.
    ``tariffs.yaml: zone VTBB version 2024-01: field formula.unit_rate: must be a positive
    number``.
    """

    category: ClassVar[str] = "invalid_tariff"


class TariffNotFound(TariffError, LookupError):
    """Unknown charging zone, or no tariff version of the zone effective on the date."""

    category: ClassVar[str] = "no_tariff"


class QuoteInputError(TariffError, ValueError):
    """Invalid input of a quote (negative distance, unknown category or flag...)."""

    category: ClassVar[str] = "invalid_quote_input"


class ImplausibleCharge(TariffError, ArithmeticError):
    """The charge of a visit cannot be computed exactly or exceeds
    :data:`flight_fees.lib.core.plausibility.MAX_QUOTE_AMOUNT` (a tariff beyond plausible
    values)."""

    category: ClassVar[str] = "implausible_charge"
