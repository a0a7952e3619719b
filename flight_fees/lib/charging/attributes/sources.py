"""Attribute sources: the track rows, the aircraft table, a CSV file, manual resolutions."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Row, select

from flight_fees.lib.charging.attributes.cache import TTLCache
from flight_fees.lib.charging.attributes.normalise import (
    _CHUNK,
    _ICAO24,
    FIELDS,
    AttributeSourceError,
    _none_series,
    _normalise_series,
    _unique_flight_ids,
    normalise_value,
)
from flight_fees.lib.db.models import Aircraft, AircraftMtowDeclaration, Customer, FlightConflict
from flight_fees.lib.ops.queue import QueueError, parse_flight_id
from flight_fees.lib.ops.registry import mtow_in_force
from flight_fees.lib.tracks.base import ATTRIBUTE_COLUMNS

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
        return {int(k): pd.Timestamp(v).date() for k, v in zip(days.index, days, strict=True)}
    if "ts" in frame.columns:
        first = pd.to_datetime(frame["ts"], utc=True).groupby(ids.to_numpy()).min().dropna()
        return {int(k): v.date() for k, v in zip(first.index, first, strict=True)}
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
        rows: list[Row[tuple[int, str, str | None]]] = []
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
