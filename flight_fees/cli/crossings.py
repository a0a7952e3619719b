"""``flight-fees crossings``: FIR crossings of a tracks file.

The lead registers :func:`crossings_command` in the main typer app, e.g.
``app.command("crossings")(crossings_command)``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated, Final, NoReturn

import numpy as np
import pandas as pd
import typer

from flight_fees.lib.airspace.crossings import (
    FirIndex,
    compute_crossings,
    merged_excursions_per_flight,
)
from flight_fees.lib.airspace.firs import FirDataError, FirDataWarning
from flight_fees.lib.airspace.index_store import cached_fir_index, load_firs_cached
from flight_fees.lib.core.values import printable
from flight_fees.lib.tracks.cleaning import check_track_input
from flight_fees.lib.tracks.files import PARQUET_SUFFIXES, TracksFileError, read_tracks

__all__ = ["crossings_command", "write_table"]

#: Inputs with at least this many positions get a progress bar.
PROGRESS_MIN_POINTS: Final[int] = 200_000


def crossings_command(
    tracks: Annotated[
        Path,
        typer.Argument(
            help="Tracks file, Parquet or CSV, with columns flight_id, ts (ISO-8601 UTC or "
            "epoch ms), lat, lon.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Output file: .csv or .parquet.", show_default=False),
    ],
    firs: Annotated[
        Path | None,
        typer.Option(
            "--firs",
            help="FIR file (GeoJSON, GeoPackage, Shapefile); default: the shipped FIR set "
            "(FLIGHT_FEES_FIR_SET: world or europe).",
        ),
    ] = None,
    gap_threshold_s: Annotated[
        float,
        typer.Option(
            "--gap-threshold-s",
            min=0.0,
            help="Seconds without position after which a crossing is flagged interpolated.",
        ),
    ] = 600.0,
    noise_m: Annotated[
        float,
        typer.Option(
            "--noise-m",
            min=0.0,
            help="An excursion (another FIR, or outside every FIR, between two visits of one "
            "FIR) whose positions all stay within this many metres of that FIR is position "
            "noise and merged into it; 92.6 m = ADS-B NACp 8 accuracy; 0 disables.",
        ),
    ] = 92.6,
    jitter_s: Annotated[
        float,
        typer.Option(
            "--jitter-s",
            min=0.0,
            help="Explicit time-based merge (off by default): visits shorter than this "
            "between two visits of the same FIR are merged, repeatedly; may swallow real "
            "visits along borders.",
        ),
    ] = 0.0,
    id_property: Annotated[
        str | None, typer.Option("--id-property", help="FIR id property (default: detect).")
    ] = None,
    name_property: Annotated[
        str | None, typer.Option("--name-property", help="FIR name property (default: detect).")
    ] = None,
    country_property: Annotated[
        str | None,
        typer.Option("--country-property", help="FIR country property (default: detect)."),
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar for large inputs.")
    ] = True,
) -> None:
    """Compute the FIR crossings (one row per FIR visit) of every flight in TRACKS.

    The tracks are cleaned exactly as the pipeline cleans them (duplicate timestamps,
    teleports, flights with too few positions). Positions missing or outside lat/lon ranges,
    unusable flights and positions outside every FIR are reported on stderr, and the command
    then exits with status 1 (the crossings of the rest are still written).
    """
    out_format = _output_format(out)
    try:
        frame = read_tracks(tracks, columns=())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FirDataWarning)
            fir_set = load_firs_cached(  # cached by file content (FIR index store)
                firs,
                id_property=id_property,
                name_property=name_property,
                country_property=country_property,
            )
    except (FirDataError, TracksFileError) as exc:
        _fail(str(exc))
    for warning in caught:
        typer.echo(f"Warning: {printable(warning.message)}", err=True)
    index = cached_fir_index(fir_set)  # built once per FIR set, then loaded from disk
    n_flights = int(frame["flight_id"].nunique())
    checked = check_track_input(frame, index.classify, max_gap_s=gap_threshold_s)
    cleaned = checked.tracks
    if progress and len(cleaned) >= PROGRESS_MIN_POINTS:
        result = _with_progress(cleaned, index, gap_threshold_s, noise_m, jitter_s, n_flights)
    else:
        result = compute_crossings(
            cleaned,
            index,
            gap_threshold_s=gap_threshold_s,
            noise_tolerance_m=noise_m,
            jitter_s=jitter_s,
        )
    try:
        write_table(result, out, out_format)
    except OSError as exc:
        _fail(f"cannot write {out}: {exc}")
    merged = merged_excursions_per_flight(result)
    typer.echo(
        f"{len(result):,} FIR crossing(s) of {result['flight_id'].nunique():,} / {n_flights:,} "
        f"flight(s) ({len(frame):,} positions) written to {printable(out)}; "
        f"{int(merged.sum()):,} excursion(s) merged as position noise in {len(merged):,} "
        "flight(s) (column merged_excursions)"
    )
    for note in checked.notes():
        typer.echo(f"Note: {note}", err=True)
    problems = checked.problems()
    for problem in problems:
        typer.echo(f"Warning: {problem}", err=True)
    if problems:
        _fail(f"{len(problems)} problem(s) in the tracks (see the warnings above)")


def write_table(frame: pd.DataFrame, path: Path, fmt: str | None = None) -> None:
    """Write ``frame`` as CSV (timestamps ISO-8601 UTC, millisecond precision) or Parquet."""
    fmt = fmt or _output_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
        return
    text = frame.copy()
    for col in text.columns:
        if isinstance(text[col].dtype, pd.DatetimeTZDtype):
            values = text[col].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            iso = np.datetime_as_string(values.astype("datetime64[ms]"), unit="ms")
            text[col] = np.char.add(iso.astype(str), "Z")
    text.to_csv(path, index=False)


def _output_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    _fail(f"output file {path} must end in .csv or .parquet", code=2)


def _with_progress(
    frame: pd.DataFrame,
    index: FirIndex,
    gap_threshold_s: float,
    noise_m: float,
    jitter_s: float,
    n_flights: int,
) -> pd.DataFrame:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("FIR crossings (flights)", total=n_flights)
        return compute_crossings(
            frame,
            index,
            gap_threshold_s=gap_threshold_s,
            noise_tolerance_m=noise_m,
            jitter_s=jitter_s,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


def _fail(message: str, code: int = 1) -> NoReturn:
    """The convention of every command (:func:`flight_fees.cli.common.fail`)."""
    from flight_fees.cli.common import fail

    fail(message, code)


if __name__ == "__main__":  # pragma: no cover - convenience: python -m flight_fees.cli.crossings
    app = typer.Typer(add_completion=False)
    app.command()(crossings_command)
    sys.exit(app())
