"""``flight-fees tracks``: fetch tracks through a track source, show and optionally save them."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from flight_fees.cli.common import EXIT_USAGE, SafeConsole, fail
from flight_fees.lib.ops.queue import QueueError, parse_flight_id
from flight_fees.lib.tracks import (
    SOURCE_KINDS,
    TrackFetchResult,
    TrackSourceError,
    clean_tracks,
    make_track_source,
)
from flight_fees.lib.tracks.cleaning import CleaningResult

OUTPUT_SUFFIXES = (".csv", ".parquet", ".pq")


def _parse_day(day: str | None) -> dt.date | None:
    if day is None:
        return None
    try:
        return dt.date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter(f"not a date (YYYY-MM-DD): {day!r}", param_hint="--day") from None


def _per_flight(result: TrackFetchResult, cleaning: CleaningResult) -> pd.DataFrame:
    """One row per flight: fetched points, time span, cleaning report, failure."""
    tracks = result.tracks
    fetched = (
        tracks.groupby("flight_id", sort=True)["ts"].agg(points="size", first="min", last="max")
        if not tracks.empty
        else pd.DataFrame(columns=["points", "first", "last"])
    )
    report = cleaning.report.set_index("flight_id")
    ids = sorted(set(fetched.index.tolist()) | set(result.failures))
    table = fetched.reindex(ids).join(report, how="left")
    failures = {**result.failures, **cleaning.failures}
    table["status"] = [failures[f].category if f in failures else "ok" for f in ids]
    table["message"] = [failures[f].message if f in failures else "" for f in ids]
    return table


def _flags(row: pd.Series) -> str:
    if pd.isna(row.get("points_in")):
        return ""
    parts = []
    for column, label in (
        ("duplicates_dropped", "dup"),
        ("out_of_range_dropped", "range"),
        ("teleports_dropped", "teleport"),
    ):
        if row[column]:
            parts.append(f"{label} -{int(row[column])}")
    if row["gaps"]:
        parts.append(f"gaps {int(row['gaps'])} (max {row['max_gap_s']:.0f} s)")
    if row["too_few_points"]:
        parts.append("too few points")
    return ", ".join(parts) or "clean"


def _span(delta: pd.Timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _write(frame: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    else:
        frame.to_parquet(out, index=False)


def tracks_command(
    flight_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Flight ids; none with --day: every flight departing that day."),
    ] = None,
    day: Annotated[str | None, typer.Option("--day", help="UTC departure day YYYY-MM-DD.")] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="pinot | parquet (default: pinot if PINOT_HTTP_BROKER_URL is set, else parquet).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Write the cleaned points to .csv or .parquet."),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option("--store", help="Parquet store root (default $FLIGHT_FEES_HOME/tracks)."),
    ] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="With -o: write the points as fetched, not cleaned.")
    ] = False,
) -> None:
    """Fetch tracks and show, per flight, points, time span, cleaning flags and errors.

    Exits with status 1 when any flight failed (fetch error or unusable track).
    """
    console = SafeConsole()
    try:
        ids = [parse_flight_id(f) for f in flight_ids or []]
    except QueueError as exc:
        raise typer.BadParameter(str(exc), param_hint="FLIGHT_IDS") from None
    the_day = _parse_day(day)
    if not ids and the_day is None:
        raise typer.BadParameter("give flight ids and/or --day", param_hint="FLIGHT_IDS")
    if source is not None and source.lower() not in SOURCE_KINDS:
        raise typer.BadParameter(f"one of {', '.join(SOURCE_KINDS)}", param_hint="--source")
    if out is not None and out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise typer.BadParameter(
            f"output must end in {', '.join(OUTPUT_SUFFIXES)}", param_hint="--out"
        )

    t0 = time.perf_counter()
    try:
        track_source = make_track_source(source, store=store)
    except (TrackSourceError, ValueError) as exc:
        fail(f"cannot configure the track source: {exc}", EXIT_USAGE)
    try:
        if ids:
            result = track_source.fetch(ids, day=the_day)
        else:
            assert the_day is not None
            result = track_source.fetch_day(the_day)
    except TrackSourceError as exc:
        fail(f"{track_source.name}: {exc}")
    finally:
        track_source.close()
    cleaning = clean_tracks(result.tracks)
    elapsed = time.perf_counter() - t0

    per_flight = _per_flight(result, cleaning)
    table = Table(title=f"tracks from {track_source.name}", show_lines=False)
    for header, justify in (
        ("flight", "right"),
        ("points", "right"),
        ("kept", "right"),
        ("first (UTC)", "left"),
        ("span", "right"),
        ("cleaning", "left"),
        ("status", "left"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for flight_id, row in per_flight.iterrows():
        has_points = not pd.isna(row["points"])
        span = (row["last"] - row["first"]) if has_points else None
        status = row["status"]
        style = "green" if status == "ok" else "red"
        table.add_row(
            str(flight_id),
            str(int(row["points"])) if has_points else "0",
            str(int(row["points_out"])) if not pd.isna(row.get("points_out")) else "-",
            row["first"].strftime("%Y-%m-%d %H:%M:%S") if has_points else "-",
            _span(span) if span is not None else "-",
            _flags(row),
            f"[{style}]{status}[/{style}]" + (f" {row['message']}" if row["message"] else ""),
        )
    console.print(table)
    failed = int((per_flight["status"] != "ok").sum())
    console.print(
        f"{len(per_flight)} flights, {len(per_flight) - failed} ok, {failed} failed; "
        f"{result.queries} source queries, {elapsed:.2f} s"
    )
    if out is not None:
        frame = result.tracks if raw else cleaning.tracks
        _write(frame, out)
        console.print(f"wrote {len(frame)} points to {out}")
    if failed:
        fail(f"{failed} of {len(per_flight)} flight(s) failed")
