"""Per-flight HTML maps (folium / Leaflet) of a track, its FIR crossings and the crossed FIRs.

Inputs are the frames of ``docs/ARCHITECTURE.md``: one flight's Tracks rows, its crossings
(``flight_id, visit_index, fir_id, entry_time, exit_time, entry_lat, entry_lon, exit_lat,
exit_lon, distance_km, flown_km, interpolated``) and optionally the FIR set (``fir_id, name,
country, geometry``).

Design notes:

- **Untrusted text.** Every data-derived string (callsign, registration, FIR names, ...) goes
  through :func:`escape_text` before it reaches the page: HTML special characters are escaped,
  and so are the characters that would be live inside folium's JavaScript template literals
  (backtick, ``$``, backslash) and its Jinja templates (braces).
- **Size.** The drawn track keeps at most ``max_points`` positions (default 1,500): the first
  and last one, the two positions around every FIR entry/exit and around every coverage gap,
  plus an even stride of the rest. Coordinates are rounded to 1e-5 degrees (~1 m) and FIR
  polygons simplified to ~0.005 degrees for drawing.
- **Antimeridian.** Longitudes are unwrapped along the track (no jump > 180 degrees between two
  positions), crossing points and FIR polygons are shifted by multiples of 360 degrees onto the
  track's branch, so nothing streaks across the map.
- **Colours.** Each FIR gets a stable colour, ``crc32(fir_id)`` into :data:`PALETTE`; should two
  FIRs of one map collide, the later visited one takes the next free palette colour.
"""

from __future__ import annotations

import html
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
import numpy as np
import pandas as pd
import shapely
from branca.element import Element

__all__ = [
    "PALETTE",
    "escape_text",
    "fir_colour",
    "render_country_maps",
    "render_flight_map",
]

#: distinct colours for FIR crossings (Tableau 20 without the pale tints, plus extras)
PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
    "#e6550d", "#31a354", "#756bb1", "#636363",
)  # fmt: skip

#: default maximum number of drawn track positions
MAX_POINTS = 1_500
_TRACK_COLOUR = "#222222"
_GAP_COLOUR = "#888888"
_COORD_DECIMALS = 5
_FIR_SIMPLIFY_DEG = 0.005
_NA = "\u2014"  # em dash for missing values

_JS_SPECIALS = str.maketrans(
    {"`": "&#96;", "$": "&#36;", "\\": "&#92;", "{": "&#123;", "}": "&#125;"}
)


def escape_text(value: object) -> str:
    """Escape a data-derived value for HTML inside folium's JS / Jinja templates.

    ``None`` / NaN / NaT become an em dash. The result contains no ``<``, ``>``, ``&`` (other
    than entities), quotes, backticks, ``$``, backslashes or braces.
    """
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return _NA
    return html.escape(str(value), quote=True).translate(_JS_SPECIALS)


def fir_colour(fir_id: str) -> str:
    """Stable colour of a FIR (same id -> same colour in every map and run)."""
    return PALETTE[zlib.crc32(str(fir_id).encode("utf-8")) % len(PALETTE)]


def _map_colours(fir_ids: list[str]) -> dict[str, str]:
    """Colours of the FIRs of one map: :func:`fir_colour`, unless another FIR of the same map
    already has it (then the next free palette colour, in order of first visit)."""
    colours: dict[str, str] = {}
    used: set[int] = set()
    for fir_id in fir_ids:
        k = PALETTE.index(fir_colour(fir_id))
        if len(used) < len(PALETTE):
            while k in used:
                k = (k + 1) % len(PALETTE)
        used.add(k)
        colours[fir_id] = PALETTE[k]
    return colours


def _fmt_time(value: object) -> str:
    if value is None:
        return _NA
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        return _NA
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt_km(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _NA
    return _NA if math.isnan(number) else f"{number:,.1f} km"


def _to_us(values: pd.Series | pd.Index | Any) -> np.ndarray:
    """UTC epoch microseconds (int64) of timestamps; naive values are taken as UTC."""
    ts = pd.to_datetime(values, utc=True)
    if isinstance(ts, pd.Timestamp):
        ts = pd.DatetimeIndex([ts])
    return np.asarray(pd.DatetimeIndex(ts).as_unit("us").asi8, dtype=np.int64)


def _near(lon: np.ndarray | float, ref: np.ndarray | float) -> np.ndarray:
    """``lon`` shifted by a multiple of 360 degrees to the branch nearest ``ref``."""
    lon = np.asarray(lon, dtype=float)
    return lon + 360.0 * np.round((np.asarray(ref, dtype=float) - lon) / 360.0)


def _unwrap_lon(lon: np.ndarray) -> np.ndarray:
    """Continuous longitudes along a track, centred so that their mean is within +-180."""
    if lon.size == 0:
        return lon.astype(float)
    unwrapped = np.unwrap(np.asarray(lon, dtype=float), period=360.0)
    return unwrapped - 360.0 * np.round(np.mean(unwrapped) / 360.0)


# --------------------------------------------------------------------------------------------
# prepared inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Track:
    flight_id: int | None
    t_us: np.ndarray
    lat: np.ndarray
    lon: np.ndarray  # unwrapped
    attrs: dict[str, object]

    def lon_at(self, t_us: np.ndarray) -> np.ndarray:
        return np.interp(t_us, self.t_us, self.lon)

    def gap_threshold_us(self) -> float:
        """A step longer than this is a coverage gap (6 x the median step, >= 60 s)."""
        if self.t_us.size < 2:
            return math.inf
        return max(60e6, 6.0 * float(np.median(np.diff(self.t_us))))


_ATTR_COLUMNS = ("callsign", "registration", "aircraft_type", "icao24", "origin", "destination")


def _prepare_track(track: pd.DataFrame) -> _Track:
    missing = {"ts", "lat", "lon"} - set(track.columns)
    if missing:
        raise ValueError(f"track lacks columns {sorted(missing)}")
    flight_id: int | None = None
    if "flight_id" in track.columns:
        ids = pd.unique(track["flight_id"].dropna())
        if len(ids) > 1:
            raise ValueError(f"track holds {len(ids)} flights; pass one flight's rows")
        flight_id = int(ids[0]) if len(ids) else None
    t_us = _to_us(track["ts"])
    lat = track["lat"].to_numpy(dtype=float, na_value=np.nan)
    lon = track["lon"].to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(lat) & np.isfinite(lon) & (t_us != np.iinfo(np.int64).min)
    if not ok.any():
        raise ValueError("track has no valid position")
    order = np.argsort(t_us[ok], kind="stable")
    attrs: dict[str, object] = {}
    for name in _ATTR_COLUMNS:
        if name in track.columns:
            values = track[name].dropna()
            attrs[name] = values.iloc[0] if len(values) else None
    return _Track(
        flight_id=flight_id,
        t_us=t_us[ok][order],
        lat=lat[ok][order],
        lon=_unwrap_lon(lon[ok][order]),
        attrs=attrs,
    )


def _prepare_crossings(crossings: pd.DataFrame | None, track: _Track) -> pd.DataFrame:
    """This flight's crossings ordered by visit, with ``t0/t1`` (us) and unwrapped lons."""
    cols = ["fir_id", "entry_time", "exit_time", "entry_lat", "entry_lon", "exit_lat", "exit_lon"]
    if crossings is None or crossings.empty:
        return pd.DataFrame(columns=[*cols, "t0", "t1"])
    missing = set(cols) - set(crossings.columns)
    if missing:
        raise ValueError(f"crossings lack columns {sorted(missing)}")
    frame = crossings
    if track.flight_id is not None and "flight_id" in frame.columns:
        frame = frame[frame["flight_id"] == track.flight_id]
    sort_by = "visit_index" if "visit_index" in frame.columns else "entry_time"
    frame = frame.sort_values(sort_by, kind="stable").reset_index(drop=True)
    frame = frame.assign(
        fir_id=frame["fir_id"].astype("str"),
        t0=_to_us(frame["entry_time"]),
        t1=_to_us(frame["exit_time"]),
    )
    # crossing points as float (missing -> NaN), longitudes onto the track's branch
    for end, t_col in (("entry", "t0"), ("exit", "t1")):
        ref = track.lon_at(frame[t_col].to_numpy())
        frame[f"{end}_lat"] = frame[f"{end}_lat"].to_numpy(dtype=float, na_value=np.nan)
        frame[f"{end}_lon"] = _near(frame[f"{end}_lon"].to_numpy(dtype=float, na_value=np.nan), ref)
    return frame


def _downsample(track: _Track, must_times_us: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of the positions to draw (see the module docstring)."""
    n = track.t_us.size
    if n <= max_points:
        return np.arange(n)
    keep = np.zeros(n, dtype=bool)
    keep[[0, -1]] = True
    if must_times_us.size:
        pos = np.searchsorted(track.t_us, must_times_us)
        keep[np.clip(pos - 1, 0, n - 1)] = True
        keep[np.clip(pos, 0, n - 1)] = True
    gaps = np.flatnonzero(np.diff(track.t_us) > track.gap_threshold_us())
    keep[gaps] = True
    keep[gaps + 1] = True
    budget = max_points - int(keep.sum())
    if budget > 0:
        keep[:: math.ceil(n / budget)] = True
    return np.flatnonzero(keep)


def _locations(lat: np.ndarray, lon: np.ndarray) -> list[list[float]]:
    return np.column_stack([lat, lon]).round(_COORD_DECIMALS).tolist()


# --------------------------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------------------------


def _fir_lookup(firs: pd.DataFrame | None) -> pd.DataFrame | None:
    if firs is None or firs.empty:
        return None
    missing = {"fir_id", "geometry"} - set(firs.columns)
    if missing:
        raise ValueError(f"firs lack columns {sorted(missing)}")
    return (
        firs.assign(fir_id=firs["fir_id"].astype("str"))
        .drop_duplicates("fir_id")
        .set_index("fir_id")
    )


def _fir_name(fir_table: pd.DataFrame | None, fir_id: str) -> str | None:
    if fir_table is None or "name" not in fir_table.columns or fir_id not in fir_table.index:
        return None
    name = fir_table.at[fir_id, "name"]
    return None if name is None or pd.isna(name) else str(name)


def _draw_fir_polygons(
    group: folium.FeatureGroup,
    geometry: Any,
    ref_lon: float,
    colour: str,
    tooltip: str,
) -> None:
    """Draw ``geometry`` lightly, each part shifted onto the branch of ``ref_lon``."""
    if geometry is None or shapely.is_empty(geometry):
        return
    simple = shapely.simplify(geometry, _FIR_SIMPLIFY_DEG, preserve_topology=True)
    for part in shapely.get_parts(simple):
        if not isinstance(part, shapely.Polygon) or part.is_empty:
            continue
        shift = float(_near(part.centroid.x, ref_lon) - part.centroid.x)
        rings = [part.exterior, *part.interiors]
        locations = [
            _locations(np.asarray(r.coords)[:, 1], np.asarray(r.coords)[:, 0] + shift)
            for r in rings
        ]
        folium.Polygon(
            locations=locations,
            color=colour,
            weight=1,
            opacity=0.6,
            fill=True,
            fill_color=colour,
            fill_opacity=0.06,
            tooltip=folium.Tooltip(tooltip),
        ).add_to(group)


def _crossing_popup(
    row: pd.Series, fir_name: str | None, which: str, point: tuple[float, float] | None = None
) -> str:
    parts = [
        f"<b>{escape_text(which)} FIR {escape_text(row['fir_id'])}</b>",
        escape_text(fir_name) if fir_name is not None else "",
        f"at {point[0]:.5f}, {(point[1] + 180.0) % 360.0 - 180.0:.5f}" if point else "",
        f"entry: {escape_text(_fmt_time(row['entry_time']))}",
        f"exit: {escape_text(_fmt_time(row['exit_time']))}",
        f"distance (entry\u2192exit): {escape_text(_fmt_km(row.get('distance_km')))}",
        f"flown: {escape_text(_fmt_km(row.get('flown_km')))}",
    ]
    interpolated = row.get("interpolated")
    if interpolated is not None and not pd.isna(interpolated) and bool(interpolated):
        parts.append("<i>interpolated across a coverage gap</i>")
    return "<br>".join(p for p in parts if p)


def _header_html(track: _Track, lines: list[str], colours: dict[str, str]) -> str:
    a = track.attrs
    route = f"{escape_text(a.get('origin'))} \u2192 {escape_text(a.get('destination'))}"
    first = f"<b>{escape_text(a.get('callsign'))}</b> &middot; {escape_text(a.get('registration'))}"
    if a.get("aircraft_type") is not None:
        first += f" &middot; {escape_text(a.get('aircraft_type'))}"
    swatches = " ".join(
        f'<span style="color:{c}">&#9632;</span>&nbsp;{escape_text(f)}' for f, c in colours.items()
    )
    body = [first, route]
    body.append(
        f"flight {escape_text(track.flight_id)} &middot; "
        f"{escape_text(_fmt_time(int(track.t_us[0]) * 1000))} \u2192 "
        f"{escape_text(_fmt_time(int(track.t_us[-1]) * 1000))}"
    )
    body.extend(lines)
    body.append(f"FIRs: {swatches}" if colours else "FIRs: <i>no FIR crossing</i>")
    style = (
        "position:fixed;top:10px;left:60px;z-index:9999;background:rgba(255,255,255,0.92);"
        "padding:6px 10px;border:1px solid #999;border-radius:4px;"
        "font:13px/1.4 sans-serif;max-width:60%;"
    )
    return f'<div class="ff-map-title" style="{style}">' + "<br>".join(body) + "</div>"


def _render(
    track: _Track,
    crossings: pd.DataFrame,
    firs: pd.DataFrame | None,
    out_path: Path,
    *,
    header_lines: list[str],
    page_title: str,
    context_track: bool,
    max_points: int,
) -> Path:
    """Shared renderer of the flight and country maps.

    ``context_track``: draw the whole track faintly and fit the view to the crossings (country
    maps) instead of drawing it as the main line (flight maps).
    """
    fir_table = _fir_lookup(firs)
    must = np.concatenate([crossings["t0"].to_numpy(), crossings["t1"].to_numpy()]).astype(np.int64)
    idx = _downsample(track, must, max_points)
    t, lat, lon = track.t_us[idx], track.lat[idx], track.lon[idx]

    fmap = folium.Map(control_scale=True, prefer_canvas=True)
    fmap.get_root().title = page_title  # type: ignore[attr-defined]

    # the track, split at coverage gaps (gaps drawn dashed)
    track_group = folium.FeatureGroup(name="Full track (context)" if context_track else "Track")
    # a drawn step is a gap only if it is one step of the full track (gap edges are kept)
    is_gap = np.diff(track.t_us) > track.gap_threshold_us()
    breaks = np.flatnonzero((np.diff(idx) == 1) & is_gap[idx[:-1]]) + 1
    bounds = np.split(np.arange(t.size), breaks)
    style = (
        {"color": _GAP_COLOUR, "weight": 2, "opacity": 0.6, "dash_array": "2 6"}
        if context_track
        else {"color": _TRACK_COLOUR, "weight": 2, "opacity": 0.8}
    )
    for run in bounds:
        if run.size >= 2:
            folium.PolyLine(_locations(lat[run], lon[run]), **style).add_to(track_group)
        elif run.size == 1:
            folium.CircleMarker([lat[run[0]], lon[run[0]]], radius=1, color=style["color"]).add_to(
                track_group
            )
    for before, after in zip(breaks - 1, breaks, strict=True):
        minutes = (t[after] - t[before]) / 60e6
        folium.PolyLine(
            _locations(lat[[before, after]], lon[[before, after]]),
            color=_GAP_COLOUR,
            weight=2,
            dash_array="6 8",
            tooltip=folium.Tooltip(f"coverage gap ({minutes:.1f} min)"),
        ).add_to(track_group)
    for i, label in ((0, "first position"), (t.size - 1, "last position")):
        key = "origin" if i == 0 else "destination"
        folium.CircleMarker(
            [lat[i], lon[i]],
            radius=4,
            color=_TRACK_COLOUR,
            fill=True,
            fill_opacity=1.0,
            tooltip=folium.Tooltip(
                f"{label}: {escape_text(track.attrs.get(key))} "
                f"{escape_text(_fmt_time(int(t[i]) * 1000))}"
            ),
        ).add_to(track_group)
    track_group.add_to(fmap)

    # FIR polygons + crossing segments, one toggleable group per FIR (labels = legend)
    focus_lat: list[np.ndarray] = []
    focus_lon: list[np.ndarray] = []
    groups: dict[str, folium.FeatureGroup] = {}
    colours = _map_colours(list(dict.fromkeys(crossings["fir_id"].tolist())))
    for fir_id, colour in colours.items():
        name = _fir_name(fir_table, fir_id)
        label = f'<span style="color:{colour}">&#9632;</span> FIR {escape_text(fir_id)}'
        if name is not None:
            label += f" &middot; {escape_text(name)}"
        groups[fir_id] = folium.FeatureGroup(name=label)
        if fir_table is not None and fir_id in fir_table.index:
            visits = crossings[crossings["fir_id"] == fir_id]
            inside = np.zeros(track.t_us.size, dtype=bool)
            for t0, t1 in zip(visits["t0"], visits["t1"], strict=True):
                inside |= (track.t_us >= t0) & (track.t_us <= t1)
            ref = float(np.mean(track.lon[inside])) if inside.any() else float(np.mean(track.lon))
            _draw_fir_polygons(
                groups[fir_id],
                fir_table.at[fir_id, "geometry"],
                ref,
                colour,
                f"FIR {escape_text(fir_id)}" + (f" &middot; {escape_text(name)}" if name else ""),
            )

    for _, row in crossings.iterrows():
        fir_id = row["fir_id"]
        colour = colours[fir_id]
        name = _fir_name(fir_table, fir_id)
        sel = (t >= row["t0"]) & (t <= row["t1"])
        seg_lat, seg_lon = lat[sel], lon[sel]
        entry_ok = np.isfinite(row["entry_lat"]) and np.isfinite(row["entry_lon"])
        exit_ok = np.isfinite(row["exit_lat"]) and np.isfinite(row["exit_lon"])
        if entry_ok:
            seg_lat = np.r_[row["entry_lat"], seg_lat]
            seg_lon = np.r_[row["entry_lon"], seg_lon]
        if exit_ok:
            seg_lat = np.r_[seg_lat, row["exit_lat"]]
            seg_lon = np.r_[seg_lon, row["exit_lon"]]
        group = groups[fir_id]
        popup_html = _crossing_popup(row, name, "Visit of")
        if seg_lat.size >= 2:
            folium.PolyLine(
                _locations(seg_lat, seg_lon),
                color=colour,
                weight=5,
                opacity=0.9,
                tooltip=folium.Tooltip(f"FIR {escape_text(fir_id)}"),
                popup=folium.Popup(popup_html, max_width=320),
            ).add_to(group)
        focus_lat.append(seg_lat)
        focus_lon.append(seg_lon)
        for which, ok, plat, plon in (
            ("Entry into", entry_ok, row["entry_lat"], row["entry_lon"]),
            ("Exit from", exit_ok, row["exit_lat"], row["exit_lon"]),
        ):
            if not ok:
                continue
            folium.CircleMarker(
                [round(float(plat), _COORD_DECIMALS), round(float(plon), _COORD_DECIMALS)],
                radius=5,
                color="#ffffff",
                weight=1.5,
                fill=True,
                fill_color=colour,
                fill_opacity=1.0,
                tooltip=folium.Tooltip(f"{which} FIR {escape_text(fir_id)}"),
                popup=folium.Popup(
                    _crossing_popup(row, name, which, (float(plat), float(plon))), max_width=320
                ),
            ).add_to(group)
    for group in groups.values():
        group.add_to(fmap)

    # view, header, layer control
    if context_track and focus_lat:
        all_lat, all_lon = np.concatenate(focus_lat), np.concatenate(focus_lon)
    else:
        all_lat, all_lon = lat, lon
    fmap.fit_bounds(
        [
            [float(np.min(all_lat)), float(np.min(all_lon))],
            [float(np.max(all_lat)), float(np.max(all_lon))],
        ],
        padding=(20, 20),
    )
    fmap.get_root().html.add_child(Element(_header_html(track, header_lines, colours)))  # type: ignore[attr-defined]
    folium.LayerControl(collapsed=False).add_to(fmap)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fmap.save(str(out_path))
    return out_path


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def render_flight_map(
    track: pd.DataFrame,
    crossings: pd.DataFrame | None,
    firs: pd.DataFrame | None,
    out_path: Path,
    *,
    title: str | None = None,
    max_points: int = MAX_POINTS,
) -> Path:
    """Write the HTML map of one flight and return ``out_path``.

    Args:
        track: the Tracks rows of one flight (any order; NaN positions ignored).
        crossings: its crossings (rows of other flights are ignored); empty/None -> the track
            alone.
        firs: FIR set; the crossed FIRs are drawn lightly. ``None`` -> no polygons.
        out_path: HTML file to write (parent directories are created).
        title: optional extra line of the title box (untrusted text: escaped).
        max_points: maximum number of drawn track positions (plus mandatory ones).
    """
    prepared = _prepare_track(track)
    cross = _prepare_crossings(crossings, prepared)
    lines = [escape_text(title)] if title else []
    page_title = f"Flight {prepared.flight_id} {prepared.attrs.get('callsign') or ''}".strip()
    return _render(
        prepared,
        cross,
        firs,
        out_path,
        header_lines=lines,
        page_title=escape_text(page_title),
        context_track=False,
        max_points=max_points,
    )


_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")


def render_country_maps(
    track: pd.DataFrame,
    crossings: pd.DataFrame | None,
    firs: pd.DataFrame | None,
    out_dir: Path,
    *,
    country_of_fir: Mapping[str, str] | None = None,
    max_points: int = MAX_POINTS,
) -> dict[str, Path]:
    """One HTML map per country whose FIRs the flight crossed.

    Each map highlights the part of the track inside that country's FIRs (its crossings, in
    FIR colours, with entry/exit markers) over the faint whole track, zoomed on that part.
    Files are ``<out_dir>/<flight_id>_<country>.html`` (country sanitised to
    ``[A-Za-z0-9_-]``). The country of a FIR comes from ``country_of_fir``, else from the
    ``country`` column of ``firs``; a crossed FIR without a country raises ``ValueError``.

    Returns ``{country: path}`` in order of first visit; ``{}`` without crossings.
    """
    prepared = _prepare_track(track)
    cross = _prepare_crossings(crossings, prepared)
    if cross.empty:
        return {}
    mapping: dict[str, str] = {}
    if firs is not None and not firs.empty and "country" in firs.columns:
        mapping.update(
            zip(firs["fir_id"].astype("str"), firs["country"].astype("str"), strict=True)
        )
    if country_of_fir is not None:
        mapping.update({str(k): str(v) for k, v in country_of_fir.items()})
    unknown = sorted(set(cross["fir_id"]) - set(mapping))
    if unknown:
        raise ValueError(f"no country known for FIR(s) {unknown}")
    countries = cross["fir_id"].map(mapping)
    out_dir = Path(out_dir)
    stem = "unknown" if prepared.flight_id is None else str(prepared.flight_id)
    result: dict[str, Path] = {}
    for country in dict.fromkeys(countries.tolist()):
        subset = cross[countries == country].reset_index(drop=True)
        safe = _SAFE_NAME.sub("_", country) or "_"
        callsign = prepared.attrs.get("callsign") or ""
        result[country] = _render(
            prepared,
            subset,
            firs,
            out_dir / f"{stem}_{safe}.html",
            header_lines=[f"<b>Country: {escape_text(country)}</b>"],
            page_title=escape_text(f"Flight {stem} {callsign} \u2013 {country}"),
            context_track=True,
            max_points=max_points,
        )
    return result
