"""Tests of the shipped reference airports."""

from __future__ import annotations

import pytest

from flight_fees.lib.airspace.airports import read_airports


def test_read_airports_reference_points() -> None:
    ap = read_airports()
    assert list(ap.columns) == [
        "icao", "iata", "name", "city", "country", "lat", "lon", "elevation_ft"
    ]  # fmt: skip
    assert 60 <= len(ap) <= 100
    assert ap["icao"].is_unique
    assert ap["icao"].str.fullmatch(r"[A-Z]{4}").all()
    assert ap["iata"].str.fullmatch(r"[A-Z]{3}").all()
    assert ap["country"].str.fullmatch(r"[A-Z]{2}").all()
    assert ap["lat"].between(-90, 90).all() and ap["lon"].between(-180, 180).all()
    by = ap.set_index("icao")
    # spot checks against the published ARPs (~0.01 deg)
    for icao, lat, lon in [
        ("EGLL", 51.4706, -0.4619),
        ("LFPG", 49.0097, 2.5478),
        ("LPPD", 37.7412, -25.6979),
        ("GCLP", 27.9319, -15.3866),
        ("LCLK", 34.8751, 33.6249),
    ]:
        assert by.at[icao, "lat"] == pytest.approx(lat, abs=0.01)
        assert by.at[icao, "lon"] == pytest.approx(lon, abs=0.01)
    assert by.at["EHAM", "elevation_ft"] < 0  # Schiphol is below sea level
    # a copy each time: callers cannot corrupt the cache
    ap.loc[0, "lat"] = 0.0
    assert read_airports().at[0, "lat"] != 0.0
