"""``flight-fees rates import``: monthly unit rates and FX rates into the reference files of
the home directory, row by row checked against the plausibility limits.

- unit rates: ``zone,month,rate,currency`` (as :mod:`flight_fees.lib.charging.tariffs.unit_rates`),
  rate above 0 and at most :data:`~flight_fees.lib.charging.tariffs.loader.MAX_TARIFF_VALUE`, a zone
  of the tariffs; merged into ``<home>/reference/unit_rates.csv`` (a row replaces the one of
  the same zone and month).
- FX rates: ``date,currency,rate_per_eur``, rate within
  :data:`~flight_fees.lib.core.plausibility.MIN_RATE_PER_EUR` ..
  :data:`~flight_fees.lib.core.plausibility.MAX_RATE_PER_EUR`; merged into
  ``<home>/reference/fx_rates.csv`` (a row replaces the one of the same day and currency).

Every bad value is reported with its line and field and nothing is written, unless
``skip_invalid``. The merged file is re-read by the pipeline's own loader before it replaces
the old one (atomically), and the import is recorded in the audit log.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sqlalchemy import Engine

from flight_fees.lib.core.money import (
    InvalidAmount,
    InvalidCurrency,
    normalize_currency,
    to_decimal,
)
from flight_fees.lib.core.plausibility import MAX_RATE_PER_EUR, MIN_RATE_PER_EUR
from flight_fees.lib.db.engine import transaction
from flight_fees.lib.ops.registry import (
    ImportRejected,
    RegistryError,
    RowError,
    audit,
    read_import_csv,
)

RATE_KINDS: Final = ("unit", "fx")
HEADERS: Final = {
    "unit": ("zone", "month", "rate", "currency"),
    "fx": ("date", "currency", "rate_per_eur"),
}
FILE_NAMES: Final = {"unit": "unit_rates.csv", "fx": "fx_rates.csv"}
_MONTH_RE: Final = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass
class RatesImport:
    path: Path
    added: int = 0
    replaced: int = 0
    errors: list[RowError] = field(default_factory=list)


def _currency(values: dict[str, str], line: int, errors: list[RowError]) -> str:
    """The row's currency code, or "" with the error appended."""
    try:
        return normalize_currency(values["currency"])
    except InvalidCurrency:
        errors.append(RowError(line, "currency", f"{values['currency']!r} is not a currency code"))
        return ""


def _check_unit(
    values: dict[str, str], line: int, zones: set[str]
) -> tuple[tuple[str, str], list[str], list[RowError]]:
    from flight_fees.lib.charging.tariffs.loader import MAX_TARIFF_VALUE

    errors: list[RowError] = []
    zone = values["zone"].strip().upper()
    month = values["month"].strip()
    if zone not in zones:
        errors.append(RowError(line, "zone", f"{zone or '(empty)'!r} has no tariff"))
    if not _MONTH_RE.match(month):
        errors.append(RowError(line, "month", f"{month!r} must be YYYY-MM"))
    try:
        rate = to_decimal(values["rate"], what="rate")
        if not 0 < rate <= MAX_TARIFF_VALUE:
            errors.append(
                RowError(
                    line, "rate", f"{rate} is implausible (above 0, at most {MAX_TARIFF_VALUE:,})"
                )
            )
    except InvalidAmount:
        errors.append(RowError(line, "rate", f"{values['rate']!r} is not a number"))
    currency = _currency(values, line, errors)
    return (zone, month), [zone, month, values["rate"].strip(), currency], errors


def _check_fx(
    values: dict[str, str], line: int
) -> tuple[tuple[str, str], list[str], list[RowError]]:
    errors: list[RowError] = []
    day = values["date"].strip()
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        errors.append(RowError(line, "date", f"{day!r} is not a day (YYYY-MM-DD)"))
    currency = _currency(values, line, errors)
    try:
        rate = to_decimal(values["rate_per_eur"], what="rate_per_eur")
        if not MIN_RATE_PER_EUR <= rate <= MAX_RATE_PER_EUR:
            errors.append(
                RowError(line, "rate_per_eur", f"{rate} {currency} per EUR is implausible "
                         f"(expected {MIN_RATE_PER_EUR} to {MAX_RATE_PER_EUR:,})")
            )  # fmt: skip
    except InvalidAmount:
        errors.append(RowError(line, "rate_per_eur", f"{values['rate_per_eur']!r} is not a number"))
    return (day, currency), [day, currency, values["rate_per_eur"].strip()], errors


def import_rates(
    engine: Engine,
    path: str | Path,
    kind: str,
    reference_dir: Path,
    *,
    actor: str,
    skip_invalid: bool = False,
) -> RatesImport:
    """Check ``path`` (``kind`` ``unit`` or ``fx``) and merge it into the reference file of
    ``reference_dir`` (see the module doc)."""
    if kind not in RATE_KINDS:
        raise RegistryError(f"kind {kind!r} is not one of {', '.join(RATE_KINDS)}")
    header = HEADERS[kind]
    rows = read_import_csv(path, header)
    zones: set[str] = set()
    if kind == "unit":
        from flight_fees.lib.charging.tariffs import load_tariffs

        zones = set(load_tariffs().zone_ids)
    incoming: dict[tuple[str, str], list[str]] = {}
    errors: list[RowError] = []
    for line, values in rows:
        if "__error__" in values:
            errors.append(RowError(line, "row", values["__error__"]))
            continue
        key, cells, bad = (
            _check_unit(values, line, zones) if kind == "unit" else _check_fx(values, line)
        )
        if not bad and key in incoming:
            bad = [RowError(line, header[0], f"repeats {key} of an earlier line")]
        errors += bad
        if not bad:
            incoming[key] = cells
    if errors and not skip_invalid:
        raise ImportRejected(str(path), errors)
    target = reference_dir / FILE_NAMES[kind]
    existing: dict[tuple[str, str], list[str]] = {}
    if target.exists():
        for _, values in read_import_csv(target, header):
            cells = [values[c] for c in header]
            existing[(cells[0], cells[1])] = cells
    result = RatesImport(path=target, errors=errors)
    result.replaced = sum(1 for k in incoming if k in existing)
    result.added = len(incoming) - result.replaced
    merged = {**existing, **incoming}
    reference_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=reference_dir, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(merged[k] for k in sorted(merged))
        _load_check(kind, Path(tmp))
        with transaction(engine) as session:
            audit(
                session, actor, "import", f"{kind}_rates", str(target),
                {"source": str(path), "added": result.added, "replaced": result.replaced},
            )  # fmt: skip
            os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return result


def _load_check(kind: str, path: Path) -> None:
    """The pipeline's loader reads the merged file, or :class:`RegistryError` says why not."""
    if kind == "fx":
        from flight_fees.lib.charging.fx import FxDataError, load_fx_csv

        try:
            load_fx_csv(path)
        except FxDataError as exc:
            raise RegistryError(f"the merged FX rates do not load: {exc}") from None
        return
    from flight_fees.lib.charging.tariffs import load_tariffs, load_unit_rates_csv
    from flight_fees.lib.charging.tariffs.errors import TariffValidationError

    try:
        load_unit_rates_csv(path, load_tariffs())
    except TariffValidationError as exc:
        raise RegistryError(f"the merged unit rates do not load: {exc}") from None
