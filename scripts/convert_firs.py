#!/usr/bin/env python
"""Regenerate ``flight_fees/data/firs/eurocontrol_firs_2015.geojson`` from the shared source.

Source: ``../shared/data/eurocontrol_firs_2015.geojson`` (relative to the repository root), i.e.
``traffic/data/eurocontrol/eurofirs.json`` from the ``traffic`` 2.13 wheel (MIT licence); see
``flight_fees/data/firs/PROVENANCE.md``.

Conversion (deterministic, standard library only):

- keep the properties ``IDENT`` (4-letter FIR id), ``ICAO`` (2-letter state prefix), ``NAME``,
  ``TYPE``, ``LOWERLIMIT``/``LOWERUNIT``, ``UPPERLIMIT``/``UPPERUNIT`` and ``EFFECTDATE``;
- add ``COUNTRY`` (the state(s) the FIR belongs to, from the ICAO prefix, table below);
- keep **every** vertex; round coordinates to 6 decimals (about 0.1 m, the source precision);
- write compact JSON (one feature per line), features sorted by ``IDENT``.

Usage::

    python scripts/convert_firs.py [--source PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "eurocontrol_firs_2015.geojson"
DEFAULT_OUT = REPO / "flight_fees" / "data" / "firs" / "eurocontrol_firs_2015.geojson"

DECIMALS = 6
KEEP = (
    "IDENT",
    "ICAO",
    "NAME",
    "TYPE",
    "LOWERLIMIT",
    "LOWERUNIT",
    "UPPERLIMIT",
    "UPPERUNIT",
    "EFFECTDATE",
)

#: State(s) by ICAO nationality prefix, for the FIRs of the 2015 set.
COUNTRY_BY_PREFIX: dict[str, str] = {
    "EB": "Belgium/Luxembourg",
    "ED": "Germany",
    "EE": "Estonia",
    "EF": "Finland",
    "EG": "United Kingdom",
    "EH": "Netherlands",
    "EI": "Ireland",
    "EK": "Denmark",
    "EN": "Norway",
    "EP": "Poland",
    "ES": "Sweden",
    "EV": "Latvia",
    "EY": "Lithuania",
    "GC": "Spain",
    "LA": "Albania",
    "LB": "Bulgaria",
    "LC": "Cyprus",
    "LD": "Croatia",
    "LE": "Spain",
    "LF": "France",
    "LG": "Greece",
    "LH": "Hungary",
    "LI": "Italy",
    "LJ": "Slovenia",
    "LK": "Czech Republic",
    "LL": "Israel",
    "LM": "Malta",
    "LO": "Austria",
    "LP": "Portugal",
    "LQ": "Bosnia and Herzegovina",
    "LR": "Romania",
    "LS": "Switzerland",
    "LT": "Turkey",
    "LU": "Moldova",
    "LW": "North Macedonia",
    "LY": "Serbia/Montenegro",
    "LZ": "Slovakia",
    "UD": "Armenia",
    "UG": "Georgia",
    "UK": "Ukraine",
}


def _round_coords(coords: Any) -> Any:
    """Round a (nested) GeoJSON coordinate array, keeping every vertex."""
    if coords and isinstance(coords[0], int | float):
        return [round(float(c), DECIMALS) for c in coords]
    return [_round_coords(c) for c in coords]


def convert(source: Path, out: Path) -> int:
    """Convert ``source`` into ``out``; return the number of features written."""
    data = json.loads(source.read_text(encoding="utf-8"))
    features = []
    for feat in data["features"]:
        props = feat["properties"]
        prefix = props["ICAO"]
        if prefix not in COUNTRY_BY_PREFIX:
            raise SystemExit(f"no COUNTRY for ICAO prefix {prefix!r} ({props['IDENT']})")
        kept = {k: props[k] for k in KEEP if k in props}
        kept["COUNTRY"] = COUNTRY_BY_PREFIX[prefix]
        geom = feat["geometry"]
        features.append(
            {
                "type": "Feature",
                "properties": kept,
                "geometry": {
                    "type": geom["type"],
                    "coordinates": _round_coords(geom["coordinates"]),
                },
            }
        )
    features.sort(key=lambda f: f["properties"]["IDENT"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write('{"type":"FeatureCollection","features":[\n')
        for i, feat in enumerate(features):
            sep = ",\n" if i < len(features) - 1 else "\n"
            fh.write(json.dumps(feat, separators=(",", ":"), ensure_ascii=False) + sep)
        fh.write("]}\n")
    return len(features)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    n = convert(args.source, args.out)
    print(f"wrote {n} FIRs to {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
