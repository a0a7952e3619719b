"""Reading tracks files (Parquet or CSV) into the tracks frame.

:func:`read_tracks` returns the tracks frame of ``docs/ARCHITECTURE.md`` (at least
``flight_id`` int64, ``ts`` datetime64[ns, UTC], ``lat``/``lon`` float64; other columns are
kept as read). ``ts`` may be stored as timestamps (naive = UTC), ISO-8601 strings or epoch
numbers, whose unit is detected from their magnitude (:func:`parse_ts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd

__all__ = [
    "PARQUET_SUFFIXES",
    "CSV_SUFFIXES",
    "REQUIRED_COLUMNS",
    "TracksFileError",
    "parse_ts",
    "read_tracks",
    "table_format",
]

REQUIRED_COLUMNS: Final[tuple[str, ...]] = ("flight_id", "ts", "lat", "lon")
PARQUET_SUFFIXES: Final[tuple[str, ...]] = (".parquet", ".pq", ".parq")
CSV_SUFFIXES: Final[tuple[str, ...]] = (".csv", ".txt", ".csv.gz", ".csv.bz2", ".csv.zst")

# epoch magnitude -> unit: seconds up to year 5138, then ms, us, ns
_EPOCH_UNITS: Final[tuple[tuple[float, Literal["s", "ms", "us"]], ...]] = (
    (1e11, "s"),
    (1e14, "ms"),
    (1e17, "us"),
)


class TracksFileError(ValueError):
    """The tracks file cannot be read or lacks / has invalid required columns."""


def table_format(path: str | Path) -> str:
    """``"parquet"`` or ``"csv"`` from the file name (a directory is a Parquet dataset);
    unknown suffixes are sniffed (Parquet files start with ``PAR1``)."""
    p = Path(path)
    name = p.name.lower()
    if p.is_dir() or name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    try:
        with p.open("rb") as fh:
            return "parquet" if fh.read(4) == b"PAR1" else "csv"
    except OSError as exc:
        raise TracksFileError(f"cannot read tracks file {p}: {exc}") from exc


def read_tracks(path: str | Path, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a tracks file (Parquet file or dataset directory, or CSV).

    Args:
        path: the file (or Parquet dataset directory).
        columns: extra columns to keep besides :data:`REQUIRED_COLUMNS` (``None`` = all).

    Returns:
        The tracks frame, rows in file order; ``ts`` is ``datetime64[ns, UTC]``.

    Raises:
        TracksFileError: unreadable file, missing required columns, unparsable values.
    """
    p = Path(path)
    if not p.exists():
        raise TracksFileError(f"tracks file not found: {p}")
    fmt = table_format(p)
    wanted = None if columns is None else list(dict.fromkeys([*REQUIRED_COLUMNS, *columns]))
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            schema_names = pq.read_schema(p).names if p.is_file() else None
            if schema_names is not None:
                _check_required(schema_names, p)
                if wanted is not None:
                    wanted = [c for c in wanted if c in schema_names]
            frame = pd.read_parquet(p, columns=wanted)
        else:
            header = pd.read_csv(p, nrows=0).columns.tolist()
            _check_required(header, p)
            usecols = None if wanted is None else [c for c in wanted if c in header]
            frame = pd.read_csv(p, usecols=usecols, low_memory=False)
    except TracksFileError:
        raise
    except (OSError, ValueError, ImportError) as exc:
        raise TracksFileError(f"cannot read tracks file {p}: {exc}") from exc
    except Exception as exc:  # pyarrow.ArrowInvalid & co. do not all derive from ValueError
        raise TracksFileError(f"cannot read tracks file {p}: {exc}") from exc
    _check_required(frame.columns, p)
    return _normalise(frame, p)


def parse_ts(col: pd.Series) -> pd.Series:
    """Timestamps as ``datetime64[ns, UTC]``.

    Accepts datetimes (naive = UTC; other zones converted), ISO-8601 strings (with or without
    offset; naive = UTC) and epoch numbers, whose unit is detected from the median magnitude:
    < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, else nanoseconds.

    Raises:
        ValueError: values that are none of these.
    """
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        out = pd.to_datetime(col, utc=True)
    elif pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        values = col.to_numpy(dtype=float, na_value=np.nan)
        finite = np.abs(values[np.isfinite(values)])
        magnitude = float(np.median(finite)) if finite.size else 0.0
        unit: Literal["s", "ms", "us", "ns"] = next(
            (u for limit, u in _EPOCH_UNITS if magnitude < limit), "ns"
        )
        out = pd.to_datetime(col, unit=unit, utc=True)
    else:
        text = col.astype("string").str.strip()
        numeric = pd.to_numeric(text, errors="coerce")
        if numeric.notna().all() and len(text):
            return parse_ts(numeric)
        out = pd.to_datetime(text, utc=True, format="ISO8601")
    return out.dt.as_unit("ns") if out.dt.unit != "ns" else out


def _check_required(columns: Sequence[str] | pd.Index, path: Path) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in set(columns)]
    if missing:
        raise TracksFileError(
            f"tracks file {path} is missing column(s) {', '.join(missing)} "
            f"(has: {', '.join(map(str, columns)) or 'none'}); required: "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )


def _normalise(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    try:
        frame["ts"] = parse_ts(frame["ts"])
    except (ValueError, TypeError, OverflowError) as exc:
        example = frame["ts"].iloc[0] if len(frame) else None
        raise TracksFileError(
            f"tracks file {path}: column ts is neither ISO-8601 nor epoch time "
            f"(e.g. {example!r}): {exc}"
        ) from exc
    fid = pd.to_numeric(frame["flight_id"], errors="coerce")
    bad = fid.isna() | (fid != np.floor(fid))
    if bad.any():
        example = frame["flight_id"][bad.to_numpy()].iloc[0]
        raise TracksFileError(
            f"tracks file {path}: flight_id must be an integer, got {example!r} "
            f"({int(bad.sum())} row(s))"
        )
    frame["flight_id"] = fid.astype(np.int64)
    for col in ("lat", "lon"):
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            raise TracksFileError(
                f"tracks file {path}: column {col} is not numeric "
                f"(e.g. {frame[col][bad.to_numpy()].iloc[0]!r})"
            )
        frame[col] = values.astype(np.float64)
    if (frame["lat"].abs() > 90).any():
        raise TracksFileError(f"tracks file {path}: lat outside [-90, 90] (lat/lon swapped?)")
    return frame
