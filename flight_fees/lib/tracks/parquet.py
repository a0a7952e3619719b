"""The embedded track store: Hive-partitioned Parquet files read with DuckDB.

Layout (see docs/ARCHITECTURE.md): ``<root>/day=YYYY-MM-DD/<anything>.parquet``, one row per
position, all rows of a flight in the partition of the UTC day of its first position.

Partitions are chosen before DuckDB runs (only the day directories that can hold the wanted
flights are scanned); ``flight_id IN (...)`` and the time window are pushed down into the
Parquet row-group statistics by DuckDB. Files may differ in their optional attribute columns
(``union_by_name``).

File names are listed by Python and passed to DuckDB as literals: glob characters
(``[ * ?``) in a name are escaped, so ``[ab].parquet`` is read, not ``a.parquet`` and
``b.parquet``.

A corrupt file does not fail the day: when a read fails, the files are read one by one, the
corrupt ones are skipped and reported (``stats["corrupt_files"]``, a warning in the log) and
only their flights fail, with category ``corrupt_file`` (never retried) and the file name in
the message. The flights of a corrupt file are those of its ``flight_id`` column when that
column can still be read, else those its row-group statistics cover; when not even its footer
can be read, a requested flight found in no readable file fails with ``corrupt_file`` (the
file may hold it), and the readable files' flights are delivered.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from flight_fees.lib.core.timeutil import as_utc
from flight_fees.lib.tracks.base import (
    CORRUPT_FILE,
    NOT_FOUND,
    REQUIRED_COLUMNS,
    SOURCE_UNAVAILABLE,
    TRACK_COLUMNS,
    BaseTrackSource,
    FetchFailure,
    TrackFetchResult,
    TrackSourceError,
    day_start,
    empty_tracks,
    normalise_tracks,
    not_found_failures,
    resolve_window,
    validate_flight_ids,
)

log = logging.getLogger(__name__)

_DAY_DIR = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")
#: DuckDB expands these in file paths (glob); each is escaped as a one-character class
_GLOB_CHARACTERS = re.compile(r"([\[*?])")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def literal_path(path: str) -> str:
    """``path`` with DuckDB's glob characters escaped (``[`` -> ``[[]``, ``*`` -> ``[*]``,
    ``?`` -> ``[?]``): it matches that one file only."""
    return _GLOB_CHARACTERS.sub(r"[\1]", path)


@dataclass(frozen=True)
class CorruptFile:
    """A store file that cannot be read, and which flights it may hold.

    ``ids``: its flight ids (its ``flight_id`` column could be read); else ``ranges``: the
    ``(min, max)`` flight ids of its row groups (from the footer); else neither (unknown).
    """

    path: str
    error: str
    ids: frozenset[int] | None = None
    ranges: tuple[tuple[int, int], ...] | None = None

    @property
    def known(self) -> bool:
        return self.ids is not None or self.ranges is not None

    def may_hold(self, flight_ids: Sequence[int]) -> set[int]:
        """The flights among ``flight_ids`` this file holds or may hold (known files only)."""
        if self.ids is not None:
            return set(flight_ids) & self.ids
        ids = np.asarray(list(flight_ids), dtype=np.int64)
        hit = np.zeros(ids.size, dtype=bool)
        for lo, hi in self.ranges or ():
            hit |= (ids >= lo) & (ids <= hi)
        return {int(f) for f in ids[hit]}

    def message(self) -> str:
        return (
            f"track file {Path(self.path).parent.name}/{Path(self.path).name} is corrupt "
            f"({self.error}); its flights are not billed until it is repaired"
        )


def _ts_literal(value: dt.datetime) -> str:
    return f"TIMESTAMPTZ '{as_utc(value).isoformat()}'"


def _scan(files: Sequence[str]) -> str:
    """The table function reading ``files`` (optional columns may differ between them)."""
    file_list = ", ".join(_sql_string(literal_path(f)) for f in files)
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

    def _read_files(
        self, files: Sequence[str], sql_of: Callable[[Sequence[str]], str]
    ) -> tuple[list[pd.DataFrame], list[CorruptFile]]:
        """``sql_of(files)`` read at once or, when that fails, file by file: the frames read
        and the files that could not be (reported in the log)."""
        try:
            return [self._read(sql_of(files))], []
        except duckdb.Error as exc:
            if len(files) == 1:
                return [], [self._corrupt(files[0], exc)]
        frames: list[pd.DataFrame] = []
        corrupt: list[CorruptFile] = []
        for file in files:
            try:
                frames.append(self._read(sql_of([file])))
            except duckdb.Error as exc:
                corrupt.append(self._corrupt(file, exc))
        return frames, corrupt

    def _corrupt(self, file: str, exc: Exception) -> CorruptFile:
        """Describe an unreadable file: which flights can still be attributed to it."""
        error = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        log.warning("track store: skipping corrupt file %s: %s", file, error)
        try:
            frame = self._read(
                f"SELECT DISTINCT flight_id FROM {_scan([file])} WHERE flight_id IS NOT NULL"
            )
            return CorruptFile(file, error, ids=frozenset(int(f) for f in frame["flight_id"]))
        except duckdb.Error:
            pass
        try:
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(file).metadata
            column = meta.schema.names.index("flight_id")
            ranges = []
            for k in range(meta.num_row_groups):
                stats = meta.row_group(k).column(column).statistics
                low, high = (stats.min, stats.max) if stats is not None else (None, None)
                if stats is None or not stats.has_min_max or low is None or high is None:
                    raise ValueError("no flight_id statistics")
                ranges.append((int(low), int(high)))
            return CorruptFile(file, error, ranges=tuple(ranges))
        except Exception:  # no readable footer: the file's flights are unknown
            return CorruptFile(file, error)

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
            where_text = f"day {day_start(day).date().isoformat()}"
        else:
            days = self._days_for_window(lo, hi)
            where_text = "the store"
        files = self._files(days)
        stats["files"] = len(files)
        if not files:
            msg = f"no positions in {where_text} ({self.root})"
            return TrackFetchResult(empty_tracks(), not_found_failures(ids, (), msg), 0, stats)

        where = [f"flight_id IN ({', '.join(str(i) for i in sorted(ids))})"]
        if lo is not None:
            where.append(f"ts >= {_ts_literal(lo)}")
        if hi is not None:
            where.append(f"ts < {_ts_literal(hi)}")
        frames, corrupt = self._read_files(files, lambda fs: _positions_sql(fs, where))
        tracks, failures = self._without_corrupt(frames, corrupt, ids, stats, t0)
        unknown = [c for c in corrupt if not c.known]
        missing = set(ids) - set(pd.unique(tracks["flight_id"]).tolist()) - set(failures)
        for fid in sorted(missing):
            failures[fid] = (
                FetchFailure(
                    CORRUPT_FILE,
                    f"no positions in the readable files of {where_text}; "
                    + "; ".join(c.message() for c in unknown),
                )
                if unknown
                else FetchFailure(NOT_FOUND, f"no positions in {where_text}")
            )
        return TrackFetchResult(tracks, dict(sorted(failures.items())), 1, stats)

    def _without_corrupt(
        self,
        frames: list[pd.DataFrame],
        corrupt: list[CorruptFile],
        ids: Sequence[int] | None,
        stats: dict[str, object],
        t0: float,
    ) -> tuple[pd.DataFrame, dict[int, FetchFailure]]:
        """The tracks read, less the flights of corrupt files (``corrupt_file`` failures);
        ``ids``: the flights asked for (``None``: those read)."""
        frames = [f for f in frames if len(f)]
        raw = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame({c: [] for c in REQUIRED_COLUMNS})
        )
        tracks = self._tracks(raw, stats, t0)
        failures: dict[int, FetchFailure] = {}
        if not corrupt:
            return tracks, failures
        stats["corrupt_files"] = [c.path for c in corrupt]
        candidates = list(ids) if ids is not None else pd.unique(tracks["flight_id"]).tolist()
        for file in corrupt:
            for fid in file.may_hold(candidates):
                failures.setdefault(fid, FetchFailure(CORRUPT_FILE, file.message()))
        if failures:
            tracks = tracks[~tracks["flight_id"].isin(list(failures))].reset_index(drop=True)
        return tracks, failures

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
        frames, corrupt = self._read_files(files, lambda fs: _positions_sql(fs, []))
        tracks, failures = self._without_corrupt(frames, corrupt, None, stats, t0)
        for file in corrupt:  # the flights known from the file's flight_id column or footer
            held = file.ids if file.ids is not None else frozenset()
            failures.update(dict.fromkeys(held, FetchFailure(CORRUPT_FILE, file.message())))
        return TrackFetchResult(tracks, dict(sorted(failures.items())), 1, stats)

    def flight_ids_for_day(self, day: dt.date) -> list[int]:
        files = self._day_files(day)
        if not files:
            return []
        frames, corrupt = self._read_files(
            files,
            lambda fs: f"SELECT DISTINCT flight_id FROM {_scan(fs)} WHERE flight_id IS NOT NULL",
        )
        ids = {int(i) for frame in frames for i in frame["flight_id"]}
        ids |= {i for file in corrupt for i in (file.ids or ())}  # they fail when fetched
        return sorted(ids)

    @property
    def description(self) -> str:
        return f"parquet store {self.root}"

    def flight_days(self, flight_ids: Sequence[int]) -> dict[int, dt.date]:
        """Departure day of each flight found in any partition (one scan, pushdown on ids)."""
        ids = validate_flight_ids(flight_ids)
        files = self._files(None)
        if not ids or not files:
            return {}
        in_list = ", ".join(str(i) for i in sorted(ids))
        frames, _corrupt = self._read_files(  # corrupt files: their flights are not dated
            files,
            lambda fs: (
                f"SELECT flight_id, min(ts) AS first_ts FROM {_scan(fs)} "
                f"WHERE flight_id IN ({in_list}) GROUP BY flight_id"
            ),
        )
        frames = [f for f in frames if len(f)]
        if not frames:
            return {}
        frame = pd.concat(frames).groupby("flight_id", as_index=False)["first_ts"].min()
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
