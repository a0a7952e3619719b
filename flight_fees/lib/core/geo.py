"""Geometry helpers shared by the layers: longitudes wrapped into [-180, 180)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["wrap_lon"]


def wrap_lon(lon: npt.ArrayLike) -> np.ndarray:
    """Longitudes into [-180, 180): the input itself when already in range, else a copy
    (NaN stays NaN)."""
    lon = np.asarray(lon, dtype=float)
    if lon.size == 0 or (lon.min() >= -180.0 and lon.max() < 180.0):
        return lon
    lon = lon.copy()
    with np.errstate(invalid="ignore"):
        out = (lon < -180.0) | (lon >= 180.0)
    lon[out] = np.mod(lon[out] + 180.0, 360.0) - 180.0
    return lon
