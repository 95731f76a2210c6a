"""Offline coastlines, lakes and borders for maps: never the network.

Map data is a folder laid out like Cartopy's ``pre_existing_data_dir``
(``shapefiles/gshhs/<scale>/GSHHS_<scale>_L<level>.shp``, optionally
``shapefiles/natural_earth/cultural/ne_<res>_admin_0_boundary_lines_land.shp``). It is
looked for in, in order: the ``map_data`` argument (only there, when given), the
``NOWCAST_MAP_DATA`` environment variable, Cartopy's ``pre_existing_data_dir`` and
``data_dir``, and ``/usr/share/cartopy/data``.

Shapefiles are read directly with :class:`cartopy.io.shapereader.Reader`, so Cartopy's
downloaders are never involved and no global Cartopy setting is changed. With no map data
found, maps are drawn without coastlines and a warning says so once per process (per set of
folders searched).
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

__all__ = ["MapData", "find_map_data", "ENV_VAR", "MissingMapDataWarning"]

ENV_VAR = "NOWCAST_MAP_DATA"
SYSTEM_DIRS = ("/usr/share/cartopy/data",)
_GSHHS_SCALES = ("l", "i", "c", "h", "f")  # preference for regional maps (fast first)
_NE_RES = ("50m", "10m", "110m")

LAND = "#efece4"

log = logging.getLogger(__name__)


class MissingMapDataWarning(UserWarning):
    """No coastline shapefiles were found; maps are drawn without them."""


@dataclass(frozen=True)
class MapData:
    """Shapefiles found for one map: coastline polygons, lakes and borders (each optional)."""

    coastlines: Path | None = None
    lakes: Path | None = None
    borders: Path | None = None
    searched: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.coastlines is None


def _candidate_dirs(map_data) -> list[Path]:
    if map_data is not None:
        return [Path(map_data).expanduser()]
    dirs: list[Path] = []
    env = os.environ.get(ENV_VAR)
    if env:
        dirs.append(Path(env).expanduser())
    try:
        # Cartopy costs start-up time: imported when a map is drawn
        import cartopy

        for key in ("pre_existing_data_dir", "data_dir"):
            value = cartopy.config.get(key)
            if value and str(value) not in ("", "."):
                dirs.append(Path(value))
    except ImportError:  # pragma: no cover - cartopy is a dependency
        pass
    dirs.extend(Path(d) for d in SYSTEM_DIRS)
    return dirs


def _first(dirs: list[Path], relpaths) -> Path | None:
    for d in dirs:
        for rel in relpaths:
            p = d / rel
            if p.is_file():
                return p
    return None


def find_map_data(map_data: str | os.PathLike | None = None, *, warn: bool = True) -> MapData:
    """Locate coastline/lake/border shapefiles (see module doc); warns once if none."""
    dirs = _candidate_dirs(map_data)
    coast = _first(dirs, [f"shapefiles/gshhs/{s}/GSHHS_{s}_L1.shp" for s in _GSHHS_SCALES])
    lakes = _first(dirs, [f"shapefiles/gshhs/{s}/GSHHS_{s}_L2.shp" for s in _GSHHS_SCALES])
    borders = _first(
        dirs,
        [
            f"shapefiles/natural_earth/cultural/ne_{r}_admin_0_boundary_lines_land.shp"
            for r in _NE_RES
        ]
        + [f"shapefiles/gshhs/{s}/WDBII_border_{s}_L1.shp" for s in _GSHHS_SCALES],
    )
    if coast is None:  # Natural Earth coastline as a second choice
        coast = _first(
            dirs, [f"shapefiles/natural_earth/physical/ne_{r}_coastline.shp" for r in _NE_RES]
        )
    found = MapData(coast, lakes, borders, tuple(str(d) for d in dirs))
    if found.empty and warn:
        _warn_once(found.searched)
    return found


@functools.lru_cache(maxsize=64)
def _warn_once(searched: tuple[str, ...]) -> None:
    message = (
        "no coastline shapefiles found (searched: " + ", ".join(searched or ("nothing",)) + "); "
        f"maps are drawn without coastlines. Point {ENV_VAR} or --map-data at a folder with "
        "shapefiles/gshhs/c/GSHHS_c_L1.shp."
    )
    log.warning(message)
    warnings.warn(message, MissingMapDataWarning, stacklevel=3)


@functools.lru_cache(maxsize=16)
def _geometries(path: str) -> tuple:
    """All geometries of one shapefile (read once per process)."""
    # Cartopy costs start-up time: imported when a map is drawn
    from cartopy.io.shapereader import Reader

    quiet = _DropShapeNotes()
    shp_log = logging.getLogger("shapefile")  # pyshp notes hole-only GSHHS rings as warnings
    shp_log.addFilter(quiet)
    reader = Reader(path)
    try:
        return tuple(g for g in reader.geometries() if g is not None and not g.is_empty)
    finally:
        shp_log.removeFilter(quiet)
        close = getattr(reader, "close", None)
        if close:
            close()


class _DropShapeNotes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Possible issue encountered when converting Shape")


@functools.lru_cache(maxsize=32)
def _clipped(path: str, bbox: tuple[float, float, float, float]) -> tuple:
    """The shapefile's geometries cut to a lon/lat box (drawing whole continents is slow)."""
    x0, y0, x1, y1 = bbox
    box = shapely.box(x0, y0, x1, y1)
    out = []
    for g in _geometries(path):
        if not g.intersects(box):
            continue
        c = shapely.clip_by_rect(g, x0, y0, x1, y1)
        if not c.is_empty:
            out.append(c)
    return tuple(out)


def lonlat_bbox(crs, extent, *, lonlat) -> tuple[float, float, float, float]:
    """A lon/lat box holding the map ``extent`` of ``crs`` with a margin (for clipping)."""
    x0, x1, y0, y1 = extent
    t = np.linspace(0.0, 1.0, 41)
    xs = np.concatenate(
        [x0 + (x1 - x0) * t, np.full_like(t, x1), x1 - (x1 - x0) * t, np.full_like(t, x0)]
    )
    ys = np.concatenate(
        [np.full_like(t, y0), y0 + (y1 - y0) * t, np.full_like(t, y1), y1 - (y1 - y0) * t]
    )
    pts = lonlat.transform_points(crs, xs, ys)
    ok = np.isfinite(pts[:, :2]).all(axis=1)
    if not ok.all():
        return (-180.0, -90.0, 180.0, 90.0)
    lon, lat = pts[:, 0], pts[:, 1]
    poles = crs.transform_points(lonlat, np.array([0.0, 0.0]), np.array([90.0, -90.0]))
    pad = max(1.0, 0.15 * max(np.ptp(lon), np.ptp(lat)))
    lo_lat, hi_lat = max(lat.min() - pad, -90.0), min(lat.max() + pad, 90.0)
    for (px, py), plat in zip(poles[:, :2], (90.0, -90.0)):
        if np.isfinite([px, py]).all() and x0 <= px <= x1 and y0 <= py <= y1:
            lo_lat, hi_lat = min(lo_lat, plat), max(hi_lat, plat)
            return (-180.0, lo_lat, 180.0, hi_lat)
    if np.ptp(lon) > 180:  # crosses the antimeridian: no clipping in longitude
        return (-180.0, lo_lat, 180.0, hi_lat)
    return (max(lon.min() - pad, -180.0), lo_lat, min(lon.max() + pad, 180.0), hi_lat)


def add_map_features(ax, found: MapData, *, lonlat, bbox=None, linewidth: float = 0.7) -> list[str]:
    """Draw what ``found`` holds on a GeoAxes (geometries cut to ``bbox``); returns layer names."""
    # Cartopy costs start-up time: imported when a map is drawn
    from cartopy.feature import ShapelyFeature

    def geoms(path):
        return _clipped(str(path), tuple(bbox)) if bbox is not None else _geometries(str(path))

    drawn = []
    if found.coastlines is not None:  # land tint under the data, so sea and land differ
        land = ShapelyFeature(geoms(found.coastlines), lonlat, facecolor=LAND, edgecolor="none")
        ax.add_feature(land, zorder=0)
    if found.lakes is not None:
        ax.add_feature(
            ShapelyFeature(geoms(found.lakes), lonlat, facecolor="white", edgecolor="none"),
            zorder=0.5,
        )
    layers = (
        ("coastlines", found.coastlines, {"edgecolor": "0.1", "linewidth": linewidth}),
        ("lakes", found.lakes, {"edgecolor": "0.35", "linewidth": linewidth * 0.5}),
        (
            "borders",
            found.borders,
            {"edgecolor": "0.2", "linewidth": linewidth * 0.8, "linestyle": (0, (4, 2))},
        ),
    )
    for name, path, style in layers:
        if path is None:
            continue
        feature = ShapelyFeature(geoms(path), lonlat, facecolor="none", **style)
        ax.add_feature(feature, zorder=3)
        drawn.append(name)
    return drawn
