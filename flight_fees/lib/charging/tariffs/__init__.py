"""Tariffs of the charging zones and the engine that quotes a zone visit.

- :func:`load_tariffs` / :func:`parse_tariffs`: read and validate tariff YAML;
- :func:`load_unit_rates_csv`: overlay published monthly unit rates;
- :func:`quote`: the charge of one visit, as a :class:`Quote`.

See :mod:`flight_fees.lib.charging.tariffs.model` for the conventions (dates, bands, rounding).
"""

from __future__ import annotations

from flight_fees.lib.charging.tariffs.engine import Quote, parse_flags, quote
from flight_fees.lib.charging.tariffs.errors import (
    QuoteInputError,
    TariffError,
    TariffNotFound,
    TariffValidationError,
)
from flight_fees.lib.charging.tariffs.loader import (
    DEFAULT_TARIFFS_PATH,
    load_tariffs,
    parse_tariffs,
)
from flight_fees.lib.charging.tariffs.model import (
    AIRSPACE_CLASSES,
    FLAGS,
    FLIGHT_CATEGORIES,
    FORMULA_TYPES,
    FX_POLICIES,
    ComponentBand,
    DistanceClassFormula,
    DistanceWeightFormula,
    Exemptions,
    FeeBand,
    FlatWeightBandFormula,
    MultiComponentFormula,
    QuoteInputs,
    RoundingRules,
    RoundingStep,
    Tariffs,
    TariffVersion,
    WeightDivisorBand,
    ZoneTariff,
)
from flight_fees.lib.charging.tariffs.unit_rates import load_unit_rates_csv

__all__ = [
    "AIRSPACE_CLASSES",
    "DEFAULT_TARIFFS_PATH",
    "FLAGS",
    "FLIGHT_CATEGORIES",
    "FORMULA_TYPES",
    "FX_POLICIES",
    "ComponentBand",
    "DistanceClassFormula",
    "DistanceWeightFormula",
    "Exemptions",
    "FeeBand",
    "FlatWeightBandFormula",
    "MultiComponentFormula",
    "Quote",
    "QuoteInputError",
    "QuoteInputs",
    "RoundingRules",
    "RoundingStep",
    "TariffError",
    "TariffNotFound",
    "TariffValidationError",
    "TariffVersion",
    "Tariffs",
    "WeightDivisorBand",
    "ZoneTariff",
    "load_tariffs",
    "load_unit_rates_csv",
    "parse_flags",
    "parse_tariffs",
    "quote",
]
