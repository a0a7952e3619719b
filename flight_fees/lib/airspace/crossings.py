"""FIR crossing engine: from many tracks at once to one row per FIR visit.

:func:`compute_crossings` turns a tracks frame (``flight_id, ts, lat, lon``) and a FIR set
(``fir_id, geometry``) into the crossings frame of ``docs/ARCHITECTURE.md``::

    flight_id, visit_index, fir_id, entry_time, exit_time, entry_lat, entry_lon, exit_lat,
    exit_lon, distance_km, flown_km, interpolated, starts_inside, ends_inside

Method (vectorised over all flights of a chunk; no per-point Python loop):

1. **Sorting / cleaning.** Rows are sorted by ``(flight_id, ts)`` (stable: duplicate
   timestamps keep their input order); rows with NaN/NaT position or time are ignored.
   Flights are processed in chunks of about :data:`CHUNK_POINTS` positions to bound memory.
2. **Segments.** Consecutive positions of a flight form a segment. Longitude differences are
   wrapped into [-180, 180), i.e. longitudes are unwrapped per flight: a Tokyo -> Anchorage
   track jumping from 179.9 to -179.9 is a 0.2 degree segment, never one across the globe.
   Segment lengths are geodesic on WGS84: segments up to 10 km use the local ellipsoidal
   (meridian / prime-vertical radii at mid-latitude) formula, error < 4 cm per segment against
   ``pyproj.Geod.inv``; longer ones use ``Geod.inv`` itself.
3. **Long segments.** Segments longer than :data:`DENSIFY_M` (10 km: sparse sampling or
   coverage gaps, e.g. oceanic) are followed along their **geodesic**: sub-positions every
   <= 10 km (``Geod.fwd``, time linear in distance) are classified and their transitions
   processed like short segments, so crossings inside long segments lie on the great circle,
   not on a lon/lat straight line, and FIRs crossed on the way (both ends in one FIR) appear.
4. **Point classification.** Each position gets the index of the FIR containing it (or -1) from
   a precomputed grid (:class:`FirIndex`, about 0.025 degree cells): cells that no FIR
   boundary touches are classified once (scan-line fill of the polygons); boundary cells are
   split into 4 x 4 sub-cells, those that no boundary comes near classified once at their
   centre; only positions in the remaining sub-cells get exact point-in-polygon tests
   (``shapely.contains_xy`` on prepared polygons, against the FIRs whose boundary passes
   there). A position exactly on a boundary (or in two overlapping FIRs) belongs to the first
   FIR by ``fir_id``.
5. **Boundary points.** For every segment whose end classes differ, all intersections with the
   FIR boundaries are computed exactly (STRtree of boundary edges + vectorised
   segment/segment intersection). Within a segment (5 s = ~1 km typically, <= 10 km) positions
   are interpolated **linearly in lon/lat** (planar; at these lengths it departs from the
   geodesic by less than a few metres) and the time linearly along the segment. Pieces between
   two intersections are classified at their midpoint, so a segment clipping the corner of a
   third FIR yields that visit too.
6. **Visits.** Consecutive crossing events delimit visits (also of "outside every FIR", which
   are not output: entering or leaving the FIR set still gives exact entry / exit points).
   Re-entries are separate visits. Degenerate interior visits (zero duration and length, e.g.
   passing exactly through a tri-point) are dropped.
   **Position noise** (default): an *excursion* — a visit of another FIR, or a stretch outside
   every FIR, between two visits of the same FIR A — whose reported positions all lie within
   ``noise_tolerance_m`` of A (default :data:`NOISE_TOLERANCE_M` = 92.6 m, the 95 % accuracy
   bound of ADS-B NACp 8, the minimum the ADS-B Out mandates require) is merged into A: such
   positions do not show that the aircraft left A. Distances are measured exactly (local
   metric frame at each position). An excursion with a position deeper than that is a real
   visit: it is never merged, and merges never chain across it (each merge only joins the
   two visits of A around one excursion; a merged visit is tested again with all its
   positions). An excursion without any position (a straight segment between two positions
   clipping another region) is geometry, not noise, and is kept. Every visit counts the
   excursions merged into it (``merged_excursions``).
   **Jitter** (explicit option only, ``jitter_s`` > 0): a visit shorter than ``jitter_s``
   between two visits of the same FIR is merged with them, repeatedly. Being blind to
   distance it can swallow real visits along borders (measured on real ADS-B: a 60 s merge
   left 16 % of the visits of 2 minutes or more wrong); it is off by default.
7. **Gaps.** A segment longer than ``gap_threshold_s`` is a gap: a crossing inside it is
   estimated (geodesic, constant speed) and the visit it starts or ends is ``interpolated``.
8. **Distances.** ``distance_km``: geodesic (WGS84, ``Geod.inv``) from entry to exit point.
   ``flown_km``: geodesic length of the track between entry and exit, partial boundary
   segments included (the partial length is proportional to the segment fraction).

Degenerate tracks: an empty frame gives no crossings; a one-point flight inside a FIR gives
one visit with ``entry == exit``, zero distances, ``starts_inside`` and ``ends_inside`` True;
outside every FIR it gives none.

Antimeridian: FIR polygons may cross +/-180 either with longitudes beyond 180 (e.g. 170..190)
or split into a MultiPolygon at +/-180; they are normalised (copies at +/-360 dissolved) so
that the artificial seam at 180 is not a boundary.

Limitation: a segment (or 10 km sub-segment of a long one) whose two ends are in the same FIR
is assumed to stay in it: a boundary excursion shorter than that is not seen.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
import pyproj
import shapely

from flight_fees.lib.core.geo import wrap_lon

__all__ = [
    "CROSSING_COLUMNS",
    "CHUNK_POINTS",
    "DENSIFY_M",
    "NOISE_TOLERANCE_M",
    "VISIT_FLOAT_COLUMNS",
    "VISIT_SPAN_COLUMNS",
    "FirIndex",
    "build_fir_index",
    "compute_crossings",
    "merged_excursions_per_flight",
]

#: Float columns of every visit frame (crossings, zone visits, fee lines): the entry and exit
#: positions, the great-circle and the flown distance.
VISIT_FLOAT_COLUMNS: Final[tuple[str, ...]] = (
    "entry_lat",
    "entry_lon",
    "exit_lat",
    "exit_lon",
    "distance_km",
    "flown_km",
)
#: When and where a visit enters and leaves, and how far it goes: the run of columns that
#: every visit frame carries, in this order.
VISIT_SPAN_COLUMNS: Final[tuple[str, ...]] = ("entry_time", "exit_time", *VISIT_FLOAT_COLUMNS)

#: Output columns, in order.
CROSSING_COLUMNS: Final[tuple[str, ...]] = (
    "flight_id",
    "visit_index",
    "fir_id",
    *VISIT_SPAN_COLUMNS,
    "interpolated",
    "starts_inside",
    "ends_inside",
    "merged_excursions",
)

#: Positions processed at once (whole flights; a longer flight is one chunk). Small enough for
#: the temporaries (4 MiB per float64 array) to be recycled by the allocator instead of being
#: fresh pages every time, large enough for the per-chunk overheads not to matter.
CHUNK_POINTS: Final[int] = 524_288
#: Segments longer than this (metres) are split along the geodesic.
DENSIFY_M: Final[float] = 10_000.0
#: Default noise tolerance (metres) of the excursion merge: 0.05 NM = 92.6 m, the 95 %
#: horizontal position accuracy bound of ADS-B NACp 8 (DO-260B), the minimum that the ADS-B
#: Out mandates require (EU 1207/2011, 14 CFR 91.227(c)). A position that far or less beyond
#: a boundary does not show that the aircraft crossed it.
NOISE_TOLERANCE_M: Final[float] = 92.6
#: Boundary edges per STRtree leaf envelope.
EDGE_BLOCK: Final[int] = 8
#: The grid is stored in square tiles of 2**_TILE_BITS cells a side (64 x 64 = 4 KiB with one
#: byte per cell): consecutive positions of a track stay in one tile, so the grid look-up
#: touches few memory pages.
_TILE_BITS: Final[int] = 6
#: Mixed cells are split into _SUB x _SUB sub-cells, classified like cells: only positions in
#: sub-cells that a boundary touches get exact point-in-polygon tests.
_SUB: Final[int] = 4
#: Segments longer than this (metres) are measured with ``Geod.inv`` instead of the local
#: ellipsoidal formula.
EXACT_LENGTH_M: Final[float] = DENSIFY_M

_A: Final[float] = 6378137.0
_F: Final[float] = 1.0 / 298.257223563
_E2: Final[float] = _F * (2.0 - _F)
_GEOD: Final = pyproj.Geod(ellps="WGS84")
_OUTSIDE: Final[int] = -1
_MIXED: Final[int] = -2
_T_EPS: Final[float] = 1e-12  # tolerance on segment / edge parameters
_NS: Final[int] = 1_000_000_000
_NAT: Final[int] = np.iinfo(np.int64).min
_INT32_MAX: Final[int] = np.iinfo(np.int32).max
_LOW_BITS: Final = (np.uint64(1) << np.arange(64, dtype=np.uint64)) - np.uint64(1)  # 2**b - 1


# ============================================================================================
# FIR index


@dataclass(frozen=True, eq=False)
class FirIndex:
    """A FIR set prepared for fast classification and boundary intersection.

    Build with :func:`build_fir_index`; reuse it across calls of :func:`compute_crossings`.
    FIR ``k`` is ``fir_ids[k]`` (sorted by id).
    """

    fir_ids: np.ndarray  #: FIR ids (object array of str), sorted
    geoms: np.ndarray  #: classification geometries, lon within [-180, 180], prepared
    grid: np.ndarray  #: (ny, nx) FIR index of each cell, -1 outside, -2 boundary ("mixed")
    tiles: np.ndarray  #: ``grid`` (padded) as flat tiles, indexed by :func:`_tile_ids`
    ntx: int  #: tiles per row of tiles
    x0: float  #: lon of the grid's west edge
    y0: float  #: lat of the grid's south edge
    cell: float  #: cell size (degrees)
    cand_cells: np.ndarray  #: sorted tile ids (:func:`_tile_ids`) of mixed cells
    #: bitmap (uint64 words) of the mixed cells by tile id, and the number of mixed cells
    #: before each word: the rank of a mixed cell in ``cand_cells`` without a search
    mixed_bits: np.ndarray
    mixed_rank: np.ndarray
    cand_ptr: np.ndarray  #: CSR pointers into ``cand_firs`` (len(cand_cells) + 1)
    cand_firs: np.ndarray  #: candidate FIRs of each mixed cell (ascending)
    #: (len(cand_cells), _SUB * _SUB) FIR index of each sub-cell of the mixed cells (row
    #: major), -1 outside, -2 boundary
    sub: np.ndarray
    edges: np.ndarray  #: (m, 4) boundary edges x0, y0, x1, y1, lon within [-360, 360]
    edge_tree: shapely.STRtree  #: STRtree over the envelopes of blocks of EDGE_BLOCK edges
    #: (4, blocks, EDGE_BLOCK) the edges of each STRtree block as x0, y0, x1 - x0, y1 - y0
    #: (NaN padding after the last edge: never a hit)
    edge_blocks: np.ndarray
    #: (blocks, EDGE_BLOCK) FIR index of each edge of ``edge_blocks`` (-1: padding)
    edge_owner: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.grid.shape
        return rows, cols

    def classify(
        self, lon: np.ndarray, lat: np.ndarray, *, assume_finite: bool = False
    ) -> np.ndarray:
        """FIR index of each position (the grid's integer dtype), -1 outside every FIR.

        ``lon`` in any range (wrapped); non-finite positions are outside (pass
        ``assume_finite=True`` to skip that check when there are none).
        """
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        if lon.size == 0:
            return np.empty(0, dtype=self.grid.dtype)
        if not assume_finite:
            bad = ~(np.isfinite(lon) & np.isfinite(lat))
            if bad.any():  # far south of the grid: its outside border
                lon, lat = np.where(bad, 0.0, lon), np.where(bad, -1e6, lat)
        lo = lon.min()
        if not (lo >= -180.0 and lon.max() < 180.0):  # also true with NaN
            lon = wrap_lon(lon)
            lo = lon.min()
        return self._classify_in_range(lon, lat, lo)

    def _classify_in_range(self, lon: np.ndarray, lat: np.ndarray, lo: float) -> np.ndarray:
        """:meth:`classify` of finite positions, ``lon`` within [-180, 180) (minimum ``lo``)."""
        out = self._classify_wrapped(lon, lat)
        # lon = +180 is wrapped to -180: retry the (rare) unassigned ones on the +180 side.
        if lo == -180.0:
            seam = np.flatnonzero((out == _OUTSIDE) & (lon == -180.0))
            if seam.size:
                out[seam] = self._classify_wrapped(np.full(seam.size, 180.0), lat[seam])
        return out

    def _classify_wrapped(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        ny, nx = self.grid.shape
        # The grid has a border of >= 2 cells outside every FIR (never "mixed"), so clipping
        # the cell index into the grid classifies far-away positions as outside. Positions
        # must be finite, lon within [-180, 180).
        fx = lon - self.x0
        fx *= 1.0 / self.cell
        np.clip(fx, 0.0, nx - 1.0, out=fx)
        fy = lat - self.y0
        fy *= 1.0 / self.cell
        np.clip(fy, 0.0, ny - 1.0, out=fy)
        itype = _cell_dtype(self.tiles.shape[0])
        cell = _tile_ids(fy.astype(itype), fx.astype(itype), self.ntx)
        out = self.tiles.take(cell)
        mixed = np.flatnonzero(out == _MIXED)
        if mixed.size == 0:
            return out
        cm = cell[mixed]
        word = cm >> 6
        below = self.mixed_bits.take(word) & _LOW_BITS.take(cm & 63)
        pos = self.mixed_rank.take(word) + np.bitwise_count(below)  # index in cand_cells
        # sub-cell: fx * _SUB is exact (power of two), its integer part is
        # _SUB * int(fx) + sub-column
        sub = (fy[mixed] * _SUB).astype(np.int64) & (_SUB - 1)
        sub *= _SUB
        sub += (fx[mixed] * _SUB).astype(np.int64) & (_SUB - 1)
        sub += pos * (_SUB * _SUB)
        res = self.sub.ravel().take(sub)
        still = np.flatnonzero(res == _MIXED)
        if still.size:
            m = mixed[still]
            res[still] = _exact_classify(
                self.geoms, self.cand_ptr, self.cand_firs, pos[still], lon[m], lat[m]
            )
        out[mixed] = res
        return out


def _exact_classify(
    geoms: np.ndarray,
    cand_ptr: np.ndarray,
    cand_firs: np.ndarray,
    pos: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
) -> np.ndarray:
    """Exact classification of positions in mixed cells (``pos``: index of the cell in
    ``cand_cells``) against the cell's candidate FIRs.

    Interior first (``contains_xy``), then boundary (``intersects_xy``) for the positions in
    no interior; in each round the lowest FIR index that passes wins. Candidates of a cell
    are ascending, so they are tried rank by rank (one vectorised call per rank, over all FIRs
    at once) and a position leaves the round at its first hit.
    """
    start = cand_ptr[pos]
    count = cand_ptr[pos + 1] - start
    res = np.full(lon.shape[0], _OUTSIDE, dtype=np.int32)
    for predicate in (shapely.contains_xy, shapely.intersects_xy):  # interior, then boundary
        todo = np.flatnonzero((res == _OUTSIDE) & (count > 0))
        rank = 0
        while todo.size:
            fir = cand_firs[start[todo] + rank]
            hit = predicate(geoms[fir], lon[todo], lat[todo])
            res[todo[hit]] = fir[hit]
            todo = todo[~hit]
            rank += 1
            todo = todo[count[todo] > rank]
    return res


_INDEX_CACHE: dict[str, FirIndex] = {}
_INDEX_CACHE_SIZE: Final[int] = 4


def build_fir_index(
    firs: pd.DataFrame, *, cell_deg: float = 0.025, max_cells: int = 16_000_000
) -> FirIndex:
    """Prepare a FIR set (``fir_id``, ``geometry``) for :func:`compute_crossings`.

    Results are cached (by FIR ids and geometry WKB), so repeated calls are cheap.

    Args:
        firs: the FIR frame (``flight_fees.lib.airspace.firs.load_firs``); geometries in lon/lat.
        cell_deg: grid cell size in degrees (enlarged if the grid would exceed ``max_cells``).
        max_cells: upper bound of grid cells.
    """
    if not {"fir_id", "geometry"} <= set(firs.columns):
        raise ValueError("FIR frame needs the columns fir_id and geometry")
    if len(firs) == 0:
        raise ValueError("empty FIR set")
    ids = firs["fir_id"].astype(str).to_numpy()
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    if len(np.unique(ids)) != len(ids):
        raise ValueError("duplicate fir_id in the FIR set")
    geoms = np.asarray(firs["geometry"].to_numpy(), dtype=object)[order]
    digest = hashlib.sha1()
    digest.update("\0".join(ids).encode())
    for wkb in shapely.to_wkb(geoms):
        digest.update(wkb)
    digest.update(repr((cell_deg, max_cells)).encode())
    key = digest.hexdigest()
    cached = _INDEX_CACHE.get(key)
    if cached is not None:
        return cached
    index = _build_index(ids.astype(object), geoms, cell_deg, max_cells)
    if len(_INDEX_CACHE) >= _INDEX_CACHE_SIZE:
        _INDEX_CACHE.pop(next(iter(_INDEX_CACHE)))
    _INDEX_CACHE[key] = index
    return index


def _build_index(ids: np.ndarray, geoms: np.ndarray, cell_deg: float, max_cells: int) -> FirIndex:
    nfir = len(ids)
    cls_geoms = np.empty(nfir, dtype=object)
    edge_parts: list[np.ndarray] = []
    n_rings = 0
    world = shapely.box(-180.0, -90.0, 180.0, 90.0)
    for k, geom in enumerate(geoms):  # per FIR (tens to hundreds), not per point
        geom = shapely.force_2d(geom)
        xmin, _, xmax, _ = shapely.bounds(geom)
        centre = 0.5 * (xmin + xmax)
        if centre > 180.0 or centre < -180.0:
            geom = _shift(geom, -360.0 * math.floor((centre + 180.0) / 360.0))
            xmin, _, xmax, _ = shapely.bounds(geom)
        copies = [_shift(geom, 360.0 * s) for s in (-1, 0, 1)]
        if xmin <= -180.0 + 1e-9 or xmax >= 180.0 - 1e-9:
            # Crosses or touches the antimeridian: dissolve the copies so the seam vanishes.
            copies = [_snap_seam(c) for c in copies]
            ext = shapely.union_all(copies)
            cls = _polygonal(shapely.intersection(ext, world))
            edges, _, ring = _edges(np.array([ext], dtype=object), with_ring=True)
        else:
            cls = geom
            edges, _, ring = _edges(np.array(copies, dtype=object), with_ring=True)
        keep = (np.minimum(edges[:, 0], edges[:, 2]) <= 360.0) & (
            np.maximum(edges[:, 0], edges[:, 2]) >= -360.0
        )
        edges, ring = edges[keep], ring[keep] + n_rings
        n_rings = int(ring.max()) + 1 if ring.size else n_rings
        edge_parts.append(
            np.column_stack([edges, np.full(len(edges), k, dtype=float), ring.astype(float)])
        )
        cls_geoms[k] = cls
    shapely.prepare(cls_geoms)
    all_edges = np.concatenate(edge_parts)
    edge_xy = np.ascontiguousarray(all_edges[:, :4])
    # blocks of EDGE_BLOCK consecutive edges of ONE ring (a ring's run is padded to a whole
    # number of blocks): a block never spans two rings, so its envelope stays compact
    ring = all_edges[:, 5].astype(np.int64)
    run_start = np.flatnonzero(_starts_run(ring))
    run_len = np.diff(np.append(run_start, ring.size))
    run_blocks = -(-run_len // EDGE_BLOCK)
    run_slot = (np.cumsum(run_blocks) - run_blocks) * EDGE_BLOCK  # first slot of each run
    slot = np.repeat(run_slot - run_start, run_len) + np.arange(ring.size)
    nblk = int(run_blocks.sum())
    padded = np.full((nblk * EDGE_BLOCK, 4), np.nan)
    padded[slot] = edge_xy
    edge_owner: np.ndarray = np.full(nblk * EDGE_BLOCK, -1, dtype=np.int32)
    edge_owner[slot] = all_edges[:, 4]
    edge_owner = edge_owner.reshape(nblk, EDGE_BLOCK)
    del all_edges, ring
    # STRtree over the envelopes of the blocks
    with np.errstate(invalid="ignore"):
        bx = padded.reshape(nblk, EDGE_BLOCK, 4)
        exmin = np.nanmin(np.minimum(bx[:, :, 0], bx[:, :, 2]), axis=1)
        eymin = np.nanmin(np.minimum(bx[:, :, 1], bx[:, :, 3]), axis=1)
        exmax = np.nanmax(np.maximum(bx[:, :, 0], bx[:, :, 2]), axis=1)
        eymax = np.nanmax(np.maximum(bx[:, :, 1], bx[:, :, 3]), axis=1)
    edge_tree = shapely.STRtree(shapely.box(exmin, eymin, exmax, eymax))
    edge_blocks = np.empty((4, nblk, EDGE_BLOCK))
    edge_blocks[0] = padded[:, 0].reshape(nblk, EDGE_BLOCK)
    edge_blocks[1] = padded[:, 1].reshape(nblk, EDGE_BLOCK)
    edge_blocks[2] = (padded[:, 2] - padded[:, 0]).reshape(nblk, EDGE_BLOCK)
    edge_blocks[3] = (padded[:, 3] - padded[:, 1]).reshape(nblk, EDGE_BLOCK)

    # ---- grid over the classification geometries
    bx = shapely.bounds(cls_geoms)
    minx, miny = bx[:, 0].min(), bx[:, 1].min()
    maxx, maxy = bx[:, 2].max(), bx[:, 3].max()
    cell = float(cell_deg)
    area = (maxx - minx + 2 * cell) * (maxy - miny + 2 * cell)
    if area / cell**2 > max_cells:
        cell = math.sqrt(area / max_cells) * 1.01
    # a border of 3 cells: 1 of them may be marked by the 3x3 dilation, >= 2 stay outside
    x0 = math.floor(minx / cell) * cell - 3 * cell
    y0 = math.floor(miny / cell) * cell - 3 * cell
    nx = int(math.ceil((maxx - x0) / cell)) + 3
    ny = int(math.ceil((maxy - y0) / cell)) + 3
    dtype: type[np.signedinteger] = np.int8 if nfir <= np.iinfo(np.int8).max else np.int16
    if nfir >= np.iinfo(np.int16).max:
        dtype = np.int32
    grid = np.full((ny, nx), _OUTSIDE, dtype=dtype)

    cls_edges, cls_edge_fir = _edges(cls_geoms, with_owner=True)
    # Cells touched by a boundary ("mixed"), with the FIR whose boundary it is.
    keys = _touched_cells(cls_edges, cls_edge_fir, x0, y0, cell, nx, ny, nfir)
    mixed_flat = np.zeros(nx * ny, dtype=bool)
    mixed_flat[keys // nfir] = True
    mixed = mixed_flat.reshape(ny, nx)

    # Interior cells: scan-line (even-odd) fill of each FIR at the cell centres.
    inside_keys: list[np.ndarray] = []
    for k in range(nfir):
        sel = cls_edge_fir == k
        r0 = max(int(math.floor((bx[k, 1] - y0) / cell)), 0)
        r1 = min(int(math.floor((bx[k, 3] - y0) / cell)), ny - 1)
        c0 = max(int(math.floor((bx[k, 0] - x0) / cell)), 0)
        c1 = min(int(math.floor((bx[k, 2] - x0) / cell)), nx - 1)
        inside = _scanline_fill(cls_edges[sel], x0, y0, cell, r0, r1, c0, c1)
        sub_grid = grid[r0 : r1 + 1, c0 : c1 + 1]
        sub_mixed = mixed[r0 : r1 + 1, c0 : c1 + 1]
        sub_grid[inside & ~sub_mixed & (sub_grid == _OUTSIDE)] = k  # first FIR wins
        rr, cc = np.nonzero(inside & sub_mixed)
        inside_keys.append(((rr + r0).astype(np.int64) * nx + (cc + c0)) * nfir + k)
    grid[mixed] = _MIXED
    # tiled copy of the grid (padded with "outside": never read, positions are clipped)
    side = 1 << _TILE_BITS
    nty, ntx = -(-ny // side), -(-nx // side)
    padded = np.full((nty * side, ntx * side), _OUTSIDE, dtype=dtype)
    padded[:ny, :nx] = grid
    tiles = np.ascontiguousarray(padded.reshape(nty, side, ntx, side).transpose(0, 2, 1, 3))
    tiles = tiles.reshape(-1)
    del padded
    keys = _unique(np.concatenate([keys, *inside_keys]))
    key_cell = keys // nfir
    keys = np.sort(_tile_ids(key_cell // nx, key_cell % nx, ntx) * nfir + keys % nfir)
    cand_cell_of_pair = keys // nfir
    cand_firs = (keys % nfir).astype(np.int32)
    first_pos = np.flatnonzero(_starts_run(cand_cell_of_pair))
    cand_cells = cand_cell_of_pair[first_pos].astype(_cell_dtype(tiles.shape[0]))
    cand_ptr = np.append(first_pos, len(keys)).astype(np.int64)
    mixed_bits = np.zeros(-(-tiles.shape[0] // 64), dtype=np.uint64)
    np.bitwise_or.at(
        mixed_bits,
        cand_cells >> 6,
        np.left_shift(np.uint64(1), (cand_cells & 63).astype(np.uint64)),
    )
    mixed_rank = np.concatenate(([0], np.cumsum(np.bitwise_count(mixed_bits))[:-1])).astype(
        np.int64
    )

    # ---- sub-cells of the mixed cells: those that no boundary comes near (conservative, as
    # for cells) are classified at their centre, exactly; the others stay "mixed"
    nsub = _SUB * _SUB
    mixed_rc = np.flatnonzero(mixed_flat)  # row-major ids of the mixed cells
    mixed_rc = mixed_rc[np.argsort(_tile_ids(mixed_rc // nx, mixed_rc % nx, ntx))]
    free: np.ndarray = np.ones(len(mixed_rc) * nsub, dtype=bool)
    fcell = cell / _SUB
    for frow, fcol in _near_cells(cls_edges, x0, y0, fcell, nx * _SUB, ny * _SUB):
        t = _tile_ids(frow // _SUB, fcol // _SUB, ntx)
        word = t >> 6
        bit = t & 63
        hit = np.flatnonzero((mixed_bits.take(word) >> bit.astype(np.uint64)) & np.uint64(1))
        p = mixed_rank.take(word[hit]) + np.bitwise_count(
            mixed_bits.take(word[hit]) & _LOW_BITS.take(bit[hit])
        )  # index of the mixed cell in cand_cells
        free[p * nsub + ((frow[hit] % _SUB) * _SUB + fcol[hit] % _SUB)] = False
    free = np.flatnonzero(free)
    sub: np.ndarray = np.full(len(mixed_rc) * nsub, _MIXED, dtype=dtype)
    for a in range(0, free.size, 1 << 16):  # batches: small temporaries
        f = free[a : a + (1 << 16)]
        pos, within = f // nsub, f % nsub
        sub[f] = _exact_classify(
            cls_geoms,
            cand_ptr,
            cand_firs,
            pos,
            x0 + ((mixed_rc[pos] % nx) * _SUB + within % _SUB + 0.5) * fcell,
            y0 + ((mixed_rc[pos] // nx) * _SUB + within // _SUB + 0.5) * fcell,
        )
    sub = sub.reshape(len(mixed_rc), nsub)
    return FirIndex(
        fir_ids=ids,
        geoms=cls_geoms,
        grid=grid,
        tiles=tiles,
        ntx=ntx,
        x0=float(x0),
        y0=float(y0),
        cell=cell,
        cand_cells=cand_cells,
        mixed_bits=mixed_bits,
        mixed_rank=mixed_rank,
        cand_ptr=cand_ptr,
        cand_firs=cand_firs,
        sub=sub,
        edges=edge_xy,
        edge_tree=edge_tree,
        edge_blocks=edge_blocks,
        edge_owner=edge_owner,
    )


def _shift(geom: shapely.Geometry, dx: float) -> shapely.Geometry:
    """The geometry translated by ``dx`` degrees of longitude."""
    return shapely.transform(geom, lambda xy: xy + np.array([dx, 0.0]))


def _snap_seam(geom: shapely.Geometry) -> shapely.Geometry:
    """Snap longitudes within 1e-9 degree of an odd multiple of 180 onto it."""

    def snap(xy: np.ndarray) -> np.ndarray:
        x = xy[:, 0]
        seam = np.round((x - 180.0) / 360.0) * 360.0 + 180.0
        xy[:, 0] = np.where(np.abs(x - seam) < 1e-9, seam, x)
        return xy

    return shapely.transform(geom, snap)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    parts = shapely.get_parts(geom)
    parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    if len(parts) == 0:
        return shapely.Polygon()
    if len(parts) == 1:
        return parts[0]
    return shapely.multipolygons(shapely.get_parts(parts).tolist())  # a list: one MultiPolygon


def _edges(
    geoms: np.ndarray, *, with_owner: bool = False, with_ring: bool = False
) -> tuple[np.ndarray, ...]:
    """Boundary edges (x0, y0, x1, y1) of (Multi)Polygons, the index of their geometry and
    (``with_ring``) of their ring (numbered in this call)."""
    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    is_polygon = shapely.get_type_id(parts) == 3
    parts, part_owner = parts[is_polygon], part_owner[is_polygon]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    same = coord_ring[1:] == coord_ring[:-1]
    edges = np.column_stack([coords[:-1][same], coords[1:][same]])
    ring = coord_ring[:-1][same]
    owner = part_owner[ring_part[ring]]
    if with_ring:
        return edges, owner, ring
    return edges, (owner if with_owner else np.empty(0, dtype=np.int64))


def _touched_cells(
    edges: np.ndarray,
    owner: np.ndarray,
    x0: float,
    y0: float,
    cell: float,
    nx: int,
    ny: int,
    nfir: int,
) -> np.ndarray:
    """Sorted unique keys ``cell_id * nfir + fir`` of the grid cells each FIR boundary meets.

    Edges are cut into pieces of at most half a cell; a piece can only meet the 3x3 cells
    around the cell of its start, each tested exactly (Liang-Barsky clipping against the cell
    square grown by 1e-9 degree, so the marking is conservative).
    """
    step = 0.5 * cell
    dx = edges[:, 2] - edges[:, 0]
    dy = edges[:, 3] - edges[:, 1]
    npiece = np.maximum(np.ceil(np.hypot(dx, dy) / step).astype(np.int64), 1)
    e = np.repeat(np.arange(len(edges)), npiece)
    k = _ragged_arange(np.zeros(len(npiece), dtype=np.int64), npiece)
    f0 = k / npiece[e]
    f1 = (k + 1) / npiece[e]
    px, py = edges[e, 0] + f0 * dx[e], edges[e, 1] + f0 * dy[e]
    qx, qy = edges[e, 0] + f1 * dx[e], edges[e, 1] + f1 * dy[e]
    fir = owner[e]
    ix = np.floor((px - x0) / cell).astype(np.int64)
    iy = np.floor((py - y0) / cell).astype(np.int64)
    # dedupe identical (piece start cell, piece) work is not worth it: pieces are distinct
    keys: list[np.ndarray] = []
    ddx, ddy = qx - px, qy - py
    eps = 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        for oy in (-1, 0, 1):
            for ox in (-1, 0, 1):
                cx, cy = ix + ox, iy + oy
                bx0 = x0 + cx * cell - eps
                by0 = y0 + cy * cell - eps
                bx1 = bx0 + cell + 2 * eps
                by1 = by0 + cell + 2 * eps
                t0 = np.zeros(len(px))
                t1 = np.ones(len(px))
                ok = np.ones(len(px), dtype=bool)
                for p, d, lo, hi in ((px, ddx, bx0, bx1), (py, ddy, by0, by1)):
                    flat = d == 0
                    ok &= ~flat | ((p >= lo) & (p <= hi))
                    ta = (lo - p) / d
                    tb = (hi - p) / d
                    t0 = np.where(flat, t0, np.maximum(t0, np.minimum(ta, tb)))
                    t1 = np.where(flat, t1, np.minimum(t1, np.maximum(ta, tb)))
                ok &= t0 <= t1
                ok &= (cx >= 0) & (cx < nx) & (cy >= 0) & (cy < ny)
                keys.append((cy[ok] * nx + cx[ok]) * nfir + fir[ok])
    return _unique(np.concatenate(keys))


def _near_cells(
    edges: np.ndarray, x0: float, y0: float, cell: float, nx: int, ny: int, batch: int = 1 << 17
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(row, column) of grid cells within ~1e-8 degree of the edges, with repeats, in batches.

    Conservative: edges are cut into pieces of at most half a cell; every cell meeting the
    bounding box of a piece grown by 1e-8 degree (at most 2 x 2 cells) is reported.
    """
    eps = 1e-8
    dx = edges[:, 2] - edges[:, 0]
    dy = edges[:, 3] - edges[:, 1]
    npiece = np.maximum(np.ceil(np.hypot(dx, dy) / (0.5 * cell)).astype(np.int64), 1)
    ends = np.cumsum(npiece)
    first = 0
    while first < len(edges):
        last = int(np.searchsorted(ends, ends[first] - npiece[first] + batch, side="right"))
        last = max(last, first + 1)
        sel = slice(first, last)
        e = np.repeat(np.arange(first, last), npiece[sel])
        k = _ragged_arange(np.zeros(last - first, dtype=np.int64), npiece[sel])
        f0 = k / npiece[e]
        f1 = (k + 1) / npiece[e]
        px, qx = edges[e, 0] + f0 * dx[e], edges[e, 0] + f1 * dx[e]
        py, qy = edges[e, 1] + f0 * dy[e], edges[e, 1] + f1 * dy[e]
        cols = [
            np.clip(np.floor((v - x0) / cell), 0, nx - 1).astype(np.int64)
            for v in (np.minimum(px, qx) - eps, np.maximum(px, qx) + eps)
        ]
        rows = [
            np.clip(np.floor((v - y0) / cell), 0, ny - 1).astype(np.int64)
            for v in (np.minimum(py, qy) - eps, np.maximum(py, qy) + eps)
        ]
        for r in rows:
            for c in cols:
                yield r, c
        first = last


def _scanline_fill(
    edges: np.ndarray, x0: float, y0: float, cell: float, r0: int, r1: int, c0: int, c1: int
) -> np.ndarray:
    """Even-odd fill of the cell centres of rows r0..r1, columns c0..c1 (bool array)."""
    nrows, ncols = r1 - r0 + 1, c1 - c0 + 1
    ex0, ey0, ex1, ey1 = edges.T
    ylo, yhi = np.minimum(ey0, ey1), np.maximum(ey0, ey1)
    # rows whose centre y satisfies ylo <= y < yhi (half-open: vertices counted once)
    rlo = np.ceil((ylo - y0) / cell - 0.5).astype(np.int64)
    rhi = np.ceil((yhi - y0) / cell - 0.5).astype(np.int64) - 1
    rlo = np.maximum(rlo, r0)
    rhi = np.minimum(rhi, r1)
    count = np.maximum(rhi - rlo + 1, 0)
    e = np.repeat(np.arange(len(edges)), count)
    row = rlo[e] + _ragged_arange(np.zeros(len(count), dtype=np.int64), count)
    yc = y0 + (row + 0.5) * cell
    xc = ex0[e] + (yc - ey0[e]) * (ex1[e] - ex0[e]) / (ey1[e] - ey0[e])
    col = np.ceil((xc - x0) / cell - 0.5).astype(np.int64)  # first centre >= crossing
    col = np.clip(col - c0, 0, ncols)
    hist = np.bincount((row - r0) * (ncols + 1) + col, minlength=nrows * (ncols + 1))
    parity = np.cumsum(hist.reshape(nrows, ncols + 1)[:, :ncols], axis=1) & 1
    return parity.astype(bool)


# ============================================================================================
# engine


def compute_crossings(
    tracks: pd.DataFrame,
    firs: pd.DataFrame | FirIndex,
    *,
    gap_threshold_s: float = 600,
    noise_tolerance_m: float = NOISE_TOLERANCE_M,
    jitter_s: float = 0,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """FIR visits of many flights at once (see the module docstring for the method).

    Args:
        tracks: ``flight_id`` (int), ``ts`` (datetime64, UTC; naive = UTC), ``lat``, ``lon``
            (WGS84 degrees); any row order; other columns ignored.
        firs: FIR frame (``fir_id``, ``geometry``) or a prebuilt :class:`FirIndex`.
        gap_threshold_s: a segment longer than this (seconds) is a gap; crossings inside it
            are estimated and flagged ``interpolated``.
        noise_tolerance_m: an excursion (a visit of another FIR, or outside every FIR, between
            two visits of the same FIR) whose positions all lie within this distance (metres)
            of that FIR is position noise and merged into it (see the module docstring);
            0 disables. Default :data:`NOISE_TOLERANCE_M`.
        jitter_s: explicit time-based merge, off by default: visits shorter than this
            (seconds) between two visits of the same FIR are merged into them, repeatedly;
            it can swallow real visits along borders, so use it knowingly.
        progress: called as ``progress(flights_done, flights_total)`` after each chunk.

    Returns:
        The crossings frame (:data:`CROSSING_COLUMNS`), ordered by ``flight_id, visit_index``;
        ``entry_time``/``exit_time`` are ``datetime64[ns, UTC]``, ``entry_lon``/``exit_lon`` in
        [-180, 180). ``starts_inside`` / ``ends_inside``: the visit begins at the first / ends
        at the last position of the track (no boundary crossing there).
        ``merged_excursions``: how many excursions were merged into the visit.
    """
    missing = {"flight_id", "ts", "lat", "lon"} - set(tracks.columns)
    if missing:
        raise ValueError(f"tracks frame is missing column(s): {', '.join(sorted(missing))}")
    index = firs if isinstance(firs, FirIndex) else build_fir_index(firs)
    gap_ns = int(round(float(gap_threshold_s) * _NS))
    jitter_ns = int(round(float(jitter_s) * _NS))
    if not noise_tolerance_m >= 0:
        raise ValueError(f"noise_tolerance_m must be >= 0, got {noise_tolerance_m}")

    fid = np.asarray(tracks["flight_id"].to_numpy(), dtype=np.int64)
    ts = _ts_ns(tracks["ts"])
    lat = _float_col(tracks["lat"])
    lon = _float_col(tracks["lon"])
    n = fid.shape[0]
    if n == 0:
        return _empty_result()

    order: np.ndarray | None = None
    starts = _sorted_starts(fid, ts)  # first row of each flight
    if starts is None:
        order = np.lexsort((ts, fid))
        starts = np.flatnonzero(_starts_run(fid[order]))
    n_flights = len(starts)

    parts: list[dict[str, np.ndarray]] = []
    done = 0
    for a, b in _chunks(starts, n, CHUNK_POINTS):
        sl = slice(a, b) if order is None else order[a:b]
        s0, s1 = int(np.searchsorted(starts, a)), int(np.searchsorted(starts, b))
        res = _process_chunk(
            index,
            fid[sl],
            ts[sl],
            lat[sl],
            lon[sl],
            starts[s0:s1] - a,
            gap_ns,
            float(noise_tolerance_m),
            jitter_ns,
        )
        if res["flight_id"].size:
            parts.append(res)
        done += s1 - s0
        if progress is not None:
            progress(done, n_flights)
    if not parts:
        return _empty_result()
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return _to_frame(cols, index)


def merged_excursions_per_flight(crossings: pd.DataFrame) -> pd.Series:
    """Excursions merged into the visits of each flight that has any (``flight_id`` ->
    count, largest first): what an analyst checks after a run."""
    if len(crossings) == 0 or "merged_excursions" not in crossings.columns:
        return pd.Series(dtype=np.int64, name="merged_excursions")
    per_flight = crossings.groupby("flight_id")["merged_excursions"].sum()
    per_flight = per_flight[per_flight > 0].astype(np.int64)
    return per_flight.sort_values(ascending=False, kind="stable")


def _process_chunk(
    index: FirIndex,
    fid: np.ndarray,
    ts: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    first: np.ndarray | None,
    gap_ns: int,
    noise_m: float,
    jitter_ns: int,
) -> dict[str, np.ndarray]:
    """Visits of the whole flights in one chunk (sorted by flight, time); ``first``: the first
    row of each flight (None: found here)."""
    lo, hi = lon.min(), lon.max()  # NaN or +-inf if any is
    if not (np.isfinite(lat.sum()) and np.isfinite(lo) and np.isfinite(hi)) or ts.min() == _NAT:
        ok = np.isfinite(lat) & np.isfinite(lon) & (ts != _NAT)
        fid, ts, lat, lon = fid[ok], ts[ok], lat[ok], lon[ok]
        first = None
        if fid.shape[0] == 0:
            return {"flight_id": np.empty(0, np.int64)}
        lo, hi = lon.min(), lon.max()
    n = fid.shape[0]
    if not (lo >= -180.0 and hi < 180.0):
        lon = wrap_lon(lon)
        lo = lon.min()

    # ---- segments: k = position k -> k+1; per-segment arrays have length n, with 0
    # after the last position of each flight
    if first is None:
        li = np.append(np.flatnonzero(fid[1:] != fid[:-1]), n - 1)  # last position of flights
    else:
        li = np.append(first[1:] - 1, n - 1)
    fi = np.concatenate(([0], li[:-1] + 1))  # first position of each flight
    seglen, longseg, long_az = _segment_lengths(lat, lon, li)

    # ---- classification and crossing events
    cls = index._classify_in_range(lon, lat, lo)
    chg = cls[:-1] != cls[1:]
    chg[li[:-1]] = False
    chg[longseg] = False  # handled below, along the geodesic
    cand = np.flatnonzero(chg)
    del chg
    # candidate segments, then the candidate sub-segments of long segments: one batch
    sx0 = lon[cand]
    sy0 = lat[cand]
    rx = wrap_lon(lon[cand + 1] - sx0)  # unwrapped: the segment may leave [-180, 180)
    ry = lat[cand + 1] - sy0
    segs = [sx0, sy0, rx, ry, cls[cand], cls[cand + 1]]
    if longseg.size:
        *sub, l_seg, l_k, l_n = _long_subsegments(index, longseg, long_az, lon, lat, seglen, cls)
        segs = [np.concatenate([a, b]) for a, b in zip(segs, sub, strict=True)]
    ev_s, ev_t, ev_to, ev_lat, ev_lon = _segment_events(index, *segs)
    # back to positions (and fractions of the whole long segment)
    short = ev_s < cand.size
    ev_i = np.empty_like(ev_s)
    ev_i[short] = cand[ev_s[short]]
    if longseg.size:
        lg = np.flatnonzero(~short)
        j = ev_s[lg] - cand.size
        ev_i[lg] = l_seg[j]
        ev_t[lg] = (l_k[j] + ev_t[lg]) / l_n[j]

    # start / end of every flight as pseudo-events; order events by (position, t, kind)
    nf = len(fi)
    ei = np.concatenate([fi, ev_i, li])
    et = np.concatenate([np.zeros(nf), ev_t, np.zeros(nf)])
    kind = np.concatenate(
        [np.zeros(nf, np.int8), np.ones(len(ev_i), np.int8), np.full(nf, 2, np.int8)]
    )
    to = np.concatenate([cls[fi], ev_to.astype(cls.dtype), np.full(nf, _OUTSIDE, cls.dtype)])
    e_lat = np.concatenate([lat[fi], ev_lat, lat[li]])
    e_lon = np.concatenate([lon[fi], ev_lon, lon[li]])
    o = np.lexsort((kind, et, ei))
    ei, et, kind, to, e_lat, e_lon = ei[o], et[o], kind[o], to[o], e_lat[o], e_lon[o]

    # event time and metres from the chunk start; sums of segment lengths between consecutive
    # event positions by np.add.reduceat (far cheaper than a cumulative sum over all positions)
    nxt = np.minimum(ei + 1, n - 1)
    e_time = ts[ei] + np.round(et * (ts[nxt] - ts[ei])).astype(np.int64)
    between = np.add.reduceat(seglen, ei)
    between[:-1][ei[1:] == ei[:-1]] = 0.0  # reduceat gives seglen[i] for empty ranges
    e_cum = np.concatenate(([0.0], np.cumsum(between[:-1]))) + et * seglen[ei]
    e_gap = (kind == 1) & (ts[nxt] - ts[ei] > gap_ns)  # event inside a gap segment

    # ---- visits: between consecutive events of one flight (the end event opens none)
    v = np.flatnonzero(kind != 2)
    w = v + 1
    visits = {
        "fid": fid[ei[v]],
        "reg": to[v].astype(np.int32),
        "et": e_time[v],
        "xt": e_time[w],
        "elat": e_lat[v],
        "elon": e_lon[v],
        "xlat": e_lat[w],
        "xlon": e_lon[w],
        "ecum": e_cum[v],
        "xcum": e_cum[w],
        "eint": e_gap[v],
        "xint": e_gap[w],
        "epos": ei[v],
        "xpos": ei[w],
        "nm": np.zeros(v.size, dtype=np.int32),
    }
    visits = _merge_runs(visits)
    visits = _drop_degenerate(visits)
    visits = _merge_runs(visits)
    if noise_m > 0:
        visits = _merge_noise(visits, index, lon, lat, noise_m)
    if jitter_ns > 0:
        visits = _merge_jitter(visits, jitter_ns)

    vf = visits["fid"]
    starts_inside = _starts_run(vf)
    ends_inside = _ends_run(vf)
    keep = visits["reg"] != _OUTSIDE
    out = {k: a[keep] for k, a in visits.items()}
    _, _, dist = _GEOD.inv(out["elon"], out["elat"], out["xlon"], out["xlat"])
    return {
        "flight_id": out["fid"],
        "fir": out["reg"],
        "entry_time": out["et"],
        "exit_time": out["xt"],
        "entry_lat": out["elat"],
        "entry_lon": out["elon"],
        "exit_lat": out["xlat"],
        "exit_lon": out["xlon"],
        "distance_km": np.asarray(dist, dtype=float) / 1000.0,
        "flown_km": np.maximum(out["xcum"] - out["ecum"], 0.0) / 1000.0,
        "interpolated": out["eint"] | out["xint"],
        "starts_inside": starts_inside[keep],
        "ends_inside": ends_inside[keep],
        "merged_excursions": out["nm"],
    }


def _segment_events(
    index: FirIndex,
    sx0: np.ndarray,
    sy0: np.ndarray,
    rx: np.ndarray,
    ry: np.ndarray,
    c0: np.ndarray,
    c1: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Crossing events inside candidate segments from (sx0, sy0) to (sx0 + rx, sy0 + ry)
    (lon unwrapped), whose ends are in classes c0 and c1.

    Each segment is cut at its exact intersections with the FIR boundaries (all FIRs); its
    class sequence is: class of its start, classes of the pieces between intersections, class
    of its end. A first piece has the start's class and a last piece the end's class (no
    boundary lies strictly inside them, and an end on a boundary shows up as an intersection
    at t = 0 or 1); only pieces between two intersections (or a segment without any
    intersection found) are classified, at their midpoint.

    Returns:
        (segment index, fraction t along the segment, FIR entered, lat, lon) per event, in
        the order of the segments, then of t.
    """
    nseg = sx0.shape[0]
    if nseg == 0:
        e = np.empty(0)
        return np.empty(0, np.int64), e, np.empty(0, c0.dtype), e, e
    sx1 = sx0 + rx
    sy1 = sy0 + ry

    # STRtree query by envelope: that of the segment as a LineString is its bounding box
    ends = np.empty((nseg, 2, 2))
    ends[:, 0, 0], ends[:, 0, 1], ends[:, 1, 0], ends[:, 1, 1] = sx0, sy0, sx1, sy1
    qi, qb = index.edge_tree.query(shapely.linestrings(ends))
    # every (segment, edge) pair of the candidate blocks, as flat (contiguous) arrays
    ex0, ey0, ex, ey = index.edge_blocks.take(qb, axis=1).reshape(4, -1)
    qrx = np.repeat(rx[qi], EDGE_BLOCK)
    qry = np.repeat(ry[qi], EDGE_BLOCK)
    qx = ex0 - np.repeat(sx0[qi], EDGE_BLOCK)
    qy = ey0 - np.repeat(sy0[qi], EDGE_BLOCK)
    denom = qrx * ey - qry * ex
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (qx * qry - qy * qrx) / denom  # along the edge: rarely within [0, 1]
        h = np.flatnonzero((denom != 0) & (u >= -_T_EPS) & (u <= 1 + _T_EPS))
        t = (qx[h] * ey[h] - qy[h] * ex[h]) / denom[h]
    hit = (t >= -_T_EPS) & (t <= 1 + _T_EPS)
    hs, ht = qi[h[hit] // EDGE_BLOCK], np.clip(t[hit], 0.0, 1.0)
    # A segment without any intersection found although its ends differ (degenerate, e.g.
    # running along a boundary): pretend intersections at both ends, so that its single inner
    # piece is classified at its midpoint.
    none = np.flatnonzero(np.bincount(hs, minlength=nseg) == 0)
    if none.size:
        hs = np.concatenate([hs, none, none])
        ht = np.concatenate([ht, np.zeros(none.size), np.ones(none.size)])
    o = np.lexsort((ht, hs))
    hs, ht = hs[o], ht[o]
    keep = np.ones(hs.size, dtype=bool)
    keep[1:] = (hs[1:] != hs[:-1]) | (ht[1:] - ht[:-1] > _T_EPS)
    hs, ht = hs[keep], ht[keep]

    # Pieces: m intersections cut a segment into m + 1 pieces.
    m = np.bincount(hs, minlength=nseg)
    npieces = m + 1
    pseg = np.repeat(np.arange(nseg), npieces)
    k = _ragged_arange(np.zeros(nseg, dtype=np.int64), npieces)  # piece number in segment
    hstart = np.cumsum(m) - m  # first intersection of each segment in hs / ht
    htp = np.append(ht, 1.0)  # padded: the index is only used where an intersection exists
    lo = np.where(k == 0, 0.0, htp[np.maximum(hstart[pseg] + k - 1, 0)])
    pcls = np.where(k == 0, c0[pseg], c1[pseg])
    inner = np.flatnonzero((k > 0) & (k < m[pseg]))
    if inner.size:
        hi = np.where(k[inner] == m[pseg[inner]], 1.0, htp[hstart[pseg[inner]] + k[inner]])
        tm = 0.5 * (lo[inner] + hi)
        ps = pseg[inner]
        pcls[inner] = index.classify(sx0[ps] + tm * rx[ps], sy0[ps] + tm * ry[ps])

    # State sequence per segment: [start class, piece classes...]; entering piece p happens at
    # its lower end (0 for the first), the end class equals the last piece's class.
    first_piece = k == 0
    prev = np.where(first_piece, c0[pseg], np.concatenate((pcls[:1], pcls[:-1])))
    change = np.flatnonzero(pcls != prev)
    cs = pseg[change]
    tc = lo[change]
    return (
        cs,
        tc,
        pcls[change],
        sy0[cs] + tc * ry[cs],
        wrap_lon(sx0[cs] + tc * rx[cs]),
    )


def _long_subsegments(
    index: FirIndex,
    seg: np.ndarray,
    seg_az: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    seglen: np.ndarray,
    cls: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Long segments ``seg``, followed along their geodesic: their candidate sub-segments.

    Each segment is split into ``ceil(length / DENSIFY_M)`` equal geodesic sub-segments
    (``Geod.fwd``); the sub-positions form small polylines processed like tracks: the
    sub-segments whose end classes differ are returned as ``(sx0, sy0, rx, ry, c0, c1)`` (see
    :func:`_segment_events`) with the long segment of each and its number and count of
    sub-segments (an event at fraction t of sub-segment k of n is at (k + t) / n of the
    segment: time is linear in distance).
    """
    nsub = np.ceil(seglen[seg] / DENSIFY_M).astype(np.int64)
    npts = nsub + 1
    g = np.repeat(np.arange(seg.size), npts)  # polyline of each long segment
    k = _ragged_arange(np.zeros(seg.size, dtype=np.int64), npts)  # 0..nsub
    frac = k / nsub[g]
    s = seg[g]
    mlon, mlat, _ = _GEOD.fwd(lon[s], lat[s], seg_az[g], seglen[s] * frac)
    mlon = wrap_lon(np.asarray(mlon, dtype=float))
    mlat = np.asarray(mlat, dtype=float)
    first = k == 0
    last = k == nsub[g]
    mlon[first], mlat[first] = lon[seg], lat[seg]  # exact end positions
    mlon[last], mlat[last] = lon[seg + 1], lat[seg + 1]
    mcls = index.classify(mlon, mlat)
    mcls[first], mcls[last] = cls[seg], cls[seg + 1]
    mc = np.flatnonzero((mcls[:-1] != mcls[1:]) & ~last[:-1])
    sx0 = mlon[mc]
    sy0 = mlat[mc]
    rx = wrap_lon(mlon[mc + 1] - sx0)  # unwrapped: the segment may leave [-180, 180)
    ry = mlat[mc + 1] - sy0
    return sx0, sy0, rx, ry, mcls[mc], mcls[mc + 1], seg[g[mc]], k[mc], nsub[g[mc]]


# ---- visit table operations (dict of equally long arrays, sorted by flight then time)

_ENTRY_KEYS: Final = ("et", "elat", "elon", "ecum", "eint", "epos")
_EXIT_KEYS: Final = ("xt", "xlat", "xlon", "xcum", "xint", "xpos")


def _merge_runs(v: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Merge consecutive visits of one flight in the same region."""
    f, r = v["fid"], v["reg"]
    if f.size < 2:
        return v
    brk = (f[1:] != f[:-1]) | (r[1:] != r[:-1])
    if brk.all():
        return v
    s = np.flatnonzero(np.concatenate(([True], brk)))
    e = np.append(s[1:] - 1, f.size - 1)
    out = {k: v[k][s] for k in ("fid", "reg", *_ENTRY_KEYS)}
    out.update({k: v[k][e] for k in _EXIT_KEYS})
    out["nm"] = np.add.reduceat(v["nm"], s).astype(np.int32)
    return out


def _drop_degenerate(v: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop zero-duration, zero-length visits of flights that have other visits."""
    f = v["fid"]
    if f.size < 2:
        return v
    fl_first = _starts_run(f)
    single = fl_first & _ends_run(f)
    degenerate = (
        (np.abs(v["xt"] - v["et"]) <= 1000)
        & (np.abs(v["xlat"] - v["elat"]) <= 1e-8)
        & (np.abs(wrap_lon(v["xlon"] - v["elon"])) <= 1e-8)
        & ~single
    )
    if not degenerate.any():
        return v
    # keep at least one visit per flight (a flight whose visits are all degenerate)
    grp = np.cumsum(fl_first) - 1
    kept_per_flight = np.bincount(grp, weights=~degenerate, minlength=grp[-1] + 1)
    degenerate &= ~(fl_first & (kept_per_flight[grp] == 0))
    return {k: a[~degenerate] for k, a in v.items()}


def _excursions(v: dict[str, np.ndarray]) -> np.ndarray:
    """Visits between two visits of the same FIR of the same flight (not outside)."""
    f, r = v["fid"], v["reg"]
    cand = np.zeros(f.size, dtype=bool)
    if f.size >= 3:
        cand[1:-1] = (f[:-2] == f[1:-1]) & (f[2:] == f[1:-1]) & (r[:-2] == r[2:])
        cand[1:-1] &= r[:-2] != _OUTSIDE
    return cand


def _merge_into_neighbours(v: dict[str, np.ndarray], cand: np.ndarray) -> dict[str, np.ndarray]:
    """Merge the excursions ``cand`` into the visits around them (not two adjacent ones at
    once: the loops of the callers take the next one on the next round)."""
    apply = cand.copy()
    apply[1:] &= ~cand[:-1]
    idx = np.flatnonzero(apply)
    reg = v["reg"].copy()
    reg[idx] = reg[idx - 1]
    nm = v["nm"].copy()
    nm[idx] += 1
    return _merge_runs({**v, "reg": reg, "nm": nm})


def _merge_noise(
    v: dict[str, np.ndarray],
    index: FirIndex,
    lon: np.ndarray,
    lat: np.ndarray,
    tol_m: float,
) -> dict[str, np.ndarray]:
    """Merge the excursions that position noise explains (see :func:`_excursion_depth`): their
    positions all lie within ``tol_m`` of the FIR around them. A real visit (one position
    deeper) is never merged, and never lets its neighbours merge across it."""
    real = np.zeros(0, dtype=np.int64)  # (epos, xpos) keys of excursions found real
    while True:
        cand = _excursions(v)
        if not cand.any():
            return v
        idx = np.flatnonzero(cand)
        key = v["epos"][idx] * (lon.shape[0] + 1) + v["xpos"][idx]
        idx = idx[~np.isin(key, real)]
        if idx.size == 0:
            return v
        depth = _excursion_depth(v, idx, index, lon, lat, tol_m)
        noise = depth <= tol_m
        real = np.concatenate(
            [real, v["epos"][idx[~noise]] * (lon.shape[0] + 1) + v["xpos"][idx[~noise]]]
        )
        if not noise.any():
            return v
        cand[:] = False
        cand[idx[noise]] = True
        v = _merge_into_neighbours(v, cand)


def _excursion_depth(
    v: dict[str, np.ndarray],
    idx: np.ndarray,
    index: FirIndex,
    lon: np.ndarray,
    lat: np.ndarray,
    tol_m: float,
) -> np.ndarray:
    """How far (metres) the excursions ``idx`` reach from the FIR around them: the largest
    distance of their positions from that FIR's boundary; ``inf`` where it exceeds ``2 tol_m``
    and for an excursion without any position (a straight segment between two positions that
    clips another region is geometry, not position noise: it is kept).

    The middle position of every excursion is measured first: a real visit is nearly always
    deep there, and then its other positions need no measuring (the depth is a lower bound,
    enough to refuse the merge); the others get all their positions measured.
    """
    count = v["xpos"][idx] - v["epos"][idx]  # positions epos + 1 .. xpos
    fir = v["reg"][idx - 1]
    depth = np.zeros(idx.size)
    depth[count == 0] = np.inf  # no position in it: not noise, the chord's own geometry
    some = np.flatnonzero(count > 0)
    mid = v["epos"][idx[some]] + 1 + (count[some] - 1) // 2
    depth[some] = _depth(index, lon[mid], lat[mid], fir[some], tol_m)
    rest = some[(depth[some] <= tol_m) & (count[some] > 1)]
    if rest.size:
        grp = np.repeat(rest, count[rest])
        pos = _ragged_arange(v["epos"][idx[rest]] + 1, count[rest])
        np.maximum.at(depth, grp, _depth(index, lon[pos], lat[pos], fir[grp], tol_m))
    return depth


def _depth(
    index: FirIndex, px: np.ndarray, py: np.ndarray, fir: np.ndarray, tol_m: float
) -> np.ndarray:
    """Distance (metres) of each position from the boundary of FIR ``fir`` (``inf`` beyond
    ``2 tol_m``).

    Positions that the grid shows far from every boundary are skipped. The others: distances
    to the FIR's boundary edges in a local equirectangular frame at each position (metres per
    degree from the WGS84 radii of curvature), exact to well under a metre at these
    distances. The edges are those of the FIR itself (copies at +-360 degrees included), so
    the antimeridian is no boundary.
    """
    dist = np.full(px.size, np.inf)  # no edge of that FIR near: deeper than 2 tol_m
    near = np.flatnonzero(~_far_from_boundaries(index, px, py, 2.0 * tol_m))
    if near.size == 0:
        return dist
    px, py, fir = px[near], py[near], fir[near]
    phi = np.radians(py)
    w = np.sqrt(1.0 - _E2 * np.sin(phi) ** 2)
    ky = _A * (1.0 - _E2) / w**3 * (math.pi / 180.0)  # metres per degree of latitude
    kx = np.maximum(_A / w * np.cos(phi) * (math.pi / 180.0), 1.0)  # ... of longitude
    hx, hy = 2.0 * tol_m / kx, 2.0 * tol_m / ky  # box half-sizes: twice the tolerance
    # boundary edges of the FIR around each position that come near it: blocks of edges
    # whose envelope meets the box (STRtree), then the edges of that FIR in them
    qp, qb = index.edge_tree.query(shapely.box(px - hx, py - hy, px + hx, py + hy))
    qp = np.repeat(qp, EDGE_BLOCK)
    qe = np.repeat(qb * EDGE_BLOCK, EDGE_BLOCK) + np.tile(np.arange(EDGE_BLOCK), qb.size)
    mine = np.flatnonzero(index.edge_owner.ravel()[qe] == fir[qp])
    qp, qe = qp[mine], qe[mine]
    # exact distance to each edge in a local metric frame at the position
    ex0, ey0, edx, edy = index.edge_blocks.reshape(4, -1)[:, qe]
    ax, ay = (ex0 - px[qp]) * kx[qp], (ey0 - py[qp]) * ky[qp]  # edge start, from the position
    dx, dy = edx * kx[qp], edy * ky[qp]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip(-(ax * dx + ay * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    t = np.nan_to_num(t)  # zero-length edge
    d = np.full(near.size, np.inf)
    np.minimum.at(d, qp, np.hypot(ax + t * dx, ay + t * dy))
    dist[near] = d
    return dist


def _far_from_boundaries(
    index: FirIndex, px: np.ndarray, py: np.ndarray, min_m: float
) -> np.ndarray:
    """True where no FIR boundary comes within ``min_m`` metres of the position, known from
    the grid alone: the 3 x 3 cells around it are touched by no boundary and a cell is wider
    than ``min_m`` there (then every boundary is at least a cell away)."""
    ny, nx = index.grid.shape
    ix = np.clip(((px - index.x0) / index.cell).astype(np.int64), 1, nx - 2)
    iy = np.clip(((py - index.y0) / index.cell).astype(np.int64), 1, ny - 2)
    flat = index.grid.ravel()
    width = index.cell * (math.pi / 180.0) * _A * np.cos(np.radians(np.minimum(np.abs(py), 89.9)))
    far = width > 1.01 * min_m
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            far &= flat.take((iy + dy) * nx + (ix + dx)) != _MIXED
    return far


def _merge_jitter(v: dict[str, np.ndarray], jitter_ns: int) -> dict[str, np.ndarray]:
    """Merge short visits (and short excursions outside) between visits of the same FIR,
    repeatedly (explicit option only: it may chain across real visits)."""
    while v["fid"].size >= 3:
        cand = _excursions(v) & ((v["xt"] - v["et"]) < jitter_ns)
        if not cand.any():
            break
        v = _merge_into_neighbours(v, cand)
    return v


# ---- geometry helpers


def _segment_lengths(
    lat: np.ndarray, lon: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geodesic length (m) of each segment k -> k+1 (length n; 0 after the last position of a
    flight, ``last``, which must include n - 1), the long segments (longer than
    :data:`DENSIFY_M`) and their azimuths (from ``Geod.inv``).

    Segments up to :data:`EXACT_LENGTH_M` use the local ellipsoidal formula
    ``ds = a / sqrt(w2) * sqrt((cos(phi) dlon)^2 + ((1 - e2) / w2 * dlat)^2)`` with
    ``w2 = 1 - e2 sin^2(phi)`` at the mid-latitude ``phi`` (error < 2 mm per 2 km segment and
    < 4 cm per 10 km segment, i.e. < 4e-6 relative: real ADS-B, 10 s apart, is ~2.5 km;
    float32 arithmetic adds < 1e-6 relative); longer ones use ``Geod.inv``.
    """
    n = lat.shape[0]
    if n < 2:
        return np.zeros(n), np.empty(0, np.int64), np.empty(0)
    # differences in float64 (positions need it), the formula in float32 (twice the SIMD
    # width); relative error < 1e-6 per segment, the sums are accumulated in float64.
    # ufuncs with a float32 ``out`` compute in float64 and round once, like ``.astype``.
    f32 = np.float32
    dlon = np.empty(n - 1, dtype=f32)
    np.subtract(lon[1:], lon[:-1], out=dlon)
    # float32 rounding is monotonic and +-180 are exact: inside (-180, 180) in float32 means
    # inside in float64, i.e. nothing to wrap there
    if not (dlon.min() > -180.0 and dlon.max() < 180.0):
        out = np.flatnonzero((dlon <= -180.0) | (dlon >= 180.0))
        dlon[out] = wrap_lon(lon[out + 1] - lon[out])
    c64 = lat[:-1] + lat[1:]
    c = np.empty(n - 1, dtype=f32)
    np.multiply(c64, math.pi / 360.0, out=c)
    del c64
    np.cos(c, out=c)  # cos(phi)
    dlon *= c  # cos(phi) dlon
    c *= c
    c *= f32(_E2)
    c += f32(1.0 - _E2)  # w2
    dlat = np.empty(n - 1, dtype=f32)
    np.subtract(lat[1:], lat[:-1], out=dlat)
    dlat *= f32(1.0 - _E2)
    dlat /= c  # (1 - e2) / w2 dlat
    np.sqrt(c, out=c)
    dlon *= dlon
    dlat *= dlat
    dlon += dlat
    np.sqrt(dlon, out=dlon)
    dlon /= c
    dlon *= f32(_A * math.pi / 180.0)
    dlon[last[:-1]] = 0.0  # from one flight to the next: not a segment
    length = np.empty(n)
    length[:-1] = dlon
    length[-1] = 0.0
    exact = np.flatnonzero(dlon > f32(EXACT_LENGTH_M))
    del dlat, dlon, c
    if exact.size == 0:
        return length, exact, np.empty(0)
    a12, _, dist = _GEOD.inv(lon[exact], lat[exact], lon[exact + 1], lat[exact + 1])
    length[exact] = dist
    long_ = np.asarray(dist, dtype=float) > DENSIFY_M
    return length, exact[long_], np.asarray(a12, dtype=float)[long_]


# ---- misc helpers


def _cell_dtype(size: int) -> type[np.signedinteger]:
    """Integer type of cell ids into ``tiles`` of ``size`` cells."""
    return np.int32 if size < _INT32_MAX else np.int64


def _tile_ids(iy: np.ndarray, ix: np.ndarray, ntx: int) -> np.ndarray:
    """Position in :attr:`FirIndex.tiles` of grid cells (row iy, column ix; integer arrays,
    both overwritten)."""
    bits = _TILE_BITS
    mask = (1 << bits) - 1
    out = iy >> bits
    out *= ntx
    out += ix >> bits
    out <<= 2 * bits  # first cell of the tile
    iy &= mask
    iy <<= bits
    out += iy
    ix &= mask
    out += ix
    return out


def _unique(a: np.ndarray) -> np.ndarray:
    """Sorted unique values (sort-based; faster than ``np.unique`` for int64 keys here)."""
    a = np.sort(a)
    return a[_starts_run(a)] if a.size else a


def _starts_run(a: np.ndarray) -> np.ndarray:
    """True where a run of equal values of ``a`` starts (``a[i] != a[i - 1]``, and at 0)."""
    out = np.empty(a.shape[0], dtype=bool)
    out[:1] = True
    np.not_equal(a[1:], a[:-1], out=out[1:])
    return out


def _ends_run(a: np.ndarray) -> np.ndarray:
    """True where a run of equal values of ``a`` ends (``a[i] != a[i + 1]``, and at the end)."""
    out = np.empty(a.shape[0], dtype=bool)
    out[-1:] = True
    np.not_equal(a[1:], a[:-1], out=out[:-1])
    return out


def _ragged_arange(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(start[i], start[i] + count[i])``."""
    count = np.asarray(count, dtype=np.int64)
    total = int(count.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offs = np.cumsum(count) - count
    return np.repeat(np.asarray(start, dtype=np.int64) - offs, count) + np.arange(total)


def _ts_ns(col: pd.Series) -> np.ndarray:
    """Epoch nanoseconds (int64; NaT = int64 min) of a datetime column (naive = UTC)."""
    if not pd.api.types.is_datetime64_any_dtype(col.dtype):
        raise ValueError(f"tracks column 'ts' must be datetime64 (UTC), got {col.dtype}")
    arr = col.array  # tz-aware: the stored int64 values are UTC epoch already
    if arr.unit != "ns":  # as_unit copies even when the unit is unchanged
        arr = arr.as_unit("ns")
    return np.asarray(arr.asi8, dtype=np.int64)


def _float_col(col: pd.Series) -> np.ndarray:
    """float64 values (a view for float64 columns), NA as NaN."""
    if col.dtype == np.float64:
        return col.to_numpy()
    return np.asarray(col.to_numpy(dtype=float, na_value=np.nan), dtype=float)


def _sorted_starts(fid: np.ndarray, ts: np.ndarray, block: int = 1 << 18) -> np.ndarray | None:
    """First row of each flight if rows are ordered by (flight_id, ts), else None; checked
    block-wise to bound memory."""
    n = fid.shape[0]
    parts = [np.zeros(min(n, 1), dtype=np.int64)]
    for a in range(0, max(n - 1, 0), block):
        b = min(a + block, n - 1)
        f0, f1 = fid[a:b], fid[a + 1 : b + 1]
        new = f1 != f0
        brk = np.flatnonzero(new)
        if (f1[brk] < f0[brk]).any() or ((ts[a + 1 : b + 1] < ts[a:b]) > new).any():
            return None
        parts.append(brk + (a + 1))
    return np.concatenate(parts)


def _chunks(starts: np.ndarray, n: int, size: int) -> Iterator[tuple[int, int]]:
    """Half-open row ranges of whole flights, about ``size`` rows each."""
    a = 0
    while a < n:
        if a + size >= n:
            b = n
        else:
            b = int(starts[int(np.searchsorted(starts, a + size, side="right")) - 1])
            if b <= a:  # a single flight longer than ``size``: take it whole
                nxt = int(np.searchsorted(starts, a, side="right"))
                b = int(starts[nxt]) if nxt < len(starts) else n
        yield a, b
        a = b


def _empty_result() -> pd.DataFrame:
    return _to_frame(
        {
            "flight_id": np.empty(0, np.int64),
            "fir": np.empty(0, np.int32),
            **{k: np.empty(0, np.int64) for k in ("entry_time", "exit_time")},
            **{k: np.empty(0) for k in VISIT_FLOAT_COLUMNS},
            **{k: np.empty(0, bool) for k in ("interpolated", "starts_inside", "ends_inside")},
            "merged_excursions": np.empty(0, np.int32),
        },
        None,
    )


def _to_frame(cols: dict[str, np.ndarray], index: FirIndex | None) -> pd.DataFrame:
    fid = cols["flight_id"].astype(np.int64)
    first = _starts_run(fid)
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, fid.size))
    visit_index = np.arange(fid.size) - np.repeat(starts, counts)
    fir_ids = index.fir_ids[cols["fir"]] if index is not None else np.empty(0, dtype=object)
    frame = pd.DataFrame(
        {
            "flight_id": fid,
            "visit_index": visit_index.astype(np.int64),
            "fir_id": pd.array(fir_ids, dtype="str"),
            "entry_time": pd.to_datetime(cols["entry_time"], unit="ns", utc=True),
            "exit_time": pd.to_datetime(cols["exit_time"], unit="ns", utc=True),
            "entry_lat": cols["entry_lat"],
            "entry_lon": cols["entry_lon"],
            "exit_lat": cols["exit_lat"],
            "exit_lon": cols["exit_lon"],
            "distance_km": cols["distance_km"],
            "flown_km": cols["flown_km"],
            "interpolated": cols["interpolated"].astype(bool),
            "starts_inside": cols["starts_inside"].astype(bool),
            "ends_inside": cols["ends_inside"].astype(bool),
            "merged_excursions": cols["merged_excursions"].astype(np.int32),
        }
    )
    return frame[list(CROSSING_COLUMNS)]
