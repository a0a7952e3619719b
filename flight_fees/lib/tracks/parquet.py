"""The embedded track store: Hive-partitioned Parquet files read with DuckDB.

Layout (see docs/ARCHITECTURE.md): ``<root>/day=YYYY-MM-DD/<anything>.parquet``, one row per
position, all rows of a flight in the partition of the UTC day of its first position.

Partitions are chosen before DuckDB runs (only the day directories that can hold the wanted
flights are scanned); ``flight_id IN (...)`` and the time window are pushed down into the
Parquet row-group statistics by DuckDB. Files may differ in their optional attribute columns
(``union_by_name``).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd

from flight_fees.lib.tracks.base import (
    QUERY_ERROR,
    SOURCE_UNAVAILABLE,
    TRACK_COLUMNS,
    BaseTrackSource,
    FetchFailure,
    TrackFetchResult,
    TrackSourceError,
    as_utc,
    day_start,
    empty_tracks,
    normalise_tracks,
    not_found_failures,
    resolve_window,
    validate_flight_ids,
)

_DAY_DIR = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ts_literal(value: dt.datetime) -> str:
    return f"TIMESTAMPTZ '{as_utc(value).isoformat()}'"


def _scan(files: Sequence[str]) -> str:
    """The table function reading ``files`` (optional columns may differ between them)."""
    file_list = ", ".join(_sql_string(f) for f in files)
    return f"read_parquet([{file_list}], union_by_name = true, hive_partitioning = false)"


def _positions_sql(files: Sequence[str], where: Sequence[str]) -> str:
    """The positions in ``files`` matching ``where``, ordered by ``flight_id, ts``."""
    columns = ", ".join(_sql_string(c) for c in TRACK_COLUMNS)
    return (
        f"SELECT COLUMNS(lambda c: list_contains([{columns}], c)) FROM {_scan(files)}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY flight_id, ts"
    )


class ParquetTrackSource(BaseTrackSource):
    """Tracks from the embedded Parquet store under ``root``.

    ``fetch(ids, day=d)`` reads partition ``d`` only; with ``start`` / ``end`` (points in
    [start, end)) it reads the partitions of the days a flight with points in the window can
    depart on (``start - max_flight_duration`` .. ``end``); with neither it scans every
    partition, relying on the ``flight_id`` pushdown.
    """

    name = "parquet"

    def __init__(
        self,
        root: Path | str,
        *,
        max_flight_duration: dt.timedelta = dt.timedelta(hours=24),
        threads: int = 2,
    ) -> None:
        self.root = Path(root).expanduser()
        self.max_flight_duration = max_flight_duration
        self.threads = threads

    def __repr__(self) -> str:
        return f"ParquetTrackSource(root={str(self.root)!r})"

    # -- partitions ------------------------------------------------------------------------

    def days(self) -> list[dt.date]:
        """The day partitions present in the store (sorted)."""
        if not self.root.is_dir():
            return []
        out = []
        for child in self.root.iterdir():
            match = _DAY_DIR.match(child.name)
            if match and child.is_dir():
                try:
                    out.append(dt.date.fromisoformat(match.group(1)))
                except ValueError:
                    continue  # day=2024-02-31: not a partition
        return sorted(out)

    def _files(self, days: Sequence[dt.date] | None) -> list[str]:
        """Parquet files of the given day partitions (all partitions when ``None``)."""
        wanted = self.days() if days is None else sorted(set(days))
        files: list[str] = []
        for day in wanted:
            files.extend(
                str(p) for p in sorted((self.root / f"day={day.isoformat()}").glob("*.parquet"))
            )
        return files

    def _days_for_window(
        self, lo: dt.datetime | None, hi: dt.datetime | None
    ) -> list[dt.date] | None:
        if lo is None and hi is None:
            return None
        present = self.days()
        first = (lo - self.max_flight_duration).date() if lo is not None else dt.date.min
        last = (hi - dt.timedelta(microseconds=1)).date() if hi is not None else dt.date.max
        return [d for d in present if first <= d <= last]

    # -- queries ---------------------------------------------------------------------------

    def _read(self, sql: str) -> pd.DataFrame:
        """The result of ``sql`` on a fresh in-memory DuckDB connection (session zone UTC);
        raises :class:`duckdb.Error`."""
        con = duckdb.connect(":memory:", config={"threads": self.threads})
        try:
            con.execute("SET TimeZone = 'UTC'")
            table = con.sql(sql).to_arrow_table()
        finally:
            con.close()
        return table.to_pandas()

    def _read_or_raise(self, sql: str) -> pd.DataFrame:
        """:meth:`_read`, a DuckDB error raised as a ``query_error`` :class:`TrackSourceError`."""
        try:
            return self._read(sql)
        except duckdb.Error as exc:
            raise TrackSourceError(f"reading {self.root}: {exc}", category=QUERY_ERROR) from exc

    def _tracks(self, raw: pd.DataFrame, stats: dict[str, object], t0: float) -> pd.DataFrame:
        """``raw`` as a Tracks frame; its row counts and the time since ``t0`` go to ``stats``."""
        tracks, dropped = normalise_tracks(raw)
        stats.update(
            rows=len(tracks), rows_dropped=dropped, elapsed_s=round(time.perf_counter() - t0, 4)
        )
        return tracks

    def _missing_store_message(self) -> str:
        return f"track store {self.root} does not exist (no day=YYYY-MM-DD partitions)"

    def fetch(
        self,
        flight_ids: Sequence[int],
        *,
        day: dt.date | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> TrackFetchResult:
        ids = validate_flight_ids(flight_ids)
        t0 = time.perf_counter()
        # the day picks the partition; only start / end filter the positions
        lo, hi = resolve_window(None, start, end, max_flight_duration=self.max_flight_duration)
        stats: dict[str, object] = {"source": self.name, "root": str(self.root)}
        if not ids:
            return TrackFetchResult(empty_tracks(), {}, 0, stats)
        if not self.root.is_dir():
            msg = self._missing_store_message()
            return TrackFetchResult(empty_tracks(), not_found_failures(ids, (), msg), 0, stats)

        if day is not None:
            days: list[dt.date] | None = [day_start(day).date()]
        else:
            days = self._days_for_window(lo, hi)
        files = self._files(days)
        stats["files"] = len(files)
        where_text = f"day {days[0].isoformat()}" if day is not None else "the store"
        if not files:
            msg = f"no positions in {where_text} ({self.root})"
            return TrackFetchResult(empty_tracks(), not_found_failures(ids, (), msg), 0, stats)

        where = [f"flight_id IN ({', '.join(str(i) for i in sorted(ids))})"]
        if lo is not None:
            where.append(f"ts >= {_ts_literal(lo)}")
        if hi is not None:
            where.append(f"ts < {_ts_literal(hi)}")
        try:
            raw = self._read(_positions_sql(files, where))
        except duckdb.Error as exc:
            failure = FetchFailure(QUERY_ERROR, f"reading {self.root}: {exc}")
            return TrackFetchResult(empty_tracks(), dict.fromkeys(ids, failure), 1, stats)
        tracks = self._tracks(raw, stats, t0)
        failures = not_found_failures(
            ids, pd.unique(tracks["flight_id"]), f"no positions in {where_text}"
        )
        return TrackFetchResult(tracks, failures, 1, stats)

    def _day_files(self, day: dt.date) -> list[str]:
        if not self.root.is_dir():
            raise TrackSourceError(self._missing_store_message(), category=SOURCE_UNAVAILABLE)
        return self._files([day_start(day).date()])

    def fetch_day(self, day: dt.date) -> TrackFetchResult:
        """Every flight of partition ``day`` (raises when the store itself is missing)."""
        t0 = time.perf_counter()
        files = self._day_files(day)
        stats: dict[str, object] = {
            "source": self.name,
            "root": str(self.root),
            "files": len(files),
        }
        if not files:
            return TrackFetchResult(empty_tracks(), {}, 0, stats)
        raw = self._read_or_raise(_positions_sql(files, []))
        return TrackFetchResult(self._tracks(raw, stats, t0), {}, 1, stats)

    def flight_ids_for_day(self, day: dt.date) -> list[int]:
        files = self._day_files(day)
        if not files:
            return []
        frame = self._read_or_raise(
            f"SELECT DISTINCT flight_id FROM {_scan(files)} "
            "WHERE flight_id IS NOT NULL ORDER BY flight_id"
        )
        return [int(i) for i in frame["flight_id"]]

    @property
    def description(self) -> str:
        return f"parquet store {self.root}"

    def flight_days(self, flight_ids: Sequence[int]) -> dict[int, dt.date]:
        """Departure day of each flight found in any partition (one scan, pushdown on ids)."""
        ids = validate_flight_ids(flight_ids)
        files = self._files(None)
        if not ids or not files:
            return {}
        frame = self._read_or_raise(
            f"SELECT flight_id, min(ts) AS first_ts FROM {_scan(files)} "
            f"WHERE flight_id IN ({', '.join(str(i) for i in sorted(ids))}) GROUP BY flight_id"
        )
        first = pd.to_datetime(frame["first_ts"], utc=True)
        return dict(zip(frame["flight_id"].astype(int).tolist(), first.dt.date, strict=True))

    def ping(self) -> None:
        if not self.root.exists():
            raise TrackSourceError(
                f"track store {self.root} does not exist", category=SOURCE_UNAVAILABLE
            )
        if not self.root.is_dir():
            raise TrackSourceError(
                f"track store {self.root} is not a directory", category=SOURCE_UNAVAILABLE
            )
        try:
            next(self.root.iterdir(), None)
        except OSError as exc:
            raise TrackSourceError(
                f"track store {self.root} is not readable: {exc}", category=SOURCE_UNAVAILABLE
            ) from exc
