"""Tariff data model: charging zones, effective-dated versions and formulas.

Conventions
-----------
- **Effective dates** are UTC calendar days. A version applies on day ``d`` when
  ``valid_from <= d < valid_to``: ``valid_from`` is inclusive, ``valid_to`` **exclusive**
  (``None`` = open-ended). A version ``valid_to: 2025-01-01`` therefore covers flights up to
  2024-12-31T23:59:59.999Z and the next version, ``valid_from: 2025-01-01``, starts exactly
  at midnight UTC. Versions of a zone never overlap; gaps are allowed (no tariff there).
- **Weights** are MTOW in tonnes (``mtow_kg / 1000``, then the version's ``mtow`` rounding).
  Weight bands are given by their inclusive upper bound ``up_to_t`` on that rounded value;
  the last band is open (``up_to_t: null``).
- **Distances** are the great-circle distance in the zone, given in km and converted to the
  formula's ``distance_unit`` (1 NM = 1.852 km exactly), then rounded (``distance``
  rounding), reduced by ``deduction_per_movement`` per take-off and per landing in the zone,
  floored at 0 and clamped to ``[min_distance, max_distance]`` where given.
- Each formula computes an unrounded **charge**; the quote multiplies it by the flight
  category multiplier and rounds it once to the currency's minor unit (or ``rounding.amount``).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import ClassVar, Final, Literal, Protocol, TypeVar

from flight_fees.lib.charging.tariffs.errors import TariffNotFound
from flight_fees.lib.core.money import (
    CALC_CONTEXT,
    Rounding,
    decimal_sqrt,
    normalize_currency,
    quantize,
)

__all__ = [
    "AIRSPACE_CLASSES",
    "DISTANCE_UNITS",
    "FLAGS",
    "FLIGHT_CATEGORIES",
    "FORMULA_TYPES",
    "FX_POLICIES",
    "KM_PER_NM",
    "ComponentBand",
    "Computation",
    "DistanceClassFormula",
    "DistanceWeightFormula",
    "Exemptions",
    "FeeBand",
    "FlatWeightBandFormula",
    "Formula",
    "MultiComponentFormula",
    "QuoteInputs",
    "RoundingRules",
    "RoundingStep",
    "TariffVersion",
    "Tariffs",
    "WeightDivisorBand",
    "ZoneTariff",
]

#: Flight categories (``overflight``... ``member``), the keys of the multipliers; not the
#: *failure category* of an error (:class:`~flight_fees.lib.core.money.CategorizedError`).
FLIGHT_CATEGORIES: Final[tuple[str, ...]] = ("overflight", "international", "domestic", "member")
#: Flight flags that a zone may exempt (checked in this order).
FLAGS: Final[tuple[str, ...]] = ("state", "military", "search_and_rescue", "training")
#: Airspace classes of ``distance_class`` tariffs.
AIRSPACE_CLASSES: Final[tuple[str, ...]] = ("enroute", "oceanic")
#: FX policies of a zone (see :mod:`flight_fees.lib.charging.fx`).
FX_POLICIES: Final[tuple[str, ...]] = ("flight_date", "previous_month_average")
DISTANCE_UNITS: Final[tuple[str, ...]] = ("km", "NM")
FORMULA_TYPES: Final[tuple[str, ...]] = (
    "distance_weight",
    "distance_class",
    "flat_weight_band",
    "multi_component",
)
#: Kilometres per international nautical mile (exact by definition).
KM_PER_NM: Final[Decimal] = Decimal("1.852")

DistanceUnit = Literal["km", "NM"]

_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)
_HALF: Final = Decimal("0.5")
_THOUSAND: Final = Decimal(1000)


# --- rounding and exemptions ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundingStep:
    """Round to ``places`` decimals with ``mode``."""

    places: int
    mode: Rounding = Rounding.HALF_UP

    def apply(self, value: Decimal) -> Decimal:
        return quantize(value, self.places, self.mode)

    def describe(self) -> str:
        return f"{self.places} {self.mode.value}"


def _rnd(step: RoundingStep | None, value: Decimal) -> Decimal:
    return value if step is None else step.apply(value)


@dataclass(frozen=True, slots=True)
class RoundingRules:
    """Rounding of the intermediate values and of the amount of a tariff version.

    ``None`` means "not rounded". ``mtow`` applies to the MTOW in tonnes, ``distance`` to
    the distance in the formula's unit before deductions. The amount is rounded with
    ``amount_mode`` to ``amount_places`` (default: the currency's ISO 4217 minor unit).
    """

    mtow: RoundingStep | None = None
    distance: RoundingStep | None = None
    distance_factor: RoundingStep | None = None
    weight_factor: RoundingStep | None = None
    service_units: RoundingStep | None = None
    amount_mode: Rounding = Rounding.HALF_UP
    amount_places: int | None = None


@dataclass(frozen=True, slots=True)
class QuoteInputs:
    """Validated inputs of one quote (see :func:`flight_fees.lib.charging.tariffs.quote`)."""

    distance_km: Decimal
    mtow_kg: Decimal
    takeoffs: int = 0
    landings: int = 0
    airspace_class: str = "enroute"
    flight_category: str = "overflight"
    flags: frozenset[str] = frozenset()
    fir_crossings: int = 1

    @property
    def movements(self) -> int:
        """Take-offs plus landings in the zone."""
        return self.takeoffs + self.landings


@dataclass(frozen=True, slots=True)
class Exemptions:
    """Exemptions of a tariff version; an exempt flight is quoted at zero with the reason.

    - ``flags``: flight flags (:data:`FLAGS`) that exempt; reason = the flag;
    - ``flight_categories`` (``categories:`` in the tariff file): exempt flight categories;
      reason ``category_<flight category>``;
    - ``below_mtow_kg``: MTOW strictly below this exempts; reason ``mtow_below_<n>_kg``.
    """

    below_mtow_kg: Decimal | None = None
    flags: frozenset[str] = frozenset()
    flight_categories: frozenset[str] = frozenset()

    def reason(self, inputs: QuoteInputs) -> str | None:
        """The exemption reason of a flight, or None when it is charged."""
        for flag in FLAGS:
            if flag in self.flags and flag in inputs.flags:
                return flag
        if inputs.flight_category in self.flight_categories:
            return f"category_{inputs.flight_category}"
        if self.below_mtow_kg is not None and inputs.mtow_kg < self.below_mtow_kg:
            return f"mtow_below_{_plain(self.below_mtow_kg)}_kg"
        return None


# --- formulas --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Computation:
    """Result of a formula before the flight category multiplier and the final rounding.

    ``charge`` is the sum of ``components``. ``no_charge_reason`` is set when the formula
    itself decides the flight is not charged (e.g. FAA: take-off or landing in the state).
    ``details`` holds the intermediate values (as strings) for the audit trail.
    """

    charge: Decimal
    components: tuple[tuple[str, Decimal], ...]
    unit_rate: Decimal | None = None
    service_units: Decimal | None = None
    distance_factor: Decimal | None = None
    weight_factor: Decimal | None = None
    details: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    no_charge_reason: str | None = None


class Formula(Protocol):
    """A charging formula: parameters plus :meth:`compute`."""

    type: ClassVar[str]

    @property
    def unit_rate(self) -> Decimal | None: ...

    def compute(self, inputs: QuoteInputs, rounding: RoundingRules) -> Computation: ...


def _plain(value: Decimal) -> str:
    """``value`` without exponent or trailing zeros (``2000``, ``0.5``)."""
    text = f"{value.normalize():f}"
    return text


def _power(base: Decimal, exponent: Decimal) -> Decimal:
    """``base ** exponent``: exact for 1, correctly rounded sqrt for 0.5."""
    if exponent == _ONE:
        return base
    if base == _ZERO:
        return _ZERO
    if exponent == _HALF:
        return decimal_sqrt(base)
    return CALC_CONTEXT.power(base, exponent)


def _clamp(value: Decimal, low: Decimal | None, high: Decimal | None) -> Decimal:
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    return value


def _mtow_t(inputs: QuoteInputs, rounding: RoundingRules) -> Decimal:
    return _rnd(rounding.mtow, inputs.mtow_kg / _THOUSAND)


class _Band(Protocol):
    @property
    def up_to_t(self) -> Decimal | None: ...


_B = TypeVar("_B", bound=_Band)


def _select_band(bands: Sequence[_B], mtow_t: Decimal) -> _B:
    """The first band whose inclusive upper bound is >= ``mtow_t`` (last band is open)."""
    for band in bands:
        if band.up_to_t is None or mtow_t <= band.up_to_t:
            return band
    raise AssertionError("the last weight band must be open-ended")  # loader guarantees it


def _chargeable_distance(
    inputs: QuoteInputs,
    *,
    unit: str,
    rounding: RoundingRules,
    deduction_per_movement: Decimal,
    min_distance: Decimal | None = None,
    max_distance: Decimal | None = None,
) -> tuple[Decimal, dict[str, str]]:
    """Distance charged, in ``unit``, and its audit details."""
    raw = inputs.distance_km if unit == "km" else inputs.distance_km / KM_PER_NM
    rounded = _rnd(rounding.distance, raw)
    deducted = max(rounded - deduction_per_movement * inputs.movements, _ZERO)
    charged = _clamp(deducted, min_distance, max_distance)
    details = {
        "distance_unit": unit,
        "distance": str(raw),
        "distance_rounded": str(rounded),
        "deduction": str(deduction_per_movement * inputs.movements),
        "distance_charged": str(charged),
    }
    return charged, details


@dataclass(frozen=True, slots=True)
class WeightDivisorBand:
    """Weight divisor X for MTOW up to ``up_to_t``: a constant ``divisor_t`` or
    ``divisor_mtow_ratio`` x MTOW (e.g. AEROTHAI's X = MTOW / 2 is ratio 0.5)."""

    up_to_t: Decimal | None
    divisor_t: Decimal | None = None
    divisor_mtow_ratio: Decimal | None = None

    def divisor(self, weight_t: Decimal) -> Decimal:
        if self.divisor_t is not None:
            return self.divisor_t
        assert self.divisor_mtow_ratio is not None
        return weight_t * self.divisor_mtow_ratio


@dataclass(frozen=True, slots=True)
class DistanceWeightFormula:
    """``charge = unit_rate x distance_factor x weight_factor`` (EUROCONTROL and similar).

    - distance factor = (chargeable distance / ``distance_divisor``) ** ``distance_exponent``
    - weight factor = (MTOW_t / X) ** ``weight_exponent`` with X = ``weight_divisor_t`` or
      the divisor of the matching ``weight_bands`` entry; the MTOW is clamped to
      ``[min_weight_t, max_weight_t]`` first and the factor capped at ``max_weight_factor``.
    - service units = distance factor x weight factor.
    """

    type: ClassVar[str] = "distance_weight"

    unit_rate: Decimal
    distance_unit: DistanceUnit = "km"
    distance_divisor: Decimal = Decimal(100)
    deduction_per_movement: Decimal = _ZERO
    min_distance: Decimal | None = None
    max_distance: Decimal | None = None
    distance_exponent: Decimal = _ONE
    weight_divisor_t: Decimal = Decimal(50)
    weight_bands: tuple[WeightDivisorBand, ...] = ()
    weight_exponent: Decimal = _HALF
    min_weight_t: Decimal | None = None
    max_weight_t: Decimal | None = None
    max_weight_factor: Decimal | None = None

    def compute(self, inputs: QuoteInputs, rounding: RoundingRules) -> Computation:
        mtow_t = _mtow_t(inputs, rounding)
        weight_t = _clamp(mtow_t, self.min_weight_t, self.max_weight_t)
        if self.weight_bands:
            divisor = _select_band(self.weight_bands, weight_t).divisor(weight_t)
        else:
            divisor = self.weight_divisor_t
        weight_factor = _power(weight_t / divisor, self.weight_exponent)
        if self.max_weight_factor is not None:
            weight_factor = min(weight_factor, self.max_weight_factor)
        weight_factor = _rnd(rounding.weight_factor, weight_factor)

        distance, details = _chargeable_distance(
            inputs,
            unit=self.distance_unit,
            rounding=rounding,
            deduction_per_movement=self.deduction_per_movement,
            min_distance=self.min_distance,
            max_distance=self.max_distance,
        )
        distance_factor = _power(distance / self.distance_divisor, self.distance_exponent)
        distance_factor = _rnd(rounding.distance_factor, distance_factor)

        service_units = _rnd(rounding.service_units, distance_factor * weight_factor)
        charge = self.unit_rate * service_units
        details.update(
            mtow_t=str(mtow_t),
            weight_t=str(weight_t),
            weight_divisor_t=str(divisor),
        )
        return Computation(
            charge=charge,
            components=(("route_charge", charge),),
            unit_rate=self.unit_rate,
            service_units=service_units,
            distance_factor=distance_factor,
            weight_factor=weight_factor,
            details=MappingProxyType(details),
        )


@dataclass(frozen=True, slots=True)
class DistanceClassFormula:
    """``charge = rate[airspace_class] x distance / distance_divisor``, no weight term
    (FAA overflight fees: USD per 100 NM, en-route and oceanic rates).

    With ``no_charge_on_movement`` a flight that takes off or lands in the zone is not
    charged (reason ``departure_or_arrival_in_zone``).
    """

    type: ClassVar[str] = "distance_class"

    rates: Mapping[str, Decimal]
    distance_unit: DistanceUnit = "NM"
    distance_divisor: Decimal = Decimal(100)
    no_charge_on_movement: bool = True

    @property
    def unit_rate(self) -> Decimal | None:
        """The en-route rate (the per-class rate is in the quote)."""
        return self.rates.get("enroute")

    def compute(self, inputs: QuoteInputs, rounding: RoundingRules) -> Computation:
        rate = self.rates[inputs.airspace_class]  # engine validated the class
        if self.no_charge_on_movement and inputs.movements > 0:
            return Computation(
                charge=_ZERO,
                components=(),
                unit_rate=rate,
                details=MappingProxyType({"airspace_class": inputs.airspace_class}),
                no_charge_reason="departure_or_arrival_in_zone",
            )
        distance, details = _chargeable_distance(
            inputs, unit=self.distance_unit, rounding=rounding, deduction_per_movement=_ZERO
        )
        units = _rnd(rounding.service_units, distance / self.distance_divisor)
        charge = rate * units
        details["airspace_class"] = inputs.airspace_class
        return Computation(
            charge=charge,
            components=((inputs.airspace_class, charge),),
            unit_rate=rate,
            service_units=units,
            distance_factor=units,
            details=MappingProxyType(details),
        )


@dataclass(frozen=True, slots=True)
class FeeBand:
    """A flat ``fee`` for MTOW up to ``up_to_t`` tonnes (inclusive; None = no limit)."""

    up_to_t: Decimal | None
    fee: Decimal


@dataclass(frozen=True, slots=True)
class FlatWeightBandFormula:
    """A flat fee by MTOW band, per flight or per FIR crossing, plus an optional fee per
    FIR crossing (e.g. Somalia: USD 40 up to 20 t, USD 275 above, + USD 10 per crossing)."""

    type: ClassVar[str] = "flat_weight_band"

    bands: tuple[FeeBand, ...]
    per: Literal["flight", "fir_crossing"] = "flight"
    per_crossing_fee: Decimal = _ZERO

    @property
    def unit_rate(self) -> Decimal | None:
        return None

    def compute(self, inputs: QuoteInputs, rounding: RoundingRules) -> Computation:
        mtow_t = _mtow_t(inputs, rounding)
        band = _select_band(self.bands, mtow_t)
        count = inputs.fir_crossings if self.per == "fir_crossing" else 1
        components: list[tuple[str, Decimal]] = [("weight_band_fee", band.fee * count)]
        if self.per_crossing_fee:
            components.append(("fir_crossing_fee", self.per_crossing_fee * inputs.fir_crossings))
        details = {
            "mtow_t": str(mtow_t),
            "band_up_to_t": "open" if band.up_to_t is None else str(band.up_to_t),
            "fir_crossings": str(inputs.fir_crossings),
        }
        return Computation(
            charge=sum((amount for _, amount in components), _ZERO),
            components=tuple(components),
            unit_rate=band.fee,
            details=MappingProxyType(details),
        )


@dataclass(frozen=True, slots=True)
class ComponentBand:
    """Components for MTOW up to ``up_to_t`` tonnes (inclusive; None = no limit).

    With W = max(MTOW_t - ``weight_offset_t``, 0) and D = chargeable distance /
    ``distance_divisor``: fixed = ``fixed``; weight = ``per_tonne`` x W; distance =
    ``per_distance`` x D; weight_distance = ``per_tonne_distance`` x W x D.
    """

    up_to_t: Decimal | None
    fixed: Decimal = _ZERO
    per_tonne: Decimal = _ZERO
    per_distance: Decimal = _ZERO
    per_tonne_distance: Decimal = _ZERO
    weight_offset_t: Decimal = _ZERO


@dataclass(frozen=True, slots=True)
class MultiComponentFormula:
    """Fixed + weight-based + distance + weight x distance components, by MTOW band."""

    type: ClassVar[str] = "multi_component"

    bands: tuple[ComponentBand, ...]
    distance_unit: DistanceUnit = "km"
    distance_divisor: Decimal = _ONE
    deduction_per_movement: Decimal = _ZERO

    @property
    def unit_rate(self) -> Decimal | None:
        return None

    def compute(self, inputs: QuoteInputs, rounding: RoundingRules) -> Computation:
        mtow_t = _mtow_t(inputs, rounding)
        band = _select_band(self.bands, mtow_t)
        weight = max(mtow_t - band.weight_offset_t, _ZERO)
        distance, details = _chargeable_distance(
            inputs,
            unit=self.distance_unit,
            rounding=rounding,
            deduction_per_movement=self.deduction_per_movement,
        )
        distance_factor = _rnd(rounding.distance_factor, distance / self.distance_divisor)
        components: list[tuple[str, Decimal]] = []
        if band.fixed:
            components.append(("fixed", band.fixed))
        if band.per_tonne:
            components.append(("weight", band.per_tonne * weight))
        if band.per_distance:
            components.append(("distance", band.per_distance * distance_factor))
        if band.per_tonne_distance:
            components.append(
                ("weight_distance", band.per_tonne_distance * weight * distance_factor)
            )
        details.update(
            mtow_t=str(mtow_t),
            weight_t=str(weight),
            band_up_to_t="open" if band.up_to_t is None else str(band.up_to_t),
        )
        return Computation(
            charge=sum((amount for _, amount in components), _ZERO),
            components=tuple(components),
            distance_factor=distance_factor,
            details=MappingProxyType(details),
        )


# --- versions, zones, tariff sets --------------------------------------------------------------


def _empty_multipliers() -> Mapping[str, Decimal]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TariffVersion:
    """One effective-dated version of a zone's tariff (``valid_to`` exclusive)."""

    version: str
    valid_from: date
    valid_to: date | None
    currency: str
    formula: Formula
    rounding: RoundingRules = field(default_factory=RoundingRules)
    multipliers: Mapping[str, Decimal] = field(default_factory=_empty_multipliers)
    exemptions: Exemptions = field(default_factory=Exemptions)
    monthly_invoice_threshold: Decimal | None = None
    sample: bool = False
    source: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "currency", normalize_currency(self.currency))
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError(f"version {self.version}: valid_to must be after valid_from")

    def covers(self, day: date) -> bool:
        """Whether the version applies on UTC day ``day`` (valid_to exclusive)."""
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)

    def multiplier(self, flight_category: str) -> Decimal:
        """Multiplier of a flight category (1 when not configured)."""
        return self.multipliers.get(flight_category, _ONE)


@dataclass(frozen=True, slots=True)
class ZoneTariff:
    """The tariff of one charging zone (not the zone's airspace: that is
    :class:`~flight_fees.lib.airspace.zones.ChargingZones`): its effective-dated versions
    (sorted, non-overlapping), FX policy and display name."""

    zone_id: str
    versions: tuple[TariffVersion, ...]
    fx_policy: str = "flight_date"
    tariff_id: str = ""
    name: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if not self.tariff_id:
            object.__setattr__(self, "tariff_id", self.zone_id)
        if self.fx_policy not in FX_POLICIES:
            raise ValueError(f"zone {self.zone_id}: unknown fx_policy {self.fx_policy!r}")
        ordered = tuple(sorted(self.versions, key=lambda v: v.valid_from))
        for before, after in zip(ordered, ordered[1:], strict=False):
            if before.valid_to is None or before.valid_to > after.valid_from:
                raise ValueError(
                    f"zone {self.zone_id}: versions {before.version} and {after.version} overlap"
                )
        object.__setattr__(self, "versions", ordered)

    def version_on(self, day: date) -> TariffVersion:
        """The version effective on UTC day ``day``; :class:`TariffNotFound` if none."""
        starts = [v.valid_from for v in self.versions]
        index = bisect.bisect_right(starts, day) - 1
        if index >= 0 and self.versions[index].covers(day):
            return self.versions[index]
        raise TariffNotFound(
            f"zone {self.zone_id}: no tariff version effective on {day.isoformat()}"
            + (
                f" (versions cover {self._coverage()})"
                if self.versions
                else " (the zone has no versions)"
            )
        )

    def _coverage(self) -> str:
        return ", ".join(
            f"{v.valid_from.isoformat()}..{v.valid_to.isoformat() if v.valid_to else ''}"
            for v in self.versions
        )


@dataclass(frozen=True, slots=True)
class Tariffs:
    """The tariffs of the charging zones (:class:`ZoneTariff` by upper-case zone id) and the
    files they were read from."""

    zones: Mapping[str, ZoneTariff]
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "zones", MappingProxyType(dict(self.zones)))

    def __contains__(self, zone_id: object) -> bool:
        return isinstance(zone_id, str) and zone_id.strip().upper() in self.zones

    def __len__(self) -> int:
        return len(self.zones)

    @property
    def zone_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self.zones))

    def zone(self, zone_id: str) -> ZoneTariff:
        """The zone ``zone_id`` (case-insensitive); :class:`TariffNotFound` if unknown."""
        key = zone_id.strip().upper() if isinstance(zone_id, str) else zone_id
        try:
            return self.zones[key]
        except KeyError:
            raise TariffNotFound(f"unknown charging zone {zone_id!r}: no tariff") from None

    def monthly_invoice_thresholds(self, day: date) -> dict[str, Decimal]:
        """Zones whose tariff version in force on ``day`` sets a minimum monthly invoice
        amount, in the zone's local currency (e.g. FAA: USD 400 — a customer's lines of the
        zone in a month below it are held, not invoiced): ``{zone_id: amount}``."""
        limits: dict[str, Decimal] = {}
        for zone_id, zone in self.zones.items():
            try:
                threshold = zone.version_on(day).monthly_invoice_threshold
            except TariffNotFound:  # no version in force that day: nothing to hold
                continue
            if threshold is not None:
                limits[zone_id] = threshold
        return limits

    def version_on(self, zone_id: str, day: date) -> tuple[ZoneTariff, TariffVersion]:
        """The zone and its version effective on UTC day ``day``."""
        zone = self.zone(zone_id)
        return zone, zone.version_on(day)

    def with_zone(self, zone: ZoneTariff, *, source: str | None = None) -> Tariffs:
        """A copy with ``zone`` added or replaced."""
        zones = dict(self.zones)
        zones[zone.zone_id] = zone
        sources = (
            self.sources
            if source is None or source in self.sources
            else (
                *self.sources,
                source,
            )
        )
        return Tariffs(zones, sources)
