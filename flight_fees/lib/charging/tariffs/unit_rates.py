"""Monthly unit rates from a CSV file (e.g. the EUROCONTROL CRCO monthly adjusted rates).

CSV columns (header required, case-insensitive, extra columns ignored, ``#`` lines are
comments): ``zone`` (zone id), ``month`` (``YYYY-MM``), ``rate`` (unit rate, > 0),
``currency`` (ISO 4217).

Each row makes a version of the zone valid for that calendar month
(``[YYYY-MM-01, first day of the next month)``), with the formula, rounding, multipliers and
exemptions of the zone's version effective on the first day of the month (else the latest
earlier version, else the earliest one) and the row's rate and currency. Existing versions
are cut around the month, so a CSV month always wins over the YAML file. Only
``distance_weight`` zones have a unit rate; other zones and unknown zones are errors.
"""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Final

from flight_fees.lib.charging.tariffs.errors import TariffNotFound, TariffValidationError
from flight_fees.lib.charging.tariffs.loader import MAX_TARIFF_VALUE, probe_zone
from flight_fees.lib.charging.tariffs.model import (
    DistanceWeightFormula,
    Tariffs,
    TariffVersion,
    ZoneTariff,
)
from flight_fees.lib.core.money import (
    InvalidAmount,
    InvalidCurrency,
    normalize_currency,
    to_decimal,
)
from flight_fees.lib.core.timeutil import next_month

__all__ = ["load_unit_rates_csv"]

_REQUIRED: Final = ("zone", "month", "rate", "currency")
_MONTH_RE: Final = re.compile(r"^(\d{4})-(\d{2})$")


def load_unit_rates_csv(path: str | Path, tariffs: Tariffs) -> Tariffs:
    """``tariffs`` with one monthly version per CSV row (see the module doc)."""
    source = str(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            lines = [
                (number, line)
                for number, line in enumerate(handle, start=1)
                if line.strip() and not line.lstrip().startswith("#")
            ]
    except OSError as exc:
        raise TariffValidationError(f"{source}: cannot read unit-rate file: {exc}") from exc
    if not lines:
        raise TariffValidationError(
            f"{source}: empty unit-rate file (header {','.join(_REQUIRED)})"
        )

    reader = csv.reader(line for _, line in lines)
    header = [cell.strip().lower() for cell in next(reader)]
    missing = [column for column in _REQUIRED if column not in header]
    if missing:
        raise TariffValidationError(
            f"{source}: line {lines[0][0]}: missing column(s) {', '.join(missing)}"
        )
    index = {column: header.index(column) for column in _REQUIRED}

    rows: dict[tuple[str, date], tuple[int, Decimal, str]] = {}
    for (number, _), cells in zip(lines[1:], reader, strict=True):
        cells = [cell.strip() for cell in cells]
        if len(cells) < len(header):
            cells += [""] * (len(header) - len(cells))
        zone_id = cells[index["zone"]].upper()
        month = cells[index["month"]]
        where = f"{source}: line {number}: zone {zone_id or '?'} month {month or '?'}"
        match = _MONTH_RE.match(month)
        if not zone_id:
            raise TariffValidationError(f"{where}: field zone: is required")
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise TariffValidationError(f"{where}: field month: must be YYYY-MM (got {month!r})")
        start = date(int(match.group(1)), int(match.group(2)), 1)
        try:
            rate = to_decimal(cells[index["rate"]], what="rate")
        except InvalidAmount:
            rate = Decimal(-1)
        if rate <= 0:
            raise TariffValidationError(
                f"{where}: field rate: must be a positive number (got {cells[index['rate']]!r})"
            )
        if rate > MAX_TARIFF_VALUE:
            raise TariffValidationError(
                f"{where}: field rate: must be at most {MAX_TARIFF_VALUE:,} "
                f"(got {cells[index['rate']]!r}): implausible"
            )
        try:
            currency = normalize_currency(cells[index["currency"]])
        except InvalidCurrency:
            raise TariffValidationError(
                f"{where}: field currency: must be a 3-letter ISO 4217 code "
                f"(got {cells[index['currency']]!r})"
            ) from None
        if (zone_id, start) in rows:
            first = rows[(zone_id, start)][0]
            raise TariffValidationError(f"{where}: duplicate of line {first}")
        rows[(zone_id, start)] = (number, rate, currency)

    zones: dict[str, ZoneTariff] = {}
    for (zone_id, start), (number, rate, currency) in sorted(rows.items()):
        where = f"{source}: line {number}: zone {zone_id} month {start:%Y-%m}"
        try:
            zone = zones.get(zone_id) or tariffs.zone(zone_id)
        except TariffNotFound:
            raise TariffValidationError(
                f"{where}: unknown zone (no tariff to take the formula from)"
            ) from None
        template = _template(zone, start)
        if not isinstance(template.formula, DistanceWeightFormula):
            raise TariffValidationError(
                f"{where}: zone formula is {template.formula.type}; "
                "unit rates apply to distance_weight zones only"
            )
        label = f"{start:%Y-%m}"
        version = replace(
            template,
            version=label,
            valid_from=start,
            valid_to=next_month(start),
            currency=currency,
            formula=replace(template.formula, unit_rate=rate),
            sample=False,
            source=f"{source} line {number}",
        )
        zones[zone_id] = _insert(zone, version)

    result = tariffs
    for zone in zones.values():
        probe_zone(zone, source)  # the versions' source names the CSV line
        result = result.with_zone(zone, source=source)
    return result


def _template(zone: ZoneTariff, start: date) -> TariffVersion:
    """The version whose parameters a new monthly version of ``zone`` inherits."""
    earlier = [v for v in zone.versions if v.valid_from <= start]
    for version in reversed(earlier):
        if version.covers(start):
            return version
    return earlier[-1] if earlier else zone.versions[0]


def _insert(zone: ZoneTariff, new: TariffVersion) -> ZoneTariff:
    """``zone`` with ``new`` added and the versions it overlaps cut around it."""
    start, end = new.valid_from, new.valid_to
    assert end is not None
    kept: list[TariffVersion] = []
    for version in zone.versions:
        overlaps = version.valid_from < end and (
            version.valid_to is None or version.valid_to > start
        )
        if not overlaps:
            kept.append(version)
            continue
        if version.valid_from < start:
            kept.append(replace(version, valid_to=start))
        if version.valid_to is None or version.valid_to > end:
            kept.append(replace(version, valid_from=end))
    if any(version.version == new.version for version in kept):
        new = replace(new, version=f"{new.version}-csv")
    return replace(zone, versions=(*kept, new))
