"""The tariff engine: quote the charge of one zone visit."""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, DecimalException, localcontext
from types import MappingProxyType
from typing import Any, SupportsIndex

from flight_fees.lib.charging.tariffs.errors import ImplausibleCharge, QuoteInputError
from flight_fees.lib.charging.tariffs.model import (
    AIRSPACE_CLASSES,
    FLAGS,
    FLIGHT_CATEGORIES,
    Computation,
    DistanceClassFormula,
    QuoteInputs,
    Tariffs,
)
from flight_fees.lib.core.money import (
    CALC_CONTEXT,
    InvalidAmount,
    minor_unit,
    quantize,
    to_decimal,
    to_utc_date,
)
from flight_fees.lib.core.plausibility import (
    MAX_FIR_CROSSINGS,
    MAX_MTOW_KG,
    MAX_QUOTE_AMOUNT,
    MAX_VISIT_DISTANCE_KM,
)

__all__ = ["Quote", "parse_flags", "quote"]

_FLAG_SPLIT = re.compile(r"[\s,;|]+")


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Quote:
    """The charge of one zone visit under one tariff version.

    ``amount`` is rounded to the currency's minor unit (or the tariff's amount rounding);
    ``components`` (name, unrounded amount) add up to the charge before the ``multiplier``.
    An exempt or uncharged flight has ``amount == 0`` and ``exemption`` set to the reason.
    ``service_units``, ``distance_factor``, ``weight_factor`` and ``unit_rate`` are None
    when the formula has no such term.
    """

    amount: Decimal
    currency: str
    zone_id: str
    tariff_id: str
    tariff_version: str
    formula: str
    on_date: date
    unit_rate: Decimal | None
    service_units: Decimal | None
    distance_factor: Decimal | None
    weight_factor: Decimal | None
    components: tuple[tuple[str, Decimal], ...]
    multiplier: Decimal
    exemption: str | None
    fx_policy: str
    monthly_invoice_threshold: Decimal | None
    sample: bool
    inputs: QuoteInputs
    details: Mapping[str, str] = field(default_factory=_empty)

    @property
    def is_exempt(self) -> bool:
        return self.exemption is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: Decimals as strings (exact), dates ISO 8601."""

        def dec(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {
            "zone_id": self.zone_id,
            "tariff_id": self.tariff_id,
            "tariff_version": self.tariff_version,
            "formula": self.formula,
            "on_date": self.on_date.isoformat(),
            "amount": str(self.amount),
            "currency": self.currency,
            "unit_rate": dec(self.unit_rate),
            "service_units": dec(self.service_units),
            "distance_factor": dec(self.distance_factor),
            "weight_factor": dec(self.weight_factor),
            "components": [{"name": name, "amount": str(value)} for name, value in self.components],
            "multiplier": str(self.multiplier),
            "exemption": self.exemption,
            "fx_policy": self.fx_policy,
            "monthly_invoice_threshold": dec(self.monthly_invoice_threshold),
            "sample": self.sample,
            "inputs": {
                "distance_km": str(self.inputs.distance_km),
                "mtow_kg": str(self.inputs.mtow_kg),
                "takeoffs": self.inputs.takeoffs,
                "landings": self.inputs.landings,
                "airspace_class": self.inputs.airspace_class,
                "category": self.inputs.flight_category,  # stored key (fee_lines.details)
                "flags": sorted(self.inputs.flags),
                "fir_crossings": self.inputs.fir_crossings,
            },
            "details": dict(self.details),
        }


def parse_flags(value: object) -> frozenset[str]:
    """Flight flags from a set/list/tuple of names or a string (``"state,military"``,
    separators: comma, semicolon, pipe, blanks); None/NaN/empty = no flag.

    Names are lower-cased; a name outside :data:`FLAGS` raises :class:`QuoteInputError`.
    """
    if value is None or (isinstance(value, float) and value != value):
        return frozenset()
    if isinstance(value, str):
        items: Iterable[object] = _FLAG_SPLIT.split(value)
    elif isinstance(value, Iterable):
        items = value
    else:
        raise QuoteInputError(f"flags must be a string or a collection of names, got {value!r}")
    flags = frozenset(str(item).strip().lower() for item in items if str(item).strip())
    unknown = sorted(flags - set(FLAGS))
    if unknown:
        raise QuoteInputError(
            f"unknown flight flag(s) {', '.join(unknown)} (known: {', '.join(FLAGS)})"
        )
    return flags


def _count(value: object, name: str, maximum: int | None = None) -> int:
    try:
        if not isinstance(value, SupportsIndex):
            raise TypeError(value)
        number = operator.index(value)
    except TypeError:
        raise QuoteInputError(f"{name} must be an integer, got {value!r}") from None
    if number < 0:
        raise QuoteInputError(f"{name} must not be negative, got {number}")
    if maximum is not None and number > maximum:
        raise QuoteInputError(f"{name} must be at most {maximum}, got {number}")
    return number


def _inputs(
    *,
    distance_km: object,
    mtow_kg: object,
    takeoffs: object,
    landings: object,
    airspace_class: str,
    flight_category: str,
    flags: object,
    fir_crossings: object,
) -> QuoteInputs:
    try:
        distance = to_decimal(distance_km, what="distance_km")
        mtow = to_decimal(mtow_kg, what="mtow_kg")
    except InvalidAmount as exc:
        raise QuoteInputError(str(exc)) from None
    if not 0 <= distance <= MAX_VISIT_DISTANCE_KM:
        raise QuoteInputError(
            f"distance_km must be from 0 to {MAX_VISIT_DISTANCE_KM:,} (one zone visit), "
            f"got {distance}"
        )
    if not 0 < mtow <= MAX_MTOW_KG:
        raise QuoteInputError(f"mtow_kg must be positive and at most {MAX_MTOW_KG:,}, got {mtow}")
    if flight_category not in FLIGHT_CATEGORIES:
        raise QuoteInputError(
            f"unknown flight category {flight_category!r} "
            f"(expected one of: {', '.join(FLIGHT_CATEGORIES)})"
        )
    if airspace_class not in AIRSPACE_CLASSES:
        raise QuoteInputError(
            f"unknown airspace class {airspace_class!r} "
            f"(expected one of: {', '.join(AIRSPACE_CLASSES)})"
        )
    return QuoteInputs(
        distance_km=distance,
        mtow_kg=mtow,
        takeoffs=_count(takeoffs, "takeoffs"),
        landings=_count(landings, "landings"),
        airspace_class=airspace_class,
        flight_category=flight_category,
        flags=parse_flags(flags),
        fir_crossings=_count(fir_crossings, "fir_crossings", MAX_FIR_CROSSINGS),
    )


def quote(
    tariffs: Tariffs,
    zone_id: str,
    on_date: date | str,
    *,
    distance_km: Decimal | float | int | str,
    mtow_kg: Decimal | float | int | str,
    takeoffs: int = 0,
    landings: int = 0,
    airspace_class: str = "enroute",
    flight_category: str = "overflight",
    flags: Iterable[str] | str | None = frozenset(),
    fir_crossings: int = 1,
) -> Quote:
    """Quote the charge of a visit of ``distance_km`` (great circle, entry to exit) in zone
    ``zone_id`` on UTC day ``on_date`` (a date, datetime or ISO string).

    ``takeoffs``/``landings`` count the movements inside the zone, ``fir_crossings`` the FIR
    crossings of the visit (flat per-crossing fees). Exemptions (flags, flight category, MTOW) give
    a zero quote with the reason, not an error.

    Raises :class:`TariffNotFound` (unknown zone or no version on the date) and
    :class:`QuoteInputError` (invalid input).
    """
    try:
        day = to_utc_date(on_date)
    except ValueError as exc:
        raise QuoteInputError(f"on_date: {exc}") from None
    zone, version = tariffs.version_on(zone_id, day)
    inputs = _inputs(
        distance_km=distance_km,
        mtow_kg=mtow_kg,
        takeoffs=takeoffs,
        landings=landings,
        airspace_class=airspace_class,
        flight_category=flight_category,
        flags=flags,
        fir_crossings=fir_crossings,
    )
    formula = version.formula
    if isinstance(formula, DistanceClassFormula) and airspace_class not in formula.rates:
        raise QuoteInputError(
            f"zone {zone.zone_id} version {version.version}: no rate for airspace class "
            f"{airspace_class!r} (rates: {', '.join(sorted(formula.rates))})"
        )
    places = (
        version.rounding.amount_places
        if version.rounding.amount_places is not None
        else minor_unit(version.currency)
    )
    multiplier = version.multiplier(flight_category)

    exemption = version.exemptions.reason(inputs)
    try:
        with localcontext(CALC_CONTEXT):
            if exemption is None:
                computation = formula.compute(inputs, version.rounding)
                exemption = computation.no_charge_reason
            else:  # exempt: the formula is not applied
                computation = Computation(
                    charge=Decimal(0), components=(), unit_rate=formula.unit_rate, details=_empty()
                )
            if exemption is None:
                amount = quantize(
                    computation.charge * multiplier, places, version.rounding.amount_mode
                )
            else:
                amount = quantize(Decimal(0), places)
    except DecimalException as exc:  # overflow, 0/0, more digits than 34
        raise ImplausibleCharge(
            f"zone {zone.zone_id} version {version.version}: the charge of {inputs.distance_km} "
            f"km at MTOW {inputs.mtow_kg} kg cannot be computed ({type(exc).__name__})"
        ) from None
    if abs(amount) >= MAX_QUOTE_AMOUNT:
        raise ImplausibleCharge(
            f"zone {zone.zone_id} version {version.version}: a charge of {amount} "
            f"{version.currency} for {inputs.distance_km} km at MTOW {inputs.mtow_kg} kg is "
            f"implausible (at most {MAX_QUOTE_AMOUNT:,.0f})"
        )

    return Quote(
        amount=amount,
        currency=version.currency,
        zone_id=zone.zone_id,
        tariff_id=zone.tariff_id,
        tariff_version=version.version,
        formula=formula.type,
        on_date=day,
        unit_rate=computation.unit_rate,
        service_units=computation.service_units,
        distance_factor=computation.distance_factor,
        weight_factor=computation.weight_factor,
        components=computation.components,
        multiplier=multiplier,
        exemption=exemption,
        fx_policy=zone.fx_policy,
        monthly_invoice_threshold=version.monthly_invoice_threshold,
        sample=version.sample,
        inputs=inputs,
        details=computation.details,
    )
