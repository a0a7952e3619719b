"""What-if repricing: every stored fee line of a period priced again under other tariffs,
unit rates or FX rates, with the pipeline's own pricing function, and nothing written.

A stored fee line keeps everything its price was computed from: the zone visit (zone, FIRs,
entry and exit times and points, great-circle distance), the flight's MTOW, category and
flags, the movements in the zone and the airspace class (``details.inputs``) and the billing
currency. :func:`stored_line_inputs` turns lines back into the zone-visit and flight frames
of :func:`flight_fees.lib.charging.fees.compute_fee_lines` — the one pricing function of the
pipeline — and :func:`price_stored_lines` prices them under any
:class:`~flight_fees.lib.charging.scenario.PricingReference` (there is no second fee
formula). :func:`reprice_period` compares the stored amounts with the scenario's, per line,
flight, zone and customer; it only reads the database.

Rounding: a repriced line is rounded exactly like a billed one (the charge once, to the
currency's minor unit with the tariff's amount rounding, then ``billing = local x FX``
rounded half-up), so a unit rate raised by 10 % gives ``round(1.1 x exact charge)``: within
one cent of ``1.1 x`` the old, already rounded, amount. Totals are sums of rounded lines.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from flight_fees.lib.charging.fees import compute_fee_lines, derive_flight_category
from flight_fees.lib.charging.scenario import PricingReference
from flight_fees.lib.core.frames import frame_records
from flight_fees.lib.core.money import round_money
from flight_fees.lib.db.models import Customer, FeeLine, Flight, Invoice

__all__ = [
    "ROUNDING_NOTE",
    "PricedLines",
    "RepriceReport",
    "price_stored_lines",
    "read_fee_lines",
    "reprice_period",
    "plain_row",
    "plain_value",
    "stored_line_inputs",
]

ROUNDING_NOTE: Final = (
    "each line is rounded once like a billed line (the charge to the currency's minor unit "
    "with the tariff's rounding, then billing = local x FX rate half-up); totals add rounded "
    "lines; a rate raised by x % changes a line by x % of its exact charge, so within one "
    "minor unit of x % of the old rounded amount"
)

#: columns of :func:`read_fee_lines`, besides the parsed inputs
_READ: Final = (
    FeeLine.id, FeeLine.flight_id, FeeLine.line_no, FeeLine.flight_date, FeeLine.customer_id,
    Customer.code.label("customer"), Flight.callsign, Flight.registration,
    Flight.origin, Flight.destination, FeeLine.zone_id, FeeLine.fir_ids, FeeLine.entry_time,
    FeeLine.exit_time, FeeLine.entry_lat, FeeLine.entry_lon, FeeLine.exit_lat,
    FeeLine.exit_lon, FeeLine.distance_km, FeeLine.flown_km, FeeLine.mtow_kg, FeeLine.category,
    FeeLine.unit_rate, FeeLine.tariff_id, FeeLine.tariff_version, FeeLine.local_amount,
    FeeLine.local_currency, FeeLine.fx_rate, FeeLine.fx_date, FeeLine.billing_amount,
    FeeLine.billing_currency, FeeLine.exemption, FeeLine.interpolated, FeeLine.details,
    Invoice.number.label("invoice"),
)  # fmt: skip
#: what ``details.inputs`` adds per line
INPUT_COLUMNS: Final = ("takeoffs", "landings", "airspace_class", "flags", "fir_crossings")


def read_fee_lines(
    engine: Engine,
    *,
    day_from: dt.date | None = None,
    day_to: dt.date | None = None,
    flight_ids: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The stored fee lines of flights of ``day_from`` .. ``day_to`` (inclusive UTC days)
    and/or ``flight_ids``, ordered by day, flight and line, with their flight's callsign,
    registration and aerodromes, the customer code, the invoice number and the quote inputs
    of ``details`` (:data:`INPUT_COLUMNS`). Money and measures as Decimal."""
    stmt = (
        select(*_READ)
        .outerjoin(Customer, Customer.id == FeeLine.customer_id)
        .outerjoin(Flight, Flight.flight_id == FeeLine.flight_id)
        .outerjoin(Invoice, Invoice.id == FeeLine.invoice_id)
        .order_by(FeeLine.flight_date, FeeLine.flight_id, FeeLine.line_no)
    )
    if day_from is not None:
        stmt = stmt.where(FeeLine.flight_date >= day_from)
    if day_to is not None:
        stmt = stmt.where(FeeLine.flight_date <= day_to)
    if flight_ids is not None:
        stmt = stmt.where(FeeLine.flight_id.in_([int(f) for f in flight_ids]))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    names = [c.key if hasattr(c, "key") else c.name for c in _READ]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=names, dtype=object)
    frame = frame.astype({"id": "int64", "flight_id": "int64", "line_no": "int64"})
    inputs = [_inputs(text) for text in frame["details"].tolist()]
    for k, name in enumerate(INPUT_COLUMNS):
        frame[name] = pd.Series([row[k] for row in inputs], index=frame.index, dtype=object)
    return frame


def _inputs(details: str | None) -> tuple[Any, ...]:
    """``takeoffs, landings, airspace_class, flags, fir_crossings`` of a line's details."""
    data = json.loads(details) if details else {}
    got = data.get("inputs") or {}
    flags = got.get("flags") or []
    return (
        int(got.get("takeoffs") or 0),
        int(got.get("landings") or 0),
        str(got.get("airspace_class") or "enroute"),
        ",".join(flags) if isinstance(flags, list) else str(flags),
        got.get("fir_crossings"),
    )


def stored_line_inputs(
    lines: pd.DataFrame,
    *,
    distance_km: Sequence[Any] | None = None,
    mtow_kg: Sequence[Any] | None = None,
    billing_currency: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The zone-visit and flight frames that price ``lines`` (of :func:`read_fee_lines`)
    again through :func:`compute_fee_lines`: one pricing key per line (its position), so a
    line's own MTOW, category and billing currency are kept. ``distance_km``, ``mtow_kg`` and
    ``billing_currency`` (one value per line) replace the stored ones (verification prices a
    bill's figures)."""
    key = np.arange(len(lines), dtype=np.int64)
    takeoffs = lines["takeoffs"].to_numpy(dtype=np.int64) if len(lines) else key
    landings = lines["landings"].to_numpy(dtype=np.int64) if len(lines) else key
    visits = pd.DataFrame(
        {
            "flight_id": key,
            "visit_index": lines["line_no"].to_numpy(dtype=np.int64),
            "zone_id": lines["zone_id"].to_numpy(dtype=object),
            "fir_ids": lines["fir_ids"].to_numpy(dtype=object),
            "entry_time": pd.to_datetime(lines["entry_time"], utc=True).to_numpy(),
            "exit_time": pd.to_datetime(lines["exit_time"], utc=True).to_numpy(),
            "entry_lat": lines["entry_lat"].to_numpy(dtype=object),
            "entry_lon": lines["entry_lon"].to_numpy(dtype=object),
            "exit_lat": lines["exit_lat"].to_numpy(dtype=object),
            "exit_lon": lines["exit_lon"].to_numpy(dtype=object),
            "distance_km": (
                lines["distance_km"].to_numpy(dtype=object)
                if distance_km is None
                else np.asarray(distance_km, dtype=object)
            ),
            "flown_km": lines["flown_km"].to_numpy(dtype=object),
            "departure_in_zone": takeoffs > 0,
            "arrival_in_zone": landings > 0,
            "airspace_class": lines["airspace_class"].to_numpy(dtype=object),
            "fir_crossings": lines["fir_crossings"].to_numpy(dtype=object),
            "interpolated": lines["interpolated"].to_numpy(dtype=bool),
        }
    )
    visits["entry_time"] = pd.to_datetime(visits["entry_time"], utc=True)
    visits["exit_time"] = pd.to_datetime(visits["exit_time"], utc=True)
    flights = pd.DataFrame(
        {
            "flight_id": key,
            "flight_date": lines["flight_date"].to_numpy(dtype=object),
            "mtow_kg": (
                lines["mtow_kg"].to_numpy(dtype=object)
                if mtow_kg is None
                else np.asarray(mtow_kg, dtype=object)
            ),
            "category": _explicit_categories(lines, takeoffs, landings),
            "flags": lines["flags"].to_numpy(dtype=object),
            "billing_currency": (
                lines["billing_currency"].to_numpy(dtype=object)
                if billing_currency is None
                else np.asarray(billing_currency, dtype=object)
            ),
        }
    )
    return visits, flights


def _explicit_categories(
    lines: pd.DataFrame, takeoffs: np.ndarray, landings: np.ndarray
) -> np.ndarray:
    """The stored category where it is not the one derived from the movements (an explicit
    flight category), else None (derived again, as the pipeline does)."""
    stored = lines["category"].to_numpy(dtype=object)
    derived = np.array(
        [
            derive_flight_category(bool(t), bool(la))
            for t, la in zip(takeoffs, landings, strict=True)
        ],
        dtype=object,
    )
    kept = stored.copy()
    kept[stored == derived] = None
    return kept


@dataclass(frozen=True)
class PricedLines:
    """``lines`` priced again: one row per input line, same index, with ``local_amount,
    local_currency, unit_rate, tariff_version, fx_rate, billing_amount, billing_currency,
    exemption`` (None where the line failed) and ``failure`` (``category: message``)."""

    frame: pd.DataFrame

    @property
    def failed(self) -> pd.Series:
        return self.frame["failure"].notna()


PRICED_COLUMNS: Final = (
    "local_amount", "local_currency", "unit_rate", "tariff_version", "fx_rate",
    "billing_amount", "billing_currency", "exemption",
)  # fmt: skip


def price_stored_lines(
    lines: pd.DataFrame,
    reference: PricingReference,
    *,
    distance_km: Sequence[Any] | None = None,
    mtow_kg: Sequence[Any] | None = None,
    billing_currency: Sequence[str] | None = None,
) -> PricedLines:
    """Price ``lines`` (of :func:`read_fee_lines`) under ``reference`` with
    :func:`compute_fee_lines`; the replacements as in :func:`stored_line_inputs`."""
    visits, flights = stored_line_inputs(
        lines, distance_km=distance_km, mtow_kg=mtow_kg, billing_currency=billing_currency
    )
    result = compute_fee_lines(visits, flights, reference.tariffs, reference.fx)
    priced = result.lines.set_index("flight_id")
    out = pd.DataFrame(index=lines.index)
    position = np.arange(len(lines), dtype=np.int64)
    for name in PRICED_COLUMNS:
        values = priced[name].reindex(position) if len(priced) else pd.Series(index=position)
        out[name] = values.astype(object).where(values.notna(), None).to_numpy(dtype=object)
    failures = {int(k): f"{cat}: {msg}" for k, (cat, msg) in result.failures.items()}
    out["failure"] = [failures.get(int(k)) for k in position]
    return PricedLines(out)


@dataclass(frozen=True)
class RepriceReport:
    """Old (stored) and new (scenario) amounts of a period's fee lines.

    ``lines``: one row per stored line (``flight_id, line_no, flight_date, customer,
    callsign, registration, zone_id, billing_currency, old_amount, new_amount, difference,
    local_currency, old_local_amount, new_local_amount, old_unit_rate, new_unit_rate,
    old_tariff_version, new_tariff_version, invoice, reproduced, failure``); ``reproduced``
    says whether the current reference data still gives the stored amount (None when not
    checked). Lines of a flight that fails under the scenario (all or nothing per flight, as
    in billing) have no new amount and are left out of the sums.
    """

    day_from: dt.date
    day_to: dt.date
    scenario: tuple[tuple[str, str], ...]
    lines: pd.DataFrame
    failures: Mapping[int, str] = field(default_factory=dict)

    @property
    def priced(self) -> pd.DataFrame:
        return self.lines[self.lines["failure"].isna()]

    @property
    def changed(self) -> pd.DataFrame:
        priced = self.priced
        return priced[priced["difference"] != 0]

    def _sums(self, keys: list[str]) -> pd.DataFrame:
        priced = self.priced
        columns = [*keys, "lines", "changed_lines", "old_amount", "new_amount", "difference"]
        if priced.empty:
            return pd.DataFrame(columns=columns)
        grouped = priced.assign(changed_lines=priced["difference"] != 0).groupby(
            keys, sort=True, dropna=False
        )
        out = grouped.agg(
            lines=("line_no", "size"),
            changed_lines=("changed_lines", "sum"),
            old_amount=("old_amount", _decimal_sum),
            new_amount=("new_amount", _decimal_sum),
            difference=("difference", _decimal_sum),
        ).reset_index()
        return out[columns]

    def by_zone(self) -> pd.DataFrame:
        return self._sums(["zone_id", "billing_currency"])

    def by_customer(self) -> pd.DataFrame:
        return self._sums(["customer", "billing_currency"])

    def by_flight(self) -> pd.DataFrame:
        return self._sums(["flight_id", "flight_date", "customer", "callsign", "billing_currency"])

    def totals(self) -> pd.DataFrame:
        return self._sums(["billing_currency"])

    def to_dict(self, *, lines: bool = True) -> dict[str, Any]:
        """JSON-ready: amounts as decimal strings, days ISO 8601."""
        out: dict[str, Any] = {
            "period": {"from": self.day_from.isoformat(), "to": self.day_to.isoformat()},
            "scenario": dict(self.scenario),
            "rounding": ROUNDING_NOTE,
            "lines_count": len(self.lines),
            "changed_lines": len(self.changed),
            "failed_flights": [
                {"flight_id": fid, "error": msg} for fid, msg in sorted(self.failures.items())
            ],
            "not_reproduced": int((self.lines["reproduced"] == False).sum()),  # noqa: E712
            "totals": {
                row.pop("billing_currency"): plain_row(row) for row in frame_records(self.totals())
            },
            "zones": [plain_row(r) for r in frame_records(self.by_zone())],
            "customers": [plain_row(r) for r in frame_records(self.by_customer())],
            "flights": [plain_row(r) for r in frame_records(self.by_flight())],
        }
        if lines:
            out["lines"] = [plain_row(r) for r in frame_records(self.lines)]
        return out


def _decimal_sum(values: pd.Series) -> Decimal:
    return sum(values.tolist(), Decimal(0))


def plain_value(value: Any) -> Any:
    """``value`` for JSON: Decimals as decimal strings, days and times ISO 8601, numpy
    scalars as Python ones, NaN as None."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, Mapping):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    return value


def plain_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with :func:`plain_value` values."""
    return {k: plain_value(v) for k, v in row.items()}


def _money(values: Sequence[Any], currencies: Sequence[Any]) -> list[Decimal | None]:
    """Amounts at their currency's minor unit (stored amounts carry 3 decimals)."""
    return [
        None if v is None else round_money(Decimal(v), str(c))
        for v, c in zip(values, currencies, strict=True)
    ]


def reprice_period(
    engine: Engine,
    day_from: dt.date,
    day_to: dt.date,
    scenario: PricingReference,
    *,
    current: PricingReference | None = None,
) -> RepriceReport:
    """Every fee line of the flights of ``day_from`` .. ``day_to`` priced under
    ``scenario`` next to its stored amount (see :class:`RepriceReport`); with ``current``,
    each line is also priced under the current reference data, to tell a change of the
    scenario from one of the reference data since billing (``reproduced``). Reads only: no
    fee line, flight or invoice is written."""
    if day_from > day_to:
        raise ValueError(f"the period starts ({day_from}) after it ends ({day_to})")
    stored = read_fee_lines(engine, day_from=day_from, day_to=day_to)
    new = price_stored_lines(stored, scenario).frame
    # all or nothing per flight, as when billing
    failed_flights = stored.loc[new["failure"].notna(), "flight_id"].unique().tolist()
    failures = {
        int(fid): "; ".join(
            f"line {n}: {msg}"
            for n, msg in zip(
                stored.loc[stored["flight_id"] == fid, "line_no"],
                new.loc[stored["flight_id"] == fid, "failure"],
                strict=True,
            )
            if msg
        )
        for fid in failed_flights
    }
    in_failed = stored["flight_id"].isin(failed_flights).to_numpy()
    currencies = stored["billing_currency"].tolist()
    old_amount = _money(stored["billing_amount"].tolist(), currencies)
    new_amount = _money(
        [None if f else v for v, f in zip(new["billing_amount"], in_failed, strict=True)],
        currencies,
    )
    lines = pd.DataFrame(
        {
            "flight_id": stored["flight_id"],
            "line_no": stored["line_no"],
            "flight_date": stored["flight_date"],
            "customer": stored["customer"],
            "callsign": stored["callsign"],
            "registration": stored["registration"],
            "zone_id": stored["zone_id"],
            "billing_currency": stored["billing_currency"],
            "old_amount": pd.Series(old_amount, index=stored.index, dtype=object),
            "new_amount": pd.Series(new_amount, index=stored.index, dtype=object),
            "local_currency": stored["local_currency"],
            "old_local_amount": _money(
                stored["local_amount"].tolist(), stored["local_currency"].tolist()
            ),
            "new_local_amount": new["local_amount"].where(~in_failed, None),
            "old_unit_rate": stored["unit_rate"],
            "new_unit_rate": new["unit_rate"].where(~in_failed, None),
            "old_tariff_version": stored["tariff_version"],
            "new_tariff_version": new["tariff_version"].where(~in_failed, None),
            "invoice": stored["invoice"],
        }
    )
    lines["difference"] = [
        None if n is None else n - o
        for o, n in zip(lines["old_amount"], lines["new_amount"], strict=True)
    ]
    if current is not None:
        baseline = price_stored_lines(stored, current).frame
        base_amount = _money(baseline["billing_amount"].tolist(), currencies)
        lines["reproduced"] = [
            b is not None and b == o for b, o in zip(base_amount, old_amount, strict=True)
        ]
    else:
        lines["reproduced"] = None
    lines["failure"] = [
        failures.get(int(fid)) if f else None
        for fid, f in zip(stored["flight_id"], in_failed, strict=True)
    ]
    return RepriceReport(day_from, day_to, scenario.sources, lines.reset_index(drop=True), failures)
