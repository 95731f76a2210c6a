"""Cartopy CRS from CF grid-mapping attributes, and the grid's extent in it.

:func:`crs_from_grid_mapping` maps the CF ``grid_mapping_name`` and its parameters to the
matching Cartopy projection class, on the ellipsoid given by ``semi_major_axis`` /
``semi_minor_axis`` (and the ``towgs84`` datum shift where the file has one). Where the CF
attributes are not enough it falls back to ``crs_wkt`` through pyproj; otherwise it raises
:class:`~nowcast.errors.NowcastError` naming the grid mapping.

CF ``oblique_mercator`` has no rectified-grid angle: it is read as PROJ's ``omerc`` default
(angle = azimuth), and an azimuth of 90 degrees (the Swiss grid) as PROJ's exact ``somerc``.

Coordinates in lon/lat (coastlines, gridlines) use :func:`lonlat_crs`, a Plate Carree on the
WGS 84 datum, so that datum shifts (e.g. the Swiss grid's Bessel ellipsoid) are applied.

Cartopy is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj

from nowcast.errors import DataError, NowcastError

__all__ = ["crs_from_grid_mapping", "grid_mapping_attrs", "grid_edges", "lonlat_crs", "SUPPORTED"]


class _Missing(KeyError):
    """A required CF attribute is absent (caught: try the WKT instead)."""


def _num(attrs: Mapping, *names: str, default: Any = _Missing) -> float:
    for name in names:
        if name in attrs and attrs[name] is not None:
            value = np.asarray(attrs[name], dtype=float).ravel()
            if value.size:
                return float(value[0])
    if default is _Missing:
        raise _Missing(names[0])
    return default


def _parallels(attrs: Mapping) -> tuple[float, ...]:
    if "standard_parallel" not in attrs:
        raise _Missing("standard_parallel")
    values = tuple(float(v) for v in np.asarray(attrs["standard_parallel"], dtype=float).ravel())
    if not values:
        raise _Missing("standard_parallel")
    return values


def _globe(attrs: Mapping):
    # Cartopy costs start-up time: imported when a map is drawn
    import cartopy.crs as ccrs

    a = _num(attrs, "semi_major_axis", default=None)
    b = _num(attrs, "semi_minor_axis", default=None)
    rf = _num(attrs, "inverse_flattening", default=None)
    radius = _num(attrs, "earth_radius", default=None)
    towgs84 = attrs.get("towgs84")
    kwargs: dict[str, Any] = {"ellipse": None}
    if towgs84 is not None:
        kwargs["towgs84"] = ",".join(
            repr(float(v)) for v in np.asarray(towgs84, dtype=float).ravel()
        )
    if a is not None:
        kwargs["semimajor_axis"] = a
        if b is not None:
            kwargs["semiminor_axis"] = b
        elif rf:
            kwargs["inverse_flattening"] = rf
        else:
            kwargs["semiminor_axis"] = a
    elif radius is not None:
        kwargs.update(semimajor_axis=radius, semiminor_axis=radius)
    else:  # CF default: WGS 84
        kwargs["ellipse"] = "WGS84"
    return ccrs.Globe(**kwargs)


def lonlat_crs():
    """Plate Carree on the WGS 84 datum (longitude/latitude of coastlines and gridlines).

    Cartopy's default ``PlateCarree()`` carries no datum, so PROJ would skip a grid's
    ``towgs84`` shift (about 150 m for the Swiss grid); this one does not.
    """
    return _lonlat_crs()


@functools.lru_cache(maxsize=1)
def _lonlat_crs():
    # Cartopy costs start-up time: imported when a map is drawn
    import cartopy.crs as ccrs

    return ccrs.PlateCarree(globe=ccrs.Globe(ellipse="WGS84", towgs84="0,0,0"))


def _swiss_oblique_mercator_class():
    # Cartopy costs start-up time: imported when a map is drawn
    import cartopy.crs as ccrs

    class SwissObliqueMercator(ccrs.ObliqueMercator):
        """Oblique Mercator with a centre line due east (azimuth 90), as PROJ ``somerc``.

        Cartopy's :class:`~cartopy.crs.ObliqueMercator` nudges an azimuth of 90 to 89.999
        (metres off over a radar domain); PROJ's Swiss oblique Mercator is exact.
        """

        def __init__(
            self,
            central_longitude,
            central_latitude,
            false_easting,
            false_northing,
            scale_factor,
            globe,
        ):
            params = [
                ("proj", "somerc"),
                ("lon_0", central_longitude),
                ("lat_0", central_latitude),
                ("k_0", scale_factor),
                ("x_0", false_easting),
                ("y_0", false_northing),
                ("units", "m"),
            ]
            ccrs.Projection.__init__(self, params, globe=globe)
            mercator = ccrs.Mercator(
                central_longitude=central_longitude,
                globe=globe,
                false_easting=false_easting,
                false_northing=false_northing,
                scale_factor=scale_factor,
            )
            self._x_limits = mercator.x_limits
            self._y_limits = mercator.y_limits
            self.threshold = mercator.threshold

    return SwissObliqueMercator


@dataclass(frozen=True)
class _CF:
    """What a builder reads: the CF attributes, the ellipsoid, the false origin, Cartopy."""

    attrs: Mapping
    globe: Any
    fe: float
    fn: float
    ccrs: Any

    def num(self, *names: str, default: Any = _Missing) -> float:
        return _num(self.attrs, *names, default=default)


def _albers_conical_equal_area(cf: _CF):
    return cf.ccrs.AlbersEqualArea(
        central_longitude=cf.num("longitude_of_central_meridian"),
        central_latitude=cf.num("latitude_of_projection_origin"),
        false_easting=cf.fe,
        false_northing=cf.fn,
        standard_parallels=_two(_parallels(cf.attrs)),
        globe=cf.globe,
    )


def _lambert_conformal_conic(cf: _CF):
    lat0 = cf.num("latitude_of_projection_origin")
    return cf.ccrs.LambertConformal(
        central_longitude=cf.num("longitude_of_central_meridian"),
        central_latitude=lat0,
        false_easting=cf.fe,
        false_northing=cf.fn,
        standard_parallels=_two(_parallels(cf.attrs)),
        globe=cf.globe,
        cutoff=-30 if lat0 >= 0 else 30,
    )


def _polar_stereographic(cf: _CF):
    lon0 = cf.num("straight_vertical_longitude_from_pole", "longitude_of_projection_origin")
    lat_ts = cf.num("standard_parallel", default=None)
    k0 = cf.num("scale_factor_at_projection_origin", default=None)
    lat0 = cf.num("latitude_of_projection_origin", default=None)
    if lat0 is None:
        if lat_ts is None:
            raise _Missing("latitude_of_projection_origin")
        lat0 = math.copysign(90.0, lat_ts)
    if lat_ts is None and k0 is None:
        k0 = 1.0
    return cf.ccrs.Stereographic(
        central_latitude=lat0,
        central_longitude=lon0,
        false_easting=cf.fe,
        false_northing=cf.fn,
        true_scale_latitude=lat_ts,
        scale_factor=None if lat_ts is not None else k0,
        globe=cf.globe,
    )


def _stereographic(cf: _CF):
    return cf.ccrs.Stereographic(
        central_latitude=cf.num("latitude_of_projection_origin"),
        central_longitude=cf.num("longitude_of_projection_origin"),
        false_easting=cf.fe,
        false_northing=cf.fn,
        scale_factor=cf.num("scale_factor_at_projection_origin", default=1.0),
        globe=cf.globe,
    )


def _lambert_azimuthal_equal_area(cf: _CF):
    return cf.ccrs.LambertAzimuthalEqualArea(
        central_longitude=cf.num("longitude_of_projection_origin"),
        central_latitude=cf.num("latitude_of_projection_origin"),
        false_easting=cf.fe,
        false_northing=cf.fn,
        globe=cf.globe,
    )


def _oblique_mercator(cf: _CF):
    lon0 = cf.num("longitude_of_projection_origin", "longitude_of_projection_center")
    lat0 = cf.num("latitude_of_projection_origin", "latitude_of_projection_center")
    azimuth = cf.num("azimuth_of_central_line")
    k0 = cf.num("scale_factor_at_projection_origin", default=1.0)
    if abs(azimuth - 90.0) < 1e-9:  # Swiss grid (EPSG 21781 / 2056)
        return _swiss_oblique_mercator_class()(lon0, lat0, cf.fe, cf.fn, k0, cf.globe)
    return cf.ccrs.ObliqueMercator(
        central_longitude=lon0,
        central_latitude=lat0,
        false_easting=cf.fe,
        false_northing=cf.fn,
        scale_factor=k0,
        azimuth=azimuth,
        globe=cf.globe,
    )


def _transverse_mercator(cf: _CF):
    return cf.ccrs.TransverseMercator(
        central_longitude=cf.num("longitude_of_central_meridian"),
        central_latitude=cf.num("latitude_of_projection_origin"),
        false_easting=cf.fe,
        false_northing=cf.fn,
        scale_factor=cf.num("scale_factor_at_central_meridian", default=1.0),
        globe=cf.globe,
        approx=False,
    )


def _mercator(cf: _CF):
    lat_ts = cf.num("standard_parallel", default=None)
    return cf.ccrs.Mercator(
        central_longitude=cf.num("longitude_of_projection_origin", default=0.0),
        latitude_true_scale=lat_ts,
        false_easting=cf.fe,
        false_northing=cf.fn,
        scale_factor=None
        if lat_ts is not None
        else cf.num("scale_factor_at_projection_origin", default=1.0),
        globe=cf.globe,
    )


def _rotated_latitude_longitude(cf: _CF):
    return cf.ccrs.RotatedPole(
        pole_longitude=cf.num("grid_north_pole_longitude"),
        pole_latitude=cf.num("grid_north_pole_latitude"),
        central_rotated_longitude=cf.num("north_pole_grid_longitude", default=0.0),
        globe=cf.globe,
    )


def _latitude_longitude(cf: _CF):
    return lonlat_crs() if _is_wgs84(cf.attrs) else cf.ccrs.PlateCarree(globe=cf.globe)


#: CF grid_mapping_name -> the builder of its Cartopy projection from its attributes.
_BUILDERS: dict[str, Callable[[_CF], Any]] = {
    "albers_conical_equal_area": _albers_conical_equal_area,
    "polar_stereographic": _polar_stereographic,
    "stereographic": _stereographic,
    "lambert_conformal_conic": _lambert_conformal_conic,
    "lambert_azimuthal_equal_area": _lambert_azimuthal_equal_area,
    "oblique_mercator": _oblique_mercator,
    "transverse_mercator": _transverse_mercator,
    "mercator": _mercator,
    "rotated_latitude_longitude": _rotated_latitude_longitude,
    "latitude_longitude": _latitude_longitude,
}

#: CF grid_mapping_name values mapped from their attributes (others need ``crs_wkt``).
SUPPORTED = tuple(_BUILDERS)


def _from_cf(name: str, attrs: Mapping):
    """The Cartopy projection for CF ``attrs``; raises :class:`_Missing` when one is absent."""
    # Cartopy costs start-up time: imported when a map is drawn
    import cartopy.crs as ccrs

    build = _BUILDERS.get(name)
    if build is None:
        raise _Missing("grid_mapping_name")
    globe = _globe(attrs)
    fe = _num(attrs, "false_easting", default=0.0)
    fn = _num(attrs, "false_northing", default=0.0)
    return build(_CF(attrs, globe, fe, fn, ccrs))


def _two(parallels: tuple[float, ...]) -> tuple[float, float]:
    return (parallels[0], parallels[-1])


def _is_wgs84(attrs: Mapping) -> bool:
    if "earth_radius" in attrs and "semi_major_axis" not in attrs:
        return False
    a = _num(attrs, "semi_major_axis", default=6378137.0)
    b = _num(attrs, "semi_minor_axis", default=None)
    rf = _num(attrs, "inverse_flattening", default=None)
    if b is None:
        b = a * (1 - 1 / rf) if rf else (6356752.314245 if "semi_major_axis" not in attrs else a)
    return abs(a - 6378137.0) < 0.01 and abs(b - 6356752.314245) < 0.01


def _from_wkt(wkt: str, extent=None):
    """A Cartopy projection from WKT via pyproj.

    Its bounds (needed by Cartopy to clip coastlines) are the grid's ``extent`` widened by
    its own size on each side when given, else a +-30 degree box around the projection centre.
    """
    # Cartopy costs start-up time: imported when a map is drawn
    import cartopy.crs as ccrs

    crs = pyproj.CRS.from_wkt(wkt)
    if crs.is_geographic:
        return (
            lonlat_crs()
            if crs.equals("EPSG:4326", ignore_axis_order=True)
            else ccrs.Projection(crs)
        )
    proj = ccrs.Projection(crs)
    if extent is not None:
        x0, x1, y0, y1 = (float(v) for v in extent)
        w, h = x1 - x0, y1 - y0
        proj.bounds = (x0 - w, x1 + w, y0 - h, y1 + h)
        proj.threshold = min(w, h) / 100.0
    elif proj.bounds is None:
        lon0, lat0 = _centre(crs.source_crs if crs.is_bound else crs)
        lons, lats = np.meshgrid(
            np.linspace(lon0 - 30, lon0 + 30, 61),
            np.clip(np.linspace(lat0 - 30, lat0 + 30, 61), -89.5, 89.5),
        )
        pts = proj.transform_points(lonlat_crs(), lons.ravel(), lats.ravel())
        ok = np.isfinite(pts[:, :2]).all(axis=1)
        if not ok.any():
            raise NowcastError(f"cannot place the grid mapping's WKT on a map: {crs.name}")
        x, y = pts[ok, 0], pts[ok, 1]
        proj.bounds = (float(x.min()), float(x.max()), float(y.min()), float(y.max()))
        proj.threshold = min(np.ptp(x), np.ptp(y)) / 100.0
    return proj


def _centre(crs) -> tuple[float, float]:
    """Longitude/latitude of a projected CRS's origin (or standard parallel) from its WKT."""
    lon0, lat0, lat_std = 0.0, None, None
    op = getattr(crs, "coordinate_operation", None)
    for param in getattr(op, "params", None) or []:
        name = param.name.lower()
        if "longitude" in name:
            lon0 = float(param.value)
        elif "latitude" in name and "parallel" in name:
            lat_std = float(param.value) if lat_std is None else lat_std
        elif "latitude" in name:
            lat0 = float(param.value)
    if lat0 is None or (abs(lat0) == 90 and lat_std is not None):
        lat0 = lat_std if lat_std is not None else 0.0
    return lon0, lat0


def crs_from_grid_mapping(attrs: Mapping, *, extent=None):
    """The Cartopy CRS described by CF grid-mapping ``attrs``.

    Handles the names in :data:`SUPPORTED` from their CF attributes; for others (or when a
    required attribute is missing) uses ``crs_wkt`` through pyproj, with projection bounds
    around the grid's ``extent`` ``(x0, x1, y0, y1)`` when given. Raises
    :class:`~nowcast.errors.NowcastError` naming the grid mapping when neither works.
    """
    name = str(attrs.get("grid_mapping_name", "")).strip()
    missing = None
    if name in SUPPORTED:
        try:
            return _from_cf(name, attrs)
        except _Missing as exc:
            missing = exc.args[0]
    wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
    if wkt:
        try:
            return _from_wkt(str(wkt), extent)
        except NowcastError:
            raise
        except Exception as exc:  # pyproj / cartopy errors: report the grid mapping by name
            raise NowcastError(
                f"grid mapping {name or '(unnamed)'!r}: cannot use its crs_wkt ({exc})"
            ) from None
    if missing:
        raise NowcastError(f"grid mapping {name!r} lacks attribute {missing!r} and has no crs_wkt")
    raise NowcastError(
        f"grid mapping {name or '(no grid_mapping_name)'!r} is not supported for maps and has no "
        "crs_wkt "
        f"(supported: {', '.join(SUPPORTED)})"
    )


def grid_mapping_attrs(da) -> dict[str, Any]:
    """The CF grid-mapping attributes of an archive/forecast DataArray (see conventions)."""
    gm = da.attrs.get("grid_mapping")
    if not gm or gm not in da.coords:
        raise DataError(
            f"{da.name or 'data'}: no grid_mapping coordinate; cannot place it on a map"
        )
    return dict(da.coords[gm].attrs)


def grid_edges(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """``(x0, x1, y0, y1)``: the outer cell edges of a regular grid of cell centres."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size < 2 or y.size < 2:
        raise DataError("grid needs at least 2 x 2 cells to be drawn")
    dx = (x[-1] - x[0]) / (x.size - 1)
    dy = (y[-1] - y[0]) / (y.size - 1)
    return (
        float(min(x[0], x[-1]) - abs(dx) / 2),
        float(max(x[0], x[-1]) + abs(dx) / 2),
        float(min(y[0], y[-1]) - abs(dy) / 2),
        float(max(y[0], y[-1]) + abs(dy) / 2),
    )
