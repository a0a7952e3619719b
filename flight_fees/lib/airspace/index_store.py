"""On-disk cache of prepared FIR sets: build a
:class:`~flight_fees.lib.airspace.crossings.FirIndex` once
per FIR set, reuse it in every later process.

Building the index of a FIR set (grid fill, sub-cells, boundary edge blocks) costs about a
second for the 58 European FIRs and several for the world set, paid again by every command
and every run; loading a stored index costs a few tens of milliseconds. Also cached: the FIR
frame read from a FIR file (:func:`load_firs_cached`), when reading and repairing the file is
the slower part.

Layout: ``<cache root>/fir_index/<key>.npz`` (index) and ``<cache root>/fir_set/<key>.npz``
(FIR frames), the cache root being ``FLIGHT_FEES_CACHE_DIR`` or ``<FLIGHT_FEES_HOME>/cache``.
Files are uncompressed ``.npz`` archives of plain arrays (no pickle): numbers as they are,
strings as fixed-width unicode, geometries as WKB; the STRtree is rebuilt and the geometries
prepared on load.

Keys are SHA-256 digests of everything the content depends on: for an index, the FIR ids and
geometry WKB (in ``fir_id`` order, as :func:`~flight_fees.lib.airspace.crossings.build_fir_index`
sees
them), the build parameters, :data:`FORMAT_VERSION` and the source of the crossing engine
(a changed engine never reads an index built by an older one); for a FIR frame, the file's
bytes, the loader arguments, :data:`FORMAT_VERSION` and the loader's source. A stale entry is
therefore never read; old files are simply left behind (delete the directory to reclaim them).

Concurrency and damage: files are written to a temporary file in the same directory and
renamed over the final name (:func:`os.replace`, atomic on POSIX), so a reader sees a whole
file or none, and two writers of one key leave one valid file. A file that cannot be read or
does not match its key is rebuilt with a :class:`FirIndexCacheWarning`; a cache directory that
cannot be written is warned about and the built index is used anyway. No Dagster here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import shapely

from flight_fees.lib.airspace import crossings as _crossings
from flight_fees.lib.airspace.crossings import FirIndex, build_fir_index

__all__ = [
    "CACHE_DIR_ENV",
    "FORMAT_VERSION",
    "FirIndexCacheWarning",
    "cache_root",
    "cached_fir_index",
    "clear_memory_cache",
    "fir_index_key",
    "load_firs_cached",
    "read_fir_index",
    "write_fir_index",
]

#: Environment variable overriding the cache root (default ``<FLIGHT_FEES_HOME>/cache``).
CACHE_DIR_ENV: Final[str] = "FLIGHT_FEES_CACHE_DIR"
#: Bump whenever the stored layout or the meaning of a stored array changes.
FORMAT_VERSION: Final[int] = 1
#: Default build parameters of :func:`~flight_fees.lib.airspace.crossings.build_fir_index`.
DEFAULT_CELL_DEG: Final[float] = 0.025
DEFAULT_MAX_CELLS: Final[int] = 16_000_000

#: Array fields of :class:`FirIndex` stored as they are.
_ARRAY_FIELDS: Final[tuple[str, ...]] = (
    "grid",
    "tiles",
    "cand_cells",
    "mixed_bits",
    "mixed_rank",
    "cand_ptr",
    "cand_firs",
    "sub",
    "edges",
    "edge_blocks",
    "edge_owner",
)
_SCALAR_FIELDS: Final[tuple[str, ...]] = ("ntx", "x0", "y0", "cell")
#: In-process cache: key -> index (a few FIR sets at most).
_MEMORY: dict[str, FirIndex] = {}
_MEMORY_SIZE: Final[int] = 4


class FirIndexCacheWarning(UserWarning):
    """A cache file was unreadable (rebuilt) or the cache directory is not writable."""


def cache_root() -> Path:
    """``FLIGHT_FEES_CACHE_DIR``, else ``<FLIGHT_FEES_HOME>/cache`` (not created here)."""
    env = os.environ.get(CACHE_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    from flight_fees.lib.core.settings import home_dir

    return home_dir() / "cache"


# --------------------------------------------------------------------------------------------
# FIR index


def fir_index_key(
    firs: pd.DataFrame,
    *,
    cell_deg: float = DEFAULT_CELL_DEG,
    max_cells: int = DEFAULT_MAX_CELLS,
) -> str:
    """The cache key (hex SHA-256) of the index of ``firs`` built with these parameters."""
    return _keys(firs, cell_deg, max_cells)[0]


def cached_fir_index(
    firs: pd.DataFrame,
    *,
    cache_dir: str | Path | None = None,
    cell_deg: float = DEFAULT_CELL_DEG,
    max_cells: int = DEFAULT_MAX_CELLS,
) -> FirIndex:
    """:func:`~flight_fees.lib.airspace.crossings.build_fir_index` of ``firs``, built at most once
    per
    FIR set: from memory, else from ``<cache_dir>/<key>.npz``, else built and stored there.

    Args:
        firs: the FIR frame (``fir_id``, ``geometry``).
        cache_dir: directory of the stored indexes; default ``<cache_root()>/fir_index``.
        cell_deg, max_cells: build parameters (part of the key).

    The index is also registered in the crossing engine's in-process cache, so a later
    ``build_fir_index(firs)`` / ``compute_crossings(tracks, firs)`` of the same frame in this
    process reuses it.
    """
    if not {"fir_id", "geometry"} <= set(firs.columns) or len(firs) == 0:
        return build_fir_index(firs, cell_deg=cell_deg, max_cells=max_cells)  # its errors
    key, engine_key = _keys(firs, cell_deg, max_cells)
    index = _MEMORY.get(key)
    if index is not None:
        return index
    directory = Path(cache_dir) if cache_dir is not None else cache_root() / "fir_index"
    path = directory / f"{key}.npz"
    index = None
    if path.exists():
        try:
            index = read_fir_index(path, expected_key=key)
        except Exception as exc:  # any damage: rebuild, never crash
            warnings.warn(
                f"FIR index cache file {path} is unreadable ({type(exc).__name__}: {exc}); "
                "rebuilding it",
                FirIndexCacheWarning,
                stacklevel=2,
            )
    if index is None:
        index = build_fir_index(firs, cell_deg=cell_deg, max_cells=max_cells)
        try:
            write_fir_index(index, path, key=key)
        except OSError as exc:
            warnings.warn(
                f"cannot store the FIR index in {directory} ({exc}); it is rebuilt next time",
                FirIndexCacheWarning,
                stacklevel=2,
            )
    _remember(_MEMORY, key, index, _MEMORY_SIZE)
    _seed_engine_cache(engine_key, index)
    return index


def write_fir_index(index: FirIndex, path: str | Path, *, key: str = "") -> None:
    """Store ``index`` at ``path`` (atomically: temporary file + rename)."""
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "key": np.array(key),
        "fir_ids": np.asarray(index.fir_ids, dtype=str),
    }
    arrays.update(_wkb_arrays("geoms", index.geoms))
    for name in _ARRAY_FIELDS:
        arrays[name] = np.asarray(getattr(index, name))
    side = _tile_side(index)
    if side:  # the grid is the tiles re-arranged: store it once
        del arrays["grid"]
        arrays["grid_shape"] = np.array(index.grid.shape, dtype=np.int64)
        arrays["tile_side"] = np.array(side, dtype=np.int64)
    for name in _SCALAR_FIELDS:
        arrays[name] = np.array(getattr(index, name))
    # the STRtree's leaf envelopes, exactly (the tree is rebuilt from them on load)
    arrays["edge_tree_bounds"] = shapely.bounds(index.edge_tree.geometries)
    _atomic_savez(Path(path), arrays)


def read_fir_index(path: str | Path, *, expected_key: str | None = None) -> FirIndex:
    """Load an index stored by :func:`write_fir_index`.

    Raises:
        ValueError: other format version, or ``expected_key`` given and not the stored key.
        OSError, zipfile.BadZipFile, KeyError...: unreadable or incomplete file.
    """
    with np.load(path, allow_pickle=False) as npz:
        version = int(npz["format_version"])
        if version != FORMAT_VERSION:
            raise ValueError(f"format version {version}, expected {FORMAT_VERSION}")
        if expected_key is not None and str(npz["key"]) != expected_key:
            raise ValueError("stored key does not match the file name")
        fir_ids = npz["fir_ids"].astype(object)
        geoms = _from_wkb_arrays(npz, "geoms")
        fields: dict[str, Any] = {name: npz[name] for name in _ARRAY_FIELDS if name != "grid"}
        if "grid" in npz.files:
            fields["grid"] = npz["grid"]
        else:
            ny, nx = (int(v) for v in npz["grid_shape"])
            side = int(npz["tile_side"])
            fields["grid"] = _untile(fields["tiles"], ny, nx, int(npz["ntx"]), side)
        ntx = int(npz["ntx"])
        x0, y0, cell = float(npz["x0"]), float(npz["y0"]), float(npz["cell"])
        tb = npz["edge_tree_bounds"]
    if len(geoms) != len(fir_ids):
        raise ValueError("geometry count does not match the FIR ids")
    shapely.prepare(geoms)
    edge_tree = shapely.STRtree(shapely.box(tb[:, 0], tb[:, 1], tb[:, 2], tb[:, 3]))
    return FirIndex(
        fir_ids=fir_ids,
        geoms=geoms,
        ntx=ntx,
        x0=x0,
        y0=y0,
        cell=cell,
        edge_tree=edge_tree,
        **fields,
    )


def clear_memory_cache() -> None:
    """Forget the indexes and FIR frames cached in this process (tests, benchmarks)."""
    _MEMORY.clear()
    _FRAMES.clear()


# --------------------------------------------------------------------------------------------
# FIR frames


_FRAMES: dict[str, tuple[pd.DataFrame, list[str]]] = {}


def load_firs_cached(
    path: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    **loader_args: Any,
) -> pd.DataFrame:
    """:func:`flight_fees.lib.airspace.firs.load_firs` of ``path``, read from a cache keyed by the
    file's
    bytes, the loader arguments and the loader's source; stored after the first load.

    The loader's :class:`~flight_fees.lib.airspace.firs.FirDataWarning` are stored with the frame
    and
    re-emitted on every cache hit, so a caller sees the same warnings either way. ``path=None``
    is the shipped FIR file that ``load_firs(None)`` reads (``FLIGHT_FEES_FIR_SET``).
    """
    from flight_fees.lib.airspace import firs as firs_mod

    if path is None:
        try:
            path = _default_firs_path(firs_mod)
        except Exception:
            return firs_mod.load_firs(None, **loader_args)  # its error, e.g. unknown set
    src = Path(path)
    try:
        file_digest = _file_sha256(src)
    except OSError:
        return firs_mod.load_firs(src, **loader_args)  # its FirDataError
    h = hashlib.sha256()
    h.update(f"fir_set:{FORMAT_VERSION}\0".encode())
    h.update(_source_digest(firs_mod.__file__).encode())
    h.update(file_digest.encode())
    h.update(repr(sorted(loader_args.items())).encode())
    key = h.hexdigest()
    hit = _FRAMES.get(key)
    directory = Path(cache_dir) if cache_dir is not None else cache_root() / "fir_set"
    target = directory / f"{key}.npz"
    if hit is None and target.exists():
        try:
            hit = _read_frame(target, key)
        except Exception as exc:
            warnings.warn(
                f"FIR set cache file {target} is unreadable ({type(exc).__name__}: {exc}); "
                "rebuilding it",
                FirIndexCacheWarning,
                stacklevel=2,
            )
    if hit is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", firs_mod.FirDataWarning)
            frame = firs_mod.load_firs(src, **loader_args)
        messages = []
        for w in caught:  # ours are stored and re-emitted below; others passed on
            if issubclass(w.category, firs_mod.FirDataWarning):
                messages.append(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        hit = (frame, messages)
        try:
            _write_frame(target, key, frame, messages)
        except (OSError, ValueError, TypeError) as exc:
            warnings.warn(
                f"cannot store the FIR set in {directory} ({exc}); it is re-read next time",
                FirIndexCacheWarning,
                stacklevel=2,
            )
    _remember(_FRAMES, key, hit, _MEMORY_SIZE)
    frame, messages = hit
    for message in messages:
        warnings.warn(message, firs_mod.FirDataWarning, stacklevel=2)
    return frame.copy()


def _default_firs_path(firs_mod: Any) -> Path:
    """The file ``load_firs(None)`` reads."""
    resolve = getattr(firs_mod, "default_fir_set", None)
    if resolve is not None:
        return Path(resolve().firs_path)
    return Path(firs_mod.DEFAULT_FIRS_PATH)


def _write_frame(path: Path, key: str, frame: pd.DataFrame, messages: list[str]) -> None:
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "key": np.array(key),
        "columns": np.array(list(frame.columns), dtype=str),
        "dtypes": np.array([str(t) for t in frame.dtypes], dtype=str),
        "warnings": np.array(messages, dtype=str),
    }
    for i, col in enumerate(frame.columns):
        values = frame[col]
        if col == "geometry":
            arrays.update(_wkb_arrays(f"c{i}", np.asarray(values.to_numpy(), dtype=object)))
        elif isinstance(values.dtype, np.dtype) and values.dtype.kind in "biuf":
            arrays[f"c{i}"] = values.to_numpy()
        elif values.notna().all() and all(isinstance(v, str) for v in values):
            arrays[f"c{i}"] = values.to_numpy(dtype=object).astype(str)
        else:
            raise TypeError(f"column {col!r} of dtype {values.dtype} cannot be cached")
    _atomic_savez(path, arrays)


def _read_frame(path: Path, key: str) -> tuple[pd.DataFrame, list[str]]:
    with np.load(path, allow_pickle=False) as npz:
        if int(npz["format_version"]) != FORMAT_VERSION or str(npz["key"]) != key:
            raise ValueError("format version or key mismatch")
        columns = [str(c) for c in npz["columns"]]
        dtypes = [str(t) for t in npz["dtypes"]]
        data: dict[str, Any] = {}
        for i, (col, dtype) in enumerate(zip(columns, dtypes, strict=True)):
            if col == "geometry":
                data[col] = _from_wkb_arrays(npz, f"c{i}")
            else:
                values = npz[f"c{i}"]
                if values.dtype.kind == "U":
                    values = values.astype(object)
                data[col] = pd.Series(values, dtype=dtype, copy=False)
        messages = [str(m) for m in npz["warnings"]]
    return pd.DataFrame(data, columns=columns), messages


# --------------------------------------------------------------------------------------------
# helpers


def _keys(firs: pd.DataFrame, cell_deg: float, max_cells: int) -> tuple[str, str]:
    """(our key, the crossing engine's in-process cache key) of a FIR frame."""
    ids = firs["fir_id"].astype(str).to_numpy()
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    geoms = np.asarray(firs["geometry"].to_numpy(), dtype=object)[order]
    wkbs = shapely.to_wkb(geoms)
    ours = hashlib.sha256()
    ours.update(f"fir_index:{FORMAT_VERSION}\0".encode())
    ours.update(_source_digest(_crossings.__file__).encode())
    ours.update(repr((float(cell_deg), int(max_cells))).encode())
    ours.update(np.int64(len(ids)).tobytes())
    for fir_id, wkb in zip(ids, wkbs, strict=True):
        raw = str(fir_id).encode()
        ours.update(np.int64(len(raw)).tobytes() + raw)
        ours.update(np.int64(len(wkb)).tobytes() + wkb)
    # the key under which build_fir_index caches an index in memory (see its source)
    engine = hashlib.sha1()  # noqa: S324 - not security, must match the engine's key
    engine.update("\0".join(ids).encode())
    for wkb in wkbs:
        engine.update(wkb)
    engine.update(repr((cell_deg, max_cells)).encode())
    return ours.hexdigest(), engine.hexdigest()


def _seed_engine_cache(engine_key: str, index: FirIndex) -> None:
    """Register ``index`` in ``build_fir_index``'s in-process cache (best effort: if the
    engine keys its cache differently, it merely builds the index once more)."""
    cache = getattr(_crossings, "_INDEX_CACHE", None)
    size = getattr(_crossings, "_INDEX_CACHE_SIZE", _MEMORY_SIZE)
    if isinstance(cache, dict) and engine_key not in cache:
        _remember(cache, engine_key, index, size)


def _remember(cache: dict[str, Any], key: str, value: Any, size: int) -> None:
    if key not in cache and len(cache) >= size:
        cache.pop(next(iter(cache)))
    cache[key] = value


_SOURCE_DIGESTS: dict[str, str] = {}


def _source_digest(filename: str | None) -> str:
    """SHA-256 of a module's source file (so that a code change invalidates the cache)."""
    if not filename:
        return ""
    if filename not in _SOURCE_DIGESTS:
        try:
            _SOURCE_DIGESTS[filename] = _file_sha256(Path(filename))
        except OSError:
            _SOURCE_DIGESTS[filename] = ""
    return _SOURCE_DIGESTS[filename]


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _untile(tiles: np.ndarray, ny: int, nx: int, ntx: int, side: int) -> np.ndarray:
    """The (ny, nx) grid of a tiled copy (square tiles of ``side`` cells, ``ntx`` a row)."""
    nty = tiles.size // (ntx * side * side)
    if nty * ntx * side * side != tiles.size or nty * side < ny or ntx * side < nx:
        raise ValueError("tiles do not match the grid shape")
    full = tiles.reshape(nty, ntx, side, side).transpose(0, 2, 1, 3).reshape(nty * side, -1)
    return np.ascontiguousarray(full[:ny, :nx])


def _tile_side(index: FirIndex) -> int:
    """The tile side for which ``index.tiles`` is ``index.grid`` re-arranged, else 0."""
    ny, nx = index.grid.shape
    for bits in range(13):
        side = 1 << bits
        if -(-nx // side) != index.ntx or index.tiles.size % (index.ntx * side * side):
            continue
        try:
            grid = _untile(np.asarray(index.tiles), ny, nx, index.ntx, side)
        except ValueError:
            continue
        if grid.dtype == index.grid.dtype and np.array_equal(grid, index.grid):
            return side
    return 0


def _wkb_arrays(prefix: str, geoms: np.ndarray) -> dict[str, np.ndarray]:
    """Geometries as one byte buffer of WKB plus offsets (no object arrays, no pickle)."""
    wkbs = shapely.to_wkb(np.asarray(geoms, dtype=object))
    lengths = np.fromiter((len(w) for w in wkbs), dtype=np.int64, count=len(wkbs))
    return {
        f"{prefix}_wkb": np.frombuffer(b"".join(wkbs), dtype=np.uint8),
        f"{prefix}_offsets": np.r_[0, np.cumsum(lengths)].astype(np.int64),
    }


def _from_wkb_arrays(npz: Any, prefix: str) -> np.ndarray:
    buf = npz[f"{prefix}_wkb"].tobytes()
    offs = npz[f"{prefix}_offsets"]
    wkbs = np.array([buf[a:b] for a, b in zip(offs[:-1], offs[1:], strict=True)], dtype=object)
    out = shapely.from_wkb(wkbs)
    return np.asarray(out, dtype=object)


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to a temporary file next to ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, allow_pickle=True, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
