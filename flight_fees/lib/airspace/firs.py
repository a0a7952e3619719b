"""FIR (flight information region) reference data: loading, repair and sanity checks.

The FIR set is a plain :class:`pandas.DataFrame` (see ``docs/ARCHITECTURE.md``)::

    fir_id (str) | name (str) | country (str) | geometry (shapely Polygon/MultiPolygon, lon/lat)
    [+ lower_fl, upper_fl (float64, flight levels) when the source has vertical limits]

:func:`load_firs` reads GeoJSON, GeoPackage, Shapefile or anything else GDAL reads (through
``pyogrio``), reprojects to WGS84 lon/lat, repairs invalid polygons (with a
:class:`FirDataWarning` naming the FIR), dissolves features sharing one FIR id, and warns
about overlapping FIRs (:func:`find_fir_overlaps`). The property names holding the id, name
and country are configurable; by default common names are auto-detected (case-insensitive).

**FIR / UIR layering.** Some sources (the shipped EUROCONTROL EAD world set) hold two stacked
layers: ``TYPE = FIR`` (the lateral flight information regions, from the ground or a low
level up) and ``TYPE = UIR`` (upper regions, e.g. FL245 and above, laid over the FIRs). Several
UIRs carry the same id as a FIR (France UIR ``LFFF``, London UIR ``EGTT``, the US ARTCCs above
FL180), so dissolving by id across layers would merge two different airspaces. Lateral route
charging follows the state of the lateral FIR (the UIR of a state overlays its FIRs
vertically) and the track's altitude band is not used, so :func:`load_firs` keeps **one
layer**: by default the FIR layer when the source has a type property with FIR and other
rows; ``types=`` selects another layer explicitly. Rows of other layers are dropped *before*
the features of one id are dissolved, and a selection of several layers sharing an id is
refused (:class:`FirDataError`). Features of one id within the layer (KZBW in the world set)
are dissolved into one FIR, with a :class:`FirDataWarning`.

**Shipped sets.** :func:`default_fir_set` gives the FIR file and the matching charging-zone
file selected by ``FLIGHT_FEES_FIR_SET`` (``world``, the default, or ``europe``); explicit
paths always win.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyproj
import shapely

from flight_fees.lib.core.settings import DATA_DIR, FIR_SET_ENV, FIR_SET_NAMES, fir_set_name

__all__ = [
    "DEFAULT_FIRS_PATH",
    "EUROPE_FIRS_PATH",
    "EUROPE_ZONES_PATH",
    "WORLD_FIRS_PATH",
    "WORLD_ZONES_PATH",
    "FirDataError",
    "FirDataWarning",
    "FirSet",
    "default_fir_set",
    "find_fir_overlaps",
    "load_firs",
    "validate_firs",
]

logger = logging.getLogger(__name__)

_DATA: Final[Path] = DATA_DIR
#: The 58 European FIRs of 2015 (``data/firs/PROVENANCE.md``) and their charging zones.
EUROPE_FIRS_PATH: Final[Path] = _DATA / "firs" / "eurocontrol_firs_2015.geojson"
EUROPE_ZONES_PATH: Final[Path] = _DATA / "charging_zones.yaml"
#: The EUROCONTROL EAD world FIR/UIR set of 2015 (``data/firs/PROVENANCE.md``) and its zones.
WORLD_FIRS_PATH: Final[Path] = _DATA / "firs" / "eurocontrol_ead_world_firuir_2015.geojson"
WORLD_ZONES_PATH: Final[Path] = _DATA / "charging_zones_world.yaml"

#: Property holding the layer of a feature (``FIR`` / ``UIR``), matched case-insensitively.
TYPE_CANDIDATES: Final[tuple[str, ...]] = ("type", "fir_type", "airspace_type")
#: The lateral layer kept by default when a source has several (see the module docstring).
LATERAL_TYPE: Final[str] = "FIR"

#: Auto-detected property names, in order of preference (matched case-insensitively). ``icao``
#: comes last for the id: in EUROCONTROL data it is the 2-letter state prefix, not the FIR id.
ID_CANDIDATES: Final[tuple[str, ...]] = (
    "fir_id", "ident", "designator", "code_id", "fir", "id", "icao",
)  # fmt: skip
NAME_CANDIDATES: Final[tuple[str, ...]] = ("name", "fir_name", "txt_name", "label")
COUNTRY_CANDIDATES: Final[tuple[str, ...]] = (
    "country", "country_name", "state", "state_name", "ctry", "icao",
)  # fmt: skip
#: Vertical limits: (value property, unit property) pairs, or a plain flight-level property.
LOWER_CANDIDATES: Final[tuple[tuple[str, str | None], ...]] = (
    ("lower_fl", None), ("lowerlimit", "lowerunit"), ("lower_limit", "lower_unit"),
)  # fmt: skip
UPPER_CANDIDATES: Final[tuple[tuple[str, str | None], ...]] = (
    ("upper_fl", None), ("upperlimit", "upperunit"), ("upper_limit", "upper_unit"),
)  # fmt: skip

#: Overlaps smaller than this (km²) are digitisation slivers and are not warned about.
OVERLAP_WARN_KM2: Final[float] = 1.0

_GEOD: Final = pyproj.Geod(ellps="WGS84")
_FT_PER_M: Final[float] = 1.0 / 0.3048
#: degrees a FIR may overshoot the lon/lat range (digitisation noise at the antimeridian)
_RANGE_TOLERANCE: Final[float] = 1e-6


class FirDataError(ValueError):
    """The FIR file cannot be read or does not hold a usable FIR set."""


class FirDataWarning(UserWarning):
    """A FIR set problem that was repaired or that the user should know about."""


@dataclass(frozen=True)
class FirSet:
    """A shipped airspace: a FIR file and the charging-zone file written for it."""

    name: str
    firs_path: Path
    zones_path: Path


#: The shipped airspaces by ``FLIGHT_FEES_FIR_SET`` name.
FIR_SETS: Final[dict[str, FirSet]] = {
    "world": FirSet("world", WORLD_FIRS_PATH, WORLD_ZONES_PATH),
    "europe": FirSet("europe", EUROPE_FIRS_PATH, EUROPE_ZONES_PATH),
}
assert tuple(FIR_SETS) == FIR_SET_NAMES


def default_fir_set(name: str | None = None) -> FirSet:
    """The shipped airspace named ``name``, by default the one of ``FLIGHT_FEES_FIR_SET``
    (``world`` when unset): both the FIR file and its charging-zone file, so the two always
    match. Callers with explicit paths do not call this.

    Raises:
        FirDataError: unknown name.
    """
    key = (name if name is not None else fir_set_name()).strip().lower()
    if key not in FIR_SETS:
        raise FirDataError(
            f"unknown FIR set {key!r} ({FIR_SET_ENV}); expected one of {', '.join(FIR_SETS)}"
        )
    return FIR_SETS[key]


def _import_default_path() -> Path:
    try:
        return default_fir_set().firs_path
    except FirDataError:  # reported when the set is used, not on import
        return WORLD_FIRS_PATH


#: The default FIR file at import time (``FLIGHT_FEES_FIR_SET``); :func:`load_firs` resolves
#: the default again on each call through :func:`default_fir_set`.
DEFAULT_FIRS_PATH: Final[Path] = _import_default_path()


def load_firs(
    path: str | Path | None = None,
    *,
    id_property: str | None = None,
    name_property: str | None = None,
    country_property: str | None = None,
    layer: str | int | None = None,
    types: str | Sequence[str] | None = None,
    type_property: str | None = None,
    check_overlaps: bool = True,
) -> pd.DataFrame:
    """Load a FIR set as the ``fir_id, name, country, geometry`` frame.

    Args:
        path: GeoJSON / GeoPackage / Shapefile (any GDAL vector format); ``None`` = the shipped
            default FIR file of :func:`default_fir_set` (``FLIGHT_FEES_FIR_SET``).
        id_property: property holding the FIR id (e.g. ``"IDENT"``); ``None`` = auto-detect
            among :data:`ID_CANDIDATES`. Ids are stripped and upper-cased.
        name_property: property holding the FIR name; ``None`` = auto-detect, else the id.
        country_property: property holding the country; ``None`` = auto-detect, else ``""``.
        layer: layer of a multi-layer source (GeoPackage); ``None`` = the first.
        types: airspace layer(s) to keep by the type property (e.g. ``"FIR"``, ``"UIR"``,
            case-insensitive); ``None`` = automatic: when the source has a type property
            with ``FIR`` rows and rows of another type (UIRs), only the ``FIR`` rows (the
            lateral layer, see the module docstring); otherwise every feature. Other layers
            are dropped before features sharing an id are dissolved.
        type_property: property holding the type; ``None`` = auto-detect among
            :data:`TYPE_CANDIDATES`.
        check_overlaps: warn (:class:`FirDataWarning`) about FIRs overlapping by more than
            :data:`OVERLAP_WARN_KM2` (see :func:`find_fir_overlaps`).

    Returns:
        One row per FIR, sorted by ``fir_id``, index ``0..n-1``. ``lower_fl``/``upper_fl``
        (float64 flight levels) are added when the source has vertical limits.

    Raises:
        FirDataError: unreadable file, missing property, empty set, missing or non-polygonal
            geometry, empty id, no feature of the requested type(s), several requested types
            sharing an id.
    """
    src = default_fir_set().firs_path if path is None else Path(path)
    if not src.exists():
        raise FirDataError(f"FIR file not found: {src}")
    try:
        import pyogrio

        gdf = pyogrio.read_dataframe(src, layer=layer)
    except Exception as exc:  # pyogrio raises several DataSourceError/DataLayerError types
        raise FirDataError(f"cannot read FIR file {src}: {exc}") from exc
    if len(gdf) == 0:
        raise FirDataError(f"FIR file {src} has no features")
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)

    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    id_col = _pick_column(columns, id_property, ID_CANDIDATES, "id", src, required=True)
    assert id_col is not None
    gdf = _select_types(gdf, columns, id_col, types, type_property, src)
    name_col = _pick_column(columns, name_property, NAME_CANDIDATES, "name", src)
    country_col = _pick_column(
        columns, country_property, COUNTRY_CANDIDATES, "country", src, exclude=id_col
    )

    ids = gdf[id_col].astype("string").str.strip().str.upper()
    if ids.isna().any() or (ids == "").any():
        rows = np.flatnonzero((ids.isna() | (ids == "")).to_numpy()).tolist()
        raise FirDataError(f"{src}: empty FIR id (property {id_col!r}) in feature(s) {rows}")
    frame = pd.DataFrame(
        {
            "fir_id": ids.astype(str).to_numpy(),
            "name": _text(gdf[name_col]) if name_col else ids.astype(str).to_numpy(),
            "country": _text(gdf[country_col]) if country_col else np.full(len(gdf), ""),
            "geometry": np.asarray(gdf.geometry.values, dtype=object),
        }
    )
    lower = _limit_fl(gdf, LOWER_CANDIDATES)
    upper = _limit_fl(gdf, UPPER_CANDIDATES)
    if lower is not None and upper is not None:
        frame["lower_fl"] = lower
        frame["upper_fl"] = upper
    return validate_firs(frame, source=str(src), check_overlaps=check_overlaps, _stacklevel=3)


def validate_firs(
    firs: pd.DataFrame,
    *,
    source: str = "FIR set",
    check_overlaps: bool = True,
    _stacklevel: int = 2,
) -> pd.DataFrame:
    """Check and normalise a FIR frame (also usable on frames built in code).

    Geometries are made 2-D; invalid ones are repaired with :func:`shapely.make_valid`
    (keeping the polygonal part) with a :class:`FirDataWarning` naming the FIR; rows sharing a
    ``fir_id`` are dissolved into one (warned). Returns a new frame sorted by ``fir_id``.

    Raises:
        FirDataError: missing columns, empty set, missing/empty/non-polygonal geometry.
    """
    missing = {"fir_id", "geometry"} - set(firs.columns)
    if missing:
        raise FirDataError(f"{source}: missing column(s) {sorted(missing)}")
    if len(firs) == 0:
        raise FirDataError(f"{source}: no FIRs")
    out = firs.copy()
    if "name" not in out.columns:
        out["name"] = out["fir_id"]
    if "country" not in out.columns:
        out["country"] = ""
    ids = out["fir_id"].astype(str).to_numpy()
    geoms = np.asarray(out["geometry"].to_numpy(), dtype=object)
    is_geom = np.array([isinstance(g, shapely.Geometry) for g in geoms], dtype=bool)
    bad = ~is_geom
    bad[is_geom] = shapely.is_empty(geoms[is_geom])
    if bad.any():
        raise FirDataError(f"{source}: FIR(s) without geometry: {', '.join(ids[bad])}")
    geoms = shapely.force_2d(geoms)
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))  # Polygon, MultiPolygon
    if not polygonal.all():
        kinds = ", ".join(
            f"{i} ({g.geom_type})" for i, g in zip(ids[~polygonal], geoms[~polygonal], strict=True)
        )
        raise FirDataError(f"{source}: FIR geometry must be (Multi)Polygon: {kinds}")
    _check_coordinate_ranges(ids, geoms, source)

    invalid = ~shapely.is_valid(geoms)
    for k in np.flatnonzero(invalid):  # only the (rare) invalid FIRs
        reason = shapely.is_valid_reason(geoms[k])
        repaired = _polygonal_part(shapely.make_valid(geoms[k]))
        if repaired is None:
            raise FirDataError(f"{source}: FIR {ids[k]} has no valid polygonal area ({reason})")
        warnings.warn(
            f"{source}: FIR {ids[k]} has an invalid polygon ({reason}); repaired with make_valid",
            FirDataWarning,
            stacklevel=_stacklevel,
        )
        geoms[k] = repaired
    out["geometry"] = geoms

    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    if dup.any():
        names = sorted(set(ids[dup]))
        warnings.warn(
            f"{source}: {len(names)} FIR id(s) on several features, dissolved: {', '.join(names)}",
            FirDataWarning,
            stacklevel=_stacklevel,
        )
        out = _dissolve(out)
    out = out.sort_values("fir_id", kind="stable").reset_index(drop=True)
    out["fir_id"] = out["fir_id"].astype(str)

    if check_overlaps:
        overlaps = find_fir_overlaps(out, min_area_km2=OVERLAP_WARN_KM2)
        if len(overlaps):
            pairs = ", ".join(
                f"{a}/{b} {km2:.1f} km²"
                for a, b, km2 in overlaps[["fir_id_a", "fir_id_b", "overlap_km2"]].itertuples(
                    index=False
                )
            )
            warnings.warn(
                f"{source}: overlapping FIRs (a position in both is attributed to the first "
                f"by fir_id): {pairs}",
                FirDataWarning,
                stacklevel=_stacklevel,
            )
    return out


def _check_coordinate_ranges(ids: np.ndarray, geoms: np.ndarray, source: str) -> None:
    """:class:`FirDataError` naming the FIRs whose geometry leaves lat [-90, 90] or
    lon [-360, 360], or has non-finite coordinates:
    such a set would attribute no position, or the wrong one, without any other error.
    (Longitudes beyond +/-180 are how some sets write a FIR across the antimeridian, e.g.
    PAZA 169 W .. 230 E; the crossing engine normalises them.)"""
    bounds = shapely.bounds(geoms)  # minx, miny, maxx, maxy per FIR
    tol = _RANGE_TOLERANCE
    with np.errstate(invalid="ignore"):
        bad = (
            ~np.isfinite(bounds).all(axis=1)
            | (bounds[:, 0] < -360.0 - tol)
            | (bounds[:, 2] > 360.0 + tol)
            | (bounds[:, 1] < -90.0 - tol)
            | (bounds[:, 3] > 90.0 + tol)
        )
    if bad.any():
        shown = "; ".join(
            f"FIR {fir_id}: lon {b[0]:g} .. {b[2]:g}, lat {b[1]:g} .. {b[3]:g}"
            for fir_id, b in zip(ids[bad][:10], bounds[bad][:10], strict=True)
        )
        more = f" (and {int(bad.sum()) - 10} more)" if bad.sum() > 10 else ""
        raise FirDataError(
            f"{source}: field geometry: coordinates outside lat [-90, 90] / lon [-360, 360] "
            f"(lon/lat WGS84 expected; swapped axes or another projection?): {shown}{more}"
        )


def find_fir_overlaps(firs: pd.DataFrame, *, min_area_km2: float = 0.0) -> pd.DataFrame:
    """Pairs of FIRs whose areas overlap, with the geodesic (WGS84) overlap area.

    Returns:
        Columns ``fir_id_a, fir_id_b, overlap_km2`` (``fir_id_a < fir_id_b``), only pairs with
        an overlap strictly larger than ``min_area_km2``, largest first.
    """
    ids = firs["fir_id"].astype(str).to_numpy()
    geoms = np.asarray(firs["geometry"].to_numpy(), dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = ids[left] < ids[right]
    left, right = left[keep], right[keep]
    inter = shapely.intersection(geoms[left], geoms[right])
    area_km2 = np.zeros(len(inter), dtype=float)
    has_area = shapely.area(inter) > 0.0  # neighbours only touching give lines / points
    # Per overlap polygon (few): pyproj has no vectorised geodesic polygon area.
    area_km2[has_area] = [abs(_GEOD.geometry_area_perimeter(g)[0]) / 1e6 for g in inter[has_area]]
    mask = area_km2 > min_area_km2
    res = pd.DataFrame(
        {"fir_id_a": ids[left][mask], "fir_id_b": ids[right][mask], "overlap_km2": area_km2[mask]}
    )
    return res.sort_values("overlap_km2", ascending=False, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# helpers


def _pick_column(
    columns: Sequence[str],
    wanted: str | None,
    candidates: Sequence[str],
    what: str,
    src: Path,
    *,
    required: bool = False,
    exclude: str | None = None,
) -> str | None:
    """Resolve the property name for ``what``: explicit (exact, then case-insensitive) or
    auto-detected among ``candidates``."""
    by_lower: dict[str, str] = {}
    for col in columns:
        by_lower.setdefault(col.lower(), col)
    if wanted is not None:
        if wanted in columns:
            return wanted
        if wanted.lower() in by_lower:
            return by_lower[wanted.lower()]
        raise FirDataError(
            f"{src}: no property {wanted!r} for the FIR {what}; properties: {sorted(columns)}"
        )
    for cand in candidates:
        found = by_lower.get(cand)
        if found is not None and found != exclude:
            return found
    if required:
        raise FirDataError(
            f"{src}: cannot find the FIR {what} property (tried {', '.join(candidates)}, "
            f"case-insensitive); pass it explicitly. Properties: {sorted(columns)}"
        )
    return None


def _select_types(
    gdf: pd.DataFrame,
    columns: Sequence[str],
    id_col: str,
    types: str | Sequence[str] | None,
    type_property: str | None,
    src: Path,
) -> pd.DataFrame:
    """Keep the rows of the requested airspace layer(s) (see :func:`load_firs`)."""
    type_col = _pick_column(
        columns, type_property, TYPE_CANDIDATES, "type", src, required=types is not None
    )
    if type_col is None:
        return gdf
    kind = gdf[type_col].astype("string").str.strip().str.upper().fillna("")
    present = set(kind.tolist())
    if types is None:
        if LATERAL_TYPE not in present or present == {LATERAL_TYPE}:
            return gdf  # a single layer (or no FIR rows: nothing to choose)
        wanted = {LATERAL_TYPE}
    else:
        wanted = {str(t).strip().upper() for t in ([types] if isinstance(types, str) else types)}
    keep = kind.isin(sorted(wanted)).to_numpy(dtype=bool)
    if not keep.any():
        raise FirDataError(
            f"{src}: no feature of type {', '.join(sorted(wanted))} (property {type_col!r}; "
            f"types present: {', '.join(sorted(present))})"
        )
    out = gdf[keep]
    if len(wanted) > 1:  # never dissolve a FIR with a UIR of the same id
        ids = out[id_col].astype("string").str.strip().str.upper()
        layers_per_id = kind[keep].groupby(ids.to_numpy()).nunique()
        shared = sorted(layers_per_id.index[layers_per_id.to_numpy() > 1].astype(str))
        if shared:
            raise FirDataError(
                f"{src}: the layers {', '.join(sorted(wanted))} share FIR id(s) "
                f"{', '.join(shared[:10])}{' ...' if len(shared) > 10 else ''}; load one layer "
                "at a time (types=...)"
            )
    return out.reset_index(drop=True)


def _text(col: pd.Series) -> np.ndarray:
    return col.astype("string").fillna("").str.strip().astype(str).to_numpy()


def _limit_fl(gdf: pd.DataFrame, candidates: Sequence[tuple[str, str | None]]) -> np.ndarray | None:
    """Vertical limit as a flight level (float), from value (+ unit FL/FT/M) properties."""
    by_lower = {c.lower(): c for c in gdf.columns}
    for value_name, unit_name in candidates:
        value_col = by_lower.get(value_name)
        if value_col is None:
            continue
        raw = gdf[value_col].astype("string").str.strip().str.upper()
        value = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        value = np.where(raw.isin(["SFC", "GND"]).to_numpy(dtype=bool), 0.0, value)
        value = np.where(raw.isin(["UNL", "UNLTD"]).to_numpy(dtype=bool), np.inf, value)
        unit_col = by_lower.get(unit_name) if unit_name else None
        if unit_col is None:
            return value
        unit = gdf[unit_col].astype("string").str.strip().str.upper().fillna("FL").to_numpy()
        factor = np.select([unit == "FT", unit == "M"], [0.01, _FT_PER_M / 100.0], 1.0)
        return value * factor
    return None


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry | None:
    """The (Multi)Polygon part of a geometry (e.g. of a make_valid GeometryCollection)."""
    parts = shapely.get_parts(geom)
    polys = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    polys = polys[~shapely.is_empty(polys)]
    if len(polys) == 0:
        return None
    return polys[0] if len(polys) == 1 else shapely.union_all(polys)


def _dissolve(firs: pd.DataFrame) -> pd.DataFrame:
    """One row per ``fir_id``: polygons unioned, other columns from the first row."""
    first = firs.groupby("fir_id", sort=True, as_index=False).first()
    # pandas-stubs admit no geometry (object) values in a Series: agg's result type fails
    geoms = firs.groupby("fir_id", sort=True)["geometry"].agg(  # type: ignore[type-var]
        lambda s: shapely.union_all(np.asarray(s, dtype=object))
    )
    first["geometry"] = np.asarray(geoms.loc[first["fir_id"]], dtype=object)
    return first
