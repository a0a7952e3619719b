"""Tests of the per-flight / per-country HTML maps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from flight_fees.lib.documents.country_maps import render_country_maps
from flight_fees.lib.documents.maps import (
    PALETTE,
    escape_text,
    fir_colour,
    render_flight_map,
)

HOSTILE = "TST<b>&1"
HOSTILE_ESCAPED = "TST&lt;b&gt;&amp;1"
FLIGHT_ID = 2026010500042
T0 = pd.Timestamp("2026-01-05 10:00:00", tz="UTC")

#: west -> east along 47N: LFFF and LFMM (France), LSAS (Switzerland), LIMM (Italy)
FIR_BOUNDS = {"LFFF": (-5.0, 3.0), "LFMM": (3.0, 6.0), "LSAS": (6.0, 9.0), "LIMM": (9.0, 15.0)}
FIR_COUNTRY = {"LFFF": "FR", "LFMM": "FR", "LSAS": "CH", "LIMM": "IT"}


def _firs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "fir_id": list(FIR_BOUNDS),
            "name": ["Paris <script>alert(1)</script>", "Marseille", "Switzerland", "Milano"],
            "country": [FIR_COUNTRY[f] for f in FIR_BOUNDS],
            "geometry": [shapely.box(w, 44.0, e, 50.0) for w, e in FIR_BOUNDS.values()],
        }
    )


def _track(
    lon0: float = -2.0,
    lon1: float = 12.0,
    n: int = 721,
    *,
    lat: float = 47.0,
    gap: tuple[int, int] | None = None,
    flight_id: int = FLIGHT_ID,
) -> pd.DataFrame:
    lon = np.linspace(lon0, lon1, n)
    lon = (lon + 180.0) % 360.0 - 180.0
    frame = pd.DataFrame(
        {
            "flight_id": np.full(n, flight_id, dtype=np.int64),
            "ts": T0 + pd.to_timedelta(np.arange(n) * 5, unit="s"),
            "lat": np.full(n, lat),
            "lon": lon,
            "alt_ft": np.full(n, 35_000.0),
            "callsign": HOSTILE,
            "registration": "G-<i>X",
            "aircraft_type": "A320",
            "icao24": "4ca001",
            "origin": "LFPG",
            "destination": "LIRF",
        }
    )
    if gap is not None:
        frame = frame.drop(index=range(*gap)).reset_index(drop=True)
    return frame


def _crossings(track: pd.DataFrame, bounds: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Crossings of a west->east track at constant speed through lon-bounded boxes."""
    t_us = track["ts"].dt.as_unit("us").astype("int64").to_numpy()
    lon = np.unwrap(track["lon"].to_numpy(), period=360.0)
    lat = float(track["lat"].iloc[0])
    rows = []
    for visit, (fir, (west, east)) in enumerate(
        (f, b) for f, b in bounds.items() if b[1] > lon[0] and b[0] < lon[-1]
    ):
        lo, hi = max(west, lon[0]), min(east, lon[-1])
        t_in, t_out = np.interp([lo, hi], lon, t_us)
        rows.append(
            {
                "flight_id": int(track["flight_id"].iloc[0]),
                "visit_index": visit,
                "fir_id": fir,
                "entry_time": pd.Timestamp(int(t_in), unit="us", tz="UTC"),
                "exit_time": pd.Timestamp(int(t_out), unit="us", tz="UTC"),
                "entry_lat": lat,
                "entry_lon": (lo + 180.0) % 360.0 - 180.0,
                "exit_lat": lat,
                "exit_lon": (hi + 180.0) % 360.0 - 180.0,
                "distance_km": (hi - lo) * 75.8,
                "flown_km": (hi - lo) * 75.9,
                "interpolated": visit == 1,
            }
        )
    return pd.DataFrame(rows)


def _payload(html_text: str) -> dict:
    """The drawing data of a map page (the JSON of its ``ff-map-data`` element)."""
    found = re.findall(
        r'<script type="application/json" id="ff-map-data">(.*?)</script>', html_text, flags=re.S
    )
    assert len(found) == 1
    return json.loads(found[0])


def _polylines(html_text: str) -> list[np.ndarray]:
    """Drawn lines in drawing order: track runs, coverage gaps, crossing segments per FIR."""
    data = _payload(html_text)
    lines = [run for run in data["track"] if len(run) >= 2]
    lines += [gap["line"] for gap in data["gaps"]]
    lines += [seg["line"] for fir in data["firs"] for seg in fir["segments"]]
    return [np.asarray(line, dtype=float) for line in lines]


def _polygons(html_text: str) -> list[np.ndarray]:
    """Exterior rings (lat, lon) of the drawn FIR polygons."""
    data = _payload(html_text)
    return [np.asarray(p[0], dtype=float) for fir in data["firs"] for p in fir["polygons"]]


def _assert_no_raw_hostile(text: str) -> None:
    assert HOSTILE not in text
    assert "<b>&1" not in text
    assert "G-<i>X" not in text
    assert "<script>alert(1)" not in text
    assert "\\u003cscript\\u003ealert" not in text  # not even JSON-encoded


# --------------------------------------------------------------------------------------------


def test_escape_text_neutralises_html_js_and_jinja() -> None:
    assert escape_text(HOSTILE) == HOSTILE_ESCAPED
    nasty = escape_text("a`${x}\\u003c{{ 7*7 }}{% if 1 %}\"'")
    for ch in "`${}\\<>\"'":
        assert ch not in nasty
    assert escape_text(None) == "\u2014" and escape_text(float("nan")) == "\u2014"
    assert escape_text(pd.NA) == "\u2014" and escape_text(42) == "42"


def test_fir_colour_is_stable_and_from_palette() -> None:
    assert fir_colour("LFFF") == fir_colour("LFFF") == "#7f7f7f"  # crc32-based, run-independent
    assert all(fir_colour(f) in PALETTE for f in FIR_BOUNDS)
    assert fir_colour("LFMM") == fir_colour("LSAS")  # a collision the maps must resolve


def _segment_colours(text: str) -> list[str]:
    """Colours of the crossing segments, in drawing order."""
    return [fir["colour"] for fir in _payload(text)["firs"] for _ in fir["segments"]]


def test_flight_map_contents(tmp_path: Path) -> None:
    track = _track()
    crossings = _crossings(track, FIR_BOUNDS)
    assert list(crossings["fir_id"]) == list(FIR_BOUNDS)
    out = render_flight_map(
        track, crossings, _firs(), tmp_path / "sub" / "map.html", title="Invoice <INV-1>"
    )
    assert out == tmp_path / "sub" / "map.html" and out.is_file()
    text = out.read_text(encoding="utf-8")
    for fir in FIR_BOUNDS:
        assert f"FIR {fir}" in text
    # escaped data, never raw
    assert HOSTILE_ESCAPED in text
    assert "G-&lt;i&gt;X" in text
    assert "Paris &lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Invoice &lt;INV-1&gt;" in text
    _assert_no_raw_hostile(text)
    assert "LFPG \u2192 LIRF" in text
    # crossing popups: FIR, UTC times and distances
    first = crossings.iloc[0]
    assert first["entry_time"].strftime("%Y-%m-%d %H:%M:%S UTC") in text
    assert first["exit_time"].strftime("%Y-%m-%d %H:%M:%S UTC") in text
    assert f"{first['distance_km']:,.1f} km" in text
    assert "interpolated across a coverage gap" in text  # visit 1 is flagged
    for fir in FIR_BOUNDS:  # entry and exit markers (tooltip + popup each)
        assert text.count(f"Entry into FIR {fir}") == 2
        assert text.count(f"Exit from FIR {fir}") == 2
    # one colour per FIR, the global one unless it collides within the map
    colours = _segment_colours(text)
    assert len(colours) == 4 and len(set(colours)) == 4
    assert colours[:3] == [
        fir_colour("LFFF"),
        fir_colour("LFMM"),
        PALETTE[(PALETTE.index(fir_colour("LSAS")) + 1) % len(PALETTE)],
    ]
    # crossed FIR polygons drawn, track + one coloured segment per crossing
    assert len(_polygons(text)) == 4
    lines = _polylines(text)
    assert len(lines) == 1 + 4
    # the segment of a crossing starts/ends on its entry/exit points
    seg = lines[1 + 2]  # LSAS
    assert seg[0] == pytest.approx([47.0, 6.0]) and seg[-1] == pytest.approx([47.0, 9.0])
    assert "leaflet" in text.lower() and "L.control.layers" in text  # inlined: offline


def test_flight_map_downsamples_and_keeps_crossing_neighbours(tmp_path: Path) -> None:
    track = _track(n=20_001, gap=(12_000, 12_150))
    crossings = _crossings(track, FIR_BOUNDS)
    out = render_flight_map(track, crossings, None, tmp_path / "big.html")
    text = out.read_text(encoding="utf-8")
    main = np.concatenate([line for line in _polylines(text)[:2]])  # 2 runs around the gap
    assert 1_000 <= len(main) <= 1_600
    assert "coverage gap (12.6 min)" in text  # 151 steps of 5 s
    kept = {round(x, 5) for x in main[:, 1]}
    t_us = track["ts"].dt.as_unit("us").astype("int64").to_numpy()
    lon = track["lon"].to_numpy()
    for t in pd.concat([crossings["entry_time"], crossings["exit_time"]]):
        i = int(np.searchsorted(t_us, t.as_unit("us").value))
        for j in {max(i - 1, 0), min(i, len(lon) - 1)}:
            assert round(lon[j], 5) in kept
    # the gap edges are kept too
    assert round(lon[11_999], 5) in kept and round(lon[12_000], 5) in kept
    assert round(lon[0], 5) in kept and round(lon[-1], 5) in kept
    # no FIR set: no polygons, crossings still drawn
    assert _polygons(text) == []
    assert "FIR LIMM" in text


def test_empty_crossings_still_render_the_track(tmp_path: Path) -> None:
    track = _track()
    empty = _crossings(track, FIR_BOUNDS).iloc[:0]
    for i, crossings in enumerate((empty, None)):
        out = render_flight_map(track, crossings, _firs(), tmp_path / f"m{i}.html")
        text = out.read_text(encoding="utf-8")
        lines = _polylines(text)
        assert len(lines) == 1 and len(lines[0]) == len(track)
        assert "no FIR crossing" in text and "FIR LFFF" not in text
        assert HOSTILE_ESCAPED in text
        _assert_no_raw_hostile(text)
    assert render_country_maps(track, empty, _firs(), tmp_path / "c") == {}
    assert not (tmp_path / "c").exists()


def test_country_maps(tmp_path: Path) -> None:
    track = _track()
    crossings = _crossings(track, FIR_BOUNDS)
    maps = render_country_maps(track, crossings, _firs(), tmp_path)
    assert list(maps) == ["FR", "CH", "IT"]  # order of first visit
    for country, path in maps.items():
        assert path == tmp_path / f"{FLIGHT_ID}_{country}.html" and path.is_file()
        text = path.read_text(encoding="utf-8")
        assert f"Country: {country}" in text
        assert HOSTILE_ESCAPED in text
        _assert_no_raw_hostile(text)
        mine = [f for f, c in FIR_COUNTRY.items() if c == country]
        for fir in FIR_BOUNDS:
            assert (f"FIR {fir}" in text) == (fir in mine), (country, fir)
        assert len(_polygons(text)) == len(mine)
        # context track + the country's crossing segments
        assert len(_polylines(text)) == 1 + len(mine)
    fr = maps["FR"].read_text(encoding="utf-8")
    segs = _polylines(fr)[1:]
    assert min(s[:, 1].min() for s in segs) == pytest.approx(-2.0)
    assert max(s[:, 1].max() for s in segs) == pytest.approx(6.0)


def test_country_maps_mapping_override_and_errors(tmp_path: Path) -> None:
    track = _track()
    crossings = _crossings(track, FIR_BOUNDS)
    maps = render_country_maps(
        track,
        crossings,
        None,
        tmp_path,
        country_of_fir={"LFFF": "FR", "LFMM": "../MC", "LSAS": "CH", "LIMM": "IT"},
    )
    assert set(maps) == {"FR", "../MC", "CH", "IT"}
    assert maps["../MC"] == tmp_path / f"{FLIGHT_ID}____MC.html"
    assert all(p.parent == tmp_path for p in maps.values())
    with pytest.raises(ValueError, match="no country known"):
        render_country_maps(track, crossings, None, tmp_path, country_of_fir={"LFFF": "FR"})


def test_antimeridian_track_does_not_streak(tmp_path: Path) -> None:
    track = _track(172.0, -172.0 + 360.0, n=600, lat=52.0)  # eastbound over 180
    assert track["lon"].min() < -170 and track["lon"].max() > 170
    bounds = {"EAST": (170.0, 180.0), "WEST": (180.0, 190.0)}
    crossings = _crossings(track, bounds)
    firs = pd.DataFrame(
        {
            "fir_id": ["EAST", "WEST"],
            "name": ["east", "west"],
            "country": ["AA", "BB"],
            "geometry": [shapely.box(170, 45, 180, 60), shapely.box(-180, 45, -170, 60)],
        }
    )
    text = render_flight_map(track, crossings, firs, tmp_path / "am.html").read_text("utf-8")
    lines = _polylines(text)
    assert len(lines) == 3
    for line in lines:
        assert np.abs(np.diff(line[:, 1])).max() < 1.0
    lon_all = np.concatenate([line[:, 1] for line in lines])
    assert lon_all.max() - lon_all.min() < 20.0
    for poly in _polygons(text):  # polygons on the track's branch
        assert poly[:, 1].min() >= 169.9 and poly[:, 1].max() <= 190.1
    # crossing segment WEST continues east of 180 on the unwrapped branch
    assert lines[2][:, 1].min() == pytest.approx(180.0, abs=1e-6)


def test_input_validation_and_other_flights_ignored(tmp_path: Path) -> None:
    track = _track()
    crossings = _crossings(track, FIR_BOUNDS)
    other = crossings.assign(flight_id=1, fir_id="XXXX")
    out = render_flight_map(
        track.sample(frac=1.0, random_state=3),  # any row order
        pd.concat([crossings, other]),
        _firs(),
        tmp_path / "m.html",
    )
    text = out.read_text("utf-8")
    assert "XXXX" not in text and "FIR LIMM" in text
    assert np.all(np.diff(_polylines(text)[0][:, 1]) > 0)  # drawn in time order
    two = pd.concat([track, _track(flight_id=7)])
    with pytest.raises(ValueError, match="2 flights"):
        render_flight_map(two, crossings, None, tmp_path / "x.html")
    with pytest.raises(ValueError, match="lacks columns"):
        render_flight_map(track.drop(columns="lat"), crossings, None, tmp_path / "x.html")


def test_missing_crossing_points_are_skipped(tmp_path: Path) -> None:
    track = _track()
    crossings = _crossings(track, FIR_BOUNDS)
    crossings["entry_lat"] = crossings["entry_lat"].astype("Float64")
    crossings.loc[2, "entry_lat"] = pd.NA  # LSAS entry unknown
    text = render_flight_map(track, crossings, None, tmp_path / "m.html").read_text("utf-8")
    assert text.count("Entry into FIR LSAS") == 0 and text.count("Exit from FIR LSAS") == 2
    assert text.count("Entry into FIR LIMM") == 2


def test_template_injection_is_inert(tmp_path: Path) -> None:
    track = _track().assign(callsign="X`${alert(1)}`{{ 7*7 }}", registration="{% raw %}")
    crossings = _crossings(track, FIR_BOUNDS)
    text = render_flight_map(track, crossings, None, tmp_path / "m.html").read_text("utf-8")
    assert "${alert" not in text and "`${" not in text
    assert "{{ 7*7 }}" not in text and "{% raw %}" not in text
    assert "X&#96;&#36;&#123;alert(1)&#125;&#96;&#123;&#123; 7*7 &#125;&#125;" in text
    assert "&#123;% raw %&#125;" in text


def test_server_assets_are_referenced_not_inlined_and_tiles_are_optional() -> None:
    from flight_fees.lib.documents.maps import MapAssets, flight_map_html

    track = _track()
    crossings = _crossings(track, FIR_BOUNDS)
    served = flight_map_html(track, crossings, _firs(), assets=MapAssets(static_url="/static"))
    for name in ("leaflet/leaflet.js", "basemap/countries-110m.js", "flight_map.js"):
        assert f'<script src="/static/{name}"></script>' in served
    assert '<link rel="stylesheet" href="/static/leaflet/leaflet.css">' in served
    assert "L.control.layers" not in served  # the script is not inlined
    assert _payload(served)["tiles"] is None
    inline = flight_map_html(track, crossings, _firs())
    assert "window.FF_BASEMAP" in inline and "/static/" not in inline
    assert len(served) < len(inline) / 3
    tiles = MapAssets(static_url="/static", tile_url="https://t.example/{z}/{x}/{y}.png")
    with_tiles = _payload(flight_map_html(track, crossings, _firs(), assets=tiles))["tiles"]
    assert with_tiles["url"] == "https://t.example/{z}/{x}/{y}.png"
    for bad in ("javascript:alert(1)", "https://x/<script>", "file:///etc/passwd"):
        with pytest.raises(ValueError, match="tile URL"):
            MapAssets(tile_url=bad)
    with pytest.raises(ValueError, match="static URL"):
        MapAssets(static_url='/x"><script>')


def test_tile_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from flight_fees.lib.documents.maps import (
        TILE_ATTRIBUTION_ENV,
        TILE_URL_ENV,
        map_assets_from_env,
    )

    monkeypatch.delenv(TILE_URL_ENV, raising=False)
    assert map_assets_from_env().tile_url is None
    monkeypatch.setenv(TILE_URL_ENV, "https://tiles.example/{z}/{x}/{y}.png")
    monkeypatch.setenv(TILE_ATTRIBUTION_ENV, "© <Example>")
    assets = map_assets_from_env("/s")
    assert assets.static_url == "/s" and assets.tile_url.startswith("https://tiles.example/")
    track = _track()
    from flight_fees.lib.documents.maps import flight_map_html

    payload = _payload(flight_map_html(track, None, None, assets=assets))
    assert payload["tiles"]["attribution"] == "© &lt;Example&gt;"


def test_payload_cannot_close_its_script_element() -> None:
    from flight_fees.lib.documents.maps import flight_map_html

    firs = _firs()
    firs.loc[0, "name"] = "</script><script>alert(1)</script>"
    text = flight_map_html(_track(), _crossings(_track(), FIR_BOUNDS), firs)
    payload_text = re.search(
        r'<script type="application/json" id="ff-map-data">(.*?)</script>', text, flags=re.S
    ).group(1)
    assert "<" not in payload_text and ">" not in payload_text
    assert "alert(1)" in payload_text  # the text is there, as escaped text
    assert "<script>alert(1)" not in text


def test_fir_shapes_are_built_once_per_fir_frame() -> None:
    from flight_fees.lib.documents.maps import FirShapes, fir_shapes

    firs = _firs()
    shapes = fir_shapes(firs)
    assert isinstance(shapes, FirShapes) and fir_shapes(firs) is shapes
    assert fir_shapes(shapes) is shapes and fir_shapes(None) is None
    assert fir_shapes(_firs()) is not shapes  # another frame, its own shapes
    assert shapes.countries["LSAS"] == "CH" and shapes.names["LIMM"] == "Milano"
    ((centroid, rings),) = shapes.parts("LSAS")
    assert centroid == pytest.approx(7.5) and rings[0].shape[1] == 2
    assert shapes.parts("NOPE") == []


def test_country_map_html_and_countries_in_visit_order() -> None:
    from flight_fees.lib.documents.country_maps import country_map_html, map_countries

    track = _track()
    crossings = _crossings(track, FIR_BOUNDS)
    assert map_countries(crossings, _firs()) == ["FR", "CH", "IT"]
    assert map_countries(None, _firs()) == []
    text = country_map_html(track, crossings, _firs(), "CH")
    assert [f["id"] for f in _payload(text)["firs"]] == ["LSAS"] and _payload(text)["context"]
    with pytest.raises(ValueError, match="did not cross"):
        country_map_html(track, crossings, _firs(), "DE")
