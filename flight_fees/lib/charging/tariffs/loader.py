"""Read tariff YAML files into :class:`~flight_fees.lib.charging.tariffs.model.Tariffs`, strictly.

File layout (see ``flight_fees/data/tariffs.yaml`` for a commented example)::

    schema_version: 1
    templates: {...}          # ignored by the loader: a place for YAML anchors (&name)
    zones:
      VTBB:                   # zone id: upper-case letters/digits, 1-8 characters
        name: Bangkok FIR
        tariff_id: AEROTHAI-ENROUTE     # default: the zone id
        currency: THB                   # default currency of the versions
        fx_policy: flight_date          # or previous_month_average
        source: "..."                   # provenance (free text)
        sample: false                   # default of the versions' sample flag
        rounding / multipliers / exemptions / monthly_invoice_threshold:
                                        # defaults of the versions (a version's own value
                                        # replaces the zone default as a whole)
        versions:
          - version: "2024-01"          # default: valid_from as YYYY-MM-DD
            valid_from: 2024-01-01      # inclusive, UTC day
            valid_to: 2025-01-01        # exclusive; omitted = until the next version
            formula: {type: distance_weight, unit_rate: 3500, ...}
            rounding: {mtow: {places: 0, mode: up}, amount: {mode: half_up}}
            multipliers: {overflight: 1.45, domestic: 0.75}
            exemptions: {below_mtow_kg: 2000, flags: [state, military], categories: []}

Every problem raises :class:`TariffValidationError` whose message names the file, the zone,
the version and the field. Unknown fields are errors (typos never pass silently), and so are
duplicate keys in a YAML mapping (YAML merge keys ``<<`` are allowed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal, TypedDict, TypeVar, overload

from flight_fees.lib.charging.tariffs.errors import TariffError, TariffValidationError
from flight_fees.lib.charging.tariffs.model import (
    AIRSPACE_CLASSES,
    DISTANCE_UNITS,
    FLAGS,
    FLIGHT_CATEGORIES,
    FORMULA_TYPES,
    FX_POLICIES,
    KM_PER_NM,
    ComponentBand,
    DistanceClassFormula,
    DistanceWeightFormula,
    Exemptions,
    FeeBand,
    FlatWeightBandFormula,
    Formula,
    MultiComponentFormula,
    RoundingRules,
    RoundingStep,
    Tariffs,
    TariffVersion,
    WeightDivisorBand,
    ZoneTariff,
)
from flight_fees.lib.core.money import InvalidAmount, InvalidCurrency, Rounding, normalize_currency
from flight_fees.lib.core.money import to_decimal as _to_decimal
from flight_fees.lib.core.plausibility import MAX_FIR_CROSSINGS, MAX_MTOW_KG, MAX_VISIT_DISTANCE_KM
from flight_fees.lib.core.safe_yaml import YamlDataError, load_yaml
from flight_fees.lib.core.settings import DATA_DIR

__all__ = ["DEFAULT_TARIFFS_PATH", "load_tariffs", "parse_tariffs"]

#: The tariffs shipped with flight_fees.
DEFAULT_TARIFFS_PATH: Final[Path] = DATA_DIR / "tariffs.yaml"

_ZONE_ID_RE: Final = re.compile(r"^[A-Z0-9]{1,8}$")
_TOP_KEYS: Final = frozenset({"schema_version", "templates", "zones"})
_SHARED_KEYS: Final = frozenset(
    {"rounding", "multipliers", "exemptions", "monthly_invoice_threshold", "sample", "source"}
)
_ZONE_KEYS: Final = _SHARED_KEYS | {"name", "tariff_id", "currency", "fx_policy", "versions"}
_VERSION_KEYS: Final = _SHARED_KEYS | {"version", "valid_from", "valid_to", "currency", "formula"}
_ROUNDING_KEYS: Final = ("mtow", "distance", "distance_factor", "weight_factor", "service_units")
_SUPPORTED_SCHEMA: Final = 1

Positivity = Literal["any", "non_negative", "positive"]

#: largest plausible value of a tariff number, by field name (last part of the field path);
#: every other number is at most :data:`MAX_TARIFF_VALUE`. Keeps a loaded tariff from
#: producing charges that cannot be computed or stored (``unit_rate: 1e400``).
_MAXIMA: Final[Mapping[str, Decimal]] = MappingProxyType(
    {
        "distance_exponent": Decimal(3),
        "weight_exponent": Decimal(3),
        "multipliers": Decimal(100),
        "distance_divisor": Decimal(1_000_000),
        "weight_divisor_t": Decimal(10_000),
        "divisor_t": Decimal(10_000),
        "divisor_mtow_ratio": Decimal(1_000),
        "min_distance": Decimal(100_000),
        "max_distance": Decimal(100_000),
        "deduction_per_movement": Decimal(100_000),
        "up_to_t": Decimal(10_000),
        "min_weight_t": Decimal(10_000),
        "max_weight_t": Decimal(10_000),
        "weight_offset_t": Decimal(10_000),
        "max_weight_factor": Decimal(1_000),
        "below_mtow_kg": Decimal(10_000_000),
    }
)
MAX_TARIFF_VALUE: Final = Decimal(1_000_000_000)


def _maximum(field: str) -> Decimal:
    parts = re.sub(r"\[\d+\]", "", field).split(".")
    if len(parts) > 1 and parts[-2] == "multipliers":
        return _MAXIMA["multipliers"]
    return _MAXIMA.get(parts[-1], MAX_TARIFF_VALUE)


_T = TypeVar("_T")


# --- YAML -----------------------------------------------------------------------------------


def load_tariffs(path: str | Path | None = None) -> Tariffs:
    """Read and validate a tariff YAML file (default: the shipped ``tariffs.yaml``)."""
    file = Path(path) if path is not None else DEFAULT_TARIFFS_PATH
    source = str(path) if path is not None else file.name
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise TariffValidationError(f"{source}: cannot read tariff file: {exc}") from exc
    try:
        data = load_yaml(text, source=source)
    except YamlDataError as exc:
        raise TariffValidationError(str(exc)) from None
    return parse_tariffs(data, source=source)


def parse_tariffs(data: object, *, source: str = "<tariffs>") -> Tariffs:
    """Validate already-parsed tariff data (the YAML document as Python objects)."""
    where = _Where(source)
    top = _mapping(data, where, None, subject="the document must be")
    _check_keys(top, _TOP_KEYS, where, "")
    schema = top.get("schema_version", _SUPPORTED_SCHEMA)
    if schema != _SUPPORTED_SCHEMA:
        raise where.error("schema_version", f"unsupported schema version {schema!r}")
    zones_data = _mapping(top.get("zones"), where, "zones")
    if not zones_data:
        raise where.error("zones", "must define at least one zone")
    zones: dict[str, ZoneTariff] = {}
    for raw_id, zone_data in zones_data.items():
        zone = _parse_zone(raw_id, zone_data, source)
        probe_zone(zone, source)
        zones[zone.zone_id] = zone
    return Tariffs(zones, (source,))


# --- plausibility of whole versions ----------------------------------------------------------

#: the lightest MTOW a probe quotes (kg)
_PROBE_MIN_MTOW_KG: Final = Decimal(1)


class _ProbeInputs(TypedDict):
    """The keyword arguments of one probing :func:`~.engine.quote`."""

    distance_km: Decimal
    mtow_kg: Decimal
    flight_category: str
    airspace_class: str
    fir_crossings: int


def _probe_inputs(version: TariffVersion) -> list[_ProbeInputs]:
    """Valid quote inputs at the extremes of every range the version's formula uses."""
    formula = version.formula
    distances = {Decimal(0), MAX_VISIT_DISTANCE_KM}
    weights = {_PROBE_MIN_MTOW_KG, MAX_MTOW_KG}
    km_per_unit = KM_PER_NM if getattr(formula, "distance_unit", "km") == "NM" else Decimal(1)
    for name in ("min_distance", "max_distance"):
        value = getattr(formula, name, None)
        if value is not None:
            distances.add(min(value * km_per_unit, MAX_VISIT_DISTANCE_KM))
    bounds = [getattr(formula, n, None) for n in ("min_weight_t", "max_weight_t")]
    bounds += [
        b.up_to_t for b in (*getattr(formula, "bands", ()), *getattr(formula, "weight_bands", ()))
    ]
    weights |= {min(b * 1000, MAX_MTOW_KG) for b in bounds if b is not None}
    charged = [c for c in FLIGHT_CATEGORIES if c not in version.exemptions.flight_categories]
    if not charged:
        return []
    flight_category = max(charged, key=version.multiplier)  # the largest multiplier
    classes = sorted(formula.rates) if isinstance(formula, DistanceClassFormula) else ["enroute"]
    crossings = [1, MAX_FIR_CROSSINGS] if isinstance(formula, FlatWeightBandFormula) else [1]
    return [
        {
            "distance_km": distance,
            "mtow_kg": weight,
            "flight_category": flight_category,
            "airspace_class": airspace_class,
            "fir_crossings": count,
        }
        for distance in sorted(distances)
        for weight in sorted(weights)
        for airspace_class in classes
        for count in crossings
    ]


def probe_zone(zone: ZoneTariff, source: str) -> None:
    """Quote every version of ``zone`` at the extremes of valid inputs (no distance to
    40,075 km, MTOW 1 kg to 1,000 t, every weight band edge, the largest multiplier):
    :class:`TariffValidationError` naming the version when one of them cannot be computed
    or is implausibly large. What loads can then never crash a quote."""
    from flight_fees.lib.charging.tariffs.engine import quote

    single = Tariffs({zone.zone_id: zone}, (source,))
    for version in zone.versions:
        for inputs in _probe_inputs(version):
            try:
                quote(single, zone.zone_id, version.valid_from, **inputs)
            except TariffError as exc:
                raise _Where(source, zone.zone_id, version.version).error(
                    "formula", f"implausible tariff: {exc}"
                ) from None


# --- error context -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Where:
    source: str
    zone: str | None = None
    version: str | None = None

    def error(self, field: str | None, message: str) -> TariffValidationError:
        parts = [self.source]
        if self.zone is not None:
            label = f"zone {self.zone}"
            if self.version is not None:
                label += f" version {self.version}"
            parts.append(label)
        if field:
            parts.append(f"field {field}")
        parts.append(message)
        return TariffValidationError(": ".join(parts))


# --- scalar readers --------------------------------------------------------------------------


def _mapping(
    value: object, where: _Where, field: str | None, *, subject: str = "must be"
) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise where.error(field, f"{subject} a mapping, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return type(value).__name__


def _check_keys(data: Mapping[str, object], allowed: frozenset[str], where: _Where, prefix: str):
    for key in data:
        if key not in allowed:
            raise where.error(
                f"{prefix}{key}", f"unknown field (allowed: {', '.join(sorted(allowed))})"
            )


def _number(value: object, where: _Where, field: str, positivity: Positivity = "any") -> Decimal:
    wanted = {"any": "a number", "non_negative": "a non-negative number"}.get(
        positivity, "a positive number"
    )
    try:
        number = _to_decimal(value)
    except InvalidAmount:
        raise where.error(field, f"must be {wanted} (got {value!r})") from None
    if (positivity == "positive" and number <= 0) or (positivity == "non_negative" and number < 0):
        raise where.error(field, f"must be {wanted} (got {value!r})")
    maximum = _maximum(field)
    if abs(number) > maximum:
        raise where.error(field, f"must be at most {maximum:,} (got {value!r}): implausible")
    return number


@overload
def _opt_number(
    data: Mapping[str, object],
    key: str,
    where: _Where,
    prefix: str,
    positivity: Positivity,
    default: Decimal,
) -> Decimal: ...


@overload
def _opt_number(
    data: Mapping[str, object],
    key: str,
    where: _Where,
    prefix: str,
    positivity: Positivity,
    default: None = None,
) -> Decimal | None: ...


def _opt_number(
    data: Mapping[str, object],
    key: str,
    where: _Where,
    prefix: str,
    positivity: Positivity,
    default: Decimal | None = None,
) -> Decimal | None:
    value = data.get(key)
    if value is None:
        return default
    return _number(value, where, f"{prefix}{key}", positivity)


def _req_number(
    data: Mapping[str, object], key: str, where: _Where, prefix: str, positivity: Positivity
) -> Decimal:
    if data.get(key) is None:
        raise where.error(f"{prefix}{key}", "is required")
    return _number(data[key], where, f"{prefix}{key}", positivity)


def _int(value: object, where: _Where, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise where.error(field, f"must be an integer from {low} to {high} (got {value!r})")
    return value


def _bool(value: object, where: _Where, field: str) -> bool:
    if not isinstance(value, bool):
        raise where.error(field, f"must be true or false (got {value!r})")
    return value


def _text(value: object, where: _Where, field: str) -> str:
    if (
        isinstance(value, bool)
        or not isinstance(value, str | int | float)
        or not str(value).strip()
    ):
        raise where.error(field, f"must be a non-empty string (got {value!r})")
    return str(value).strip()


def _choice(value: object, choices: Sequence[str], where: _Where, field: str) -> str:
    if value not in choices:
        raise where.error(field, f"must be one of {', '.join(choices)} (got {value!r})")
    return str(value)


def _date(value: object, where: _Where, field: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise where.error(field, f"must be a date YYYY-MM-DD (got {value!r})")


def _currency(value: object, where: _Where, field: str) -> str:
    try:
        return normalize_currency(value)
    except InvalidCurrency:
        raise where.error(field, f"must be a 3-letter ISO 4217 code (got {value!r})") from None


def _list(value: object, where: _Where, field: str) -> list[object]:
    if not isinstance(value, list):
        raise where.error(field, f"must be a list, got {_kind(value)}")
    return value


def _subset(value: object, choices: Sequence[str], where: _Where, field: str) -> frozenset[str]:
    items = _list(value, where, field)
    for item in items:
        _choice(item, choices, where, field)
    return frozenset(str(item) for item in items)


# --- zones and versions ------------------------------------------------------------------------


def _parse_zone(raw_id: object, data: object, source: str) -> ZoneTariff:
    if not isinstance(raw_id, str) or not _ZONE_ID_RE.match(raw_id):
        raise _Where(source).error(
            "zones",
            f"zone id {raw_id!r} must be 1-8 upper-case letters or digits"
            " (quote ids such as 'NO' or 'ON' that YAML reads as booleans)",
        )
    where = _Where(source, raw_id)
    zone = _mapping(data, where, None, subject="the zone must be")
    _check_keys(zone, _ZONE_KEYS, where, "")
    fx_policy = _choice(zone.get("fx_policy", "flight_date"), FX_POLICIES, where, "fx_policy")
    tariff_id = _text(zone.get("tariff_id", raw_id), where, "tariff_id")
    name = _text(zone["name"], where, "name") if zone.get("name") is not None else None
    zone_source = _text(zone["source"], where, "source") if zone.get("source") is not None else None
    defaults = {key: zone[key] for key in (*_SHARED_KEYS, "currency") if key in zone}

    versions_data = _list(zone.get("versions"), where, "versions")
    if not versions_data:
        raise where.error("versions", "must list at least one version")
    parsed: list[tuple[TariffVersion, bool]] = []
    for index, version_data in enumerate(versions_data):
        parsed.append(_parse_version(index, version_data, defaults, source, raw_id))

    versions = _resolve_validity(parsed, where)
    return ZoneTariff(
        zone_id=raw_id,
        versions=versions,
        fx_policy=fx_policy,
        tariff_id=tariff_id,
        name=name,
        source=zone_source,
    )


def _version_label(index: int, data: object) -> str:
    if isinstance(data, Mapping):
        for key in ("version", "valid_from"):
            value = data.get(key)
            if value is not None:
                return value.isoformat() if isinstance(value, date) else str(value)
    return f"#{index + 1}"


def _parse_version(
    index: int, data: object, defaults: Mapping[str, object], source: str, zone_id: str
) -> tuple[TariffVersion, bool]:
    """One version, and whether its ``valid_to`` was given explicitly."""
    label = _version_label(index, data)
    where = _Where(source, zone_id, label)
    version = _mapping(data, where, None, subject="the version must be")
    _check_keys(version, _VERSION_KEYS, where, "")

    def pick(key: str) -> object:
        return version[key] if key in version else defaults.get(key)

    if version.get("valid_from") is None:
        raise where.error("valid_from", "is required")
    valid_from = _date(version["valid_from"], where, "valid_from")
    valid_to = _date(version["valid_to"], where, "valid_to") if version.get("valid_to") else None
    if valid_to is not None and valid_to <= valid_from:
        raise where.error("valid_to", f"must be after valid_from {valid_from.isoformat()}")
    if pick("currency") is None:
        raise where.error("currency", "is required (on the version or the zone)")
    currency = _currency(pick("currency"), where, "currency")
    if version.get("formula") is None:
        raise where.error("formula", "is required")
    formula = _parse_formula(version["formula"], where)

    rounding = _parse_rounding(pick("rounding"), where)
    multipliers = _parse_multipliers(pick("multipliers"), where)
    exemptions = _parse_exemptions(pick("exemptions"), where)
    threshold = (
        _number(
            pick("monthly_invoice_threshold"), where, "monthly_invoice_threshold", "non_negative"
        )
        if pick("monthly_invoice_threshold") is not None
        else None
    )
    sample = _bool(pick("sample"), where, "sample") if pick("sample") is not None else False
    src = _text(version["source"], where, "source") if version.get("source") is not None else None
    tariff_version = TariffVersion(
        version=label if version.get("version") is not None else valid_from.isoformat(),
        valid_from=valid_from,
        valid_to=valid_to,
        currency=currency,
        formula=formula,
        rounding=rounding,
        multipliers=multipliers,
        exemptions=exemptions,
        monthly_invoice_threshold=threshold,
        sample=sample,
        source=src,
    )
    return tariff_version, valid_to is not None


def _resolve_validity(
    parsed: Sequence[tuple[TariffVersion, bool]], where: _Where
) -> tuple[TariffVersion, ...]:
    """Sort versions, end open ones at the next version's start, reject overlaps."""
    ordered = sorted(parsed, key=lambda item: item[0].valid_from)
    names: set[str] = set()
    result: list[TariffVersion] = []
    for position, (version, explicit_end) in enumerate(ordered):
        zone_where = _Where(where.source, where.zone, version.version)
        if version.version in names:
            raise zone_where.error("version", "duplicate version id in the zone")
        names.add(version.version)
        following = ordered[position + 1][0] if position + 1 < len(ordered) else None
        if following is not None:
            if following.valid_from == version.valid_from:
                raise zone_where.error(
                    "valid_from",
                    f"same valid_from as version {following.version}",
                )
            if not explicit_end:
                version = replace(version, valid_to=following.valid_from)
            elif version.valid_to is not None and version.valid_to > following.valid_from:
                raise zone_where.error(
                    "valid_to",
                    f"overlaps version {following.version} starting "
                    f"{following.valid_from.isoformat()} (valid_to is exclusive)",
                )
        result.append(version)
    return tuple(result)


# --- rounding, multipliers, exemptions ---------------------------------------------------------


def _parse_step(value: object, where: _Where, field: str) -> RoundingStep | None:
    if value is None:
        return None
    data = _mapping(value, where, field)
    _check_keys(data, frozenset({"places", "mode"}), where, f"{field}.")
    if data.get("places") is None:
        raise where.error(f"{field}.places", "is required")
    places = _int(data["places"], where, f"{field}.places", -6, 12)
    return RoundingStep(places, _mode(data.get("mode", "half_up"), where, f"{field}.mode"))


def _mode(value: object, where: _Where, field: str) -> Rounding:
    try:
        return Rounding.parse(value)
    except ValueError as exc:
        raise where.error(field, str(exc)) from None


def _parse_rounding(value: object, where: _Where) -> RoundingRules:
    if value is None:
        return RoundingRules()
    data = _mapping(value, where, "rounding")
    _check_keys(data, frozenset({*_ROUNDING_KEYS, "amount"}), where, "rounding.")
    steps = {key: _parse_step(data.get(key), where, f"rounding.{key}") for key in _ROUNDING_KEYS}
    amount_mode, amount_places = Rounding.HALF_UP, None
    if data.get("amount") is not None:
        amount = _mapping(data["amount"], where, "rounding.amount")
        _check_keys(amount, frozenset({"places", "mode"}), where, "rounding.amount.")
        amount_mode = _mode(amount.get("mode", "half_up"), where, "rounding.amount.mode")
        if amount.get("places") is not None:
            amount_places = _int(amount["places"], where, "rounding.amount.places", 0, 6)
    return RoundingRules(**steps, amount_mode=amount_mode, amount_places=amount_places)


def _parse_multipliers(value: object, where: _Where) -> Mapping[str, Decimal]:
    if value is None:
        return MappingProxyType({})
    data = _mapping(value, where, "multipliers")
    result: dict[str, Decimal] = {}
    for key, factor in data.items():
        _choice(key, FLIGHT_CATEGORIES, where, f"multipliers.{key}")
        result[key] = _number(factor, where, f"multipliers.{key}", "non_negative")
    return MappingProxyType(result)


def _parse_exemptions(value: object, where: _Where) -> Exemptions:
    if value is None:
        return Exemptions()
    data = _mapping(value, where, "exemptions")
    _check_keys(data, frozenset({"below_mtow_kg", "flags", "categories"}), where, "exemptions.")
    return Exemptions(
        below_mtow_kg=_opt_number(data, "below_mtow_kg", where, "exemptions.", "positive"),
        flags=_subset(data.get("flags") or [], FLAGS, where, "exemptions.flags"),
        flight_categories=_subset(
            data.get("categories") or [], FLIGHT_CATEGORIES, where, "exemptions.categories"
        ),
    )


# --- formulas --------------------------------------------------------------------------------


def _parse_formula(value: object, where: _Where) -> Formula:
    data = _mapping(value, where, "formula")
    kind = _choice(data.get("type"), FORMULA_TYPES, where, "formula.type")
    parser = _FORMULA_PARSERS[kind]
    return parser(data, where)


def _bands(
    value: object,
    where: _Where,
    field: str,
    parse_item: Callable[[Mapping[str, object], str, Decimal | None], _T],
    item_keys: frozenset[str],
) -> tuple[_T, ...]:
    """Weight bands with strictly increasing ``up_to_t`` and an open last band."""
    items = _list(value, where, field)
    if not items:
        raise where.error(field, "must list at least one band")
    result: list[_T] = []
    previous: Decimal | None = None
    for index, raw in enumerate(items):
        item_field = f"{field}[{index}]"
        item = _mapping(raw, where, item_field)
        _check_keys(item, item_keys | {"up_to_t"}, where, f"{item_field}.")
        up_to = _opt_number(item, "up_to_t", where, f"{item_field}.", "positive")
        last = index == len(items) - 1
        if up_to is None and not last:
            raise where.error(f"{item_field}.up_to_t", "only the last band may be open-ended")
        if up_to is not None and last:
            raise where.error(
                f"{item_field}.up_to_t", "the last band must be open-ended (up_to_t: null)"
            )
        if up_to is not None and previous is not None and up_to <= previous:
            raise where.error(f"{item_field}.up_to_t", "bands must be in increasing order")
        previous = up_to
        result.append(parse_item(item, f"{item_field}.", up_to))
    return tuple(result)


def _distance_unit(data: Mapping[str, object], where: _Where, default: str) -> Literal["km", "NM"]:
    unit = _choice(
        data.get("distance_unit", default), DISTANCE_UNITS, where, "formula.distance_unit"
    )
    return "km" if unit == "km" else "NM"


def _parse_distance_weight(data: Mapping[str, object], where: _Where) -> DistanceWeightFormula:
    keys = frozenset(
        {
            "type", "unit_rate", "distance_unit", "distance_divisor", "deduction_per_movement",
            "min_distance", "max_distance", "distance_exponent", "weight_divisor_t",
            "weight_bands", "weight_exponent", "min_weight_t", "max_weight_t",
            "max_weight_factor",
        }
    )  # fmt: skip
    _check_keys(data, keys, where, "formula.")
    p = "formula."

    def band(item: Mapping[str, object], prefix: str, up_to: Decimal | None) -> WeightDivisorBand:
        divisor = _opt_number(item, "divisor_t", where, prefix, "positive")
        ratio = _opt_number(item, "divisor_mtow_ratio", where, prefix, "positive")
        if (divisor is None) == (ratio is None):
            raise where.error(
                f"{prefix}divisor_t", "give exactly one of divisor_t and divisor_mtow_ratio"
            )
        return WeightDivisorBand(up_to, divisor, ratio)

    weight_bands: tuple[WeightDivisorBand, ...] = ()
    if data.get("weight_bands") is not None:
        weight_bands = _bands(
            data["weight_bands"],
            where,
            "formula.weight_bands",
            band,
            frozenset({"divisor_t", "divisor_mtow_ratio"}),
        )
    min_distance = _opt_number(data, "min_distance", where, p, "non_negative")
    max_distance = _opt_number(data, "max_distance", where, p, "positive")
    if min_distance is not None and max_distance is not None and max_distance < min_distance:
        raise where.error("formula.max_distance", "must not be below min_distance")
    min_weight = _opt_number(data, "min_weight_t", where, p, "positive")
    max_weight = _opt_number(data, "max_weight_t", where, p, "positive")
    if min_weight is not None and max_weight is not None and max_weight < min_weight:
        raise where.error("formula.max_weight_t", "must not be below min_weight_t")
    return DistanceWeightFormula(
        unit_rate=_req_number(data, "unit_rate", where, p, "positive"),
        distance_unit=_distance_unit(data, where, "km"),
        distance_divisor=_opt_number(data, "distance_divisor", where, p, "positive", Decimal(100)),
        deduction_per_movement=_opt_number(
            data, "deduction_per_movement", where, p, "non_negative", Decimal(0)
        ),
        min_distance=min_distance,
        max_distance=max_distance,
        distance_exponent=_opt_number(data, "distance_exponent", where, p, "positive", Decimal(1)),
        weight_divisor_t=_opt_number(data, "weight_divisor_t", where, p, "positive", Decimal(50)),
        weight_bands=weight_bands,
        weight_exponent=_opt_number(data, "weight_exponent", where, p, "positive", Decimal("0.5")),
        min_weight_t=min_weight,
        max_weight_t=max_weight,
        max_weight_factor=_opt_number(data, "max_weight_factor", where, p, "positive"),
    )


def _parse_distance_class(data: Mapping[str, object], where: _Where) -> DistanceClassFormula:
    keys = frozenset(
        {"type", "rates", "distance_unit", "distance_divisor", "no_charge_on_movement"}
    )
    _check_keys(data, keys, where, "formula.")
    rates_data = _mapping(data.get("rates"), where, "formula.rates")
    if not rates_data:
        raise where.error("formula.rates", "must give at least one airspace class rate")
    rates: dict[str, Decimal] = {}
    for name, rate in rates_data.items():
        _choice(name, AIRSPACE_CLASSES, where, f"formula.rates.{name}")
        rates[name] = _number(rate, where, f"formula.rates.{name}", "positive")
    no_charge = data.get("no_charge_on_movement", True)
    return DistanceClassFormula(
        rates=MappingProxyType(rates),
        distance_unit=_distance_unit(data, where, "NM"),
        distance_divisor=_opt_number(
            data, "distance_divisor", where, "formula.", "positive", Decimal(100)
        ),
        no_charge_on_movement=_bool(no_charge, where, "formula.no_charge_on_movement"),
    )


def _parse_flat_weight_band(data: Mapping[str, object], where: _Where) -> FlatWeightBandFormula:
    _check_keys(data, frozenset({"type", "bands", "per", "per_crossing_fee"}), where, "formula.")

    def band(item: Mapping[str, object], prefix: str, up_to: Decimal | None) -> FeeBand:
        return FeeBand(up_to, _req_number(item, "fee", where, prefix, "non_negative"))

    bands = _bands(data.get("bands"), where, "formula.bands", band, frozenset({"fee"}))
    per = _choice(data.get("per", "flight"), ("flight", "fir_crossing"), where, "formula.per")
    return FlatWeightBandFormula(
        bands=bands,
        per="flight" if per == "flight" else "fir_crossing",
        per_crossing_fee=_opt_number(
            data, "per_crossing_fee", where, "formula.", "non_negative", Decimal(0)
        ),
    )


def _parse_multi_component(data: Mapping[str, object], where: _Where) -> MultiComponentFormula:
    keys = frozenset(
        {"type", "bands", "distance_unit", "distance_divisor", "deduction_per_movement"}
    )
    _check_keys(data, keys, where, "formula.")
    amounts = ("fixed", "per_tonne", "per_distance", "per_tonne_distance", "weight_offset_t")

    def band(item: Mapping[str, object], prefix: str, up_to: Decimal | None) -> ComponentBand:
        values = {
            key: _opt_number(item, key, where, prefix, "non_negative", Decimal(0))
            for key in amounts
        }
        return ComponentBand(up_to, **values)

    return MultiComponentFormula(
        bands=_bands(data.get("bands"), where, "formula.bands", band, frozenset(amounts)),
        distance_unit=_distance_unit(data, where, "km"),
        distance_divisor=_opt_number(
            data, "distance_divisor", where, "formula.", "positive", Decimal(1)
        ),
        deduction_per_movement=_opt_number(
            data, "deduction_per_movement", where, "formula.", "non_negative", Decimal(0)
        ),
    )


_FORMULA_PARSERS: Final[Mapping[str, Callable[[Mapping[str, object], _Where], Formula]]] = (
    MappingProxyType(
        {
            "distance_weight": _parse_distance_weight,
            "distance_class": _parse_distance_class,
            "flat_weight_band": _parse_flat_weight_band,
            "multi_component": _parse_multi_component,
        }
    )
)
