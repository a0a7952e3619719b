"""The writer of the embedded track store: a Tracks frame to Hive-partitioned Parquet files
(``<root>/day=YYYY-MM-DD/part-<n>.parquet``, ``docs/ARCHITECTURE.md``), read back by
:class:`flight_fees.lib.tracks.parquet.ParquetTrackSource`."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flight_fees.lib.tracks.base import ATTRIBUTE_COLUMNS as TRACK_STRING_COLUMNS

__all__ = ["TRACK_SCHEMA", "TRACK_STRING_COLUMNS", "write_track_store"]

#: Arrow schema of the files of the embedded track store (partition column ``day`` excluded)
_FIELDS: list[pa.Field] = [
    pa.field("flight_id", pa.int64(), nullable=False),
    pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("lat", pa.float64(), nullable=False),
    pa.field("lon", pa.float64(), nullable=False),
    pa.field("alt_ft", pa.float64()),
    *(pa.field(name, pa.string()) for name in TRACK_STRING_COLUMNS),
]
TRACK_SCHEMA = pa.schema(_FIELDS)


def _to_store_table(frame: pd.DataFrame) -> pa.Table:
    """Conform a Tracks frame to :data:`TRACK_SCHEMA` (missing optional columns -> null)."""
    n = len(frame)
    ts = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("us")
    arrays: list[pa.Array] = [
        pa.array(frame["flight_id"].to_numpy(dtype=np.int64)),
        pa.Array.from_pandas(ts).cast(pa.timestamp("us", tz="UTC")),
        pa.array(frame["lat"].to_numpy(dtype=np.float64)),
        pa.array(frame["lon"].to_numpy(dtype=np.float64)),
    ]
    if "alt_ft" in frame:
        alt = frame["alt_ft"].to_numpy(dtype=np.float64, na_value=np.nan)
        arrays.append(pa.array(alt, from_pandas=True))  # NaN -> null
    else:
        arrays.append(pa.nulls(n, pa.float64()))
    for name in TRACK_STRING_COLUMNS:
        if name in frame:
            arrays.append(pa.array(frame[name].astype("str"), type=pa.string(), from_pandas=True))
        else:
            arrays.append(pa.nulls(n, pa.string()))
    return pa.Table.from_arrays(arrays, schema=TRACK_SCHEMA)


def write_track_store(
    tracks: pd.DataFrame, root: Path, *, rows_per_file: int = 2_000_000
) -> list[Path]:
    """Write a Tracks frame to the embedded Parquet store (``docs/ARCHITECTURE.md``).

    Layout ``<root>/day=YYYY-MM-DD/part-<n>.parquet``; every flight lands entirely in the
    partition of the UTC day of its first position; rows are sorted by ``flight_id, ts``.
    Idempotent per day: a written day's directory ends up holding exactly the new files (new
    files are written under hidden temporary names and renamed into place, then the day's
    other ``*.parquet`` files are removed); days absent from ``tracks`` are left untouched.

    Returns the written files, ordered by day then part.
    """
    required = {"flight_id", "ts", "lat", "lon"}
    if missing := required - set(tracks.columns):
        raise ValueError(f"tracks frame lacks columns {sorted(missing)}")
    if rows_per_file < 1:
        raise ValueError("rows_per_file must be >= 1")
    root = Path(root)
    if tracks.empty:
        return []
    table = _to_store_table(tracks)
    table = table.sort_by([("flight_id", "ascending"), ("ts", "ascending")])
    flight_id = table["flight_id"].to_numpy()
    ts_us = table["ts"].cast(pa.int64()).to_numpy()
    # first position of each flight (rows are sorted: first row of each flight run)
    starts = np.flatnonzero(np.r_[True, flight_id[1:] != flight_id[:-1]])
    run_len = np.diff(np.r_[starts, len(flight_id)])
    row_day = np.repeat(ts_us[starts].astype("datetime64[us]").astype("datetime64[D]"), run_len)

    written: list[Path] = []
    for day in np.unique(row_day):
        idx = np.flatnonzero(row_day == day)
        part_dir = root / f"day={day}"
        part_dir.mkdir(parents=True, exist_ok=True)
        day_table = table.take(idx)
        new_files: list[Path] = []
        for part, offset in enumerate(range(0, day_table.num_rows, rows_per_file)):
            final = part_dir / f"part-{part}.parquet"
            tmp = part_dir / f".{final.name}.{uuid.uuid4().hex}.tmp"
            pq.write_table(day_table.slice(offset, rows_per_file), tmp, compression="zstd")
            os.replace(tmp, final)
            new_files.append(final)
        keep = {p.name for p in new_files}
        for stale in part_dir.glob("*.parquet"):
            if stale.name not in keep:
                stale.unlink()
        written.extend(new_files)
    return written
