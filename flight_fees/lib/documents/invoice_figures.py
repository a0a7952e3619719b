"""What the invoice and credit-note documents show, as display strings: the figures of one fee
line from its stored tariff computation (:func:`line_figures`), the no-charge reasons in words,
zone totals and zone names, and the formatting filters of the templates. Pure: no files are
written here (rendering and writing are :mod:`flight_fees.lib.documents.invoices`)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from flight_fees.lib.billing.invoicing import InvoiceDetail, InvoiceLine
from flight_fees.lib.core.money import format_money

__all__ = [
    "LineFigures",
    "ZoneTotal",
    "default_zone_names",
    "line_figures",
    "no_charge_text",
    "zone_totals",
]

_EMPTY = "—"
_DISTANCE_PLACES: Final = 3
_FACTOR_PLACES: Final = 6


# -- formatting ------------------------------------------------------------------------------


def _money(value: Decimal | None, currency: str) -> str:
    return _EMPTY if value is None else format_money(value, currency)


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _num(value: Decimal | float | int | str | None) -> str:
    """A stored number without trailing zeros and without exponent (``2.780000`` -> ``2.78``)."""
    number = _decimal(value)
    if number is None:
        return _EMPTY
    return format(number.normalize(), "f")


def _fig(value: object, places: int = _FACTOR_PLACES) -> str:
    """A figure for display: at most ``places`` decimals (half up), no trailing zeros."""
    number = _decimal(value)
    if number is None:
        return _EMPTY
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        number = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _rate(value: object, currency: str) -> str:
    """A unit rate: at least two decimals, no trailing zeros beyond, with the currency."""
    number = _decimal(value)
    if number is None:
        return _EMPTY
    text = _fig(number)
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')} {currency}"


def _ts(value: dt.datetime | None) -> str:
    if value is None:
        return _EMPTY
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _css_string(value: object) -> str:
    """Text safe inside a CSS string literal (letters, digits, space, ``-``, ``.``)."""
    return re.sub(r"[^A-Za-z0-9 .\-]", "", str(value))


# -- zone names ------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _zone_names_of(path: str, mtime_ns: int) -> Mapping[str, str]:
    del mtime_ns  # cache key only
    from flight_fees.lib.charging.tariffs import load_tariffs

    tariffs = load_tariffs(path)
    return {zid: zone.name for zid, zone in tariffs.zones.items() if zone.name}


def default_zone_names(tariffs_path: str | Path | None = None) -> Mapping[str, str]:
    """``{zone id: name}`` of the zones of a tariff file (default: the shipped
    ``tariffs.yaml``); read again when the file changes."""
    from flight_fees.lib.charging.tariffs import DEFAULT_TARIFFS_PATH

    path = Path(tariffs_path) if tariffs_path is not None else DEFAULT_TARIFFS_PATH
    return _zone_names_of(str(path.resolve()), path.stat().st_mtime_ns)


# -- line figures ----------------------------------------------------------------------------


_FLAG_TEXT: Final = {
    "state": "state flight",
    "military": "military flight",
    "search_and_rescue": "search and rescue flight",
    "training": "training flight",
}
_COMPONENT_TEXT: Final = {
    "weight_band_fee": "weight band fee",
    "fir_crossing_fee": "FIR crossing fee",
    "fixed": "fixed",
    "weight": "weight",
    "distance": "distance",
    "weight_distance": "weight × distance",
}


def no_charge_text(reason: str) -> str:
    """A stored exemption / no-charge reason in words (``mtow_below_2000_kg`` ->
    ``exempt: MTOW below 2000 kg``)."""
    if reason in _FLAG_TEXT:
        return f"exempt: {_FLAG_TEXT[reason]}"
    if reason.startswith("category_"):
        return f"exempt: {reason.removeprefix('category_').replace('_', ' ')} flight"
    match = re.fullmatch(r"mtow_below_(.+)_kg", reason)
    if match:
        return f"exempt: MTOW below {match.group(1)} kg"
    if reason == "departure_or_arrival_in_zone":
        return "not charged: the flight takes off or lands in this zone"
    return f"not charged: {reason.replace('_', ' ')}"


@dataclass(frozen=True)
class LineFigures:
    """The figures of one fee line as the documents show them (display strings).

    ``no_charge_reason`` is set for a line that is not charged: the documents then show the
    reason instead of the figures. ``sample`` marks a charge computed with a sample rate.
    """

    zone_id: str
    zone_name: str | None
    airspace_class: str | None
    fir_ids: str
    entry_time: dt.datetime | None
    exit_time: dt.datetime | None
    distance: str
    distance_note: str | None
    deduction: str
    deduction_note: str | None
    chargeable: str
    distance_factor: str
    weight_factor: str
    weight_note: str | None
    service_units: str
    unit_rate: str
    unit_rate_note: str | None
    charge: str
    charge_note: str | None
    fx_rate: str
    fx_date: str | None
    amount: str
    no_charge_reason: str | None
    sample: bool


def _movements(inputs: Mapping[str, Any]) -> str | None:
    parts = []
    for key, word in (("takeoffs", "take-off"), ("landings", "landing")):
        count = int(inputs.get(key) or 0)
        if count:
            parts.append(f"{count} {word}{'s' if count > 1 else ''}")
    return ", ".join(parts) or None


def _per_distance(calc: Mapping[str, Any], units: object) -> str:
    """``per 100 NM``: the distance of one service unit (chargeable distance / units)."""
    charged, count = _decimal(calc.get("distance_charged")), _decimal(units)
    if charged and count:
        per = charged / count
        whole = per.quantize(Decimal(1), rounding=ROUND_HALF_UP)
        if abs(per - whole) < Decimal("0.01"):
            return f"per {whole} {calc.get('distance_unit', '')}".rstrip()
    return "per service unit"


def _details(line: InvoiceLine) -> dict[str, Any]:
    if not line.details:
        return {}
    try:
        data = json.loads(line.details)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def line_figures(line: InvoiceLine, zone_names: Mapping[str, str] | None = None) -> LineFigures:
    """What an operator checks on ``line``, from its stored tariff computation.

    By formula (``fee_lines.details``, see :meth:`flight_fees.lib.charging.tariffs.Quote.to_dict`):

    - ``distance_weight`` (EUROCONTROL): distance in the tariff's unit, deduction (per
      take-off / landing in the zone), chargeable distance, distance factor, weight factor
      with the MTOW in tonnes, service units = distance factor × weight factor, unit rate;
    - ``distance_class`` (FAA): distance in NM (km beside), chargeable distance, service units
      (distance / divisor), the rate of the airspace class;
    - ``flat_weight_band``: the band fee as unit rate and the components (band fee, FIR
      crossing fees);
    - ``multi_component``: distance figures, distance factor and the components.

    A line without stored details (older lines) shows its stored distance, service units and
    unit rate. Factors are shown to at most 6 decimals, distances to 3.
    """
    d = _details(line)
    calc: Mapping[str, Any] = d.get("details") or {}
    inputs: Mapping[str, Any] = d.get("inputs") or {}
    currency = str(d.get("currency") or line.local_currency)
    formula = d.get("formula")

    unit = calc.get("distance_unit")
    if unit and "distance" in calc:
        distance = f"{_fig(calc['distance'], _DISTANCE_PLACES)} {unit}"
        distance_note = f"{_fig(line.distance_km, _DISTANCE_PLACES)} km" if unit != "km" else None
        deduction = f"{_fig(calc.get('deduction'), _DISTANCE_PLACES)} {unit}"
        chargeable = f"{_fig(calc.get('distance_charged'), _DISTANCE_PLACES)} {unit}"
    else:
        distance = f"{_fig(line.distance_km, _DISTANCE_PLACES)} km"
        distance_note = None
        deduction = chargeable = _EMPTY
    mtow_t = calc.get("weight_t") or calc.get("mtow_t")
    weight_note = f"{_fig(mtow_t)} t" if mtow_t is not None else None
    if mtow_t is None and line.mtow_kg is not None:
        weight_note = f"{_fig(line.mtow_kg / 1000)} t"

    unit_rate_value = d.get("unit_rate", line.unit_rate)
    unit_rate_note = "band fee" if formula == "flat_weight_band" else None
    if formula == "distance_class":
        unit_rate_note = _per_distance(calc, d.get("service_units"))

    components = d.get("components") or []
    notes = []
    if formula in ("flat_weight_band", "multi_component") and components:
        notes.append(
            " + ".join(
                f"{_COMPONENT_TEXT.get(c.get('name'), str(c.get('name')))} "
                f"{_fig(c.get('amount'), 2)}"
                for c in components
            )
        )
    if formula == "flat_weight_band" and inputs.get("fir_crossings"):
        notes.append(f"{inputs['fir_crossings']} FIR crossing(s)")
    multiplier = _decimal(d.get("multiplier"))
    if multiplier is not None and multiplier != 1:
        notes.append(f"× {_fig(multiplier)} ({line.category or inputs.get('category')})")

    reason: str | None = None
    if line.exemption:
        reason = no_charge_text(line.exemption)
    elif line.local_amount == 0:
        charged = _decimal(calc.get("distance_charged"))
        reason = (
            f"not charged: {distance} in the zone less {deduction} for "
            f"{_movements(inputs) or 'take-off / landing'} leaves no chargeable distance"
            if charged is not None and charged == 0
            else f"not charged: {chargeable} chargeable, the distance factor rounds to 0"
            if _decimal(d.get("distance_factor")) == 0
            else "not charged: the charge of this visit rounds to 0"
        )

    airspace_class = calc.get("airspace_class") or inputs.get("airspace_class")
    return LineFigures(
        zone_id=line.zone_id,
        zone_name=(zone_names or {}).get(line.zone_id),
        airspace_class=airspace_class if airspace_class not in (None, "enroute") else None,
        fir_ids=line.fir_ids,
        entry_time=line.entry_time,
        exit_time=line.exit_time,
        distance=distance,
        distance_note=distance_note,
        deduction=deduction,
        deduction_note=_movements(inputs) if deduction != _EMPTY else None,
        chargeable=chargeable,
        distance_factor=_fig(d.get("distance_factor")),
        weight_factor=_fig(d.get("weight_factor")),
        weight_note=weight_note,
        service_units=_fig(d.get("service_units", line.service_units)),
        unit_rate=_rate(unit_rate_value, currency),
        unit_rate_note=unit_rate_note,
        charge=format_money(line.local_amount, line.local_currency),
        charge_note="; ".join(notes) or None,
        fx_rate=_num(line.fx_rate),
        fx_date=line.fx_date.isoformat() if line.fx_date else None,
        amount=format_money(line.billing_amount, line.billing_currency),
        no_charge_reason=reason,
        sample=bool(d.get("sample")) and reason is None,
    )


@dataclass(frozen=True)
class ZoneTotal:
    zone_id: str
    name: str | None
    amount: Decimal


def zone_totals(detail: InvoiceDetail, names: Mapping[str, str]) -> list[ZoneTotal]:
    """Billing amount per zone, sorted by zone, zero totals left out."""
    return [
        ZoneTotal(zone, names.get(zone), amount)
        for zone, amount in detail.zone_totals().items()
        if amount != 0
    ]
