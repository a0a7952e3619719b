"""``flight-fees crossings`` (registered here in a throwaway typer app)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.geometry
import typer
from typer.testing import CliRunner

from flight_fees.cli.crossings import crossings_command
from flight_fees.lib.tracks.files import TracksFileError, parse_ts, read_tracks

T0 = pd.Timestamp("2024-05-01T10:00:00Z")
OUT_COLUMNS = [
    "flight_id", "fir_id", "entry_time", "exit_time", "entry_lat", "entry_lon", "exit_lat",
    "exit_lon", "distance_km", "flown_km", "interpolated",
]  # fmt: skip


def make_app() -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.callback()
    def main() -> None:
        """flight-fees (test app)."""

    app.command("crossings")(crossings_command)
    return app


def run(*args: str):  # -> click.testing.Result
    return CliRunner().invoke(make_app(), ["crossings", *map(str, args)])


def brussels_frankfurt(n_flights: int = 2) -> pd.DataFrame:
    """Straight tracks (lat 50.5) from 4.5E to 7.5E: EBBU, EDGG, EBBU, EDGG (the border
    zig-zags there: a 10 s visit of EDGG, kilometres deep, before 20 s back in EBBU)."""
    n = 300
    return pd.DataFrame(
        {
            "flight_id": np.repeat(np.arange(1, n_flights + 1), n),
            "ts": np.tile(T0 + pd.to_timedelta(np.arange(n) * 5, unit="s"), n_flights),
            "lat": 50.5,
            "lon": np.tile(np.linspace(4.5, 7.5, n), n_flights),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    import warnings

    from flight_fees.lib.airspace.crossings import compute_crossings
    from flight_fees.lib.airspace.firs import load_firs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compute_crossings(brussels_frankfurt(), load_firs(check_overlaps=False))


def test_csv_iso_input_to_csv_output(tmp_path: Path, reference: pd.DataFrame) -> None:
    src = tmp_path / "tracks.csv"
    trk = brussels_frankfurt()
    trk.assign(ts=trk["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(src, index=False)
    out = tmp_path / "out" / "crossings.csv"
    result = run(src, "-o", out)
    assert result.exit_code == 0, result.output
    assert "8 FIR crossing(s) of 2 / 2 flight(s)" in result.output
    got = pd.read_csv(out)
    assert set(OUT_COLUMNS) <= set(got.columns)
    assert got["fir_id"].tolist() == ["EBBU", "EDGG", "EBBU", "EDGG"] * 2
    times = pd.to_datetime(got["exit_time"], utc=True)
    expected = reference["exit_time"].dt.floor("ms")
    assert (times.to_numpy() == expected.to_numpy()).all()
    np.testing.assert_allclose(got["distance_km"], reference["distance_km"])
    assert got["interpolated"].dtype == bool


def test_parquet_epoch_ms_input_to_parquet_output(tmp_path: Path, reference: pd.DataFrame) -> None:
    src = tmp_path / "tracks.parquet"
    trk = brussels_frankfurt()
    trk.assign(ts=trk["ts"].astype("int64") // 10**6).to_parquet(src)  # epoch milliseconds
    out = tmp_path / "crossings.parquet"
    result = run(
        src, "--out", out, "--no-progress", "--noise-m", "92.6", "--gap-threshold-s", "600"
    )
    assert result.exit_code == 0, result.output
    got = pd.read_parquet(out)
    pd.testing.assert_frame_equal(
        got[OUT_COLUMNS].reset_index(drop=True),
        reference[OUT_COLUMNS].reset_index(drop=True),
        check_dtype=False,
    )


def test_custom_fir_file_and_property_names(tmp_path: Path) -> None:
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": "WEST", "label": "West", "land": "X"},
                "geometry": shapely.geometry.mapping(shapely.box(4, 50, 6, 51)),
            },
            {
                "type": "Feature",
                "properties": {"code": "EAST", "label": "East", "land": "X"},
                "geometry": shapely.geometry.mapping(shapely.box(6, 50, 8, 51)),
            },
        ],
    }  # fmt: skip
    firs = tmp_path / "firs.geojson"
    firs.write_text(json.dumps(fc), encoding="utf-8")
    src = tmp_path / "t.csv"
    brussels_frankfurt(1).to_csv(src, index=False)
    out = tmp_path / "o.csv"
    result = run(src, "-o", out, "--firs", firs, "--id-property", "code",
                 "--name-property", "label", "--country-property", "land")  # fmt: skip
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out)
    assert got["fir_id"].tolist() == ["WEST", "EAST"]
    assert got.loc[0, "exit_lon"] == pytest.approx(6.0, abs=1e-9)
    # a property that does not exist: clear error, no traceback
    result = run(src, "-o", out, "--firs", firs, "--id-property", "nope")
    assert result.exit_code == 1
    assert "no property 'nope'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("flight_id,lat,lon\n1,50,4\n", "missing column(s) ts"),
        ("flight_id,ts,lat,lon\nx,2024-01-01T00:00:00Z,50,4\n", "flight_id must be an integer"),
        ("flight_id,ts,lat,lon\n1,yesterday,50,4\n", "neither ISO-8601 nor epoch"),
        ("flight_id,ts,lat,lon\n1,2024-01-01T00:00:00Z,north,4\n", "lat is not numeric"),
    ],
)
def test_bad_tracks_files_give_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(content, encoding="utf-8")
    result = run(src, "-o", tmp_path / "o.csv")
    assert result.exit_code == 1
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unreadable_inputs_and_bad_output_suffix(tmp_path: Path) -> None:
    result = run(tmp_path / "missing.parquet", "-o", tmp_path / "o.csv")
    assert result.exit_code == 1 and "not found" in result.output
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet")
    result = run(garbage, "-o", tmp_path / "o.csv")
    assert result.exit_code == 1 and "cannot read tracks file" in result.output
    src = tmp_path / "t.csv"
    brussels_frankfurt(1).to_csv(src, index=False)
    result = run(src, "-o", tmp_path / "o.json")
    assert result.exit_code == 2 and "must end in .csv or .parquet" in result.output
    result = run(src, "-o", tmp_path / "o.csv", "--firs", tmp_path / "nofirs.geojson")
    assert result.exit_code == 1 and "FIR file not found" in result.output


def test_parse_ts_units_and_iso_offsets() -> None:
    expected = pd.Timestamp("2024-05-01T10:00:00Z")
    for value in (1714557600, 1714557600_000, 1714557600_000_000, 1714557600_000_000_000):
        assert parse_ts(pd.Series([value]))[0] == expected
    iso = parse_ts(pd.Series(["2024-05-01T12:00:00+02:00", "2024-05-01T10:00:05"]))
    assert iso.tolist() == [expected, expected + pd.Timedelta(seconds=5)]
    assert str(iso.dtype) == "datetime64[ns, UTC]"
    naive = parse_ts(pd.Series(pd.to_datetime(["2024-05-01T10:00:00"])))
    assert naive[0] == expected


def test_read_tracks_keeps_extra_columns_and_checks_lat(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    brussels_frankfurt(1).assign(callsign="ABC123").to_csv(src, index=False)
    frame = read_tracks(src)
    assert frame["callsign"].iloc[0] == "ABC123"
    assert list(read_tracks(src, columns=()).columns) == ["flight_id", "ts", "lat", "lon"]
    swapped = tmp_path / "s.csv"
    brussels_frankfurt(1).rename(columns={"lat": "lon", "lon": "lat"}).assign(
        lat=lambda d: d["lat"] * 20
    ).to_csv(swapped, index=False)
    with pytest.raises(TracksFileError, match="lat outside"):
        read_tracks(swapped)
