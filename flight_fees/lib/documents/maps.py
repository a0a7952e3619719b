"""Per-flight HTML maps (Leaflet, offline) of a track, its FIR crossings and the crossed FIRs.

Inputs are the frames of ``docs/ARCHITECTURE.md``: one flight's Tracks rows, its crossings
(``flight_id, visit_index, fir_id, entry_time, exit_time, entry_lat, entry_lon, exit_lat,
exit_lon, distance_km, flown_km, interpolated``) and optionally the FIR set (``fir_id, name,
country, geometry``) or its drawing-ready form :class:`FirShapes`.

A map is one small HTML page: the drawing data as JSON in a ``<script type="application/json">``
element (never executed), Leaflet and ``static/flight_map.js`` to draw it, and an offline
background (Natural Earth 1:110m country outlines). Everything comes from
``flight_fees/static/`` (see its ``NOTICE.md``): either referenced under a URL prefix (the
document server, ``flight-fees serve``: a map is then ~30-60 KB) or inlined (a self-contained
file that works from disk with no network). An optional tile layer is added when configured
(:func:`map_assets_from_env`, ``FLIGHT_FEES_MAP_TILE_URL``).
The per-country maps (the part of a flight inside one country) are in
:mod:`flight_fees.lib.documents.country_maps`.

Design notes:

- **Untrusted text.** Every data-derived string (callsign, registration, FIR names, ...) goes
  through :func:`escape_text` before it reaches the page: HTML special characters are escaped,
  and so are backtick, ``$``, backslash and braces (inert in any template or script context).
  The JSON payload additionally encodes ``<``/``>`` as ``\\u003c``/``\\u003e``, so it can never
  close its ``<script>`` element.
- **Size.** The drawn track keeps at most ``max_points`` positions (default 1,500): the first
  and last one, the two positions around every FIR entry/exit and around every coverage gap,
  plus an even stride of the rest. Track coordinates are rounded to 1e-5 degrees (~1 m).
- **FIR polygons** are simplified to ~0.005 degrees once per FIR set (:func:`fir_shapes`, cached
  in memory), rounded to 1e-3 degrees, and only the crossed FIRs are drawn.
- **Antimeridian.** Longitudes are unwrapped along the track (no jump > 180 degrees between two
  positions), crossing points and FIR polygons are shifted by multiples of 360 degrees onto the
  track's branch, so nothing streaks across the map.
- **Colours.** Each FIR gets a stable colour, ``crc32(fir_id)`` into :data:`PALETTE`; should two
  FIRs of one map collide, the later visited one takes the next free palette colour.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import threading
import weakref
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, SupportsFloat

import numpy as np
import pandas as pd
import shapely

from flight_fees.lib.core.frames import frame_records
from flight_fees.lib.core.settings import STATIC_DIR as _STATIC_DIR
from flight_fees.lib.core.timeutil import as_utc_timestamp

__all__ = [
    "PALETTE",
    "STATIC_DIR",
    "TILE_ATTRIBUTION_ENV",
    "TILE_URL_ENV",
    "FirShapes",
    "MapAssets",
    "escape_text",
    "fir_colour",
    "fir_shapes",
    "flight_map_html",
    "map_assets_from_env",
    "render_flight_map",
]

#: distinct colours for FIR crossings (Tableau 20 without the pale tints, plus extras)
PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
    "#e6550d", "#31a354", "#756bb1", "#636363",
)  # fmt: skip

#: browser assets shipped with the package (Leaflet, basemap, flight_map.js; see NOTICE.md)
STATIC_DIR = _STATIC_DIR
#: optional background tiles for those with internet, e.g. https://tile.example/{z}/{x}/{y}.png
TILE_URL_ENV = "FLIGHT_FEES_MAP_TILE_URL"
TILE_ATTRIBUTION_ENV = "FLIGHT_FEES_MAP_TILE_ATTRIBUTION"
#: bump when the page layout or the payload changes (part of cache keys)
RENDERER_VERSION = 2

#: default maximum number of drawn track positions
MAX_POINTS = 1_500
_TRACK_COLOUR = "#222222"
_GAP_COLOUR = "#888888"
_COORD_DECIMALS = 5
_FIR_DECIMALS = 3
_FIR_SIMPLIFY_DEG = 0.005
_NA = "\u2014"  # em dash for missing values

_JS_SPECIALS = str.maketrans(
    {"`": "&#96;", "$": "&#36;", "\\": "&#92;", "{": "&#123;", "}": "&#125;"}
)


def escape_text(value: object) -> str:
    """Escape a data-derived value for HTML (inert in script and template contexts too).

    ``None`` / NaN / NaT become an em dash. The result contains no ``<``, ``>``, ``&`` (other
    than entities), quotes, backticks, ``$``, backslashes or braces.
    """
    # pandas-stubs type isna's argument as a closed list of scalar types, not any object
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):  # type: ignore[call-overload]
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
    ts = as_utc_timestamp(value)
    if ts is pd.NaT:
        return _NA
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt_km(value: object) -> str:
    if not isinstance(value, SupportsFloat | str):
        return _NA
    try:
        number = float(value)
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
# FIR shapes: simplified once per FIR set
# --------------------------------------------------------------------------------------------


@dataclass
class FirShapes:
    """A FIR set ready for drawing: geometries simplified once (~0.005 degrees), names and
    countries by ``fir_id``; the parts of a FIR are turned into rounded rings on first use and
    kept. Build with :func:`fir_shapes` (cached per FIR frame)."""

    geometry: dict[str, Any]
    names: dict[str, str | None]
    countries: dict[str, str | None]
    _parts: dict[str, list[tuple[float, list[np.ndarray]]]] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, firs: pd.DataFrame) -> FirShapes:
        missing = {"fir_id", "geometry"} - set(firs.columns)
        if missing:
            raise ValueError(f"firs lack columns {sorted(missing)}")
        frame = firs.assign(fir_id=firs["fir_id"].astype("str")).drop_duplicates("fir_id")
        ids = frame["fir_id"].tolist()
        simple = shapely.simplify(
            np.asarray(frame["geometry"].to_numpy(), dtype=object),
            _FIR_SIMPLIFY_DEG,
            preserve_topology=True,
        )

        def column(name: str) -> dict[str, str | None]:
            if name not in frame.columns:
                return dict.fromkeys(ids)
            return {
                f: (None if v is None or pd.isna(v) else str(v))
                for f, v in zip(ids, frame[name], strict=True)
            }

        return cls(
            geometry=dict(zip(ids, simple, strict=True)),
            names=column("name"),
            countries=column("country"),
        )

    def __contains__(self, fir_id: object) -> bool:
        return fir_id in self.geometry

    def parts(self, fir_id: str) -> list[tuple[float, list[np.ndarray]]]:
        """``(centroid lon, [exterior, *interiors])`` per polygon of the FIR, rings as (n, 2)
        lon/lat arrays."""
        hit = self._parts.get(fir_id)
        if hit is None:
            hit = []
            geometry = self.geometry.get(fir_id)
            if geometry is not None and not shapely.is_empty(geometry):
                for part in shapely.get_parts(geometry):
                    if not isinstance(part, shapely.Polygon) or part.is_empty:
                        continue
                    rings = [np.asarray(r.coords) for r in (part.exterior, *part.interiors)]
                    hit.append((float(part.centroid.x), rings))
            self._parts[fir_id] = hit
        return hit


_SHAPES: dict[int, tuple[weakref.ref[pd.DataFrame], FirShapes]] = {}
_SHAPES_LOCK = threading.Lock()


def fir_shapes(firs: pd.DataFrame | FirShapes | None) -> FirShapes | None:
    """The :class:`FirShapes` of a FIR frame, built once per frame object and kept while the
    frame lives (so a process that keeps its FIR set simplifies it once)."""
    if firs is None or isinstance(firs, FirShapes):
        return firs
    if firs.empty:
        return None
    key = id(firs)
    with _SHAPES_LOCK:
        hit = _SHAPES.get(key)
        if hit is not None and hit[0]() is firs:
            return hit[1]
    shapes = FirShapes.from_frame(firs)
    with _SHAPES_LOCK:
        for stale in [k for k, (ref, _) in _SHAPES.items() if ref() is None]:
            del _SHAPES[stale]
        _SHAPES[key] = (weakref.ref(firs), shapes)
    return shapes


# --------------------------------------------------------------------------------------------
# page assets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapAssets:
    """Where a map page gets Leaflet, the basemap and ``flight_map.js``.

    ``static_url``: URL prefix of ``flight_fees/static`` (e.g. ``/static`` on the document
    server); ``None`` inlines everything (a self-contained file). ``tile_url``: optional
    ``http(s)://.../{z}/{x}/{y}.png`` background for those with internet.
    """

    static_url: str | None = None
    tile_url: str | None = None
    tile_attribution: str | None = None

    def __post_init__(self) -> None:
        if self.tile_url and not re.match(r"^https?://[^\s\"'<>]+$", self.tile_url):
            raise ValueError(f"tile URL must be http(s)://...: {self.tile_url!r}")
        if self.static_url is not None and not re.match(r"^[A-Za-z0-9_./:-]*$", self.static_url):
            raise ValueError(f"unsafe static URL prefix {self.static_url!r}")

    def key(self) -> str:
        return f"{self.static_url}|{self.tile_url}|{self.tile_attribution}"


def map_assets_from_env(static_url: str | None = "/static") -> MapAssets:
    """:class:`MapAssets` with the tile layer of ``FLIGHT_FEES_MAP_TILE_URL`` (and
    ``FLIGHT_FEES_MAP_TILE_ATTRIBUTION``), if set."""
    tile = os.environ.get(TILE_URL_ENV, "").strip() or None
    attribution = os.environ.get(TILE_ATTRIBUTION_ENV, "").strip() or None
    return MapAssets(static_url=static_url, tile_url=tile, tile_attribution=attribution)


_STATIC_SCRIPTS = ("leaflet/leaflet.js", "basemap/countries-110m.js", "flight_map.js")
_STATIC_CACHE: dict[str, str] = {}


def _static_text(name: str) -> str:
    text = _STATIC_CACHE.get(name)
    if text is None:
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        _STATIC_CACHE[name] = text
    return text


def _asset_tags(assets: MapAssets) -> tuple[str, str]:
    """(``<head>`` stylesheet tag, end-of-body script tags)."""
    if assets.static_url is None:
        head = f"<style>{_static_text('leaflet/leaflet.css')}</style>"
        body = "".join(f"<script>{_static_text(name)}</script>" for name in _STATIC_SCRIPTS)
        return head, body
    base = assets.static_url.rstrip("/")
    head = f'<link rel="stylesheet" href="{base}/leaflet/leaflet.css">'
    body = "".join(f'<script src="{base}/{name}"></script>' for name in _STATIC_SCRIPTS)
    return head, body


def _json_payload(payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


_PAGE_CSS = (
    "html,body{height:100%;margin:0}"
    "#ff-map{position:absolute;inset:0;background:#dbe7f0}"
    ".ff-box{position:absolute;z-index:1000;background:rgba(255,255,255,.93);padding:6px 10px;"
    "border:1px solid #999;border-radius:4px;font:13px/1.4 sans-serif}"
    ".ff-map-title{top:10px;left:60px;max-width:55%}"
    ".ff-legend{bottom:40px;left:10px}"
    ".ff-legend i{display:inline-block;width:22px;height:0;margin-right:6px;"
    "vertical-align:middle;border-top:3px solid}"
    ".ff-legend b.dot{display:inline-block;width:9px;height:9px;border-radius:50%;"
    "margin:0 8px 0 6px;border:1px solid #fff;box-shadow:0 0 0 1px #555}"
    ".ff-noscript{position:absolute;top:45%;width:100%;text-align:center;"
    "font:15px sans-serif;color:#a00}"
)


def _legend_html(colours: Mapping[str, str], shapes: FirShapes | None, context: bool) -> str:
    rows = [
        f'<i style="border-color:{_GAP_COLOUR if context else _TRACK_COLOUR}"></i>'
        + ("whole track (context)" if context else "track"),
        f'<i style="border-top-style:dashed;border-color:{_GAP_COLOUR}"></i>coverage gap',
        '<b class="dot" style="background:#555"></b>FIR entry / exit',
    ]
    for fir_id, colour in colours.items():
        name = shapes.names.get(fir_id) if shapes is not None else None
        label = f"FIR {escape_text(fir_id)}" + (f" &middot; {escape_text(name)}" if name else "")
        rows.append(f'<i style="border-width:5px;border-color:{colour}"></i>{label}')
    if not colours:
        rows.append("<i style='border:0'></i><em>no FIR crossing</em>")
    return '<div class="ff-box ff-legend">' + "<br>".join(rows) + "</div>"


def _header_html(track: _Track, lines: Sequence[str], colours: Mapping[str, str]) -> str:
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
    return '<div class="ff-box ff-map-title">' + "<br>".join(body) + "</div>"


# --------------------------------------------------------------------------------------------
# drawing data
# --------------------------------------------------------------------------------------------


def _crossing_popup(
    row: Mapping[str, Any], fir_name: str | None, which: str, point: tuple[float, float] | None
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


def _ring_list(ring: np.ndarray, shift: float) -> list[list[float]]:
    return np.column_stack([ring[:, 1], ring[:, 0] + shift]).round(_FIR_DECIMALS).tolist()


def _fir_polygons(shapes: FirShapes, fir_id: str, ref_lon: float) -> list[list[list[list[float]]]]:
    """The FIR's polygons as Leaflet rings (lat, lon), each part shifted onto ``ref_lon``'s
    branch."""
    out = []
    for centroid_x, rings in shapes.parts(fir_id):
        shift = float(_near(centroid_x, ref_lon) - centroid_x)
        out.append([_ring_list(r, shift) for r in rings])
    return out


def _page(
    track: _Track,
    crossings: pd.DataFrame,
    shapes: FirShapes | None,
    *,
    header_lines: Sequence[str],
    page_title: str,
    context_track: bool,
    max_points: int,
    assets: MapAssets,
) -> str:
    """Shared page of the flight and country maps.

    ``context_track``: draw the whole track faintly and fit the view to the crossings (country
    maps) instead of drawing it as the main line (flight maps).
    """
    must = np.concatenate([crossings["t0"].to_numpy(), crossings["t1"].to_numpy()]).astype(np.int64)
    idx = _downsample(track, must, max_points)
    t, lat, lon = track.t_us[idx], track.lat[idx], track.lon[idx]

    # the track, split at coverage gaps (a drawn step is a gap only if it is one step of the
    # full track: gap edges are kept by the downsampling)
    is_gap = np.diff(track.t_us) > track.gap_threshold_us()
    breaks = np.flatnonzero((np.diff(idx) == 1) & is_gap[idx[:-1]]) + 1
    runs = [_locations(lat[r], lon[r]) for r in np.split(np.arange(t.size), breaks) if r.size]
    gaps = [
        {
            "line": _locations(lat[[b, a]], lon[[b, a]]),
            "tip": f"coverage gap ({(t[a] - t[b]) / 60e6:.1f} min)",
        }
        for b, a in zip(breaks - 1, breaks, strict=True)
    ]
    ends = [
        {
            "at": _locations(lat[[i]], lon[[i]])[0],
            "tip": f"{label}: {escape_text(track.attrs.get(key))} "
            f"{escape_text(_fmt_time(int(t[i]) * 1000))}",
        }
        for i, label, key in (
            (0, "first position", "origin"),
            (t.size - 1, "last position", "destination"),
        )
    ]

    # FIR polygons + crossing segments + entry/exit markers, one toggleable group per FIR
    colours = _map_colours(list(dict.fromkeys(crossings["fir_id"].tolist())))
    firs_out: dict[str, dict[str, Any]] = {}
    for fir_id, colour in colours.items():
        name = shapes.names.get(fir_id) if shapes is not None else None
        tip = f"FIR {escape_text(fir_id)}" + (f" &middot; {escape_text(name)}" if name else "")
        polygons: list[Any] = []
        if shapes is not None and fir_id in shapes:
            visits = crossings[crossings["fir_id"] == fir_id]
            inside = np.zeros(track.t_us.size, dtype=bool)
            for t0, t1 in zip(visits["t0"], visits["t1"], strict=True):
                inside |= (track.t_us >= t0) & (track.t_us <= t1)
            ref = float(np.mean(track.lon[inside] if inside.any() else track.lon))
            polygons = _fir_polygons(shapes, fir_id, ref)
        firs_out[fir_id] = {
            "id": escape_text(fir_id),
            "colour": colour,
            "label": f'<span style="color:{colour}">&#9632;</span> {tip}',
            "tip": tip,
            "polygons": polygons,
            "segments": [],
            "markers": [],
        }
    focus_lat: list[np.ndarray] = []
    focus_lon: list[np.ndarray] = []
    for row in frame_records(crossings):
        fir_id = row["fir_id"]
        entry = firs_out[fir_id]
        name = shapes.names.get(fir_id) if shapes is not None else None
        sel = (t >= row["t0"]) & (t <= row["t1"])
        seg_lat, seg_lon = lat[sel], lon[sel]
        entry_ok = bool(np.isfinite(row["entry_lat"]) and np.isfinite(row["entry_lon"]))
        exit_ok = bool(np.isfinite(row["exit_lat"]) and np.isfinite(row["exit_lon"]))
        if entry_ok:
            seg_lat = np.r_[row["entry_lat"], seg_lat]
            seg_lon = np.r_[row["entry_lon"], seg_lon]
        if exit_ok:
            seg_lat = np.r_[seg_lat, row["exit_lat"]]
            seg_lon = np.r_[seg_lon, row["exit_lon"]]
        if seg_lat.size >= 2:
            entry["segments"].append(
                {
                    "line": _locations(seg_lat, seg_lon),
                    "popup": _crossing_popup(row, name, "Visit of", None),
                }
            )
        focus_lat.append(seg_lat)
        focus_lon.append(seg_lon)
        for which, ok, plat, plon in (
            ("Entry into", entry_ok, row["entry_lat"], row["entry_lon"]),
            ("Exit from", exit_ok, row["exit_lat"], row["exit_lon"]),
        ):
            if ok:
                point = (float(plat), float(plon))
                entry["markers"].append(
                    {
                        "at": [round(point[0], _COORD_DECIMALS), round(point[1], _COORD_DECIMALS)],
                        "tip": f"{which} FIR {escape_text(fir_id)}",
                        "popup": _crossing_popup(row, name, which, point),
                    }
                )

    if context_track and focus_lat:
        all_lat, all_lon = np.concatenate(focus_lat), np.concatenate(focus_lon)
    else:
        all_lat, all_lon = lat, lon
    payload = {
        "version": RENDERER_VERSION,
        "flight_id": track.flight_id,
        "context": context_track,
        "track_label": "Full track (context)" if context_track else "Track",
        "track": runs,
        "gaps": gaps,
        "ends": ends,
        "firs": list(firs_out.values()),
        "bounds": [
            [float(np.min(all_lat)), float(np.min(all_lon))],
            [float(np.max(all_lat)), float(np.max(all_lon))],
        ],
        "tiles": {"url": assets.tile_url, "attribution": escape_text(assets.tile_attribution or "")}
        if assets.tile_url
        else None,
    }
    head, scripts = _asset_tags(assets)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{page_title}</title>{head}<style>{_PAGE_CSS}</style></head>\n<body>"
        '<div id="ff-map"><noscript><div class="ff-noscript">This map needs JavaScript.'
        "</div></noscript></div>\n"
        + _header_html(track, header_lines, colours)
        + "\n"
        + _legend_html(colours, shapes, context_track)
        + '\n<script type="application/json" id="ff-map-data">'
        + _json_payload(payload)
        + "</script>\n"
        + scripts
        + "\n</body></html>\n"
    )


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def flight_map_html(
    track: pd.DataFrame,
    crossings: pd.DataFrame | None,
    firs: pd.DataFrame | FirShapes | None,
    *,
    title: str | None = None,
    lines: Sequence[str] = (),
    max_points: int = MAX_POINTS,
    assets: MapAssets | None = None,
) -> str:
    """The HTML map page of one flight.

    Args:
        track: the Tracks rows of one flight (any order; NaN positions ignored).
        crossings: its crossings (rows of other flights are ignored); empty/None -> the track
            alone.
        firs: FIR set (or its :class:`FirShapes`); the crossed FIRs are drawn lightly.
            ``None`` -> no polygons.
        title: optional extra line of the title box (untrusted text: escaped).
        lines: further title-box lines, **already safe HTML** (build them with
            :func:`escape_text`).
        max_points: maximum number of drawn track positions (plus mandatory ones).
        assets: where Leaflet and the basemap come from; default inline (self-contained).
    """
    prepared = _prepare_track(track)
    cross = _prepare_crossings(crossings, prepared)
    header = ([escape_text(title)] if title else []) + list(lines)
    page_title = f"Flight {prepared.flight_id} {prepared.attrs.get('callsign') or ''}".strip()
    return _page(
        prepared,
        cross,
        fir_shapes(firs),
        header_lines=header,
        page_title=escape_text(page_title),
        context_track=False,
        max_points=max_points,
        assets=assets or MapAssets(),
    )


def render_flight_map(
    track: pd.DataFrame,
    crossings: pd.DataFrame | None,
    firs: pd.DataFrame | FirShapes | None,
    out_path: Path,
    *,
    title: str | None = None,
    max_points: int = MAX_POINTS,
    assets: MapAssets | None = None,
) -> Path:
    """Write :func:`flight_map_html` to ``out_path`` (parent directories are created) and
    return it. By default the file is self-contained (Leaflet inlined) and works offline."""
    text = flight_map_html(
        track, crossings, firs, title=title, max_points=max_points, assets=assets
    )
    return _write(Path(out_path), text)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
