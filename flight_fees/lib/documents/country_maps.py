"""Per-country HTML maps: the part of a flight inside one country's FIRs, over the faint whole
track (the pages and drawing data of :mod:`flight_fees.lib.documents.maps`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from flight_fees.lib.documents.maps import (
    MAX_POINTS,
    FirShapes,
    MapAssets,
    _page,
    _prepare_crossings,
    _prepare_track,
    _write,
    escape_text,
    fir_shapes,
)

__all__ = ["country_map_html", "map_countries", "render_country_maps", "safe_country_name"]


def _country_mapping(
    shapes: FirShapes | None, country_of_fir: Mapping[str, str] | None
) -> dict[str, str]:
    mapping: dict[str, str] = {}
    if shapes is not None:
        mapping.update({f: c for f, c in shapes.countries.items() if c is not None})
    if country_of_fir is not None:
        mapping.update({str(k): str(v) for k, v in country_of_fir.items()})
    return mapping


def map_countries(
    crossings: pd.DataFrame | None,
    firs: pd.DataFrame | FirShapes | None,
    *,
    country_of_fir: Mapping[str, str] | None = None,
) -> list[str]:
    """The countries whose FIRs the crossings visit, in order of first visit (a FIR without a
    known country raises ``ValueError``)."""
    if crossings is None or crossings.empty:
        return []
    order = "visit_index" if "visit_index" in crossings.columns else "entry_time"
    fir_ids = crossings.sort_values(order, kind="stable")["fir_id"].astype(str)
    mapping = _country_mapping(fir_shapes(firs), country_of_fir)
    unknown = sorted(set(fir_ids) - set(mapping))
    if unknown:
        raise ValueError(f"no country known for FIR(s) {unknown}")
    return list(dict.fromkeys(mapping[f] for f in fir_ids))


def country_map_html(
    track: pd.DataFrame,
    crossings: pd.DataFrame | None,
    firs: pd.DataFrame | FirShapes | None,
    country: str,
    *,
    country_of_fir: Mapping[str, str] | None = None,
    lines: Sequence[str] = (),
    max_points: int = MAX_POINTS,
    assets: MapAssets | None = None,
) -> str:
    """The map of the part of a flight inside one country's FIRs: its crossings (in FIR
    colours, with entry/exit markers) over the faint whole track, zoomed on that part.

    The country of a FIR comes from ``country_of_fir``, else from the FIR set's ``country``;
    ``ValueError`` if the flight did not visit ``country`` or a crossed FIR has no country.
    """
    shapes = fir_shapes(firs)
    prepared = _prepare_track(track)
    cross = _prepare_crossings(crossings, prepared)
    mapping = _country_mapping(shapes, country_of_fir)
    unknown = sorted(set(cross["fir_id"]) - set(mapping))
    if unknown:
        raise ValueError(f"no country known for FIR(s) {unknown}")
    subset = cross[cross["fir_id"].map(mapping) == country].reset_index(drop=True)
    if subset.empty:
        raise ValueError(f"flight {prepared.flight_id} did not cross a FIR of {country!r}")
    stem = "unknown" if prepared.flight_id is None else str(prepared.flight_id)
    callsign = prepared.attrs.get("callsign") or ""
    return _page(
        prepared,
        subset,
        shapes,
        header_lines=[f"<b>Country: {escape_text(country)}</b>", *lines],
        page_title=escape_text(f"Flight {stem} {callsign} \u2013 {country}"),
        context_track=True,
        max_points=max_points,
        assets=assets or MapAssets(),
    )


_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")


def safe_country_name(country: str) -> str:
    """``country`` reduced to ``[A-Za-z0-9_-]`` (for file names)."""
    return _SAFE_NAME.sub("_", country) or "_"


def render_country_maps(
    track: pd.DataFrame,
    crossings: pd.DataFrame | None,
    firs: pd.DataFrame | FirShapes | None,
    out_dir: Path,
    *,
    country_of_fir: Mapping[str, str] | None = None,
    max_points: int = MAX_POINTS,
    assets: MapAssets | None = None,
) -> dict[str, Path]:
    """One HTML map per country whose FIRs the flight crossed (:func:`country_map_html`).

    Files are ``<out_dir>/<flight_id>_<country>.html`` (country sanitised to
    ``[A-Za-z0-9_-]``). Returns ``{country: path}`` in order of first visit; ``{}`` without
    crossings.
    """
    shapes = fir_shapes(firs)
    prepared = _prepare_track(track)
    cross = _prepare_crossings(crossings, prepared)
    countries = map_countries(cross, shapes, country_of_fir=country_of_fir)
    stem = "unknown" if prepared.flight_id is None else str(prepared.flight_id)
    return {
        country: _write(
            Path(out_dir) / f"{stem}_{safe_country_name(country)}.html",
            country_map_html(
                track,
                cross,
                shapes,
                country,
                country_of_fir=country_of_fir,
                max_points=max_points,
                assets=assets,
            ),
        )
        for country in countries
    }
