"""Foreign-exchange reference rates and currency conversion.

Rates are stored as **units of currency per 1 EUR** (the ECB convention: ``USD 1.0812`` means
1 EUR = 1.0812 USD); EUR itself is always 1. Conversions between two non-EUR currencies go
through EUR (cross rate = rate_to / rate_from).

Policies (:class:`FxPolicy`, chosen per charging zone by the tariff's ``fx_policy``):

- ``flight_date``: the rate of the day; when there is none (the ECB publishes no rates on
  weekends and TARGET holidays) the most recent earlier rate **within 7 days** is used
  (``max_fallback_days``); older than that is a :class:`MissingFxRate`.
- ``previous_month_average``: the arithmetic mean of the daily rates published in the
  calendar month before the date (e.g. any day of March 2026 -> mean of the February 2026
  rates); the reported rate date is the first day of that month.

Derived rates (monthly means, inverses, cross rates) are rounded half-up to
:data:`RATE_PLACES` decimal places - the precision of the ``fee_lines.fx_rate`` column - and
a converted amount is ``amount x reported rate``, so a stored line can be re-computed
exactly. A missing rate is always an error, never a silent 1.0.

File formats:

- ECB reference rates (``eurofxref-hist.csv`` or the ``.zip`` that contains it): header
  ``Date,USD,JPY,...`` (possibly with a trailing empty column), one row per business day,
  ``N/A`` or empty for a missing value;
- plain CSV: ``date,currency,rate_per_eur`` (``#`` lines are comments).
"""

from __future__ import annotations

import bisect
import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, localcontext
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, Final

import pandas as pd

from flight_fees.lib.core.money import (
    CALC_CONTEXT,
    CategorizedError,
    InvalidAmount,
    InvalidCurrency,
    Rounding,
    normalize_currency,
    quantize,
    round_money,
    to_decimal,
)
from flight_fees.lib.core.plausibility import (
    MAX_RATE_PER_EUR,
    MAX_STORED_AMOUNT,
    MAX_STORED_FX_RATE,
    MIN_RATE_PER_EUR,
)
from flight_fees.lib.core.timeutil import next_month, to_utc_date

__all__ = [
    "BASE_CURRENCY",
    "DEFAULT_MAX_FALLBACK_DAYS",
    "RATE_PLACES",
    "FxDataError",
    "FxPolicy",
    "FxRates",
    "MissingFxRate",
    "load_ecb_csv",
    "load_fx_csv",
    "load_fx_rates",
]

BASE_CURRENCY: Final[str] = "EUR"
#: Decimal places of derived rates (monthly means, inverse and cross rates).
RATE_PLACES: Final[int] = 10
#: How far back ``flight_date`` looks for the last published rate.
DEFAULT_MAX_FALLBACK_DAYS: Final[int] = 7

_ONE: Final = Decimal(1)


class MissingFxRate(CategorizedError, LookupError):
    """No usable rate for a currency, date and policy."""

    category: ClassVar[str] = "missing_fx_rate"


class FxDataError(CategorizedError, ValueError):
    """An unreadable or inconsistent FX rates file or record."""

    category: ClassVar[str] = "invalid_fx_data"


class FxPolicy(StrEnum):
    """Which rate a conversion uses (see the module doc)."""

    FLIGHT_DATE = "flight_date"
    PREVIOUS_MONTH_AVERAGE = "previous_month_average"


def _policy(value: FxPolicy | str) -> FxPolicy:
    try:
        return FxPolicy(value)
    except ValueError:
        valid = ", ".join(p.value for p in FxPolicy)
        raise ValueError(f"unknown FX policy {value!r} (expected one of: {valid})") from None


def _previous_month(day: date) -> tuple[date, date]:
    """First day of the month before ``day`` and first day of ``day``'s month."""
    this_month = day.replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    return last_month, this_month


@dataclass(frozen=True, slots=True)
class _Series:
    """Daily rates of one currency, sorted by date."""

    dates: tuple[date, ...]
    rates: tuple[Decimal, ...]


class FxRates:
    """A table of daily rates per EUR, with lookups by policy and conversions.

    Build it with :meth:`from_records`, :func:`load_fx_rates` (either file format),
    :func:`load_ecb_csv` or :func:`load_fx_csv`. Instances are immutable.
    """

    def __init__(
        self,
        rates: Mapping[str, Mapping[date, Decimal]],
        *,
        max_fallback_days: int = DEFAULT_MAX_FALLBACK_DAYS,
        sources: tuple[str, ...] = (),
    ) -> None:
        if max_fallback_days < 0:
            raise ValueError("max_fallback_days must not be negative")
        series: dict[str, _Series] = {}
        for currency, by_day in rates.items():
            code = normalize_currency(currency)
            for day, rate in by_day.items():
                _check_rate(rate, f"{code} rate on {day}", code)
                if code == BASE_CURRENCY and rate != _ONE:
                    raise FxDataError(f"EUR rate on {day} must be 1, got {rate}")
            if code == BASE_CURRENCY:
                continue
            ordered = sorted(by_day.items())
            series[code] = _Series(
                tuple(day for day, _ in ordered), tuple(rate for _, rate in ordered)
            )
        self._series: Mapping[str, _Series] = MappingProxyType(series)
        self._max_fallback_days = max_fallback_days
        self._sources = sources
        self._averages: dict[tuple[str, date], Decimal] = {}

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def from_records(
        cls,
        records: Iterable[tuple[object, object, object]],
        *,
        max_fallback_days: int = DEFAULT_MAX_FALLBACK_DAYS,
        source: str = "<records>",
    ) -> FxRates:
        """From ``(date, currency, rate_per_eur)`` triples; duplicates must agree."""
        table: dict[str, dict[date, Decimal]] = {}
        for day_value, currency_value, rate_value in records:
            try:
                day = to_utc_date(day_value)
                currency = normalize_currency(currency_value)
                rate = to_decimal(rate_value, what=f"{currency} rate on {day}")
            except (ValueError, InvalidAmount, InvalidCurrency) as exc:
                raise FxDataError(f"{source}: {exc}") from None
            _put(table, day, currency, rate, source)
        return cls(table, max_fallback_days=max_fallback_days, sources=(source,))

    def merge(self, other: FxRates) -> FxRates:
        """Rates of both tables; a (date, currency) present in both must agree."""
        table: dict[str, dict[date, Decimal]] = {}
        for rates in (self, other):
            for code, series in rates._series.items():
                for day, rate in zip(series.dates, series.rates, strict=True):
                    _put(table, day, code, rate, "merge")
        return FxRates(
            table,
            max_fallback_days=self._max_fallback_days,
            sources=(*self._sources, *other._sources),
        )

    # --- inspection ------------------------------------------------------------------------

    @property
    def currencies(self) -> tuple[str, ...]:
        """Currencies with rates (EUR always included)."""
        return tuple(sorted({BASE_CURRENCY, *self._series}))

    @property
    def sources(self) -> tuple[str, ...]:
        return self._sources

    @property
    def max_fallback_days(self) -> int:
        return self._max_fallback_days

    def __len__(self) -> int:
        return sum(len(series.dates) for series in self._series.values())

    def __iter__(self) -> Iterator[tuple[date, str, Decimal]]:
        for code in sorted(self._series):
            series = self._series[code]
            for day, rate in zip(series.dates, series.rates, strict=True):
                yield day, code, rate

    def to_frame(self) -> pd.DataFrame:
        """Columns ``date`` (date objects), ``currency``, ``rate_per_eur`` (Decimal)."""
        return pd.DataFrame(list(self), columns=["date", "currency", "rate_per_eur"])

    # --- lookups ---------------------------------------------------------------------------

    def rate_per_eur(
        self, currency: str, on_date: date | str, policy: FxPolicy | str = FxPolicy.FLIGHT_DATE
    ) -> tuple[Decimal, date]:
        """Units of ``currency`` per EUR under ``policy``, and the rate's date.

        :class:`MissingFxRate` when there is no usable rate.
        """
        code = normalize_currency(currency)
        day = to_utc_date(on_date)
        chosen = _policy(policy)
        if chosen is FxPolicy.PREVIOUS_MONTH_AVERAGE:
            month, _ = _previous_month(day)
            if code == BASE_CURRENCY:
                return _ONE, month
            return self._monthly_average(code, month), month
        if code == BASE_CURRENCY:
            return _ONE, day
        series = self._series_of(code, day, chosen)
        index = bisect.bisect_right(series.dates, day) - 1
        if index >= 0 and (day - series.dates[index]).days <= self._max_fallback_days:
            return series.rates[index], series.dates[index]
        raise MissingFxRate(
            f"no {code} rate on {day.isoformat()} nor in the {self._max_fallback_days} days "
            f"before (policy {chosen.value})"
        )

    def rate(
        self,
        from_currency: str,
        to_currency: str,
        on_date: date | str,
        policy: FxPolicy | str = FxPolicy.FLIGHT_DATE,
    ) -> tuple[Decimal, date]:
        """Units of ``to_currency`` per unit of ``from_currency``, and the rate date.

        Same currency: ``(1, on_date)`` without lookup. Through EUR otherwise; when both
        legs are looked up, the rate date is the earlier of the two.
        """
        source = normalize_currency(from_currency)
        target = normalize_currency(to_currency)
        day = to_utc_date(on_date)
        if source == target:
            return _ONE, day
        from_rate, from_day = self.rate_per_eur(source, day, policy)
        to_rate, to_day = self.rate_per_eur(target, day, policy)
        if source == BASE_CURRENCY:
            return to_rate, to_day
        with localcontext(CALC_CONTEXT):
            cross = quantize(to_rate / from_rate, RATE_PLACES, Rounding.HALF_UP)
        return cross, min(from_day, to_day)

    def convert(
        self,
        amount: Decimal,
        from_currency: str,
        to_currency: str,
        on_date: date | str,
        policy: FxPolicy | str = FxPolicy.FLIGHT_DATE,
        *,
        round_result: bool = True,
        rounding: Rounding | str = Rounding.HALF_UP,
    ) -> tuple[Decimal, Decimal, date]:
        """``(converted amount, rate, rate date)``: ``amount x rate``, rounded to the minor
        unit of ``to_currency`` (unless ``round_result`` is False)."""
        rate, rate_day = self.rate(from_currency, to_currency, on_date, policy)
        with localcontext(CALC_CONTEXT):
            converted = amount * rate
        if round_result:
            converted = round_money(converted, to_currency, rounding)
        if rate > MAX_STORED_FX_RATE or abs(converted) >= MAX_STORED_AMOUNT:
            raise FxDataError(
                f"{amount} {from_currency} in {to_currency} on {rate_day} at rate {rate} gives "
                f"{converted}: beyond what a fee line stores"
            )
        return converted, rate, rate_day

    # --- internals ---------------------------------------------------------------------------

    def _series_of(self, code: str, day: date, policy: FxPolicy) -> _Series:
        series = self._series.get(code)
        if series is None:
            raise MissingFxRate(
                f"no {code} rates at all (needed on {day.isoformat()}, policy {policy.value})"
            )
        return series

    def _monthly_average(self, code: str, month: date) -> Decimal:
        key = (code, month)
        cached = self._averages.get(key)
        if cached is not None:
            return cached
        series = self._series_of(code, month, FxPolicy.PREVIOUS_MONTH_AVERAGE)
        month_end = next_month(month)
        low = bisect.bisect_left(series.dates, month)
        high = bisect.bisect_left(series.dates, month_end)
        values = series.rates[low:high]
        if not values:
            raise MissingFxRate(
                f"no {code} rates in {month:%Y-%m} for the previous-month average "
                f"(policy {FxPolicy.PREVIOUS_MONTH_AVERAGE.value})"
            )
        with localcontext(CALC_CONTEXT):
            mean = sum(values, Decimal(0)) / len(values)
        average = quantize(mean, RATE_PLACES, Rounding.HALF_UP)
        self._averages[key] = average
        return average


def _check_rate(rate: Decimal, where: str, currency: str, field: str = "rate") -> None:
    """:class:`FxDataError` (naming ``where`` and ``field``) unless ``rate`` is a plausible
    rate of ``currency`` per EUR."""
    if rate <= 0:
        raise FxDataError(f"{where}: {field} must be positive, got {rate}")
    if not MIN_RATE_PER_EUR <= rate <= MAX_RATE_PER_EUR:
        raise FxDataError(
            f"{where}: {field} {rate} {currency} per EUR is implausible (expected "
            f"{MIN_RATE_PER_EUR} to {MAX_RATE_PER_EUR:,})"
        )


def _put(
    table: dict[str, dict[date, Decimal]], day: date, code: str, rate: Decimal, where: str
) -> None:
    existing = table.setdefault(code, {}).get(day)
    if existing is not None and existing != rate:
        raise FxDataError(
            f"{where}: conflicting {code} rates on {day.isoformat()}: {existing} and {rate}"
        )
    table[code][day] = rate


# --- file loaders ------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
                if not members:
                    raise FxDataError(f"{path}: no .csv file in the archive")
                return archive.read(members[0]).decode("utf-8-sig")
        return path.read_text(encoding="utf-8-sig")
    except (OSError, zipfile.BadZipFile) as exc:
        raise FxDataError(f"{path}: cannot read FX rates: {exc}") from exc


def _data_lines(text: str) -> list[tuple[int, str]]:
    return [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _parse_ecb(lines: list[tuple[int, str]], source: str) -> list[tuple[date, str, Decimal]]:
    rows = list(csv.reader(io.StringIO("\n".join(line for _, line in lines))))
    header = [cell.strip() for cell in rows[0]]
    if not header or header[0].lower() != "date":
        raise FxDataError(f"{source}: line {lines[0][0]}: expected an ECB header 'Date,USD,...'")
    columns: list[tuple[int, str]] = []
    for position, name in enumerate(header[1:], start=1):
        if not name:
            continue  # the ECB file ends every line with a comma
        try:
            columns.append((position, normalize_currency(name)))
        except InvalidCurrency:
            raise FxDataError(
                f"{source}: line {lines[0][0]}: column {name!r} is not a currency code"
            ) from None
    records: list[tuple[date, str, Decimal]] = []
    for (number, _), cells in zip(lines[1:], rows[1:], strict=True):
        try:
            day = date.fromisoformat(cells[0].strip())
        except (ValueError, IndexError):
            raise FxDataError(f"{source}: line {number}: bad date {cells[:1]!r}") from None
        for position, code in columns:
            value = cells[position].strip() if position < len(cells) else ""
            if value in ("", "N/A", "NA", "-"):
                continue
            try:
                rate = to_decimal(value)
            except InvalidAmount:
                raise FxDataError(f"{source}: line {number}: {code}: bad rate {value!r}") from None
            _check_rate(rate, f"{source}: line {number}: {code}", code)
            records.append((day, code, rate))
    return records


def _parse_plain(lines: list[tuple[int, str]], source: str) -> list[tuple[date, str, Decimal]]:
    rows = list(csv.reader(io.StringIO("\n".join(line for _, line in lines))))
    header = [cell.strip().lower() for cell in rows[0]]
    required = ("date", "currency", "rate_per_eur")
    missing = [name for name in required if name not in header]
    if missing:
        raise FxDataError(f"{source}: line {lines[0][0]}: missing column(s) {', '.join(missing)}")
    idx = [header.index(name) for name in required]
    records: list[tuple[date, str, Decimal]] = []
    for (number, _), cells in zip(lines[1:], rows[1:], strict=True):
        try:
            day_text, code_text, rate_text = (cells[i].strip() for i in idx)
        except IndexError:
            raise FxDataError(f"{source}: line {number}: missing values") from None
        try:
            day = date.fromisoformat(day_text)
            code = normalize_currency(code_text)
            rate = to_decimal(rate_text, what="rate_per_eur")
        except (ValueError, InvalidAmount, InvalidCurrency) as exc:
            raise FxDataError(f"{source}: line {number}: {exc}") from None
        _check_rate(rate, f"{source}: line {number}", code, "rate_per_eur")
        records.append((day, code, rate))
    return records


def _load(path: str | Path, fmt: str | None, max_fallback_days: int) -> FxRates:
    file = Path(path)
    source = str(path)
    lines = _data_lines(_read_text(file))
    if not lines:
        raise FxDataError(f"{source}: no FX rates (empty file)")
    if fmt is None:
        first = [cell.strip().lower() for cell in next(csv.reader([lines[0][1]]))]
        fmt = "plain" if "rate_per_eur" in first else "ecb"
    records = _parse_plain(lines, source) if fmt == "plain" else _parse_ecb(lines, source)
    return FxRates.from_records(records, max_fallback_days=max_fallback_days, source=source)


def load_ecb_csv(
    path: str | Path, *, max_fallback_days: int = DEFAULT_MAX_FALLBACK_DAYS
) -> FxRates:
    """Rates from the ECB reference-rate history (``eurofxref-hist.csv`` or its ``.zip``)."""
    return _load(path, "ecb", max_fallback_days)


def load_fx_csv(path: str | Path, *, max_fallback_days: int = DEFAULT_MAX_FALLBACK_DAYS) -> FxRates:
    """Rates from a plain ``date,currency,rate_per_eur`` CSV."""
    return _load(path, "plain", max_fallback_days)


def load_fx_rates(
    path: str | Path, *, max_fallback_days: int = DEFAULT_MAX_FALLBACK_DAYS
) -> FxRates:
    """Rates from either format, told apart by the header (``rate_per_eur`` = plain)."""
    return _load(path, None, max_fallback_days)
