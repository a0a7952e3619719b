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
    validate_flight_ids,
)

_DAY_DIR = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ts_literal(value: dt.datetime) -> str:
    return f"TIMESTAMPTZ '{as_utc(value).isoformat()}'"


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

    def _query(self, files: list[str], where: list[str]) -> pd.DataFrame:
        columns = ", ".join(_sql_string(c) for c in TRACK_COLUMNS)
        file_list = ", ".join(_sql_string(f) for f in files)
        sql = (
            f"SELECT COLUMNS(lambda c: list_contains([{columns}], c)) "
            f"FROM read_parquet([{file_list}], union_by_name = true, hive_partitioning = false)"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY flight_id, ts"
        )
        con = duckdb.connect(":memory:", config={"threads": self.threads})
        try:
            con.execute("SET TimeZone = 'UTC'")
            table = con.sql(sql).to_arrow_table()
        finally:
            con.close()
        return table.to_pandas()

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
        lo = as_utc(start) if start is not None else None
        hi = as_utc(end) if end is not None else None
        if lo is not None and hi is not None and hi <= lo:
            raise ValueError(f"empty time window: start {lo.isoformat()} >= end {hi.isoformat()}")
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
            raw = self._query(files, where)
        except duckdb.Error as exc:
            failure = FetchFailure(QUERY_ERROR, f"reading {self.root}: {exc}")
            return TrackFetchResult(empty_tracks(), dict.fromkeys(ids, failure), 1, stats)
        tracks, dropped = normalise_tracks(raw)
        stats.update(
            rows=len(tracks), rows_dropped=dropped, elapsed_s=round(time.perf_counter() - t0, 4)
        )
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
        try:
            raw = self._query(files, [])
        except duckdb.Error as exc:
            raise TrackSourceError(f"reading {self.root}: {exc}", category=QUERY_ERROR) from exc
        tracks, dropped = normalise_tracks(raw)
        stats.update(
            rows=len(tracks), rows_dropped=dropped, elapsed_s=round(time.perf_counter() - t0, 4)
        )
        return TrackFetchResult(tracks, {}, 1, stats)

    def flight_ids_for_day(self, day: dt.date) -> list[int]:
        files = self._day_files(day)
        if not files:
            return []
        file_list = ", ".join(_sql_string(f) for f in files)
        sql = (
            f"SELECT DISTINCT flight_id FROM read_parquet([{file_list}], union_by_name = true, "
            "hive_partitioning = false) WHERE flight_id IS NOT NULL ORDER BY flight_id"
        )
        try:
            con = duckdb.connect(":memory:", config={"threads": self.threads})
            try:
                ids = con.sql(sql).fetchnumpy()["flight_id"]
            finally:
                con.close()
        except duckdb.Error as exc:
            raise TrackSourceError(f"reading {self.root}: {exc}", category=QUERY_ERROR) from exc
        return [int(i) for i in ids]

    @property
    def description(self) -> str:
        return f"parquet store {self.root}"

    def flight_days(self, flight_ids: Sequence[int]) -> dict[int, dt.date]:
        """Departure day of each flight found in any partition (one scan, pushdown on ids)."""
        ids = validate_flight_ids(flight_ids)
        files = self._files(None)
        if not ids or not files:
            return {}
        file_list = ", ".join(_sql_string(f) for f in files)
        sql = (
            f"SELECT flight_id, min(ts) AS first_ts FROM read_parquet([{file_list}], "
            "union_by_name = true, hive_partitioning = false) "
            f"WHERE flight_id IN ({', '.join(str(i) for i in sorted(ids))}) GROUP BY flight_id"
        )
        try:
            con = duckdb.connect(":memory:", config={"threads": self.threads})
            try:
                con.execute("SET TimeZone = 'UTC'")
                frame = con.sql(sql).to_arrow_table().to_pandas()
            finally:
                con.close()
        except duckdb.Error as exc:
            raise TrackSourceError(f"reading {self.root}: {exc}", category=QUERY_ERROR) from exc
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
