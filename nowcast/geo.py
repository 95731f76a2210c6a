"""Grid coordinates <-> longitude/latitude, from a CF grid mapping (pyproj; no Cartopy).

A grid is described by its grid-mapping attributes (``crs_wkt`` when present, else the CF
projection attributes) and its ``x``/``y`` cell centres (metres, or km when their
``units`` say so; degrees for ``latitude_longitude`` grids). Longitudes and latitudes are
WGS 84 (EPSG:4326): a grid's datum shift (``towgs84``) is applied.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyproj

from nowcast.errors import DataError

__all__ = [
    "coord_spacing",
    "grid_crs",
    "grid_spacing_m",
    "is_geographic",
    "lonlat_grid",
    "metres_per_unit",
    "to_grid_xy",
    "xy_scale",
]

#: Metres per unit of a grid coordinate's length units, by spelling (no units: metres).
_LENGTH_UNITS = {
    **dict.fromkeys(("", "m", "metre", "metres", "meter", "meters"), 1.0),
    **dict.fromkeys(("km", "kilometre", "kilometres", "kilometer", "kilometers"), 1000.0),
}


def grid_crs(gm_attrs: Mapping[str, Any]) -> pyproj.CRS:
    """The pyproj CRS of CF grid-mapping attributes (``crs_wkt`` first, else CF names)."""
    return _crs(_key(gm_attrs))


def _key(gm_attrs: Mapping[str, Any]) -> tuple:
    """Hashable form of grid-mapping attributes (arrays as tuples), for the caches."""
    out = []
    for k, v in gm_attrs.items():
        if v is None:
            continue
        a = np.asarray(v)
        out.append((str(k), a.item() if a.ndim == 0 else tuple(a.ravel().tolist())))
    return tuple(sorted(out))


@functools.lru_cache(maxsize=16)
def _crs(key: tuple) -> pyproj.CRS:
    attrs = dict(key)
    wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
    try:
        if wkt:
            return pyproj.CRS.from_wkt(str(wkt))
        return pyproj.CRS.from_cf(attrs)
    except (pyproj.exceptions.CRSError, KeyError, ValueError, TypeError) as exc:
        name = attrs.get("grid_mapping_name", "(unnamed)")
        raise DataError(
            f"grid mapping {name!r} is not a coordinate system pyproj knows: {exc}"
        ) from None


def is_geographic(gm_attrs: Mapping[str, Any]) -> bool:
    """True for a longitude/latitude grid (x, y in degrees)."""
    if gm_attrs.get("grid_mapping_name") == "latitude_longitude":
        return True
    return grid_crs(gm_attrs).is_geographic


def metres_per_unit(units: Any) -> float | None:
    """Metres per unit of a length ``units`` string: 1 for metres (and for no units), 1000
    for km, any spelling; ``None`` when ``units`` is not a length (e.g. degrees)."""
    return _LENGTH_UNITS.get(str(units or "").strip().lower())


def xy_scale(units: Any) -> float:
    """Metres per unit of an ``x``/``y`` coordinate (1000 for km, else 1)."""
    return metres_per_unit(units) or 1.0


def coord_spacing(values) -> float | None:
    """The spacing of a grid coordinate: the median absolute difference of its values
    (``None`` for fewer than two)."""
    values = np.asarray(values, dtype="float64")
    return float(np.median(np.abs(np.diff(values)))) if values.size > 1 else None


def grid_spacing_m(da) -> float | None:
    """The pixel size in metres of a projected grid (the mean of the ``x`` and ``y``
    spacings, from their ``units``; none: metres); ``None`` for a longitude/latitude grid
    (degrees), a coordinate in other units, or fewer than two pixels along an axis."""
    gm_name = da.attrs.get("grid_mapping")
    if gm_name in da.coords:
        try:
            if is_geographic(dict(da.coords[gm_name].attrs)):
                return None
        except DataError:  # a mapping pyproj cannot read: the coordinates' units decide
            pass
    sizes = []
    for dim in ("x", "y"):
        if dim not in da.coords:
            return None
        metres = metres_per_unit(da[dim].attrs.get("units"))
        spacing = coord_spacing(da[dim].values)
        if metres is None or not spacing:
            return None
        sizes.append(spacing * metres)
    return float(np.mean(sizes))


@functools.lru_cache(maxsize=4)
def _to_lonlat(key: tuple, x: bytes, y: bytes, scale: float) -> tuple[np.ndarray, np.ndarray]:
    crs = _crs(key)
    xs = np.frombuffer(x, dtype=np.float64) * scale
    ys = np.frombuffer(y, dtype=np.float64) * scale
    xx, yy = np.meshgrid(xs, ys)
    tr = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(xx, yy)
    return np.asarray(lon, dtype=np.float32), np.asarray(lat, dtype=np.float32)


def lonlat_grid(
    gm_attrs: Mapping[str, Any], x, y, *, units: Any = "m"
) -> tuple[np.ndarray, np.ndarray]:
    """2-D ``(lon, lat)`` (float32, shape ``(len(y), len(x))``) of a projected grid's cells.

    Cached per process (a batch writes the same grid many times).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    lon, lat = _to_lonlat(_key(gm_attrs), x.tobytes(), y.tobytes(), xy_scale(units))
    return lon.copy(), lat.copy()


def to_grid_xy(gm_attrs: Mapping[str, Any], lon: float, lat: float, *, units: Any = "m"):
    """``(x, y)`` in the grid's coordinate units of a WGS 84 longitude/latitude."""
    if is_geographic(gm_attrs):
        return float(lon), float(lat)
    tr = pyproj.Transformer.from_crs("EPSG:4326", grid_crs(gm_attrs), always_xy=True)
    x, y = tr.transform(float(lon), float(lat))
    scale = xy_scale(units)
    return float(x) / scale, float(y) / scale
