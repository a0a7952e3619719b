#!/usr/bin/env python
"""Regenerate ``flight_fees_tests/data/adsb/switzerland_sample.parquet`` (real ADS-B tracks).

Source: ``traffic/data/samples/collections/switzerland.json.gz`` inside the ``traffic`` 2.13
wheel on PyPI (MIT licence; the positions are OpenSky Network ADS-B reports of 2018-08-01
around Switzerland, 10 s sampling). Get the wheel with::

    pip download --no-deps traffic==2.13 -d /tmp/traffic

Conversion (deterministic):

- flights: positions of one ``icao24`` and ``callsign`` split where the track has no position
  for more than :data:`SPLIT_GAP_S`; ``flight_id`` numbers them in order of (first time,
  icao24, callsign) from 1;
- rows with a missing position or time dropped; flights with fewer than
  :data:`MIN_POINTS` positions dropped;
- the subset: every :data:`STRIDE`-th flight (a deterministic, spatially unbiased thinning);
- columns ``flight_id, ts (UTC), lat, lon, alt_ft, callsign, icao24``; Parquet, zstd.

Usage::

    python scripts/make_adsb_sample.py --wheel /tmp/traffic/traffic-2.13-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "flight_fees_tests" / "data" / "adsb" / "switzerland_sample.parquet"
MEMBER = "traffic/data/samples/collections/switzerland.json.gz"
SPLIT_GAP_S = 600
MIN_POINTS = 20
STRIDE = 2


def read_source(wheel: Path) -> pd.DataFrame:
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(MEMBER)
    return pd.read_json(io.BytesIO(raw), compression="gzip", dtype={"icao24": str})


def to_flights(raw: pd.DataFrame) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "ts": pd.to_datetime(raw["timestamp"], utc=True),
            "lat": raw["latitude"].astype(float),
            "lon": raw["longitude"].astype(float),
            "alt_ft": raw["altitude"].astype(float),
            "callsign": raw["callsign"].astype(str).str.strip(),
            "icao24": raw["icao24"].astype(str).str.lower(),
        }
    ).dropna(subset=["ts", "lat", "lon"])
    df = df.sort_values(["icao24", "callsign", "ts"], kind="stable").reset_index(drop=True)
    key = df["icao24"] + "/" + df["callsign"]
    ts_s = df["ts"].astype("int64") // 10**9
    new = (key != key.shift()) | (ts_s.diff() > SPLIT_GAP_S)
    df["leg"] = np.cumsum(new.to_numpy())
    size = df.groupby("leg")["ts"].transform("size")
    df = df[size >= MIN_POINTS]
    first = df.groupby("leg").agg(
        t0=("ts", "min"), icao24=("icao24", "first"), cs=("callsign", "first")
    )
    first = first.sort_values(["t0", "icao24", "cs"], kind="stable")
    numbers = pd.Series(np.arange(1, len(first) + 1, dtype=np.int64), index=first.index)
    df = df.assign(flight_id=df["leg"].map(numbers))
    keep = numbers[numbers % STRIDE == 1].to_numpy()
    df = df[df["flight_id"].isin(keep)]
    cols = ["flight_id", "ts", "lat", "lon", "alt_ft", "callsign", "icao24"]
    return df.sort_values(["flight_id", "ts"], kind="stable")[cols].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True, help="traffic-2.13 wheel file")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    flights = to_flights(read_source(args.wheel))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    flights.to_parquet(args.out, index=False, compression="zstd")
    print(
        f"{args.out}: {flights['flight_id'].nunique()} flights, {len(flights)} positions, "
        f"{args.out.stat().st_size / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
