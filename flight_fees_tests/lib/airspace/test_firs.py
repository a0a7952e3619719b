"""FIR loader: formats, property detection, repair, overlaps, the shipped file."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from flight_fees.lib.airspace.firs import (
    EUROPE_FIRS_PATH,
    EUROPE_ZONES_PATH,
    WORLD_FIRS_PATH,
    WORLD_ZONES_PATH,
    FirDataError,
    FirDataWarning,
    default_fir_set,
    find_fir_overlaps,
    load_firs,
    validate_firs,
)

REPO = Path(__file__).resolve().parents[3]
SHARED_SOURCE = REPO.parent / "shared" / "data" / "eurocontrol_firs_2015.geojson"
SHARED_WORLD_SOURCE = REPO.parent / "shared" / "data" / "eurocontrol_ead_world_firuir_2015.geojson"


@pytest.fixture(scope="module")
def shipped() -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FirDataWarning)
        return load_firs(EUROPE_FIRS_PATH)


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FirDataWarning)
        return load_firs(WORLD_FIRS_PATH)


def write(tmp_path: Path, name: str, frame: gpd.GeoDataFrame) -> Path:
    path = tmp_path / name
    frame.to_file(path, engine="pyogrio")
    return path


def two_firs(**props: list[object]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        props,
        geometry=[shapely.box(0, 40, 1, 41), shapely.box(1, 40, 2, 41)],
        crs=4326,
    )


# ---------------------------------------------------------------------------------------------
# shipped data


def test_shipped_default_fir_set(shipped: pd.DataFrame) -> None:
    assert len(shipped) == 58
    assert list(shipped.columns[:4]) == ["fir_id", "name", "country", "geometry"]
    assert shipped["fir_id"].is_unique and shipped["fir_id"].is_monotonic_increasing
    geoms = np.asarray(shipped["geometry"].to_numpy(), dtype=object)
    assert shapely.is_valid(geoms).all()
    assert int(shapely.get_num_coordinates(geoms).sum()) == 116_703  # every vertex kept
    row = shipped.set_index("fir_id")
    assert row.loc["LFFF", "name"] == "PARIS FIR" and row.loc["LFFF", "country"] == "France"
    assert row.loc["GCCC", "country"] == "Spain"
    # vertical limits converted to flight levels: FT / 100, FL as is, M -> ft / 100
    assert row.loc["UDDD", "lower_fl"] == pytest.approx(115.0)
    assert row.loc["EBBU", "upper_fl"] == 195.0
    assert row.loc["UKBV", "lower_fl"] == 0.0
    # Brussels airport is in EBBU, Frankfurt in EDGG
    assert row.loc["EBBU", "geometry"].contains(shapely.Point(4.484, 50.901))
    assert row.loc["EDGG", "geometry"].contains(shapely.Point(8.570, 50.033))


def test_shipped_overlap_is_reported() -> None:
    with pytest.warns(FirDataWarning, match=r"LECB/LFBB"):
        firs = load_firs(EUROPE_FIRS_PATH)
    overlaps = find_fir_overlaps(firs, min_area_km2=1.0)
    assert overlaps[["fir_id_a", "fir_id_b"]].values.tolist() == [["LECB", "LFBB"]]
    assert overlaps["overlap_km2"].iloc[0] == pytest.approx(474.6, abs=1.0)
    slivers = find_fir_overlaps(firs)  # digitisation slivers between neighbours
    assert len(slivers) > 1 and (slivers["overlap_km2"] > 0).all()


@pytest.mark.skipif(not SHARED_SOURCE.exists(), reason="shared source data not present")
def test_conversion_script_reproduces_the_shipped_file(tmp_path: Path) -> None:
    out = tmp_path / "firs.geojson"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "convert_firs.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == EUROPE_FIRS_PATH.read_bytes()


@pytest.mark.skipif(not SHARED_WORLD_SOURCE.exists(), reason="shared source data not present")
def test_world_conversion_script_reproduces_the_shipped_file(tmp_path: Path) -> None:
    out = tmp_path / "world.geojson"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "convert_world_firs.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == WORLD_FIRS_PATH.read_bytes()


# ---------------------------------------------------------------------------------------------
# the world FIR/UIR set and the FIR_SET switch


def test_world_set_keeps_the_lateral_fir_layer(world: pd.DataFrame) -> None:
    assert len(world) == 270  # 271 FIR features, KZBW twice; the 65 UIRs dropped
    assert world["fir_id"].is_unique and world["fir_id"].is_monotonic_increasing
    geoms = np.asarray(world["geometry"].to_numpy(), dtype=object)
    assert shapely.is_valid(geoms).all()  # KZHU repaired
    row = world.set_index("fir_id")
    # UIRs sharing an id with a FIR were dropped before the dissolve, not merged into it:
    assert row.loc["LFFF", "name"] == "PARIS FIR" and row.loc["LFFF", "upper_fl"] == 195.0
    assert row.loc["EGTT", "name"] == "LONDON FIR" and row.loc["EGTT", "upper_fl"] == 245.0
    assert row.loc["KZNY", "upper_fl"] == 180.0  # the KZNY UIR (FL180 up) is not merged
    assert "KZOB" not in row.index  # Cleveland exists only as a UIR in the source
    assert row.loc["VTBB", "country"] == "Thailand" and row.loc["USSS", "country"] == "Russia"
    assert row.loc["KZBW", "geometry"].contains(shapely.Point(-71.0, 42.4))  # Boston


def test_world_defects_are_repaired_with_warnings() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_firs(WORLD_FIRS_PATH, check_overlaps=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, FirDataWarning)]
    assert any("FIR KZHU has an invalid polygon" in m for m in messages)
    assert any("dissolved: KZBW" in m for m in messages)


def test_world_uir_layer_and_mixed_layers() -> None:
    uirs = load_firs(WORLD_FIRS_PATH, types="uir", check_overlaps=False)
    assert len(uirs) == 65 and "KZOB" in set(uirs["fir_id"])
    assert uirs.set_index("fir_id").loc["LFFF", "name"] == "FRANCE UIR"
    with pytest.raises(FirDataError, match=r"share FIR id\(s\) .*EGTT"):
        load_firs(WORLD_FIRS_PATH, types=["FIR", "UIR"], check_overlaps=False)
    with pytest.raises(FirDataError, match="no feature of type XIR"):
        load_firs(WORLD_FIRS_PATH, types="XIR", check_overlaps=False)


def test_type_layers_of_any_file(tmp_path: Path) -> None:
    src = gpd.GeoDataFrame(
        {"IDENT": ["AAAA", "AAAA", "BBBB"], "Type": ["FIR", "UIR", "FIR"]},
        geometry=[shapely.box(0, 40, 1, 41), shapely.box(0, 40, 2, 41), shapely.box(1, 40, 2, 41)],
        crs=4326,
    )
    path = write(tmp_path, "layers.geojson", src)
    firs = load_firs(path)  # default: the FIR layer, the UIR never merged into AAAA
    assert firs["fir_id"].tolist() == ["AAAA", "BBBB"]
    assert firs["geometry"].iloc[0].equals(shapely.box(0, 40, 1, 41))
    only_fir = write(tmp_path, "fir.geojson", src[src["Type"] == "FIR"])
    assert len(load_firs(only_fir)) == 2  # one layer: nothing to choose
    no_type = write(tmp_path, "plain.geojson", src[["IDENT", "geometry"]].iloc[[0, 2]])
    assert len(load_firs(no_type)) == 2
    with pytest.raises(FirDataError, match="type"):
        load_firs(no_type, types="FIR")


def test_european_firs_of_the_world_set_match_the_european_set(
    shipped: pd.DataFrame, world: pd.DataFrame
) -> None:
    """Same 58 ids and vertices; vertex coordinates differ by at most 1.5e-6 degree (the
    sources round differently), so no European result moves by more than ~0.2 m."""
    eu = shipped.set_index("fir_id")["geometry"]
    wd = world.set_index("fir_id")["geometry"].reindex(eu.index)
    assert wd.notna().all()
    a = np.asarray(eu.to_numpy(), dtype=object)
    b = np.asarray(wd.to_numpy(), dtype=object)
    assert (shapely.get_num_coordinates(a) == shapely.get_num_coordinates(b)).all()
    assert max(shapely.hausdorff_distance(a, b)) < 1.5e-6


def test_fir_set_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLIGHT_FEES_FIR_SET", raising=False)
    assert default_fir_set().firs_path == WORLD_FIRS_PATH  # the default
    assert default_fir_set().zones_path == WORLD_ZONES_PATH
    monkeypatch.setenv("FLIGHT_FEES_FIR_SET", " Europe ")
    assert default_fir_set().firs_path == EUROPE_FIRS_PATH
    assert default_fir_set().zones_path == EUROPE_ZONES_PATH
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FirDataWarning)
        assert len(load_firs()) == 58
    monkeypatch.setenv("FLIGHT_FEES_FIR_SET", "mars")
    with pytest.raises(FirDataError, match="unknown FIR set 'mars'"):
        load_firs()


# ---------------------------------------------------------------------------------------------
# formats and properties


@pytest.mark.parametrize("name", ["firs.gpkg", "firs.shp", "firs.geojson"])
def test_formats_and_auto_detected_properties(tmp_path: Path, name: str) -> None:
    src = two_firs(DESIGNATOR=["aaaa ", "BBBB"], TXT_NAME=["Alpha", "Beta"], STATE=["X", "Y"])
    firs = load_firs(write(tmp_path, name, src))
    assert firs["fir_id"].tolist() == ["AAAA", "BBBB"]  # stripped, upper-cased
    assert firs["name"].tolist() == ["Alpha", "Beta"]
    assert firs["country"].tolist() == ["X", "Y"]
    assert firs["geometry"].iloc[1].equals(shapely.box(1, 40, 2, 41))
    assert "lower_fl" not in firs.columns


def test_explicit_property_names_override_detection(tmp_path: Path) -> None:
    src = two_firs(id=["1", "2"], code=["AAAA", "BBBB"], label=["A", "B"], nation=["X", "Y"])
    path = write(tmp_path, "f.geojson", src)
    assert load_firs(path)["fir_id"].tolist() == ["1", "2"]  # detected "id"
    firs = load_firs(path, id_property="code", name_property="LABEL", country_property="nation")
    assert firs["fir_id"].tolist() == ["AAAA", "BBBB"]
    assert firs["name"].tolist() == ["A", "B"]
    assert firs["country"].tolist() == ["X", "Y"]
    with pytest.raises(FirDataError, match=r"no property 'nope' for the FIR name"):
        load_firs(path, name_property="nope")


def test_missing_id_property_and_defaults_for_name_country(tmp_path: Path) -> None:
    path = write(tmp_path, "f.geojson", two_firs(colour=["red", "blue"]))
    with pytest.raises(FirDataError, match="cannot find the FIR id property"):
        load_firs(path)
    firs = load_firs(path, id_property="colour")
    assert firs["name"].tolist() == firs["fir_id"].tolist() == ["BLUE", "RED"]
    assert firs["country"].tolist() == ["", ""]


def test_projected_crs_is_reprojected(tmp_path: Path) -> None:
    src = two_firs(ident=["AAAA", "BBBB"]).to_crs(3035)
    firs = load_firs(write(tmp_path, "f.gpkg", src))
    bounds = shapely.bounds(np.asarray(firs["geometry"].to_numpy(), dtype=object))
    np.testing.assert_allclose(bounds[0], [0, 40, 1, 41], atol=1e-6)


def test_vertical_limits_with_units(tmp_path: Path) -> None:
    src = two_firs(
        ident=["AAAA", "BBBB"],
        LOWERLIMIT=["SFC", "3000"],
        LOWERUNIT=["FT", "M"],
        UPPERLIMIT=["245", "UNL"],
        UPPERUNIT=["FL", "FL"],
    )
    firs = load_firs(write(tmp_path, "f.geojson", src))
    assert firs["lower_fl"].tolist() == pytest.approx([0.0, 3000 / 0.3048 / 100])
    assert firs["upper_fl"].tolist()[0] == 245.0 and np.isinf(firs["upper_fl"].iloc[1])


# ---------------------------------------------------------------------------------------------
# repair and errors


def test_invalid_polygon_is_repaired_with_a_warning_naming_the_fir(tmp_path: Path) -> None:
    bowtie = shapely.Polygon([(0, 40), (1, 41), (1, 40), (0, 41), (0, 40)])
    src = gpd.GeoDataFrame(
        {"ident": ["GOOD", "BOWT"]}, geometry=[shapely.box(5, 40, 6, 41), bowtie], crs=4326
    )
    with pytest.warns(FirDataWarning, match="FIR BOWT has an invalid polygon"):
        firs = load_firs(write(tmp_path, "f.geojson", src))
    geom = firs.set_index("fir_id").loc["BOWT", "geometry"]
    assert geom.is_valid and geom.geom_type == "MultiPolygon"
    assert geom.area == pytest.approx(0.5)


def test_duplicate_ids_are_dissolved_with_a_warning() -> None:
    frame = pd.DataFrame(
        {
            "fir_id": ["AAAA", "AAAA", "BBBB"],
            "geometry": [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(5, 5, 6, 6)],
        }
    )
    with pytest.warns(FirDataWarning, match="dissolved: AAAA"):
        firs = validate_firs(frame)
    assert firs["fir_id"].tolist() == ["AAAA", "BBBB"]
    assert firs["geometry"].iloc[0].area == pytest.approx(2.0)
    assert firs["name"].tolist() == ["AAAA", "BBBB"]


def test_overlapping_firs_warned_on_load(tmp_path: Path) -> None:
    src = gpd.GeoDataFrame(
        {"ident": ["AAAA", "BBBB"]},
        geometry=[shapely.box(0, 40, 1, 41), shapely.box(0.5, 40, 1.5, 41)],
        crs=4326,
    )
    with pytest.warns(FirDataWarning, match=r"AAAA/BBBB \d+\.\d km²"):
        load_firs(write(tmp_path, "f.geojson", src))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_firs(tmp_path / "f.geojson", check_overlaps=False)


def test_unreadable_and_unusable_files(tmp_path: Path) -> None:
    with pytest.raises(FirDataError, match="not found"):
        load_firs(tmp_path / "missing.geojson")
    junk = tmp_path / "junk.geojson"
    junk.write_text("{not json", encoding="utf-8")
    with pytest.raises(FirDataError, match="cannot read FIR file"):
        load_firs(junk)
    points = gpd.GeoDataFrame({"ident": ["PNT1"]}, geometry=[shapely.Point(0, 0)], crs=4326)
    with pytest.raises(FirDataError, match=r"\(Multi\)Polygon: PNT1"):
        load_firs(write(tmp_path, "p.geojson", points))
    with pytest.raises(FirDataError, match="missing column"):
        validate_firs(pd.DataFrame({"fir_id": ["A"]}))
    with pytest.raises(FirDataError, match="without geometry: AAAA"):
        validate_firs(pd.DataFrame({"fir_id": ["AAAA"], "geometry": [None]}))
