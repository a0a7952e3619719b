"""Verify an authority's route-charges bill against our tracks.

An aircraft operator receives a monthly bill (EUROCONTROL CRCO, a national authority): one
line per flight and charging zone, with the authority's distance, MTOW, unit rate and
amount. :func:`verify_bill` matches every billed line to our flight and zone visit, prices
it again with the pipeline's pricing function (:func:`flight_fees.lib.charging.fees.
compute_fee_lines`, through :func:`~flight_fees.lib.charging.repricing.price_stored_lines`:
no second fee formula) from our own zone visit (entry and exit points measured on the
track), and classifies every difference beyond the tolerances.

Bill columns (:func:`read_bill`): ``date`` (UTC day of the flight), ``callsign``,
``registration``, ``departure``, ``destination``, ``zone``, ``distance_km``, ``mtow_kg``,
``unit_rate``, ``amount``, ``currency``; optional ``flight_id``, ``fx_rate``,
``tariff_version``, ``exemption``, ``entry_point``, ``exit_point``. ``format="crco"`` reads
the CRCO-style names of :data:`CRCO_COLUMNS` (MTOW in tonnes); ``columns`` renames any
other header.

Matching: a line's ``flight_id`` when given, else its day, registration (then callsign) and
aerodromes; then the flight's fee line in the line's zone (the n-th billed line of a flight
and zone goes with its n-th visit of the zone).

Expected amount: our zone visit priced under the current reference data, in the bill's
currency, where a billed figure within its tolerance of ours is taken as billed (the
distance within ``distance_km``; the MTOW and unit rate compared at the precision the bill
prints them). A line is a finding when ``|billed - expected| > amount``; its causes, first
the main one: ``exemption`` (one side charges nothing), ``mtow``, ``distance``,
``unit_rate`` (unit rate or tariff version differs, or the amount does not follow from the
figures), ``fx`` (the bill's FX rate differs, or only the conversion can explain it),
``not_tracked`` (no flight of ours, or none of its visits in the zone), ``duplicate``
(billed again), and ``not_billed``: a fee line of ours in the bill's scope (its days, zones
and customers: by default those it names) that no billed line matches. Differences are
``billed - expected``: positive is over-billing.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pandas as pd
from sqlalchemy import Engine, select

from flight_fees.lib.charging.repricing import plain_value, price_stored_lines, read_fee_lines
from flight_fees.lib.charging.scenario import PricingReference
from flight_fees.lib.core.frames import frame_records
from flight_fees.lib.core.money import (
    InvalidAmount,
    InvalidCurrency,
    normalize_currency,
    round_half_up,
    round_money,
    to_decimal,
)
from flight_fees.lib.db.models import Customer, Flight

__all__ = [
    "BILL_COLUMNS",
    "CAUSES",
    "CRCO_COLUMNS",
    "OPTIONAL_BILL_COLUMNS",
    "BillError",
    "Finding",
    "Tolerances",
    "VerificationReport",
    "read_bill",
    "verify_bill",
]

BILL_COLUMNS: Final = (
    "date", "callsign", "registration", "departure", "destination", "zone", "distance_km",
    "mtow_kg", "unit_rate", "amount", "currency",
)  # fmt: skip
OPTIONAL_BILL_COLUMNS: Final = (
    "flight_id", "fx_rate", "tariff_version", "exemption", "entry_point", "exit_point",
)  # fmt: skip
#: ``--format crco``: CRCO-style header -> our column (ICAO flight-plan field names; MTOW in
#: tonnes, DOF as YYYY-MM-DD or YYMMDD)
CRCO_COLUMNS: Final = {
    "DOF": "date", "ARCID": "callsign", "REG": "registration", "ADEP": "departure",
    "ADES": "destination", "CZ": "zone", "DIST_KM": "distance_km", "MTOW_T": "mtow_t",
    "UNIT_RATE": "unit_rate", "CHARGE": "amount", "CUR": "currency", "FLIGHT_ID": "flight_id",
    "FX_RATE": "fx_rate", "TARIFF_VERSION": "tariff_version", "EXEMPTION": "exemption",
    "ENTRY_POINT": "entry_point", "EXIT_POINT": "exit_point",
}  # fmt: skip
FORMATS: Final = ("generic", "crco")
CAUSES: Final = (
    "distance", "mtow", "unit_rate", "fx", "exemption", "not_tracked", "not_billed", "duplicate",
)  # fmt: skip
_DAY_RE: Final = re.compile(r"^\d{6}$")


class BillError(ValueError):
    """A bill that cannot be read: every bad value, with its line and field."""

    def __init__(self, source: str, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        shown = "; ".join(self.errors[:20])
        more = f" (+{len(self.errors) - 20} more)" if len(self.errors) > 20 else ""
        super().__init__(f"{source}: {shown}{more}")


@dataclass(frozen=True)
class Tolerances:
    """How far a billed figure may be from ours and still be accepted.

    ``amount``: in the bill's currency, ``|billed - expected|`` up to this is no finding;
    ``distance_km``: a billed distance this close to ours is priced as billed; ``mtow_kg``
    and ``unit_rate``: on top of comparing at the bill's printed precision."""

    amount: Decimal = Decimal("0.01")
    distance_km: Decimal = Decimal("1")
    mtow_kg: Decimal = Decimal("0")
    unit_rate: Decimal = Decimal("0")

    def __post_init__(self) -> None:
        for name in ("amount", "distance_km", "mtow_kg", "unit_rate"):
            if getattr(self, name) < 0:
                raise ValueError(f"tolerance {name} must not be negative")


# -- reading a bill ------------------------------------------------------------------------


def _text(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def _day(value: str) -> dt.date:
    text = value.strip()
    if _DAY_RE.match(text):  # ICAO DOF: YYMMDD
        return dt.date(2000 + int(text[:2]), int(text[2:4]), int(text[4:]))
    return dt.date.fromisoformat(text[:10])


def read_bill(
    path: str | Path,
    *,
    format: str = "generic",  # noqa: A002 - the option's name
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The lines of the bill CSV ``path``: one row per data row, ``line`` its 1-based
    number (the header excluded), the columns of :data:`BILL_COLUMNS` typed (``date`` a
    date, figures Decimal, ``zone`` and ``currency`` upper case) and the optional ones
    (None when absent), plus ``mtow_exp`` and ``unit_rate_exp``: the exponent of the
    printed precision (``79.0`` t: 100 kg = 2; ``70.84``: -2). ``columns`` maps a header of
    the file to one of ours (applied after the ``crco`` names). :class:`BillError` names
    every bad value (line, field) and a missing column."""
    if format not in FORMATS:
        raise ValueError(f"bill format must be one of {', '.join(FORMATS)}, got {format!r}")
    mapping = {k.strip().upper(): v for k, v in (CRCO_COLUMNS if format == "crco" else {}).items()}
    mapping.update({k.strip().upper(): v.strip() for k, v in (columns or {}).items()})
    source = str(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise BillError(source, [f"cannot read the bill: {exc}"]) from exc
    if not rows:
        raise BillError(source, ["empty file (a header line is needed)"])
    header = [mapping.get(h.strip().upper(), h.strip().lower()) for h in rows[0]]
    tonnes = "mtow_t" in header and "mtow_kg" not in header
    needed = [c for c in BILL_COLUMNS if c not in header and not (c == "mtow_kg" and tonnes)]
    if needed:
        raise BillError(source, [f"missing column(s): {', '.join(needed)}"])
    errors: list[str] = []
    records: list[dict[str, Any]] = []
    for number, row in enumerate(rows[1:], start=1):
        if not any(cell.strip() for cell in row):
            continue
        values = dict(zip(header, row, strict=False))
        record, bad = _bill_line(number, values, tonnes)
        errors.extend(bad)
        records.append(record)
    if errors:
        raise BillError(source, errors)
    names = ["line", *BILL_COLUMNS, *OPTIONAL_BILL_COLUMNS, "mtow_exp", "unit_rate_exp"]
    frame = pd.DataFrame(records, columns=names, dtype=object)
    return frame.astype({"line": "int64"})


def _bill_line(
    number: int, values: Mapping[str, str], tonnes: bool
) -> tuple[dict[str, Any], list[str]]:
    errors: list[str] = []
    out: dict[str, Any] = {"line": number}

    def bad(field_name: str, message: str) -> None:
        errors.append(f"line {number}, {field_name}: {message}")

    def number_of(name: str, *, required: bool = True) -> Decimal | None:
        raw = (values.get(name) or "").strip()
        if not raw:
            if required:
                bad(name, "missing")
            return None
        try:
            return to_decimal(raw.replace(",", ""), what=name)
        except InvalidAmount:
            bad(name, f"{raw!r} is not a number")
            return None

    try:
        out["date"] = _day(values.get("date") or "")
    except ValueError:
        bad("date", f"{values.get('date')!r} is not a day (YYYY-MM-DD or YYMMDD)")
        out["date"] = None
    for name in ("callsign", "registration", "departure", "destination", "zone"):
        text = _text(values.get(name))
        out[name] = text.upper() if text else None
    if out["zone"] is None:
        bad("zone", "missing")
    if (
        out["callsign"] is None
        and out["registration"] is None
        and not _text(values.get("flight_id"))
    ):
        bad("registration", "a line needs a flight_id, a registration or a callsign")
    out["distance_km"] = number_of("distance_km")
    mtow = number_of("mtow_t" if tonnes else "mtow_kg")
    out["mtow_kg"] = None if mtow is None else mtow * 1000 if tonnes else mtow
    exponent = mtow.as_tuple().exponent if mtow is not None else 0
    out["mtow_exp"] = (int(exponent) + 3 if tonnes else int(exponent)) if mtow is not None else 0
    out["unit_rate"] = number_of("unit_rate", required=False)
    rate = out["unit_rate"]
    out["unit_rate_exp"] = int(rate.as_tuple().exponent) if rate is not None else 0
    out["amount"] = number_of("amount")
    try:
        out["currency"] = normalize_currency(values.get("currency") or "")
    except InvalidCurrency:
        bad("currency", f"{values.get('currency')!r} is not a currency code")
        out["currency"] = None
    flight_id = _text(values.get("flight_id"))
    if flight_id is not None and not flight_id.isdigit():
        bad("flight_id", f"{flight_id!r} is not a flight id")
    out["flight_id"] = int(flight_id) if flight_id and flight_id.isdigit() else None
    out["fx_rate"] = number_of("fx_rate", required=False)
    for name in ("tariff_version", "exemption", "entry_point", "exit_point"):
        out[name] = _text(values.get(name))
    for name in ("distance_km", "mtow_kg", "amount"):
        if out[name] is not None and out[name] < 0:
            bad(name, f"{out[name]} is negative")
    return out, errors


# -- matching -------------------------------------------------------------------------------


def _norm(series: pd.Series) -> pd.Series:
    """Upper case, letters and digits only (``D-AIAB`` = ``DAIAB``); None stays None."""
    text = series.astype("string").str.upper().str.replace(r"[^A-Z0-9]", "", regex=True)
    return text.where(text.notna() & (text != ""), None).astype(object)


def _read_flights(engine: Engine, days: Sequence[dt.date], ids: Sequence[int]) -> pd.DataFrame:
    stmt = select(
        Flight.flight_id, Flight.flight_date, Flight.callsign, Flight.registration,
        Flight.origin, Flight.destination, Customer.code.label("customer"),
    ).outerjoin(Customer, Customer.id == Flight.customer_id)  # fmt: skip
    where = []
    if days:
        where.append(Flight.flight_date.between(min(days), max(days)))
    if ids:
        where.append(Flight.flight_id.in_([int(i) for i in ids]))
    if not where:
        return pd.DataFrame(columns=[c.key for c in stmt.selected_columns])
    from sqlalchemy import or_

    with engine.connect() as conn:
        rows = conn.execute(stmt.where(or_(*where)).order_by(Flight.flight_id)).all()
    return pd.DataFrame(
        [tuple(r) for r in rows], columns=[c.key for c in stmt.selected_columns], dtype=object
    )


def _match_flights(
    bill: pd.DataFrame, flights: pd.DataFrame, zones_of: Mapping[int, Sequence[str]]
) -> pd.Series:
    """Our flight id of every bill line (None: no flight of ours). ``zones_of``: the zones
    of each flight's fee lines, in line order (to tell apart the flights of one key)."""
    matched = pd.Series([None] * len(bill), index=bill.index, dtype=object)
    known = set(int(f) for f in flights["flight_id"]) if len(flights) else set()
    has_id = bill["flight_id"].notna()
    matched[has_id] = [int(f) if int(f) in known else None for f in bill.loc[has_id, "flight_id"]]
    ours = flights.assign(
        _reg=_norm(flights["registration"]),
        _cs=_norm(flights["callsign"]),
        _dep=_norm(flights["origin"]),
        _dest=_norm(flights["destination"]),
        _day=flights["flight_date"],
    )
    theirs = bill.assign(
        _reg=_norm(bill["registration"]),
        _cs=_norm(bill["callsign"]),
        _dep=_norm(bill["departure"]),
        _dest=_norm(bill["destination"]),
        _day=bill["date"],
    )
    for ident in ("_reg", "_cs"):
        todo = theirs[~has_id & matched.isna() & theirs[ident].notna()]
        if todo.empty or ours.empty:
            continue
        keys = ["_day", ident, "_dep", "_dest"]
        cand = ours.dropna(subset=[ident]).sort_values("flight_id", kind="stable")
        per_key = cand.groupby(keys, dropna=False)["flight_id"].agg(list).rename("_flights")
        want = todo[keys].assign(_row=todo.index).merge(per_key.reset_index(), on=keys, how="inner")
        single = want["_flights"].str.len() == 1  # a key names one flight: the common case
        matched[want.loc[single, "_row"].to_numpy()] = [
            int(f[0]) for f in want.loc[single, "_flights"]
        ]
        for _, group in want[~single].groupby(keys, dropna=False, sort=False):
            rows = group["_row"].tolist()
            flights_of_key = group["_flights"].iloc[0]
            zones = bill.loc[rows, "zone"].tolist()
            for row, flight in zip(
                rows, _split_by_flight(zones, flights_of_key, zones_of), strict=True
            ):
                matched[row] = flight
    return matched


def _split_by_flight(
    zones: Sequence[str], flights: Sequence[int], zones_of: Mapping[int, Sequence[str]]
) -> list[int]:
    """The flight of each billed line of one key flown several times (bill order =
    departure order): a line stays with the current flight while that flight still has an
    unbilled visit of its zone, else it goes to the next flight that has one."""
    remaining = [list(zones_of.get(int(f), ())) for f in flights]
    current = 0
    out: list[int] = []
    for zone in zones:
        for k in range(current, len(flights)):
            if zone in remaining[k]:
                current = k
                remaining[k].remove(zone)
                break
        out.append(int(flights[current]))  # nothing left: billed again (a duplicate)
    return out


# -- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One disputed bill line or unbilled fee line. ``line``: the bill's 1-based data row
    (None for a line of ours missing from the bill); amounts in ``currency``;
    ``difference = billed_amount - expected_amount`` (positive: over-billed)."""

    line: int | None
    flight_id: int | None
    zone: str
    cause: str
    billed_amount: Decimal
    expected_amount: Decimal
    currency: str
    causes: tuple[str, ...] = ()
    day: dt.date | None = None
    callsign: str | None = None
    registration: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def difference(self) -> Decimal:
        return self.billed_amount - self.expected_amount

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "flight_id": self.flight_id,
            "zone": self.zone,
            "cause": self.cause,
            "billed_amount": str(self.billed_amount),
            "expected_amount": str(self.expected_amount),
            "difference": str(self.difference),
            "currency": self.currency,
            "causes": list(self.causes or (self.cause,)),
            "date": self.day.isoformat() if self.day else None,
            "callsign": self.callsign,
            "registration": self.registration,
            "detail": {k: plain_value(v) for k, v in self.detail.items()},
        }


@dataclass(frozen=True)
class VerificationReport:
    """What :func:`verify_bill` found. ``billed`` / ``expected``: per currency, the bill's
    total and ours for the same lines (plus our lines missing from it)."""

    source: str
    bill_lines: int
    matched_lines: int
    findings: tuple[Finding, ...]
    billed: Mapping[str, Decimal]
    expected: Mapping[str, Decimal]
    tolerances: Tolerances
    scope: Mapping[str, Any] = field(default_factory=dict)

    def by_cause(self) -> dict[str, int]:
        counts = {cause: 0 for cause in CAUSES}
        for f in self.findings:
            counts[f.cause] += 1
        return counts

    def by_zone(self) -> list[dict[str, Any]]:
        """Over- and under-billing of the findings per zone and currency."""
        sums: dict[tuple[str, str], list[Any]] = {}
        for f in self.findings:
            entry = sums.setdefault((f.zone, f.currency), [Decimal(0), Decimal(0), 0])
            entry[0 if f.difference > 0 else 1] += abs(f.difference)
            entry[2] += 1
        return [
            {
                "zone": z,
                "currency": c,
                "over": round_money(o, c),
                "under": round_money(u, c),
                "net": round_money(o - u, c),
                "findings": n,
            }
            for (z, c), (o, u, n) in sorted(sums.items())
        ]

    def by_currency(self) -> dict[str, dict[str, Decimal]]:
        out: dict[str, dict[str, Decimal]] = {}
        for ccy in sorted(set(self.billed) | set(self.expected)):
            out[ccy] = {
                "billed": self.billed.get(ccy, Decimal(0)),
                "expected": self.expected.get(ccy, Decimal(0)),
                "over": Decimal(0),
                "under": Decimal(0),
            }
        for f in self.findings:
            key = "over" if f.difference > 0 else "under"
            out[f.currency][key] += abs(f.difference)
        for ccy, entry in out.items():
            entry["net"] = entry["over"] - entry["under"]
            out[ccy] = {k: round_money(v, ccy) for k, v in entry.items()}
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object: ``findings`` and ``totals``, amounts as decimal strings."""
        return {
            "findings": [f.to_dict() for f in self.findings],
            "totals": {
                "bill_lines": self.bill_lines,
                "matched_lines": self.matched_lines,
                "findings": len(self.findings),
                "by_cause": self.by_cause(),
                "by_currency": plain_value(self.by_currency()),
                "by_zone": [plain_value(z) for z in self.by_zone()],
            },
            "source": self.source,
            "tolerances": {
                k: str(getattr(self.tolerances, k))
                for k in ("amount", "distance_km", "mtow_kg", "unit_rate")
            },
            "scope": plain_value(dict(self.scope)),
        }


# -- verification ---------------------------------------------------------------------------


def _at(value: Decimal | None, exponent: int) -> Decimal | None:
    """``value`` at the precision ``10**exponent`` (half-up), as the bill prints it."""
    if value is None:
        return None
    return round_half_up(Decimal(value), -exponent)


def _point(row: Mapping[str, Any] | pd.Series, end: str) -> dict[str, Any]:
    return {
        "time": row[f"{end}_time"],
        "lat": row[f"{end}_lat"],
        "lon": row[f"{end}_lon"],
    }


def verify_bill(
    engine: Engine,
    bill: pd.DataFrame,
    reference: PricingReference,
    *,
    tolerances: Tolerances | None = None,
    customers: Sequence[str] | None = None,
    zones: Sequence[str] | None = None,
    source: str = "bill",
) -> VerificationReport:
    """Check every line of ``bill`` (:func:`read_bill`) against our flights and fee lines
    priced under ``reference`` (see the module doc). The bill's scope, where a fee line of
    ours that it does not hold is ``not_billed``: its days, ``customers`` (customer codes;
    default: the customers of the flights it names) and ``zones`` (default: the zones it
    bills). Reads only."""
    tol = tolerances or Tolerances()
    days = sorted(d for d in bill["date"].dropna().unique())
    ids = [int(f) for f in bill["flight_id"].dropna()]
    flights = _read_flights(engine, days, ids)
    bill = bill.reset_index(drop=True).copy()
    ours = read_fee_lines(engine, day_from=days[0], day_to=days[-1], flight_ids=None) if days \
        else read_fee_lines(engine, flight_ids=[])  # fmt: skip
    per_flight = ours.groupby("flight_id")["zone_id"].agg(list)
    zones_of: dict[int, list[str]] = {
        int(f): zones for f, zones in zip(per_flight.index, per_flight, strict=True)
    }
    bill["our_flight"] = _match_flights(bill, flights, zones_of) if len(flights) else None
    matched_ids = sorted({int(f) for f in bill["our_flight"].dropna()})
    elsewhere = sorted(set(matched_ids) - set(zones_of))  # named by id, another day
    if elsewhere:
        ours = pd.concat([ours, read_fee_lines(engine, flight_ids=elsewhere)])
    ours = ours.drop_duplicates("id").reset_index(drop=True)

    # the n-th billed line of a flight and zone goes with the flight's n-th visit of the zone
    bill["_rank"] = bill.groupby(["our_flight", "zone"], dropna=False).cumcount()
    ours["_rank"] = ours.groupby(["flight_id", "zone_id"]).cumcount()
    pairs = bill.reset_index(names="_bill").merge(
        ours.reset_index(names="_ours")[["_ours", "flight_id", "zone_id", "_rank"]],
        left_on=["our_flight", "zone", "_rank"],
        right_on=["flight_id", "zone_id", "_rank"],
        how="inner",
        suffixes=("", "_ours"),
    )
    our_of_bill = dict(zip(pairs["_bill"], pairs["_ours"], strict=True))
    has_zone_visit = set(zip(ours["flight_id"], ours["zone_id"], strict=True))

    findings: list[tuple[int, Finding]] = []
    billed: dict[str, Decimal] = {}
    expected: dict[str, Decimal] = {}

    def add(totals: dict[str, Decimal], ccy: str, amount: Decimal) -> None:
        totals[ccy] = totals.get(ccy, Decimal(0)) + amount

    for row in frame_records(bill):
        add(billed, row["currency"], row["amount"])

    # price the matched lines: ours, with billed figures within tolerance taken as billed
    matched = pairs.sort_values("_bill")
    our_rows = ours.loc[matched["_ours"].to_numpy()].reset_index(drop=True)
    bill_rows = bill.loc[matched["_bill"].to_numpy()].reset_index(drop=True)
    priced = _price_matched(our_rows, bill_rows, reference, tol) if len(bill_rows) else []

    for k, row in enumerate(frame_records(bill_rows)):
        ours_row = our_rows.iloc[k]
        check = priced[k]
        expected_amount = check["expected"]
        add(expected, row["currency"], expected_amount)
        difference = row["amount"] - expected_amount
        if abs(difference) <= tol.amount:
            continue
        findings.append(
            (
                row["line"],
                Finding(
                    line=int(row["line"]), flight_id=int(ours_row["flight_id"]),
                    zone=row["zone"], cause=check["causes"][0], causes=tuple(check["causes"]),
                    billed_amount=row["amount"], expected_amount=expected_amount,
                    currency=row["currency"], day=row["date"], callsign=row["callsign"],
                    registration=row["registration"], detail=check["detail"],
                ),
            )
        )  # fmt: skip

    # billed lines without a visit of ours: never flown / not in that zone, or billed twice
    for index, billed_row in bill.iterrows():
        if index in our_of_bill:
            continue
        flight = billed_row["our_flight"]
        twice = flight is not None and (int(flight), billed_row["zone"]) in has_zone_visit
        cause = "duplicate" if twice else "not_tracked"
        zero = round_money(Decimal(0), billed_row["currency"])
        detail: dict[str, Any] = {}
        if cause == "not_tracked":
            detail["reason"] = (
                "no flight of ours matches the line"
                if flight is None
                else f"flight {int(flight)} has no visit of zone {billed_row['zone']}"
            )
        else:
            detail["reason"] = "the flight's visits of this zone are already billed"
        findings.append(
            (
                billed_row["line"],
                Finding(
                    line=int(billed_row["line"]), flight_id=None if flight is None else int(flight),
                    zone=billed_row["zone"], cause=cause, billed_amount=billed_row["amount"],
                    expected_amount=zero, currency=billed_row["currency"], day=billed_row["date"],
                    callsign=billed_row["callsign"], registration=billed_row["registration"],
                    detail=detail,
                ),
            )
        )  # fmt: skip

    # our lines in the bill's scope that no billed line matches
    scope_customers = (
        sorted(set(customers))
        if customers
        else sorted({c for c in ours.loc[ours["flight_id"].isin(matched_ids), "customer"] if c})
    )
    zones = sorted({z.strip().upper() for z in zones} if zones else set(bill["zone"]))
    in_scope = (
        ours["customer"].isin(scope_customers)
        & ours["zone_id"].isin(zones)
        & ours["flight_date"].isin(days)
    )
    missing = ours[in_scope & ~ours.index.isin(list(our_of_bill.values()))]
    if len(missing):
        currency_of_zone = bill.groupby("zone")["currency"].agg(
            lambda s: s.iloc[0] if s.nunique() == 1 else ""  # "": currencies differ
        )
        currencies = [
            currency_of_zone.get(z) or local
            for z, local in zip(missing["zone_id"], missing["local_currency"], strict=True)
        ]
        ours_priced = price_stored_lines(missing, reference, billing_currency=currencies).frame
        for (_, line), (_, price), ccy in zip(
            missing.iterrows(), ours_priced.iterrows(), currencies, strict=True
        ):
            amount = price["billing_amount"]
            if amount is None:  # cannot be priced now: what was billed in that currency
                amount = line["billing_amount"] if line["billing_currency"] == ccy else Decimal(0)
            amount = round_money(Decimal(amount), ccy)
            add(expected, ccy, amount)
            findings.append(
                (
                    10**12 + len(findings),
                    Finding(
                        line=None, flight_id=int(line["flight_id"]), zone=line["zone_id"],
                        cause="not_billed", billed_amount=round_money(Decimal(0), ccy),
                        expected_amount=amount, currency=ccy, day=line["flight_date"],
                        callsign=line["callsign"], registration=line["registration"],
                        detail={"line_no": int(line["line_no"]),
                                "distance_km": line["distance_km"],
                                "entry": _point(line, "entry"), "exit": _point(line, "exit")},
                    ),
                )
            )  # fmt: skip
    findings.sort(key=lambda pair: pair[0])
    return VerificationReport(
        source=source,
        bill_lines=len(bill),
        matched_lines=len(bill_rows),
        findings=tuple(f for _, f in findings),
        billed=billed,
        expected=expected,
        tolerances=tol,
        scope={
            "days": [days[0], days[-1]] if days else [],
            "zones": zones,
            "customers": scope_customers,
        },
    )


def _price_matched(
    ours: pd.DataFrame, bill: pd.DataFrame, reference: PricingReference, tol: Tolerances
) -> list[dict[str, Any]]:
    """Expected amount, causes and detail of every matched pair (row k of both frames)."""
    distance_o = [Decimal(v) for v in ours["distance_km"]]
    distance_b = list(bill["distance_km"])
    distance_ok = [
        abs(b - o) <= tol.distance_km for b, o in zip(distance_b, distance_o, strict=True)
    ]
    mtow_o = [Decimal(v) for v in ours["mtow_kg"]]
    mtow_ok = [
        abs(b - _at(o, int(e))) <= tol.mtow_kg
        for b, o, e in zip(bill["mtow_kg"], mtow_o, bill["mtow_exp"], strict=True)
    ]
    priced = price_stored_lines(
        ours,
        reference,
        distance_km=[
            b if ok else o for b, o, ok in zip(distance_b, distance_o, distance_ok, strict=True)
        ],
        mtow_kg=[b if ok else o for b, o, ok in zip(bill["mtow_kg"], mtow_o, mtow_ok, strict=True)],
        billing_currency=list(bill["currency"]),
    ).frame
    out: list[dict[str, Any]] = []
    for k in range(len(ours)):
        b = bill.iloc[k]
        o = ours.iloc[k]
        p = priced.iloc[k]
        amount = p["billing_amount"]
        if amount is None:  # the pricing failed: compare with what we billed in that currency
            amount = (
                o["billing_amount"]
                if o["billing_currency"] == b["currency"]
                else (o["local_amount"] if o["local_currency"] == b["currency"] else Decimal(0))
            )
        expected_amount = round_money(Decimal(amount), b["currency"])
        causes: list[str] = []
        detail: dict[str, Any] = {}
        exempt_ours = p["exemption"] is not None
        if (
            (exempt_ours and b["amount"] != 0)
            or (b["amount"] == 0 and expected_amount != 0)
            or (b["exemption"] is not None and not exempt_ours)
        ):
            causes.append("exemption")
            detail["exemption"] = {"billed": b["exemption"], "ours": p["exemption"]}
        if not mtow_ok[k]:
            causes.append("mtow")
            detail["mtow_kg"] = {"billed": b["mtow_kg"], "ours": mtow_o[k]}
        if not distance_ok[k]:
            causes.append("distance")
        detail["distance_km"] = {
            "billed": distance_b[k],
            "ours": distance_o[k],
            "difference": distance_b[k] - distance_o[k],
            "billed_entry": b["entry_point"],
            "billed_exit": b["exit_point"],
            "our_entry": _point(o, "entry"),
            "our_exit": _point(o, "exit"),
        }
        rate = p["unit_rate"] if p["unit_rate"] is not None else o["unit_rate"]
        rate_differs = (
            b["unit_rate"] is not None
            and rate is not None
            and abs(b["unit_rate"] - _at(Decimal(rate), int(b["unit_rate_exp"]))) > tol.unit_rate
        )
        version = p["tariff_version"] or o["tariff_version"]
        version_differs = b["tariff_version"] is not None and b["tariff_version"] != version
        if rate_differs or version_differs:
            causes.append("unit_rate")
        detail["unit_rate"] = {"billed": b["unit_rate"], "ours": rate}
        detail["tariff_version"] = {"billed": b["tariff_version"], "ours": version}
        fx_rate = p["fx_rate"]
        fx_differs = (
            b["fx_rate"] is not None
            and fx_rate is not None
            and b["fx_rate"] != _at(Decimal(fx_rate), int(b["fx_rate"].as_tuple().exponent))
        )
        if fx_differs or (not causes and b["currency"] != o["local_currency"]):
            causes.append("fx")
            detail["fx_rate"] = {"billed": b["fx_rate"], "ours": fx_rate}
        if not causes:  # the amount does not follow from the figures under our tariff
            causes.append("unit_rate")
        if p["failure"]:
            detail["pricing_error"] = p["failure"]
        out.append({"expected": expected_amount, "causes": causes, "detail": detail})
    return out
