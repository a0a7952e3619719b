#!/usr/bin/env python
"""Regenerate ``flight_fees/data/firs/eurocontrol_ead_world_firuir_2015.geojson``.

Source: ``../shared/data/eurocontrol_ead_world_firuir_2015.geojson`` (relative to the repository
root), i.e. ``zip/FirUir_EAD.zip`` of the public repository euctrl-pru/eurocontrol-atlas
(MIT licence, Copyright (c) 2019 EUROCONTROL) converted to GeoJSON; see
``flight_fees/data/firs/PROVENANCE.md``.

Conversion (deterministic, standard library only), mirroring ``scripts/convert_firs.py``:

- keep **both** layers, ``TYPE`` ``FIR`` (lateral flight information regions) and ``UIR``
  (upper regions stacked over them), with their vertical limits: the loader
  (``flight_fees.lib.airspace.firs.load_firs``) picks the layer, never this script;
- keep the properties ``IDENT``, ``ICAO`` (state prefix: 1 to 3 letters, e.g. ``K``, ``LF``,
  ``UTA``), ``NAME``, ``TYPE``, ``LOWERLIMIT``/``LOWERUNIT``, ``UPPERLIMIT``/``UPPERUNIT`` and
  ``EFFECTDATE``; add ``COUNTRY`` (the state of the FIR, from the ICAO prefix, table below;
  the European prefixes carry the same names as in ``convert_firs.py``);
- keep **every** vertex and the geometry as it is (no repair: KZHU's self-intersection is
  repaired on load, with a warning); round coordinates to 6 decimals (~0.1 m);
- keep both KZBW features (the loader dissolves them);
- write compact JSON, one feature per line, features sorted by ``TYPE`` then ``IDENT`` (then
  by their position in the source, for the two KZBW rows).

Usage::

    python scripts/convert_world_firs.py [--source PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "eurocontrol_ead_world_firuir_2015.geojson"
DEFAULT_OUT = REPO / "flight_fees" / "data" / "firs" / "eurocontrol_ead_world_firuir_2015.geojson"

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

#: State by ICAO prefix (the source's ``ICAO`` property), for every feature of the 2015 set.
#: Single letters are whole-letter states (C Canada, K contiguous United States, Y Australia);
#: three letters are the Doc 7910 sub-prefixes of the source (UMK Kaliningrad, UTA, UTD).
COUNTRY_BY_PREFIX: dict[str, str] = {
    "AG": "Solomon Islands",
    "AN": "Nauru",
    "AY": "Papua New Guinea",
    "BG": "Greenland (Denmark)",
    "BI": "Iceland",
    "C": "Canada",
    "DA": "Algeria",
    "DG": "Ghana",
    "DN": "Nigeria",
    "DR": "Niger",
    "DT": "Tunisia",
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
    "FA": "South Africa",
    "FB": "Botswana",
    "FC": "Congo",
    "FI": "Mauritius",
    "FL": "Zambia",
    "FM": "Madagascar",
    "FN": "Angola",
    "FQ": "Mozambique",
    "FS": "Seychelles",
    "FT": "Chad",
    "FV": "Zimbabwe",
    "FW": "Malawi",
    "FY": "Namibia",
    "FZ": "Democratic Republic of the Congo",
    "GC": "Spain",
    "GL": "Liberia",
    "GM": "Morocco",
    "GO": "Senegal",
    "GV": "Cabo Verde",
    "HA": "Ethiopia",
    "HB": "Burundi",
    "HC": "Somalia",
    "HE": "Egypt",
    "HH": "Eritrea",
    "HK": "Kenya",
    "HL": "Libya",
    "HR": "Rwanda",
    "HS": "Sudan",
    "HT": "Tanzania",
    "HU": "Uganda",
    "K": "United States",
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
    "MD": "Dominican Republic",
    "MH": "Honduras (COCESNA)",
    "MK": "Jamaica",
    "MM": "Mexico",
    "MP": "Panama",
    "MT": "Haiti",
    "MU": "Cuba",
    "MY": "Bahamas",
    "NT": "French Polynesia (France)",
    "OA": "Afghanistan",
    "OB": "Bahrain",
    "OE": "Saudi Arabia",
    "OI": "Iran",
    "OJ": "Jordan",
    "OK": "Kuwait",
    "OL": "Lebanon",
    "OM": "United Arab Emirates",
    "OO": "Oman",
    "OP": "Pakistan",
    "OR": "Iraq",
    "OS": "Syria",
    "OY": "Yemen",
    "PA": "United States (Alaska)",
    "PG": "United States (Guam)",
    "PH": "United States (Hawaii)",
    "RC": "Taiwan",
    "RJ": "Japan",
    "RK": "Republic of Korea",
    "RP": "Philippines",
    "SA": "Argentina",
    "SB": "Brazil",
    "SC": "Chile",
    "SE": "Ecuador",
    "SG": "Paraguay",
    "SK": "Colombia",
    "SL": "Bolivia",
    "SM": "Suriname",
    "SO": "French Guiana (France)",
    "SP": "Peru",
    "SU": "Uruguay",
    "SV": "Venezuela",
    "SY": "Guyana",
    "TJ": "United States (Puerto Rico)",
    "TN": "Curacao",
    "TT": "Trinidad and Tobago",
    "TX": "Bermuda (United Kingdom)",
    "UA": "Kazakhstan",
    "UB": "Azerbaijan",
    "UC": "Kyrgyzstan",
    "UD": "Armenia",
    "UE": "Russia",
    "UG": "Georgia",
    "UH": "Russia",
    "UI": "Russia",
    "UK": "Ukraine",
    "UL": "Russia",
    "UM": "Belarus",
    "UMK": "Russia",
    "UN": "Russia",
    "UR": "Russia",
    "US": "Russia",
    "UT": "Uzbekistan",
    "UTA": "Turkmenistan",
    "UTD": "Tajikistan",
    "UU": "Russia",
    "UW": "Russia",
    "VA": "India",
    "VC": "Sri Lanka",
    "VD": "Cambodia",
    "VE": "India",
    "VG": "Bangladesh",
    "VH": "Hong Kong (China)",
    "VI": "India",
    "VL": "Laos",
    "VN": "Nepal",
    "VO": "India",
    "VR": "Maldives",
    "VT": "Thailand",
    "VV": "Viet Nam",
    "VY": "Myanmar",
    "WA": "Indonesia",
    "WB": "Malaysia",
    "WI": "Indonesia",
    "WM": "Malaysia",
    "WS": "Singapore",
    "Y": "Australia",
    "ZB": "China",
    "ZG": "China",
    "ZH": "China",
    "ZJ": "China",
    "ZK": "Democratic People's Republic of Korea",
    "ZL": "China",
    "ZM": "Mongolia",
    "ZP": "China",
    "ZS": "China",
    "ZW": "China",
    "ZY": "China",
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
    for pos, feat in enumerate(data["features"]):
        props = feat["properties"]
        prefix = props["ICAO"]
        if prefix not in COUNTRY_BY_PREFIX:
            raise SystemExit(f"no COUNTRY for ICAO prefix {prefix!r} ({props['IDENT']})")
        if props["TYPE"] not in ("FIR", "UIR"):
            raise SystemExit(f"unexpected TYPE {props['TYPE']!r} ({props['IDENT']})")
        kept = {k: props[k] for k in KEEP if k in props}
        kept["COUNTRY"] = COUNTRY_BY_PREFIX[prefix]
        geom = feat["geometry"]
        feature = {
            "type": "Feature",
            "properties": kept,
            "geometry": {"type": geom["type"], "coordinates": _round_coords(geom["coordinates"])},
        }
        features.append(((props["TYPE"], props["IDENT"], pos), feature))
    features.sort(key=lambda item: item[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write('{"type":"FeatureCollection","features":[\n')
        for i, (_, feat) in enumerate(features):
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
    print(f"wrote {n} FIR/UIR features to {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
