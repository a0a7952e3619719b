"""The shipped reference airports (``flight_fees/data/airports.csv``): ICAO/IATA codes, names,
countries, WGS84 reference points and elevations. Used to locate take-offs and landings (zone
deductions) and by the demo generator."""

from __future__ import annotations

from functools import cache

import pandas as pd

from flight_fees.lib.core.settings import DATA_DIR

__all__ = ["AIRPORTS_CSV", "read_airports"]

#: shipped airport reference points
AIRPORTS_CSV = DATA_DIR / "airports.csv"


@cache
def _airports_cached() -> pd.DataFrame:
    frame = pd.read_csv(
        AIRPORTS_CSV,
        comment="#",
        dtype={
            "icao": "str",
            "iata": "str",
            "name": "str",
            "city": "str",
            "country": "str",
            "lat": "float64",
            "lon": "float64",
            "elevation_ft": "int64",
        },
        keep_default_na=False,
    )
    if frame["icao"].duplicated().any():
        raise ValueError(f"duplicate ICAO codes in {AIRPORTS_CSV}")
    return frame


def read_airports() -> pd.DataFrame:
    """The shipped reference airports (``flight_fees/data/airports.csv``).

    Columns: ``icao, iata, name, city, country`` (str; country is ISO 3166-1 alpha-2),
    ``lat, lon`` (float64, WGS84 degrees), ``elevation_ft`` (int64). A fresh copy per call.
    """
    return _airports_cached().copy()
