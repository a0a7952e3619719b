"""Track sources (embedded Parquet store, Apache Pinot) and track cleaning.

Usage::

    source = make_track_source()  # pinot if PINOT_HTTP_BROKER_URL is set, else parquet
    result = source.fetch([123, 456], day=date(2024, 3, 1))
    cleaned = clean_tracks(result.tracks)

See :mod:`flight_fees.lib.tracks.base` for the contracts and failure categories.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flight_fees.lib.tracks.base import (
    ATTRIBUTE_COLUMNS,
    BAD_TRACK,
    CORRUPT_FILE,
    FAILURE_CATEGORIES,
    NOT_FOUND,
    PARTIAL_RESULT,
    QUERY_ERROR,
    REQUIRED_COLUMNS,
    RETRYABLE_FETCH_CATEGORIES,
    SOURCE_FAULT_CATEGORIES,
    SOURCE_UNAVAILABLE,
    TIMEOUT,
    TRACK_COLUMNS,
    BaseTrackSource,
    FetchFailure,
    TrackFetchResult,
    TrackSource,
    TrackSourceError,
    empty_tracks,
    normalise_tracks,
    validate_flight_ids,
)
from flight_fees.lib.tracks.cleaning import CleaningResult, clean_tracks

if TYPE_CHECKING:
    from flight_fees.lib.tracks.parquet import ParquetTrackSource
    from flight_fees.lib.tracks.pinot import PinotTrackSource


def __getattr__(name: str) -> Any:
    """The sources are imported on first use: cleaning a tracks file (the ``crossings``
    command) needs neither DuckDB nor the Pinot client."""
    if name == "ParquetTrackSource":
        from flight_fees.lib.tracks.parquet import ParquetTrackSource

        return ParquetTrackSource
    if name == "PinotTrackSource":
        from flight_fees.lib.tracks.pinot import PinotTrackSource

        return PinotTrackSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


SOURCE_KINDS = ("pinot", "parquet")
PINOT_URL_ENV = "PINOT_HTTP_BROKER_URL"


def default_source_kind() -> str:
    """``pinot`` when ``PINOT_HTTP_BROKER_URL`` is set, else ``parquet``."""
    return "pinot" if os.environ.get(PINOT_URL_ENV, "").strip() else "parquet"


def make_track_source(kind: str | None = None, *, store: Path | None = None) -> TrackSource:
    """The configured track source.

    ``kind``: ``"pinot"`` (configured from the ``PINOT_*`` environment, see
    :meth:`PinotTrackSource.from_env`) or ``"parquet"`` (the store at ``store``, default
    ``$FLIGHT_FEES_HOME/tracks``); ``None`` picks :func:`default_source_kind`.
    """
    kind = (kind or default_source_kind()).strip().lower()
    if kind == "pinot":
        from flight_fees.lib.tracks.pinot import PinotTrackSource

        return PinotTrackSource.from_env()
    if kind == "parquet":
        from flight_fees.lib.tracks.parquet import ParquetTrackSource

        if store is None:
            from flight_fees.lib.core.settings import paths

            store = paths().tracks
        return ParquetTrackSource(store)
    raise ValueError(f"unknown track source {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")


__all__ = [
    "ATTRIBUTE_COLUMNS",
    "BAD_TRACK",
    "CORRUPT_FILE",
    "FAILURE_CATEGORIES",
    "NOT_FOUND",
    "PARTIAL_RESULT",
    "QUERY_ERROR",
    "REQUIRED_COLUMNS",
    "RETRYABLE_FETCH_CATEGORIES",
    "SOURCE_FAULT_CATEGORIES",
    "SOURCE_KINDS",
    "SOURCE_UNAVAILABLE",
    "TIMEOUT",
    "TRACK_COLUMNS",
    "BaseTrackSource",
    "CleaningResult",
    "FetchFailure",
    "ParquetTrackSource",
    "PinotTrackSource",
    "TrackFetchResult",
    "TrackSource",
    "TrackSourceError",
    "clean_tracks",
    "default_source_kind",
    "empty_tracks",
    "make_track_source",
    "normalise_tracks",
    "validate_flight_ids",
]
