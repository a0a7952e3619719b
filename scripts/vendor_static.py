"""Reproduce the browser assets of ``flight_fees/static/`` from their npm packages.

    python scripts/vendor_static.py            # runs `npm pack leaflet@1.9.4 world-atlas@2.0.2`
    python scripts/vendor_static.py --from DIR # uses tarballs already in DIR

- ``leaflet/``: ``leaflet.js``, ``leaflet.css``, ``images/*`` and ``LICENSE`` copied from the
  npm package ``leaflet`` 1.9.4 (BSD-2-Clause), byte for byte.
- ``basemap/countries-110m.js``: the ``countries`` object of ``countries-110m.json`` of the npm
  package ``world-atlas`` 2.0.2 (ISC; the data is Natural Earth 1:110m Admin 0 countries 4.1.0,
  public domain), decoded from TopoJSON to a GeoJSON FeatureCollection with coordinates
  rounded to 0.01 degree, written as ``window.FF_BASEMAP = {...};`` so that a map page loads it
  with a ``<script>`` element (also from ``file://``).

The tarballs' SHA-256 digests are checked; see ``flight_fees/static/NOTICE.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "flight_fees" / "static"
PACKAGES = {
    "leaflet-1.9.4.tgz": "84c65a256e50657896f54c33bd857b6849ebe94c817803be818bf32a3dde0b77",
    "world-atlas-2.0.2.tgz": "032e7765f2ce00edaeafec23ff22bc3b77e42987c257da944cc585b452c05b97",
}
LEAFLET_FILES = (
    "dist/leaflet.js",
    "dist/leaflet.css",
    "dist/images/layers.png",
    "dist/images/layers-2x.png",
    "dist/images/marker-icon.png",
    "dist/images/marker-icon-2x.png",
    "dist/images/marker-shadow.png",
    "LICENSE",
)
DECIMALS = 2


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(f"package/{name}")
    if handle is None:
        raise FileNotFoundError(name)
    return handle.read()


def _decode_arcs(topology: dict) -> list[list[tuple[float, float]]]:
    sx, sy = topology["transform"]["scale"]
    tx, ty = topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def _ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[list[float]]:
    ring: list[tuple[float, float]] = []
    for i in indexes:
        points = arcs[i] if i >= 0 else arcs[~i][::-1]
        ring.extend(points[1:] if ring else points)  # arcs share their end points
    out: list[list[float]] = []
    for lon, lat in ring:
        point = [round(lon, DECIMALS), round(lat, DECIMALS)]
        if not out or out[-1] != point:
            out.append(point)
    return out


def topojson_countries(raw: bytes) -> dict:
    """The ``countries`` object of a world-atlas TopoJSON file as a GeoJSON FeatureCollection
    (every geometry as a MultiPolygon, property ``name``)."""
    topology = json.loads(raw)
    arcs = _decode_arcs(topology)
    features = []
    for geom in topology["objects"]["countries"]["geometries"]:
        if geom["type"] == "Polygon":
            polygons = [geom["arcs"]]
        elif geom["type"] == "MultiPolygon":
            polygons = geom["arcs"]
        else:
            continue
        coords = [[_ring(arcs, ring) for ring in polygon] for polygon in polygons]
        coords = [p for p in coords if p and len(p[0]) >= 4]
        if coords:
            features.append(
                {
                    "type": "Feature",
                    "properties": {"name": geom.get("properties", {}).get("name", "")},
                    "geometry": {"type": "MultiPolygon", "coordinates": coords},
                }
            )
    return {"type": "FeatureCollection", "features": features}


def vendor(source: Path) -> None:
    for name, digest in PACKAGES.items():
        actual = hashlib.sha256((source / name).read_bytes()).hexdigest()
        if actual != digest:
            raise SystemExit(f"{name}: sha256 {actual} != {digest}")
    with tarfile.open(source / "leaflet-1.9.4.tgz") as tar:
        for name in LEAFLET_FILES:
            target = STATIC / "leaflet" / Path(name).relative_to("dist" if "/" in name else ".")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_member(tar, name))
    with tarfile.open(source / "world-atlas-2.0.2.tgz") as tar:
        collection = topojson_countries(_member(tar, "countries-110m.json"))
        licence = _member(tar, "LICENSE")
    basemap = STATIC / "basemap"
    basemap.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    text.write("/* Natural Earth 1:110m Admin 0 countries 4.1.0 (public domain), via the npm ")
    text.write("package world-atlas 2.0.2 (ISC); see ../NOTICE.md */\n")
    text.write("window.FF_BASEMAP = ")
    text.write(json.dumps(collection, separators=(",", ":")))
    text.write(";\n")
    (basemap / "countries-110m.js").write_text(text.getvalue(), encoding="utf-8")
    (basemap / "LICENSE.world-atlas").write_bytes(licence)
    print(f"wrote {STATIC}: leaflet 1.9.4, {len(collection['features'])} countries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="directory with the tarballs")
    args = parser.parse_args()
    if args.source is not None:
        vendor(args.source)
        return
    with tempfile.TemporaryDirectory() as tmp:
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed (or pass --from DIR with the tarballs)")
        subprocess.run(
            [npm, "pack", "--silent", "leaflet@1.9.4", "world-atlas@2.0.2"], cwd=tmp, check=True
        )
        vendor(Path(tmp))


if __name__ == "__main__":
    main()
