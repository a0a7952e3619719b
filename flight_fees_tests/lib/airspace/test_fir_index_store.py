"""The on-disk FIR index cache: round trip, keys, damage, concurrent writers, FIR frames."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

import flight_fees.lib.airspace.crossings as crossings_mod
from flight_fees.lib.airspace import index_store as store
from flight_fees.lib.airspace.crossings import FirIndex, build_fir_index, compute_crossings
from flight_fees.lib.airspace.firs import FirDataWarning, load_firs

REPO = Path(__file__).resolve().parents[3]
EUROPE = REPO / "flight_fees" / "data" / "firs" / "eurocontrol_firs_2015.geojson"


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    store.clear_memory_cache()
    crossings_mod._INDEX_CACHE.clear()


def small_firs() -> pd.DataFrame:
    """Three FIRs: two squares sharing an edge and one straddling the antimeridian."""
    return pd.DataFrame(
        {
            "fir_id": ["AAAA", "BBBB", "CCCC"],
            "geometry": [
                shapely.box(0.0, 0.0, 2.0, 2.0),
                shapely.Polygon([(2, 0), (4, 0.5), (4.5, 2.5), (2, 2)]),
                shapely.box(175.0, -5.0, 185.0, 5.0),
            ],
        }
    )


def tracks(n: int = 40, seed: int = 3) -> pd.DataFrame:
    """Geodesic flights around the small FIRs and across the antimeridian, 10 % with a gap."""
    rng = np.random.default_rng(seed)
    geod = pyproj.Geod(ellps="WGS84")
    frames = []
    for f in range(n):
        lon0 = rng.choice([-0.5, 1.0, 3.0, 178.0]) + rng.normal(0, 0.3)
        lat0 = rng.uniform(-0.5, 2.5)
        npts = 400
        dist = np.arange(npts) * 1_200.0
        lon, lat, _ = geod.fwd(
            np.full(npts, lon0), np.full(npts, lat0), np.full(npts, rng.uniform(0, 360)), dist
        )
        ts = pd.Timestamp("2024-06-01T00:00:00Z") + pd.to_timedelta(np.arange(npts) * 5, "s")
        keep = np.ones(npts, dtype=bool)
        if f % 10 == 0:
            keep[150:300] = False
        frames.append(
            pd.DataFrame({"flight_id": f + 1, "ts": ts[keep], "lat": lat[keep], "lon": lon[keep]})
        )
    return pd.concat(frames, ignore_index=True)


def assert_same_index(a: FirIndex, b: FirIndex) -> None:
    assert list(a.fir_ids) == list(b.fir_ids)
    for name in store._ARRAY_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y, equal_nan=True), name
    assert (a.ntx, a.x0, a.y0, a.cell) == (b.ntx, b.x0, b.y0, b.cell)
    assert all(g.equals_exact(h, 0.0) for g, h in zip(a.geoms, b.geoms, strict=True))
    assert np.array_equal(
        shapely.bounds(a.edge_tree.geometries), shapely.bounds(b.edge_tree.geometries)
    )


@pytest.mark.parametrize("fir_set", ["small", "europe"])
def test_round_trip_gives_bit_identical_crossings(tmp_path: Path, fir_set: str) -> None:
    firs = small_firs() if fir_set == "small" else load_firs(EUROPE, check_overlaps=False)
    built = build_fir_index(firs)
    path = tmp_path / "index.npz"
    store.write_fir_index(built, path, key="k")
    loaded = store.read_fir_index(path, expected_key="k")
    assert_same_index(built, loaded)
    trk = tracks()
    if fir_set == "europe":  # move the flights into Europe
        trk = trk.assign(
            lon=trk["lon"].where(trk["lon"] < 100, trk["lon"] - 170) + 8, lat=trk["lat"] + 47
        )
    for kwargs in ({}, {"gap_threshold_s": 300, "jitter_s": 0}):
        expected = compute_crossings(trk, built, **kwargs)
        actual = compute_crossings(trk, loaded, **kwargs)
        assert len(expected) > 10
        pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    x = np.random.default_rng(1).uniform(-10, 40, 20_000)
    y = np.random.default_rng(2).uniform(-10, 70, 20_000)
    assert np.array_equal(built.classify(x, y), loaded.classify(x, y))


def test_cached_fir_index_builds_once_then_loads_from_disk(tmp_path: Path) -> None:
    firs = small_firs()
    first = store.cached_fir_index(firs, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert [f.stem for f in files] == [store.fir_index_key(firs)]
    assert store.cached_fir_index(firs, cache_dir=tmp_path) is first  # memory
    store.clear_memory_cache()
    crossings_mod._INDEX_CACHE.clear()
    again = store.cached_fir_index(firs, cache_dir=tmp_path)  # disk
    assert again is not first
    assert_same_index(first, again)
    # the engine's in-process cache is seeded: compute_crossings(tracks, frame) reuses it
    assert build_fir_index(firs) is again
    assert not list(tmp_path.glob("*.tmp"))


def test_default_cache_dir_is_below_home_or_the_env_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLIGHT_FEES_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(store.CACHE_DIR_ENV, raising=False)
    assert store.cache_root() == (tmp_path / "home" / "cache").resolve()
    store.cached_fir_index(small_firs())
    assert len(list((tmp_path / "home" / "cache" / "fir_index").glob("*.npz"))) == 1
    monkeypatch.setenv(store.CACHE_DIR_ENV, str(tmp_path / "elsewhere"))
    assert store.cache_root() == (tmp_path / "elsewhere").resolve()


def test_changed_fir_set_or_parameters_get_a_new_key() -> None:
    firs = small_firs()
    key = store.fir_index_key(firs)
    assert store.fir_index_key(firs.iloc[::-1].reset_index(drop=True)) == key  # row order
    moved = firs.copy()
    moved.loc[0, "geometry"] = shapely.box(0.0, 0.0, 2.0, 2.0000001)
    renamed = firs.assign(fir_id=["AAAA", "BBBB", "DDDD"])
    variants = [
        store.fir_index_key(moved),
        store.fir_index_key(renamed),
        store.fir_index_key(firs.iloc[:2]),
        store.fir_index_key(firs, cell_deg=0.05),
        store.fir_index_key(firs, max_cells=1_000_000),
    ]
    assert len({key, *variants}) == 1 + len(variants)


def test_format_version_is_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    firs = small_firs()
    key = store.fir_index_key(firs)
    monkeypatch.setattr(store, "FORMAT_VERSION", store.FORMAT_VERSION + 1)
    assert store.fir_index_key(firs) != key


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other_key"])
def test_corrupt_cache_file_is_rebuilt_with_a_warning(tmp_path: Path, damage: str) -> None:
    firs = small_firs()
    good = store.cached_fir_index(firs, cache_dir=tmp_path)
    path = tmp_path / f"{store.fir_index_key(firs)}.npz"
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a zip file" * 100)
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        store.write_fir_index(good, path, key="0" * 64)
    store.clear_memory_cache()
    with pytest.warns(store.FirIndexCacheWarning, match="rebuilding"):
        rebuilt = store.cached_fir_index(firs, cache_dir=tmp_path)
    assert_same_index(good, rebuilt)
    store.read_fir_index(path, expected_key=store.fir_index_key(firs))  # valid again
    store.clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error", store.FirIndexCacheWarning)
        store.cached_fir_index(firs, cache_dir=tmp_path)


def test_unwritable_cache_dir_warns_and_still_returns_the_index(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the directory should be")
    with pytest.warns(store.FirIndexCacheWarning, match="cannot store"):
        index = store.cached_fir_index(small_firs(), cache_dir=blocker / "sub")
    assert isinstance(index, FirIndex)


def test_concurrent_writers_leave_a_valid_file(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from flight_fees_tests.lib.airspace.test_fir_index_store import small_firs
        from flight_fees.lib.airspace import index_store as store
        from flight_fees.lib.airspace.crossings import build_fir_index
        firs = small_firs()
        index = build_fir_index(firs)
        key = store.fir_index_key(firs)
        path = {str(tmp_path)!r} + "/" + key + ".npz"
        for _ in range(15):  # rewrite the same key many times, racing the other process
            store.write_fir_index(index, path, key=key)
            store.read_fir_index(path, expected_key=key)  # never a half-written file
        print(key)
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    keys = set()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        keys.add(out.decode().strip())
    files = list(tmp_path.iterdir())
    assert [f.suffix for f in files] == [".npz"]  # no temporary file left behind
    (key,) = keys
    loaded = store.read_fir_index(files[0], expected_key=key)
    assert_same_index(build_fir_index(small_firs()), loaded)


def test_fir_frame_cache_round_trip_and_warnings_replayed(tmp_path: Path) -> None:
    src = tmp_path / "firs.geojson"
    frame = small_firs().assign(name=["A", "B", "C"], country=["X", "Y", "Z"])
    frame.loc[1, "geometry"] = shapely.Polygon([(2, 0), (4, 2), (4, 0), (2, 2)])  # bow-tie
    import geopandas as gpd

    gpd.GeoDataFrame(frame, geometry="geometry", crs=4326).to_file(src, driver="GeoJSON")
    with pytest.warns(FirDataWarning, match="BBBB"):
        expected = load_firs(src)
    cache = tmp_path / "cache"
    with pytest.warns(FirDataWarning, match="BBBB"):
        first = store.load_firs_cached(src, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1
    store.clear_memory_cache()
    with pytest.warns(FirDataWarning, match="BBBB"):
        second = store.load_firs_cached(src, cache_dir=cache)  # from disk
    for got in (first, second):
        pd.testing.assert_frame_equal(
            got.drop(columns="geometry"), expected.drop(columns="geometry")
        )
        assert all(
            g.equals_exact(h, 0.0)
            for g, h in zip(got["geometry"], expected["geometry"], strict=True)
        )
    # another loader argument or another file content: another entry
    with pytest.warns(FirDataWarning):
        store.load_firs_cached(src, cache_dir=cache, check_overlaps=False)
    assert len(list(cache.glob("*.npz"))) == 2
    src.write_text(src.read_text().replace('"C"', '"C2"'))
    with pytest.warns(FirDataWarning):
        changed = store.load_firs_cached(src, cache_dir=cache)
    assert "C2" in set(changed["name"])
    assert len(list(cache.glob("*.npz"))) == 3
