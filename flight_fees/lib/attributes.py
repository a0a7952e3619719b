"""Flight attributes from several sources, with priority resolution and conflict detection.

Fields (:data:`FIELDS`): ``registration, aircraft_type, icao24, mtow_kg, operator`` (customer
code), ``callsign, origin, destination, flags``.

Sources implement :class:`AttributeSource`: a ``name`` and ``lookup(flights) -> DataFrame``
(one row per ``flight_id``, the columns of the fields the source knows, missing where unknown).
Adapters shipped here:

- :class:`ManualResolutionSource` -- values chosen by a human in :func:`resolve_conflict`
  (authoritative: always wins, never in conflict);
- :class:`AircraftTableSource` -- table ``aircraft`` (+ ``customers.code``) by registration,
  falling back to ``icao24``;
- :class:`CsvAttributeSource` -- a CSV keyed by ``flight_id`` or ``registration``;
- :class:`TrackRowsSource` -- the attribute columns of the track rows (most frequent value);
- :class:`FrameAttributeSource` -- any DataFrame keyed by ``flight_id``.

:func:`resolve_attributes` takes the sources in priority order (first = highest). Values are
normalised before comparison (:func:`normalise_value`). A disagreement on an ordinary field is
settled by priority; on a *critical* field (default ``mtow_kg`` and ``operator``) it is a
:class:`Conflict`: the flight must not be billed until a human resolves it. Conflicts are
persisted in table ``flight_conflicts`` (:func:`record_conflicts`); :func:`blocked_flight_ids`
lists flights with open conflicts; :func:`resolve_conflict` stores the chosen value, which
:class:`ManualResolutionSource` then serves.

Sources keyed by registration/icao24 need those identities, which other sources provide, so
:func:`resolve_attributes` iterates: every source is asked with the values resolved in the
previous round, until the resolved values no longer change (two or three rounds). Reading
adapters sit behind a :class:`TTLCache` so repeated rounds and ticks do not re-read the
database or the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flight_fees.lib.db.engine import transaction
from flight_fees.lib.db.models import Aircraft, AircraftMtowDeclaration, Customer, FlightConflict
from flight_fees.lib.plausibility import MAX_MTOW_KG
from flight_fees.lib.queue import QueueError, parse_flight_id
from flight_fees.lib.registry import mtow_in_force
from flight_fees.lib.tracks.base import ATTRIBUTE_COLUMNS
from flight_fees.lib.values import is_null

__all__ = [
    "DEFAULT_CRITICAL_FIELDS",
    "FIELDS",
    "MTOW_TOLERANCE_KG",
    "AircraftTableSource",
    "AttributeSource",
    "AttributeSourceError",
    "Conflict",
    "ConflictNotFound",
    "CsvAttributeSource",
    "FrameAttributeSource",
    "ManualResolutionSource",
    "ResolvedAttributes",
    "TTLCache",
    "TrackRowsSource",
    "blocked_flight_ids",
    "default_attribute_sources",
    "normalise_value",
    "open_conflicts",
    "record_conflicts",
    "resolve_attributes",
    "resolve_conflict",
]

#: every attribute field, in output order
FIELDS: tuple[str, ...] = (
    "registration",
    "aircraft_type",
    "icao24",
    "mtow_kg",
    "operator",
    "callsign",
    "origin",
    "destination",
    "flags",
)
DEFAULT_CRITICAL_FIELDS: tuple[str, ...] = ("mtow_kg", "operator")
#: two MTOW values closer than this are the same value
MTOW_TOLERANCE_KG = 0.5
#: ids / keys per ``IN (...)`` statement
_CHUNK = 1_000
_CONFLICT_STATUS_OPEN = "open"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class AttributeSourceError(ValueError):
    """A source is misconfigured or returned unusable data (bad CSV header, bad value...)."""

    category: ClassVar[str] = "attribute_source_error"


class ConflictNotFound(LookupError):
    """No open conflict matches the id or (flight_id, field) given."""


# -- normalisation -------------------------------------------------------------------------

_BLANKS = re.compile(r"\s+")
_FLAG_SPLIT = re.compile(r"[,;\s]+")
_ICAO24 = re.compile(r"^[0-9a-f]{6}$")


def normalise_value(field_name: str, value: Any) -> Any:
    """The canonical form of one value of ``field_name`` (``None`` when unknown/blank).

    registration, callsign: upper case, no blanks; aircraft_type, origin, destination: upper
    case, stripped; icao24: lower case, stripped; operator: stripped (compared case-blind);
    flags: lower-case, de-duplicated, sorted, comma-joined; mtow_kg: a float > 0.

    Raises :class:`ValueError` for an MTOW that is not a positive finite number.
    """
    if is_null(value):
        return None
    if field_name == "mtow_kg":
        if isinstance(value, bool):
            raise ValueError(f"mtow_kg must be a number, got {value!r}")
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"mtow_kg must be a number, got {value!r}") from None
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"mtow_kg must be a positive finite number, got {value!r}")
        if number > MAX_MTOW_KG:
            raise ValueError(f"mtow_kg {value!r} is implausible (at most {MAX_MTOW_KG:,} kg)")
        return number
    text = str(value).strip()
    if field_name in ("registration", "callsign"):
        text = _BLANKS.sub("", text).upper()
    elif field_name in ("aircraft_type", "origin", "destination"):
        text = text.upper()
    elif field_name == "icao24":
        text = text.lower()
    elif field_name == "flags":
        text = ",".join(sorted({f.lower() for f in _FLAG_SPLIT.split(text) if f}))
    elif field_name != "operator":
        raise ValueError(f"unknown attribute field {field_name!r}")
    return text or None


def _compare_key(field_name: str, value: Any) -> Any:
    """Values with equal keys agree (operator codes compare case-blind)."""
    return value.casefold() if field_name == "operator" and isinstance(value, str) else value


def _none_for_missing(series: pd.Series) -> pd.Series:
    out = series.astype(object)
    return out.where(out.notna(), None)


def _normalise_series(field_name: str, series: pd.Series) -> pd.Series:
    """Vectorised :func:`normalise_value` (each distinct value normalised once)."""
    values = series.astype(object)
    uniques = pd.unique(values[values.notna()])
    normalised = values.map({u: normalise_value(field_name, u) for u in uniques})
    if field_name == "mtow_kg":
        return normalised.astype("float64")
    return _none_for_missing(normalised)


def _none_series(index: pd.Index) -> pd.Series:
    """An object Series of ``None`` (``pd.Series(None, index=...)`` would hold NaN)."""
    return pd.Series([None] * len(index), index=index, dtype=object)


def _empty_field_column(field_name: str, index: pd.Index) -> pd.Series:
    if field_name == "mtow_kg":
        return pd.Series(np.nan, index=index, dtype="float64")
    return _none_series(index)


def _unique_flight_ids(flights: pd.DataFrame | Sequence[int]) -> pd.Index:
    if isinstance(flights, pd.DataFrame):
        if "flight_id" not in flights.columns:
            raise ValueError("flights frame needs a flight_id column")
        raw = flights["flight_id"]
    else:
        raw = pd.Series(list(flights))
    if raw.isna().any():
        raise ValueError("flight_id must not be missing")
    ids = pd.to_numeric(raw, errors="raise").astype("int64")
    return pd.Index(pd.unique(ids), dtype="int64", name="flight_id")


# -- TTL cache -----------------------------------------------------------------------------

_MISSING: Any = object()


class TTLCache(Generic[K, V]):
    """A small thread-safe mapping whose entries expire ``ttl_s`` seconds after being set.

    ``clock`` returns seconds (default :func:`time.monotonic`; inject a fake in tests). ``None``
    is a cacheable value (a negative lookup). Past ``max_entries`` the expired entries are
    dropped, then the oldest ones.
    """

    def __init__(
        self,
        ttl_s: float = 300.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 1_000_000,
    ) -> None:
        if ttl_s < 0:
            raise ValueError(f"ttl_s must be >= 0, got {ttl_s}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.ttl_s = float(ttl_s)
        self.clock = clock
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K, default: Any = None) -> V | Any:
        """The cached value of ``key`` or ``default`` (counts a hit or a miss)."""
        found, missing = self.get_many([key])
        return default if missing else found[key]

    def get_many(self, keys: Iterable[K]) -> tuple[dict[K, V], list[K]]:
        """``(found, missing)``: live cached values, and the keys to fetch (in order, unique)."""
        now = self.clock()
        found: dict[K, V] = {}
        missing: list[K] = []
        with self._lock:
            for key in dict.fromkeys(keys):
                entry = self._data.get(key, _MISSING)
                if entry is not _MISSING and entry[0] > now:
                    found[key] = entry[1]
                    self.hits += 1
                else:
                    if entry is not _MISSING:
                        del self._data[key]
                    missing.append(key)
                    self.misses += 1
        return found, missing

    def set(self, key: K, value: V) -> None:
        self.set_many({key: value})

    def set_many(self, items: Mapping[K, V]) -> None:
        now = self.clock()
        expires = now + self.ttl_s
        with self._lock:
            for key, value in items.items():
                self._data.pop(key, None)
                self._data[key] = (expires, value)
            if len(self._data) > self.max_entries:
                for key in [k for k, (exp, _) in self._data.items() if exp <= now]:
                    del self._data[key]
                while len(self._data) > self.max_entries:
                    self._data.popitem(last=False)

    def get_or_load(self, key: K, loader: Callable[[], V]) -> V:
        """The cached value, or ``loader()`` (then cached)."""
        found, missing = self.get_many([key])
        if not missing:
            return found[key]
        value = loader()
        self.set(key, value)
        return value

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


# -- sources -------------------------------------------------------------------------------


@runtime_checkable
class AttributeSource(Protocol):
    """A source of flight attributes.

    ``lookup`` receives a frame with ``flight_id`` and the fields resolved so far (missing
    where unknown; see :func:`resolve_attributes`) and returns one row per flight it knows,
    with ``flight_id`` and any of :data:`FIELDS` (other columns are ignored). A source may set
    ``authoritative = True``: its values then win over every other source and are never in
    conflict.
    """

    name: str

    def lookup(self, flights: pd.DataFrame) -> pd.DataFrame: ...


def _frame_for(ids: pd.Index, columns: Mapping[str, pd.Series]) -> pd.DataFrame:
    out = pd.DataFrame({"flight_id": np.asarray(ids, dtype="int64")})
    for name, values in columns.items():
        out[name] = values.to_numpy() if isinstance(values, pd.Series) else values
    return out


def _identity(flights: pd.DataFrame, field_name: str) -> pd.Series:
    """Normalised ``field_name`` of ``flights`` (all missing when the column is absent)."""
    if field_name not in flights.columns:
        return _none_series(flights.index)
    return _normalise_series(field_name, flights[field_name])


class FrameAttributeSource:
    """Attributes from a DataFrame keyed by ``flight_id`` (e.g. values a caller already has)."""

    def __init__(self, name: str, frame: pd.DataFrame, *, authoritative: bool = False) -> None:
        if "flight_id" not in frame.columns:
            raise AttributeSourceError(f"attribute source {name!r}: frame has no flight_id")
        self.name = name
        self.authoritative = authoritative
        self._frame = frame

    def lookup(self, flights: pd.DataFrame) -> pd.DataFrame:
        ids = set(_unique_flight_ids(flights))
        return self._frame[self._frame["flight_id"].isin(ids)]


class TrackRowsSource:
    """The attribute columns of the track rows: per flight, the most frequent value.

    Values are normalised before counting; ties go to the value seen first (smallest ``ts``
    when the frame has one, else row order). The aggregate is computed once per instance.
    """

    authoritative = False

    def __init__(self, tracks: pd.DataFrame, *, name: str = "track_rows") -> None:
        if "flight_id" not in tracks.columns:
            raise AttributeSourceError(f"attribute source {name!r}: tracks have no flight_id")
        self.name = name
        self._tracks = tracks
        self._aggregate: pd.DataFrame | None = None

    def _compute(self) -> pd.DataFrame:
        tracks = self._tracks
        ids = _unique_flight_ids(tracks)
        result = pd.DataFrame(index=ids)
        order = (
            tracks["ts"]
            if "ts" in tracks.columns
            else pd.Series(np.arange(len(tracks)), index=tracks.index)
        )
        for col in ATTRIBUTE_COLUMNS:  # the attributes that may come with the track rows
            if col not in tracks.columns:
                continue
            sub = pd.DataFrame(
                {
                    "flight_id": tracks["flight_id"].astype("int64"),
                    "raw": tracks[col],
                    "order": order,
                }
            ).dropna(subset=["raw"])
            if sub.empty:
                continue
            # count the raw values first (few distinct per flight), then normalise those
            counts = (
                sub.groupby(["flight_id", "raw"], sort=False)
                .agg(n=("order", "size"), first=("order", "min"))
                .reset_index()
            )
            counts["value"] = _normalise_series(col, counts["raw"])
            counts = counts[counts["value"].notna()]
            if counts.empty:
                continue
            merged = (
                counts.groupby(["flight_id", "value"], sort=False)
                .agg(n=("n", "sum"), first=("first", "min"))
                .reset_index()
            )
            best = merged.sort_values(
                ["flight_id", "n", "first"], ascending=[True, False, True], kind="stable"
            ).drop_duplicates("flight_id", keep="first")
            result[col] = best.set_index("flight_id")["value"].reindex(ids)
        return result

    def lookup(self, flights: pd.DataFrame) -> pd.DataFrame:
        if self._aggregate is None:
            self._aggregate = self._compute()
        ids = _unique_flight_ids(flights)
        known = self._aggregate.reindex(ids)
        return known.rename_axis("flight_id").reset_index()


def _aircraft_record(row: Any) -> dict[str, Any]:
    return {
        "registration": row.registration,
        "icao24": row.icao24,
        "aircraft_type": row.icao_type,
        "mtow_kg": float(row.mtow_kg) if row.mtow_kg is not None else None,
        "operator": row.code,
        "flags": normalise_value("flags", row.flags),
        "declarations": (),
    }


def flight_dates_of(frame: pd.DataFrame | None) -> dict[int, dt.date]:
    """The UTC day of each flight of ``frame``: its ``flight_date`` column, else the day of
    its first ``ts`` (the day the flight departs); empty when neither is there."""
    if frame is None or frame.empty or "flight_id" not in frame.columns:
        return {}
    ids = frame["flight_id"].astype("int64")
    if "flight_date" in frame.columns:
        days = pd.Series(frame["flight_date"].to_numpy(), index=ids.to_numpy()).dropna()
        days = days[~days.index.duplicated()]
        return {int(k): pd.Timestamp(v).date() for k, v in days.items()}
    if "ts" in frame.columns:
        first = pd.to_datetime(frame["ts"], utc=True).groupby(ids.to_numpy()).min().dropna()
        return {int(k): v.date() for k, v in first.items()}
    return {}


class AircraftTableSource:
    """Table ``aircraft`` joined by registration (fallback: ``icao24``).

    Gives ``registration, icao24, aircraft_type`` (``icao_type``), ``mtow_kg``, ``operator``
    (``customers.code``) and ``flags``. An ``icao24`` shared by several aircraft rows matches
    none (no guessing). Look-ups, including misses, are cached for ``ttl_s`` seconds, so an
    aircraft added meanwhile is seen after at most that long (or after ``cache.clear()``).

    ``mtow_kg`` is the declaration in force on the flight's day (``flight_dates``, table
    ``aircraft_mtow_declarations``: the latest ``effective_from`` on or before the day; none
    when every declaration is later), else ``aircraft.mtow_kg`` (no history, or no day).
    """

    authoritative = False

    def __init__(
        self,
        engine: Engine,
        *,
        name: str = "aircraft_table",
        cache: TTLCache[tuple[str, str], dict[str, Any] | None] | None = None,
        ttl_s: float = 300.0,
        flight_dates: Mapping[int, dt.date] | None = None,
    ) -> None:
        self.engine = engine
        self.name = name
        self.flight_dates = dict(flight_dates or {})
        self.cache: TTLCache[tuple[str, str], dict[str, Any] | None] = (
            cache if cache is not None else TTLCache(ttl_s)
        )

    def _query(self, kind: str, keys: list[str]) -> dict[tuple[str, str], dict[str, Any] | None]:
        column = Aircraft.registration if kind == "registration" else Aircraft.icao24
        loaded: dict[tuple[str, str], dict[str, Any] | None] = {(kind, k): None for k in keys}
        seen: dict[str, int] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), _CHUNK):
                rows = conn.execute(
                    select(
                        Aircraft.registration,
                        Aircraft.icao24,
                        Aircraft.icao_type,
                        Aircraft.mtow_kg,
                        Aircraft.flags,
                        Customer.code,
                    )
                    .outerjoin(Customer, Aircraft.customer_id == Customer.id)
                    .where(column.in_(keys[start : start + _CHUNK]))
                ).all()
                for row in rows:
                    key = row.registration if kind == "registration" else row.icao24
                    seen[key] = seen.get(key, 0) + 1
                    loaded[(kind, key)] = _aircraft_record(row) if seen[key] == 1 else None
            by_registration = {r["registration"]: r for r in loaded.values() if r is not None}
            regs = list(by_registration)
            history: dict[str, list[tuple[dt.date, float]]] = {}
            for start in range(0, len(regs), _CHUNK):
                for reg, day, mtow in conn.execute(
                    select(
                        Aircraft.registration,
                        AircraftMtowDeclaration.effective_from,
                        AircraftMtowDeclaration.mtow_kg,
                    )
                    .join(Aircraft, Aircraft.id == AircraftMtowDeclaration.aircraft_id)
                    .where(Aircraft.registration.in_(regs[start : start + _CHUNK]))
                ):
                    history.setdefault(reg, []).append((day, float(mtow)))
            for reg, declared in history.items():
                by_registration[reg]["declarations"] = tuple(sorted(declared))
        return loaded

    def _records(self, kind: str, keys: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        found, missing = self.cache.get_many((kind, k) for k in keys)
        if missing:
            loaded = self._query(kind, [k for _, k in missing])
            self.cache.set_many(loaded)
            found.update(loaded)
        return {k: v for (_, k), v in found.items()}

    def lookup(self, flights: pd.DataFrame) -> pd.DataFrame:
        ids = flights["flight_id"].astype("int64").to_numpy()
        regs = _identity(flights, "registration").to_numpy()
        icaos = _identity(flights, "icao24").to_numpy()
        by_reg = self._records("registration", {r for r in regs if r is not None})
        need_icao = {
            i for r, i in zip(regs, icaos, strict=True) if i is not None and by_reg.get(r) is None
        }
        by_icao = self._records("icao24", need_icao) if need_icao else {}
        rows: list[dict[str, Any]] = []
        for fid, reg, icao in zip(ids, regs, icaos, strict=True):
            record = by_reg.get(reg) if reg is not None else None
            if record is None and icao is not None:
                record = by_icao.get(icao)
            if record is not None:
                values = {k: v for k, v in record.items() if k != "declarations"}
                values["mtow_kg"] = mtow_in_force(
                    record["declarations"], self.flight_dates.get(int(fid)), record["mtow_kg"]
                )
                rows.append({"flight_id": int(fid), **values})
        return pd.DataFrame(rows, columns=["flight_id", *_AIRCRAFT_FIELDS])


_AIRCRAFT_FIELDS = ("registration", "icao24", "aircraft_type", "mtow_kg", "operator", "flags")


@dataclass(frozen=True)
class _CsvTable:
    """A parsed attribute CSV: its key column and the table indexed by it."""

    key: str
    table: pd.DataFrame


class CsvAttributeSource:
    """Attributes from a CSV file keyed by ``flight_id`` or ``registration``.

    The header (case-blind) holds the key column and any of :data:`FIELDS`; with
    ``key="auto"`` the key is ``flight_id`` when that column exists, else ``registration``.
    Every value is validated (flight ids, positive MTOW, 6-hex-digit icao24); a duplicate key
    is an error. Errors are :class:`AttributeSourceError` naming the file, the line and the
    column. The parsed file is cached for ``ttl_s`` seconds (edits are picked up after that).
    """

    authoritative = False

    def __init__(
        self,
        path: str | Path,
        *,
        key: Literal["auto", "flight_id", "registration"] = "auto",
        name: str | None = None,
        cache: TTLCache[str, _CsvTable] | None = None,
        ttl_s: float = 300.0,
    ) -> None:
        if key not in ("auto", "flight_id", "registration"):
            raise ValueError(f"key must be 'auto', 'flight_id' or 'registration', got {key!r}")
        self.path = Path(path)
        self.key = key
        self.name = name or f"csv:{self.path.name}"[:60]
        self.cache: TTLCache[str, _CsvTable] = cache if cache is not None else TTLCache(ttl_s)

    def _error(self, message: str) -> AttributeSourceError:
        return AttributeSourceError(f"{self.path}: {message}")

    def _read(self) -> _CsvTable:
        """The validated table, indexed by the key (normalised), columns = the fields."""
        try:
            with self.path.open(newline="", encoding="utf-8-sig") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                body = list(reader)
        except OSError as exc:
            raise self._error(f"cannot read attribute CSV: {exc.strerror or exc}") from exc
        except (UnicodeDecodeError, csv.Error) as exc:
            raise self._error(f"not a UTF-8 CSV file: {exc}") from exc
        if header is None or not any(h.strip() for h in header):
            raise self._error("empty attribute CSV (no header line)")
        columns = [h.strip().lower() for h in header]
        allowed = ("flight_id", *FIELDS)
        for position, column in enumerate(columns, start=1):
            if not column:
                raise self._error(f"column {position} of the header is blank")
            if column not in allowed:
                raise self._error(
                    f"unknown column {header[position - 1].strip()!r} in the header; "
                    f"allowed: {', '.join(allowed)}"
                )
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise self._error(f"duplicate column(s) in the header: {', '.join(duplicates)}")
        key = self.key
        if key == "auto":
            key = "flight_id" if "flight_id" in columns else "registration"
        if key not in columns:
            raise self._error(f"missing key column {key!r} in the header")
        if not set(columns) & (set(FIELDS) - {key}):
            raise self._error(f"no attribute column besides the key column {key!r}")

        records: dict[Any, dict[str, Any]] = {}
        lines: dict[Any, int] = {}
        for line_no, raw in enumerate(body, start=2):
            if not any(cell.strip() for cell in raw):
                continue  # blank line
            if len(raw) != len(columns):
                raise self._error(
                    f"line {line_no}: {len(raw)} cells, the header has {len(columns)}"
                )
            record: dict[str, Any] = {}
            for column, cell in zip(columns, raw, strict=True):
                if column == "flight_id":
                    try:
                        record[column] = parse_flight_id(cell)
                    except QueueError as exc:
                        raise self._error(f"line {line_no}, column 'flight_id': {exc}") from None
                    continue
                try:
                    value = normalise_value(column, cell)
                except ValueError as exc:
                    raise self._error(f"line {line_no}, column {column!r}: {exc}") from None
                if column == "icao24" and value is not None and not _ICAO24.match(value):
                    raise self._error(
                        f"line {line_no}, column 'icao24': {cell!r} is not 6 hex digits"
                    )
                record[column] = value
            key_value = record[key]
            if key_value is None:
                raise self._error(f"line {line_no}: empty key column {key!r}")
            if key_value in records:
                raise self._error(
                    f"line {line_no}: duplicate {key} {key_value!r} (first on line "
                    f"{lines[key_value]})"
                )
            records[key_value] = record
            lines[key_value] = line_no
        fields = [c for c in columns if c in FIELDS]
        table = pd.DataFrame(
            list(records.values()), columns=[key, *[f for f in fields if f != key]], dtype=object
        )
        if key == "registration":
            table.index = pd.Index(table["registration"], dtype=object, name="registration")
        else:
            table = table.set_index("flight_id")
            table.index = table.index.astype("int64")
        return _CsvTable(key, table)

    def table(self) -> pd.DataFrame:
        """The validated CSV content (cached), indexed by its key column."""
        return self._cached().table

    def _cached(self) -> _CsvTable:
        return self.cache.get_or_load(str(self.path.resolve()), self._read)

    def lookup(self, flights: pd.DataFrame) -> pd.DataFrame:
        cached = self._cached()
        table = cached.table
        ids = flights["flight_id"].astype("int64").to_numpy()
        if cached.key == "flight_id":
            values = table.reindex(ids)
        else:
            regs = _identity(flights, "registration").to_numpy()
            values = table.reindex(pd.Index(regs, dtype=object))
        values = values.reset_index(drop=True)
        values.insert(0, "flight_id", ids)
        return values


class ManualResolutionSource:
    """The values chosen by a human for resolved conflicts (authoritative).

    For each flight and field, the latest resolution wins. Read at every look-up (not cached)
    so that a resolution takes effect at once.
    """

    authoritative = True

    def __init__(self, engine: Engine, *, name: str = "manual") -> None:
        self.engine = engine
        self.name = name

    def lookup(self, flights: pd.DataFrame) -> pd.DataFrame:
        ids = [int(i) for i in _unique_flight_ids(flights)]
        rows: list[tuple[int, str, str]] = []
        fc = FlightConflict
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                rows.extend(
                    conn.execute(
                        select(fc.flight_id, fc.field, fc.resolution)
                        .where(
                            fc.flight_id.in_(ids[start : start + _CHUNK]),
                            fc.status == "resolved",
                            fc.resolution.is_not(None),
                            fc.field.in_(FIELDS),
                        )
                        .order_by(fc.resolved_at, fc.id)
                    ).all()
                )
        latest: dict[int, dict[str, Any]] = {}
        for flight_id, field_name, resolution in rows:  # ordered: the last one wins
            latest.setdefault(flight_id, {})[field_name] = resolution
        return pd.DataFrame(
            [{"flight_id": fid, **values} for fid, values in latest.items()],
            columns=["flight_id", *FIELDS],
        )


def default_attribute_sources(
    engine: Engine,
    tracks: pd.DataFrame | None = None,
    *,
    csv_path: str | Path | None = None,
    ttl_s: float = 300.0,
) -> list[AttributeSource]:
    """The standard priority order: manual > aircraft table > CSV (if any) > track rows.
    The aircraft table gives the MTOW declared for each flight's day (:func:`flight_dates_of`
    ``tracks``)."""
    sources: list[AttributeSource] = [
        ManualResolutionSource(engine),
        AircraftTableSource(engine, ttl_s=ttl_s, flight_dates=flight_dates_of(tracks)),
    ]
    if csv_path is not None:
        sources.append(CsvAttributeSource(csv_path, ttl_s=ttl_s))
    if tracks is not None:
        sources.append(TrackRowsSource(tracks))
    return sources


# -- resolution ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Conflict:
    """Sources disagree on a critical field of a flight: ``{source name: value}``."""

    flight_id: int
    field: str
    candidates: dict[str, Any]


@dataclass(frozen=True)
class ResolvedAttributes:
    """The result of :func:`resolve_attributes`.

    ``attributes``: one row per flight (input order): ``flight_id``, each field of
    :data:`FIELDS`, ``<field>_source`` (the winning source's name, ``None`` when unknown),
    ``has_conflict`` (bool) and ``conflict_fields`` (comma-joined, ``None`` when none). A field
    in conflict is left missing, so that nothing can bill it by mistake.
    """

    attributes: pd.DataFrame
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def blocked_flight_ids(self) -> set[int]:
        """Flights with a conflict in this resolution (see also :func:`blocked_flight_ids`)."""
        return {c.flight_id for c in self.conflicts}


def _validated_lookup(source: AttributeSource, frame: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """The source's answer: indexed by ``ids``, every field present and normalised."""
    name = source.name
    answer = source.lookup(frame.copy())
    if not isinstance(answer, pd.DataFrame) or "flight_id" not in answer.columns:
        raise AttributeSourceError(
            f"attribute source {name!r} must return a DataFrame with a flight_id column"
        )
    answer = answer[answer["flight_id"].notna()]
    flight_ids = pd.to_numeric(answer["flight_id"], errors="coerce")
    if flight_ids.isna().any():
        raise AttributeSourceError(f"attribute source {name!r} returned non-numeric flight ids")
    answer = answer.set_index(pd.Index(flight_ids.astype("int64"), name="flight_id"))
    answer = answer[answer.index.isin(ids)]
    if answer.index.has_duplicates:
        dupes = sorted(set(answer.index[answer.index.duplicated()]))[:5]
        raise AttributeSourceError(
            f"attribute source {name!r} returned several rows for flight(s) {dupes}"
        )
    out = pd.DataFrame(index=ids)
    for field_name in FIELDS:
        if field_name not in answer.columns:
            out[field_name] = _empty_field_column(field_name, ids)
            continue
        try:
            values = _normalise_series(field_name, answer[field_name])
        except ValueError as exc:
            raise AttributeSourceError(
                f"attribute source {name!r}, field {field_name}: {exc}"
            ) from exc
        reindexed = values.reindex(ids)
        out[field_name] = reindexed if field_name == "mtow_kg" else _none_for_missing(reindexed)
    return out


def _pick(
    lookups: Mapping[str, pd.DataFrame], order: Sequence[str], ids: pd.Index
) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    """Per field, the first known value in priority order, and the name of its source."""
    values: dict[str, pd.Series] = {}
    sources: dict[str, pd.Series] = {}
    for field_name in FIELDS:
        value = _empty_field_column(field_name, ids)
        source = _none_series(ids)
        for name in order:
            candidate = lookups[name][field_name]
            take = value.isna() & candidate.notna()
            if take.any():
                value[take] = candidate[take]
                source[take] = name
        values[field_name] = value if field_name == "mtow_kg" else _none_for_missing(value)
        sources[field_name] = _none_for_missing(source)
    return values, sources


def _disagreement(
    field_name: str, lookups: Mapping[str, pd.DataFrame], order: Sequence[str], winner: pd.Series
) -> pd.Series:
    """Rows where some source's known value differs from the winner (beyond tolerance)."""
    mask = pd.Series(False, index=winner.index)
    if field_name == "mtow_kg":
        matrix = pd.concat([lookups[n][field_name] for n in order], axis=1)
        return (matrix.max(axis=1) - matrix.min(axis=1)) > MTOW_TOLERANCE_KG
    win_key = winner.map(lambda v: _compare_key(field_name, v), na_action="ignore")
    for name in order:
        col = lookups[name][field_name]
        known = col.notna()
        if not known.any():
            continue
        key = col.map(lambda v: _compare_key(field_name, v), na_action="ignore")
        mask |= known & (key != win_key)
    return mask


def _same_values(a: Mapping[str, pd.Series], b: Mapping[str, pd.Series]) -> bool:
    for field_name in FIELDS:
        left, right = a[field_name], b[field_name]
        both_missing = left.isna() & right.isna()
        equal = (left == right) | both_missing
        if not bool(equal.all()):
            return False
    return True


def resolve_attributes(
    flights: pd.DataFrame,
    sources: Sequence[AttributeSource],
    *,
    critical_fields: Sequence[str] = DEFAULT_CRITICAL_FIELDS,
    max_rounds: int = 4,
) -> ResolvedAttributes:
    """Resolve the attributes of ``flights`` (column ``flight_id``) from ``sources``.

    ``sources`` are in priority order (first wins); authoritative sources
    (``source.authoritative``, e.g. :class:`ManualResolutionSource`) come before all others
    whatever their position. Each field takes the first known normalised value. For a field in
    ``critical_fields``, known values that disagree (MTOW: by more than
    :data:`MTOW_TOLERANCE_KG`; operator: case-blind) give a :class:`Conflict` and leave the
    field missing, unless an authoritative source knows the field.

    Sources are asked in rounds, each with the values resolved by the previous one (the first
    round knows only ``flight_id``), until the resolved values are stable or ``max_rounds``
    is reached. Other columns of ``flights`` are not used: wrap values you have in a
    :class:`FrameAttributeSource`. Pure: writes nothing (see :func:`record_conflicts`).
    """
    unknown = [f for f in critical_fields if f not in FIELDS]
    if unknown:
        raise ValueError(f"unknown critical field(s): {', '.join(unknown)}")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"attribute source names must be unique: {names}")
    if max_rounds < 1:
        raise ValueError("max_rounds must be >= 1")
    ids = _unique_flight_ids(flights)
    ordered = sorted(sources, key=lambda s: not getattr(s, "authoritative", False))
    order = [s.name for s in ordered]
    authoritative = [s.name for s in ordered if getattr(s, "authoritative", False)]

    current = {f: _empty_field_column(f, ids) for f in FIELDS}
    lookups: dict[str, pd.DataFrame] = {}
    values: dict[str, pd.Series] = current
    winners: dict[str, pd.Series] = {}
    for _ in range(max_rounds):
        frame = _frame_for(ids, current)
        lookups = {s.name: _validated_lookup(s, frame, ids) for s in ordered}
        values, winners = _pick(lookups, order, ids)
        if _same_values(values, current):
            break
        current = values

    attributes = pd.DataFrame({"flight_id": np.asarray(ids, dtype="int64")})
    conflict_fields: list[list[str]] = [[] for _ in range(len(ids))]
    conflicts: list[Conflict] = []
    flight_ids = ids.to_numpy()
    for field_name in FIELDS:
        value, winner = values[field_name].copy(), winners[field_name].copy()
        if field_name in critical_fields:
            settled = winner.isin(authoritative)
            disputed = _disagreement(field_name, lookups, order, value) & ~settled
            positions = np.flatnonzero(disputed.to_numpy())
            if len(positions):
                columns = [
                    (name, lookups[name][field_name].to_numpy(dtype=object)[positions])
                    for name in order
                ]
                for k, position in enumerate(positions):
                    candidates = {
                        name: _json_value(column[k])
                        for name, column in columns
                        if not is_null(column[k])
                    }
                    conflicts.append(Conflict(int(flight_ids[position]), field_name, candidates))
                    conflict_fields[position].append(field_name)
                value[disputed] = np.nan if field_name == "mtow_kg" else None
                winner[disputed] = None
        attributes[field_name] = (
            value.to_numpy(dtype="float64")
            if field_name == "mtow_kg"
            else _object_column(_none_for_missing(value), attributes.index)
        )
        attributes[f"{field_name}_source"] = _object_column(
            _none_for_missing(winner), attributes.index
        )
    attributes["has_conflict"] = np.array([bool(c) for c in conflict_fields], dtype=bool)
    attributes["conflict_fields"] = pd.Series(
        [",".join(c) if c else None for c in conflict_fields], index=attributes.index, dtype=object
    )
    conflicts.sort(key=lambda c: (c.flight_id, FIELDS.index(c.field)))
    return ResolvedAttributes(attributes=attributes, conflicts=conflicts)


def _object_column(values: pd.Series, index: pd.Index) -> pd.Series:
    """An object column with ``None`` for missing (pandas would infer ``str`` with NaN)."""
    return pd.Series(values.to_numpy(dtype=object), index=index, dtype=object)


def _json_value(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


# -- persistence ---------------------------------------------------------------------------


def record_conflicts(session: Session, conflicts: Iterable[Conflict]) -> int:
    """Insert ``conflicts`` as open rows of ``flight_conflicts``, in the caller's transaction.

    Idempotent: a (flight_id, field) that already has an open conflict is left as it is
    (the partial unique index ``uq_flight_conflicts_open``). Returns the number inserted.
    """
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for conflict in conflicts:
        if conflict.field not in FIELDS:
            raise ValueError(f"unknown attribute field {conflict.field!r}")
        rows.setdefault(
            (int(conflict.flight_id), conflict.field),
            {
                "flight_id": int(conflict.flight_id),
                "field": conflict.field,
                "candidates": json.dumps(conflict.candidates, sort_keys=True, default=str),
                "status": _CONFLICT_STATUS_OPEN,
            },
        )
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = list(rows.values())
    inserted = 0
    for start in range(0, len(values), _CHUNK):
        stmt = (
            insert_fn(FlightConflict)
            .values(values[start : start + _CHUNK])
            .on_conflict_do_nothing()
            .returning(FlightConflict.id)
        )
        inserted += len(session.execute(stmt).all())
    return inserted


def open_conflicts(engine: Engine, flight_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Open conflicts (all, or of ``flight_ids``), oldest first.

    Columns: ``id, flight_id, field, candidates`` (dict ``{source: value}``), ``created_at``.
    """
    fc = FlightConflict
    query = select(fc.id, fc.flight_id, fc.field, fc.candidates, fc.created_at).where(
        fc.status == _CONFLICT_STATUS_OPEN
    )
    rows: list[Any] = []
    with engine.connect() as conn:
        if flight_ids is None:
            rows = conn.execute(query).all()
        else:
            ids = [int(i) for i in dict.fromkeys(flight_ids)]
            for start in range(0, len(ids), _CHUNK):
                rows.extend(
                    conn.execute(query.where(fc.flight_id.in_(ids[start : start + _CHUNK]))).all()
                )
    frame = pd.DataFrame(
        [(r.id, r.flight_id, r.field, json.loads(r.candidates), r.created_at) for r in rows],
        columns=["id", "flight_id", "field", "candidates", "created_at"],
    )
    frame["candidates"] = frame["candidates"].astype(object)
    return frame.sort_values(["created_at", "id"], kind="stable").reset_index(drop=True)


def resolve_conflict(
    engine: Engine,
    conflict: int | tuple[int, str],
    resolution: str | float,
    *,
    now: dt.datetime | None = None,
) -> int:
    """Close an open conflict with the chosen value; returns the conflict's id.

    ``conflict`` is the row id or ``(flight_id, field)``. ``resolution`` is validated and
    normalised for the field (MTOW: a positive number) and stored; it then wins through
    :class:`ManualResolutionSource`. It need not be one of the candidates. Raises
    :class:`ConflictNotFound` when no open conflict matches, :class:`ValueError` for an
    invalid value.
    """
    fc = FlightConflict
    with transaction(engine) as session:
        query = select(fc).where(fc.status == _CONFLICT_STATUS_OPEN)
        if isinstance(conflict, tuple):
            flight_id, field_name = conflict
            query = query.where(fc.flight_id == int(flight_id), fc.field == field_name)
        else:
            query = query.where(fc.id == int(conflict))
        row = session.execute(query.with_for_update()).scalar_one_or_none()
        if row is None:
            raise ConflictNotFound(f"no open conflict {conflict!r}")
        try:
            value = normalise_value(row.field, resolution)
        except ValueError as exc:
            raise ValueError(f"invalid resolution for {row.field}: {exc}") from None
        if value is None:
            raise ValueError(f"empty resolution for {row.field}")
        row.status = "resolved"
        row.resolution = repr(value) if isinstance(value, float) else str(value)
        resolved_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        if session.get_bind().dialect.name == "sqlite":
            resolved_at = resolved_at.replace(tzinfo=None)
        row.resolved_at = resolved_at
        return row.id


def blocked_flight_ids(engine: Engine, flight_ids: Iterable[int]) -> set[int]:
    """The flights among ``flight_ids`` with at least one open conflict (not to be billed)."""
    ids = [int(i) for i in dict.fromkeys(flight_ids)]
    blocked: set[int] = set()
    fc = FlightConflict
    with engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            blocked.update(
                conn.execute(
                    select(fc.flight_id)
                    .where(
                        fc.flight_id.in_(ids[start : start + _CHUNK]),
                        fc.status == _CONFLICT_STATUS_OPEN,
                    )
                    .distinct()
                ).scalars()
            )
    return blocked
