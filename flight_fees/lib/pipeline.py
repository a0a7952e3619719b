"""The processing stages as plain functions (no Dagster): tracks -> crossings -> fee lines ->
maps. The Dagster assets in ``flight_fees/defs/processing`` are thin wrappers around these, and
a notebook user can call them directly.

Per-flight failures travel as ``{flight_id: (category, message)}``; a failing flight never
stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

Failures = dict[int, tuple[str, str]]
ATTRIBUTE_COLUMNS = ("callsign", "registration", "aircraft_type", "icao24", "origin", "destination")


# -- stage 1: tracks --------------------------------------------------------------------------


@dataclass
class TrackStage:
    tracks: pd.DataFrame
    failures: Failures
    report: pd.DataFrame
    requested: list[int] | None
    queries: int = 0
    source_error: tuple[str, str] | None = None

    @property
    def flight_ids(self) -> list[int]:
        return sorted(int(f) for f in self.tracks["flight_id"].unique()) if len(self.tracks) else []


def fetch_tracks_stage(
    source: Any,
    day: dt.date,
    flight_ids: Sequence[int] | None,
    *,
    max_gap_s: float = 600.0,
    max_speed_kt: float = 1200.0,
    min_points: int = 10,
) -> TrackStage:
    """Fetch the flights (or, without ids, every flight of ``day``) and clean their tracks."""
    from flight_fees.lib.tracks import TrackSourceError
    from flight_fees.lib.tracks.cleaning import clean_tracks

    requested = sorted(set(int(f) for f in flight_ids)) if flight_ids else None
    try:
        fetched = source.fetch(requested, day=day) if requested else source.fetch_day(day)
    except TrackSourceError as exc:
        failure = (exc.category, str(exc))
        return TrackStage(
            tracks=_empty_tracks(),
            failures={fid: failure for fid in requested or []},
            report=pd.DataFrame(),
            requested=requested,
            source_error=failure,
        )
    failures: Failures = {
        int(fid): (f.category, f.message) for fid, f in fetched.failures.items()
    }
    cleaned = clean_tracks(
        fetched.tracks, max_gap_s=max_gap_s, max_speed_kt=max_speed_kt, min_points=min_points
    )
    for fid, f in cleaned.failures.items():
        failures.setdefault(int(fid), (f.category, f.message))
    tracks = cleaned.tracks
    if failures and len(tracks):
        tracks = tracks[~tracks["flight_id"].isin(list(failures))].reset_index(drop=True)
    return TrackStage(
        tracks=tracks,
        failures=failures,
        report=cleaned.report,
        requested=requested,
        queries=int(getattr(fetched, "queries", 0)),
    )


def _empty_tracks() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "flight_id": pd.Series(dtype="int64"),
            "ts": pd.Series(dtype="datetime64[us, UTC]"),
            "lat": pd.Series(dtype="float64"),
            "lon": pd.Series(dtype="float64"),
            "alt_ft": pd.Series(dtype="float64"),
        }
    )


def flight_attribute_rows(tracks: pd.DataFrame) -> pd.DataFrame:
    """One row per flight: the most frequent non-null value of each attribute column, plus the
    first and last position (departure/arrival fallbacks) and times."""
    if tracks.empty:
        return pd.DataFrame({"flight_id": pd.Series(dtype="int64")})
    grouped = tracks.groupby("flight_id", sort=True)
    out = pd.DataFrame(
        {
            "first_ts": grouped["ts"].min(),
            "last_ts": grouped["ts"].max(),
            "points": grouped.size(),
        }
    )
    for column in ATTRIBUTE_COLUMNS:
        if column in tracks.columns:
            values = tracks[["flight_id", column]].dropna()
            values = values[values[column].astype(str).str.strip() != ""]
            if values.empty:
                out[column] = None
                continue
            counts = values.groupby(["flight_id", column], sort=False).size().reset_index(name="n")
            top = counts.sort_values(["flight_id", "n"], ascending=[True, False]).drop_duplicates(
                "flight_id"
            )
            out[column] = top.set_index("flight_id")[column]
    out = out.reset_index()
    out["flight_date"] = pd.to_datetime(out["first_ts"], utc=True).dt.date
    return out


# -- stage 2: crossings --------------------------------------------------------------------


@dataclass
class CrossingStage:
    crossings: pd.DataFrame
    visits: pd.DataFrame
    flights_without_crossings: list[int] = field(default_factory=list)


def aerodrome_points(attrs: pd.DataFrame, airports: pd.DataFrame) -> pd.DataFrame:
    """Origin/destination coordinates per flight (NaN when the aerodrome is unknown)."""
    coords = airports.set_index(airports["icao"].astype(str).str.upper())[["lat", "lon"]]
    out = pd.DataFrame({"flight_id": attrs["flight_id"].astype("int64")})
    for end in ("origin", "destination"):
        codes = (
            attrs[end].astype("string").str.upper()
            if end in attrs.columns
            else pd.Series(pd.NA, index=attrs.index, dtype="string")
        )
        joined = coords.reindex(codes.fillna("").to_numpy())
        out[f"{end}_lat"] = joined["lat"].to_numpy(dtype="float64")
        out[f"{end}_lon"] = joined["lon"].to_numpy(dtype="float64")
    return out


def crossings_stage(
    tracks: pd.DataFrame,
    firs: pd.DataFrame,
    zones: Any,
    *,
    attrs: pd.DataFrame | None = None,
    airports: pd.DataFrame | None = None,
    gap_threshold_s: float = 600.0,
    jitter_s: float = 60.0,
) -> CrossingStage:
    from flight_fees.lib.crossings import compute_crossings
    from flight_fees.lib.zones import zone_visits

    crossings = compute_crossings(tracks, firs, gap_threshold_s=gap_threshold_s, jitter_s=jitter_s)
    aerodromes = (
        aerodrome_points(attrs, airports)
        if attrs is not None and airports is not None and len(attrs)
        else None
    )
    visits = zone_visits(crossings, zones, aerodromes=aerodromes)
    seen = set(crossings["flight_id"].unique().tolist()) if len(crossings) else set()
    without = sorted(int(f) for f in tracks["flight_id"].unique() if f not in seen) if len(tracks) else []
    return CrossingStage(crossings=crossings, visits=visits, flights_without_crossings=without)


# -- stage 4: maps ---------------------------------------------------------------------------


def render_maps_stage(
    tracks: pd.DataFrame,
    crossings: pd.DataFrame,
    firs: pd.DataFrame,
    out_dir: Path,
    *,
    attrs: pd.DataFrame | None = None,
) -> tuple[dict[int, Path], Failures]:
    """A folium map per flight and per country crossed; failures never stop the others."""
    from flight_fees.lib.maps import render_country_maps, render_flight_map

    country_of_fir = dict(zip(firs["fir_id"], firs["country"], strict=False))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[int, Path] = {}
    failures: Failures = {}
    by_flight_crossings = dict(tuple(crossings.groupby("flight_id"))) if len(crossings) else {}
    attr_index = attrs.set_index("flight_id") if attrs is not None and len(attrs) else None
    for fid, track in tracks.groupby("flight_id", sort=True):
        fid = int(fid)
        flight_crossings = by_flight_crossings.get(fid, crossings.iloc[0:0])
        title = None
        if attr_index is not None and fid in attr_index.index:
            row = attr_index.loc[fid]
            title = " ".join(
                str(v) for v in (row.get("callsign"), row.get("registration")) if _present(v)
            ) or None
        try:
            paths[fid] = render_flight_map(
                track, flight_crossings, firs, out_dir / f"{fid}.html", title=title
            )
            render_country_maps(
                track, flight_crossings, firs, out_dir / "countries", country_of_fir=country_of_fir
            )
        except Exception as exc:  # a map is a convenience: report, never block billing
            failures[fid] = ("map_error", f"{type(exc).__name__}: {exc}")
    return paths, failures


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and str(value) != ""


def write_maps_index(day: dt.date, paths: Mapping[int, Path], out: Path) -> Path:
    """An HTML index of the day's flight maps (relative links)."""
    import html

    items = "\n".join(
        f'<li><a href="{html.escape(p.relative_to(out.parent).as_posix())}">{fid}</a></li>'
        for fid, p in sorted(paths.items())
    )
    out.write_text(
        f"<!doctype html><meta charset='utf-8'><title>Flight maps {day}</title>"
        f"<h1>Flight maps {day}</h1><p>{len(paths)} flight(s)</p><ul>{items}</ul>",
        encoding="utf-8",
    )
    return out
