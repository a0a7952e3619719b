"""Fee lines: the charge of every charging-zone visit, in the zone's and the billing currency.

:func:`compute_fee_lines` joins the zone visits (``flight_fees.lib.airspace.zones.zone_visits``)
with
one row of attributes per flight, quotes each visit with the zone's tariff
(:func:`flight_fees.lib.charging.tariffs.quote`) and converts the amount to the flight's billing
currency with the zone's FX policy.

Rules
-----
- **All or nothing per flight**: if any visit of a flight fails (no tariff, missing FX rate,
  unknown MTOW, invalid data), the flight gets no line at all and is reported in
  ``failures`` as ``{flight_id: (category, message)}``; the other flights go on. Only
  :class:`~flight_fees.lib.core.money.CategorizedError` is caught: programming errors propagate.
- **Zones without a tariff** fail the flight with ``no_tariff``: every FIR belongs to a
  charging zone, so a visit of an unknown zone means the tariff file lacks that zone (or has
  no version on the date) and must not be billed as zero silently. Zones the installation
  does not charge at all are flagged ``charged: false`` in the zone file: their visits never
  reach this module (``flight_fees.lib.airspace.zones.zone_visits`` leaves them out and reports
  them,
  see ``split_zone_visits``), so a flight crossing e.g. Canada is still billed in Europe.
- **Date**: the tariff version and the FX rate are those of the UTC day of the visit's
  ``entry_time`` (``date_basis="zone_entry"``, the default: a midnight tariff switch applies
  per visit), or of the flight's ``flight_date`` (``date_basis="flight_date"``). A missing
  entry time falls back to ``flight_date``.
- **Flight category** (column ``category``): the flight's ``category`` when given, else
  derived per visit from the visit's ``departure_in_zone``/``arrival_in_zone``: both ->
  domestic, one -> international, neither -> overflight (``member`` cannot be derived).
- **Movements**: one take-off when ``departure_in_zone``, one landing when
  ``arrival_in_zone``.
- **Airspace class** (``distance_class`` tariffs): the visit's ``airspace_class`` column
  (``enroute``/``oceanic``) when present, else ``enroute``.
- **FIR crossings** of a visit: its ``fir_crossings`` column when present, else the number of
  FIR ids in ``fir_ids``.
- **Distance** is the visit's great-circle ``distance_km`` rounded half-up to 3 decimals
  (the stored precision); the quote uses that rounded value so a line is reproducible.
- **Billing currency**: the ``billing_currency`` mapping argument (per flight id), else the
  flight's ``billing_currency`` column, else the ``billing_currency`` string argument.
- **Conversion**: ``billing_amount = local_amount x fx_rate`` rounded half-up to the billing
  currency's minor unit; ``fx_rate`` is 1 for the same currency. A zero (exempt) amount is
  still converted, so a missing rate fails the flight even then (never a silent 1.0).
- ``service_units`` and ``unit_rate`` are given half-up to 6 decimals (the stored
  precision); ``formula_details`` keeps the exact values the amount was computed from.
- A flight present in ``flights`` but without visits gets no line and no failure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal

import numpy as np
import pandas as pd

from flight_fees.lib.airspace.crossings import VISIT_SPAN_COLUMNS
from flight_fees.lib.charging.aircraft_types import UnknownMtow
from flight_fees.lib.charging.fx import FxRates
from flight_fees.lib.charging.tariffs import Tariffs, parse_flags, quote
from flight_fees.lib.core.frames import frame_records
from flight_fees.lib.core.money import (
    CategorizedError,
    InvalidAmount,
    normalize_currency,
    round_half_up,
    to_decimal,
    to_utc_date,
)
from flight_fees.lib.core.values import is_missing

__all__ = [
    "FEE_LINE_FRAME_COLUMNS",
    "FeeLineResult",
    "FlightDataError",
    "MissingFlightData",
    "VisitDataError",
    "compute_fee_lines",
    "derive_flight_category",
    "formula_details_json",
]

#: Columns of :attr:`FeeLineResult.lines`, in order.
FEE_LINE_FRAME_COLUMNS: Final[tuple[str, ...]] = (
    "flight_id",
    "line_no",
    "flight_date",
    "zone_id",
    "fir_ids",
    *VISIT_SPAN_COLUMNS,
    "mtow_kg",
    "category",
    "service_units",
    "unit_rate",
    "tariff_id",
    "tariff_version",
    "local_amount",
    "local_currency",
    "fx_rate",
    "fx_date",
    "billing_amount",
    "billing_currency",
    "exemption",
    "interpolated",
    "monthly_invoice_threshold",
    "formula_details",
)

_VISIT_COLUMNS: Final = (
    "flight_id",
    "visit_index",
    "zone_id",
    "fir_ids",
    "entry_time",
    "exit_time",
    "distance_km",
    "departure_in_zone",
    "arrival_in_zone",
)
_DISTANCE_PLACES: Final = 3
_FACTOR_PLACES: Final = 6


class FlightDataError(CategorizedError, ValueError):
    """Missing or invalid flight attributes (billing currency, flight date...)."""

    category: ClassVar[str] = "invalid_flight_data"


class MissingFlightData(FlightDataError):
    """Zone visits of a flight that has no row in the flights frame."""

    category: ClassVar[str] = "missing_flight_data"


class VisitDataError(CategorizedError, ValueError):
    """An invalid zone-visit row (e.g. missing distance)."""

    category: ClassVar[str] = "invalid_visit_data"


@dataclass(frozen=True)
class FeeLineResult:
    """Fee lines of the flights that succeeded and the failures of the others."""

    lines: pd.DataFrame
    failures: Mapping[int, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))

    def failures_frame(self) -> pd.DataFrame:
        """Failures as rows ``flight_id, category, message`` (sorted by flight)."""
        rows = [(fid, cat, msg) for fid, (cat, msg) in sorted(self.failures.items())]
        frame = pd.DataFrame(rows, columns=["flight_id", "category", "message"])
        return frame.astype({"flight_id": "int64"})


def derive_flight_category(departure_in_zone: bool, arrival_in_zone: bool) -> str:
    """Flight category of a visit from where the flight departs and arrives."""
    if departure_in_zone and arrival_in_zone:
        return "domestic"
    if departure_in_zone or arrival_in_zone:
        return "international"
    return "overflight"


def _optional_decimal(value: object, places: int | None = None) -> Decimal | None:
    if is_missing(value):
        return None
    number = to_decimal(value)
    return number if places is None else round_half_up(number, places)


def _stored(value: Decimal | None) -> Decimal | None:
    """``value`` at the stored precision of factors (6 dp; exact value in the details)."""
    return None if value is None else round_half_up(value, _FACTOR_PLACES)


def _flag(value: object) -> bool:
    return False if is_missing(value) else bool(value)


def _fir_crossings(visit: Mapping[str, Any]) -> int:
    explicit: Any = visit.get("fir_crossings")  # a frame value: int, float, NaN or None
    if not is_missing(explicit):
        return int(explicit)
    fir_ids = visit.get("fir_ids")
    if is_missing(fir_ids):
        return 1
    return max(1, len([part for part in str(fir_ids).split(",") if part.strip()]))


def _billing_currency(
    flight_id: int,
    flight: Mapping[str, Any],
    billing_currency: str | Mapping[int, str] | None,
) -> str:
    value: object = None
    if isinstance(billing_currency, Mapping):
        value = billing_currency.get(flight_id)
    if is_missing(value):
        value = flight.get("billing_currency")
    if is_missing(value) and isinstance(billing_currency, str):
        value = billing_currency
    if is_missing(value):
        raise FlightDataError("no billing currency")
    try:
        return normalize_currency(value)
    except CategorizedError as exc:
        raise FlightDataError(f"billing currency: {exc}") from None


def _line(
    flight_id: int,
    flight: Mapping[str, Any],
    visit: Mapping[str, Any],
    *,
    tariffs: Tariffs,
    fx: FxRates,
    billing: str,
    date_basis: Literal["zone_entry", "flight_date"],
) -> dict[str, Any]:
    zone_id = str(visit["zone_id"]).strip().upper()
    try:
        distance = _optional_decimal(visit["distance_km"], _DISTANCE_PLACES)
        flown = _optional_decimal(visit.get("flown_km"), _DISTANCE_PLACES)
    except InvalidAmount as exc:
        raise VisitDataError(str(exc)) from None
    if distance is None:
        raise VisitDataError("distance_km is missing")

    mtow_value = flight.get("mtow_kg")
    if is_missing(mtow_value):
        raise UnknownMtow("flight has no MTOW (run aircraft_types.select_mtow_frame first)")
    try:
        mtow = to_decimal(mtow_value, what="mtow_kg")
    except InvalidAmount as exc:
        raise FlightDataError(str(exc)) from None

    flight_date: date | None = None
    if not is_missing(flight.get("flight_date")):
        try:
            flight_date = to_utc_date(flight["flight_date"])
        except ValueError as exc:
            raise FlightDataError(f"flight_date: {exc}") from None
    entry_time = visit.get("entry_time")
    if date_basis == "zone_entry" and not is_missing(entry_time):
        on_date = to_utc_date(entry_time)
    elif flight_date is not None:
        on_date = flight_date
    else:
        raise FlightDataError("no flight_date and no visit entry_time to date the tariff")

    departure = _flag(visit.get("departure_in_zone"))
    arrival = _flag(visit.get("arrival_in_zone"))
    given = flight.get("category")
    flight_category = (
        derive_flight_category(departure, arrival)
        if is_missing(given)
        else str(given).strip().lower()
    )

    result = quote(
        tariffs,
        zone_id,
        on_date,
        distance_km=distance,
        mtow_kg=mtow,
        takeoffs=int(departure),
        landings=int(arrival),
        airspace_class=(
            "enroute"
            if is_missing(visit.get("airspace_class"))
            else str(visit["airspace_class"]).strip().lower()
        ),
        flight_category=flight_category,
        flags=parse_flags(flight.get("flags")),
        fir_crossings=_fir_crossings(visit),
    )
    billing_amount, fx_rate, fx_date = fx.convert(
        result.amount, result.currency, billing, on_date, result.fx_policy
    )
    details = result.to_dict()
    details["fx"] = {
        "policy": result.fx_policy,
        "from": result.currency,
        "to": billing,
        "rate": str(fx_rate),
        "rate_date": fx_date.isoformat(),
    }
    return {
        "flight_id": flight_id,
        "line_no": int(visit["visit_index"]),
        "flight_date": flight_date if flight_date is not None else on_date,
        "zone_id": result.zone_id,
        "fir_ids": None if is_missing(visit.get("fir_ids")) else str(visit["fir_ids"]),
        "entry_time": entry_time,
        "exit_time": visit.get("exit_time"),
        "entry_lat": visit.get("entry_lat"),
        "entry_lon": visit.get("entry_lon"),
        "exit_lat": visit.get("exit_lat"),
        "exit_lon": visit.get("exit_lon"),
        "distance_km": distance,
        "flown_km": flown,
        "mtow_kg": mtow,
        "category": flight_category,
        "service_units": _stored(result.service_units),
        "unit_rate": _stored(result.unit_rate),
        "tariff_id": result.tariff_id,
        "tariff_version": result.tariff_version,
        "local_amount": result.amount,
        "local_currency": result.currency,
        "fx_rate": fx_rate,
        "fx_date": fx_date,
        "billing_amount": billing_amount,
        "billing_currency": billing,
        "exemption": result.exemption,
        "interpolated": _flag(visit.get("interpolated")),
        "monthly_invoice_threshold": result.monthly_invoice_threshold,
        "formula_details": details,
    }


def _empty_lines() -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series([], dtype=object) for column in FEE_LINE_FRAME_COLUMNS})
    return frame.astype(
        {
            "flight_id": "int64",
            "line_no": "int64",
            "interpolated": "bool",
            "entry_time": "datetime64[ns, UTC]",
            "exit_time": "datetime64[ns, UTC]",
        }
    )


def compute_fee_lines(
    visits: pd.DataFrame,
    flights: pd.DataFrame,
    tariffs: Tariffs,
    fx: FxRates,
    *,
    billing_currency: str | Mapping[int, str] | None = None,
    date_basis: Literal["zone_entry", "flight_date"] = "zone_entry",
) -> FeeLineResult:
    """Fee lines of ``visits`` (see the module doc for the rules).

    ``flights``: one row per flight with ``flight_id``, ``flight_date``, ``mtow_kg`` and
    optionally ``category`` (the flight category), ``flags`` (set or ``"state,military"``),
    ``billing_currency``.
    Returns the lines (:data:`FEE_LINE_FRAME_COLUMNS`; money as Decimal, ``formula_details`` a
    JSON-ready dict, see :meth:`FeeLineResult.lines`) and the per-flight failures.
    :class:`ValueError` when a required column is missing or a flight id is duplicated.
    """
    missing_visit = [column for column in _VISIT_COLUMNS if column not in visits.columns]
    if missing_visit:
        raise ValueError(f"zone visits frame lacks column(s): {', '.join(missing_visit)}")
    if "flight_id" not in flights.columns:
        raise ValueError("flights frame lacks column flight_id")
    if date_basis not in ("zone_entry", "flight_date"):
        raise ValueError(f"unknown date_basis {date_basis!r}")
    if flights["flight_id"].duplicated().any():
        duplicated = sorted(flights.loc[flights["flight_id"].duplicated(), "flight_id"].unique())
        raise ValueError(f"flights frame has duplicate flight_id(s): {duplicated[:10]}")

    flight_rows: dict[int, dict[str, Any]] = {
        int(row["flight_id"]): row for row in frame_records(flights)
    }
    ordered = visits.sort_values(["flight_id", "visit_index"], kind="stable")
    lines: list[dict[str, Any]] = []
    failures: dict[int, tuple[str, str]] = {}
    flight_ids = ordered["flight_id"].to_numpy(dtype=np.int64)
    starts: np.ndarray | list[int] = (
        np.flatnonzero(np.r_[True, flight_ids[1:] != flight_ids[:-1]]) if len(ordered) else []
    )
    ends: np.ndarray | list[int] = np.r_[starts[1:], len(ordered)] if len(ordered) else []
    records = _records(ordered)  # one conversion of the whole frame, no per-flight frames
    for start, end in zip(starts, ends, strict=True):
        flight_id = int(flight_ids[start])
        flight = flight_rows.get(flight_id)
        if flight is None:
            failures[flight_id] = (
                MissingFlightData.category,
                "zone visits but no row in the flights frame",
            )
            continue
        flight_lines: list[dict[str, Any]] = []
        try:
            billing = _billing_currency(flight_id, flight, billing_currency)
            for visit in records[start:end]:
                try:
                    flight_lines.append(
                        _line(
                            flight_id,
                            flight,
                            visit,
                            tariffs=tariffs,
                            fx=fx,
                            billing=billing,
                            date_basis=date_basis,
                        )
                    )
                except CategorizedError as exc:
                    raise _VisitFailure(visit, exc) from exc
        except _VisitFailure as failure:
            failures[flight_id] = (failure.error.category, failure.message)
            continue
        except CategorizedError as exc:
            failures[flight_id] = (exc.category, str(exc))
            continue
        lines.extend(flight_lines)

    if not lines:
        return FeeLineResult(_empty_lines(), MappingProxyType(failures))
    frame = pd.DataFrame(lines, columns=list(FEE_LINE_FRAME_COLUMNS))
    frame = frame.astype({"flight_id": "int64", "line_no": "int64", "interpolated": "bool"})
    return FeeLineResult(frame.reset_index(drop=True), MappingProxyType(failures))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts, converted column by column (Arrow-backed string
    columns element by element are slow), missing values as they come (None / NaN / NaT)."""
    columns = [
        frame[c].to_numpy(dtype=object) if frame[c].dtype != object else frame[c].to_numpy()
        for c in frame.columns
    ]
    names = list(frame.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


class _VisitFailure(Exception):
    """Carries a visit's error out of the per-visit loop, with the visit named."""

    def __init__(self, visit: Mapping[str, Any], error: CategorizedError) -> None:
        self.error = error
        self.message = f"visit {visit.get('visit_index')} in zone {visit.get('zone_id')}: {error}"
        super().__init__(self.message)


def formula_details_json(details: Mapping[str, Any]) -> str:
    """``formula_details`` as compact, key-sorted JSON (for the ``fee_lines.details``
    column)."""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
