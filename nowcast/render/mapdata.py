"""Coastlines, lakes and country borders for maps, from local shapefiles (offline by default).

Map data is a folder laid out like Cartopy's ``pre_existing_data_dir``:
``shapefiles/natural_earth/physical/ne_<res>_coastline.shp`` and ``ne_<res>_lakes.shp``,
``shapefiles/natural_earth/cultural/ne_<res>_admin_0_boundary_lines_land.shp`` (Natural Earth,
``res`` = 10m, 50m, 110m), and ``shapefiles/gshhs/<scale>/GSHHS_<scale>_L1.shp`` / ``_L2``
(GSHHS). It is looked for in, in order: the ``map_data`` argument (only there, when given;
a :class:`~nowcast.errors.DataError` when it holds no coastlines), the ``NOWCAST_MAP_DATA``
environment variable, the cache folder :func:`cache_dir` (filled by ``nowcast mapdata``,
:mod:`nowcast.render.mapfetch`), Cartopy's ``pre_existing_data_dir`` and ``data_dir``, and
``/usr/share/cartopy/data``.

Natural Earth is drawn at a resolution chosen from the map's size (:func:`ne_resolution`:
10m up to about 3000 km across, 50m up to 10000 km, else 110m; a missing resolution is
replaced by a finer one, else a coarser one); without Natural Earth coastlines the GSHHS
set is the fallback. Shapefiles are read directly with
:class:`cartopy.io.shapereader.Reader`: Cartopy's downloaders are never involved unless the
caller passes ``download=True`` (then Cartopy fetches missing Natural Earth layers into its
``data_dir``, the one case that uses the network). With no map data found in the implicit
places, maps are drawn without coastlines and a warning says so once per process (per set of
folders searched).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from nowcast.errors import DataError

__all__ = ["MapData", "find_map_data", "ne_resolution", "ENV_VAR", "MissingMapDataWarning"]

ENV_VAR = "NOWCAST_MAP_DATA"
SYSTEM_DIRS = ("/usr/share/cartopy/data",)
NE_RESOLUTIONS = ("10m", "50m", "110m")  # finest first
_GSHHS_SCALES = ("f", "h", "i", "l", "c")  # finest first
_NE = {
    "coastlines": ("physical", "coastline"),
    "lakes": ("physical", "lakes"),
    "borders": ("cultural", "admin_0_boundary_lines_land"),
}

LAND = "#efece4"


class MissingMapDataWarning(UserWarning):
    """No coastline shapefiles were found; maps are drawn without them."""


@dataclass(frozen=True)
class MapData:
    """Shapefiles found for one map (each optional).

    ``coastlines`` are lines (Natural Earth) or land polygons (GSHHS; then ``land`` is the
    same file and tints the land); ``lakes`` polygons; ``borders`` lines. ``source`` names
    the data set and resolution, ``folder`` where it was found.
    """

    coastlines: Path | None = None
    lakes: Path | None = None
    borders: Path | None = None
    land: Path | None = None
    source: str = ""
    folder: str = ""
    searched: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.coastlines is None

    def describe(self) -> str:
        """One line saying what maps will show, e.g. for a command's output."""
        if self.empty:
            searched = ", ".join(self.searched) or "nothing"
            return (
                f"map data: none found (searched: {searched}); maps are drawn without "
                f"coastlines (run `nowcast mapdata` once, or point {ENV_VAR} or --map-data at "
                "a map-data folder)"
            )
        layers = [
            n for n, p in (("coastlines", 1), ("lakes", self.lakes), ("borders", self.borders)) if p
        ]
        where = f" ({self.folder})" if self.folder else ""
        return f"map data: {', '.join(layers)} from {self.source}{where}"


def ne_resolution(bbox) -> str:
    """The Natural Earth resolution for a map covering the lon/lat ``bbox`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = (float(v) for v in bbox)
    mid = math.radians((y0 + y1) / 2)
    span_km = 111.2 * max(y1 - y0, (x1 - x0) * max(math.cos(mid), 0.05))
    if span_km <= 3000:
        return "10m"
    return "50m" if span_km <= 10000 else "110m"


def cache_dir() -> Path:
    """Where ``nowcast mapdata`` puts the layers and maps look for them:
    ``$XDG_CACHE_HOME/nowcast/maps`` (or ``~/.cache/nowcast/maps``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nowcast" / "maps"


def _candidate_dirs(map_data) -> list[Path]:
    if map_data is not None:
        return [Path(map_data).expanduser()]
    dirs: list[Path] = []
    env = os.environ.get(ENV_VAR)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(cache_dir())
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


def _ne_path(folder: Path, layer: str, res: str) -> Path:
    category, name = _NE[layer]
    return folder / "shapefiles" / "natural_earth" / category / f"ne_{res}_{name}.shp"


def _by_preference(res: str) -> list[str]:
    """``res`` first, then finer resolutions (nearest first), then coarser ones."""
    i = NE_RESOLUTIONS.index(res)
    return [res, *NE_RESOLUTIONS[:i][::-1], *NE_RESOLUTIONS[i + 1 :]]


def _natural_earth(dirs: list[Path], res: str) -> MapData | None:
    for r in _by_preference(res):
        for d in dirs:
            coast = _ne_path(d, "coastlines", r)
            if coast.is_file():
                lakes, borders = (_ne_path(d, k, r) for k in ("lakes", "borders"))
                return MapData(
                    coast,
                    lakes if lakes.is_file() else None,
                    borders if borders.is_file() else None,
                    source=f"Natural Earth {r}",
                    folder=str(d),
                )
    return None


def _download(res: str) -> MapData:
    # Cartopy costs start-up time: imported when a map is drawn
    from cartopy.io.shapereader import natural_earth

    paths = {}
    for layer, (category, name) in _NE.items():
        paths[layer] = Path(natural_earth(resolution=res, category=category, name=name))
    return MapData(
        paths["coastlines"],
        paths["lakes"],
        paths["borders"],
        source=f"Natural Earth {res} (downloaded by Cartopy)",
        folder=str(paths["coastlines"].parents[2]),
    )


def _gshhs(dirs: list[Path]) -> MapData | None:
    for d in dirs:
        for s in _GSHHS_SCALES:
            coast = d / f"shapefiles/gshhs/{s}/GSHHS_{s}_L1.shp"
            if not coast.is_file():
                continue
            lakes = next(
                (
                    p
                    for t in _GSHHS_SCALES
                    if (p := d / f"shapefiles/gshhs/{t}/GSHHS_{t}_L2.shp").is_file()
                ),
                None,
            )
            borders = next(
                (p for r in NE_RESOLUTIONS if (p := _ne_path(d, "borders", r)).is_file()), None
            )
            return MapData(coast, lakes, borders, land=coast, source=f"GSHHS ({s})", folder=str(d))
    return None


def find_map_data(
    map_data: str | os.PathLike | None = None,
    *,
    bbox=None,
    resolution: str | None = None,
    download: bool = False,
    warn: bool = True,
) -> MapData:
    """Locate the map layers for a map of lon/lat ``bbox`` (see the module doc).

    ``resolution``: a Natural Earth resolution instead of the one :func:`ne_resolution`
    picks (50m without a ``bbox``). ``download``: let Cartopy download the Natural Earth
    layers when no folder has them (network). Warns once when nothing is found.
    """
    res = resolution or (ne_resolution(bbox) if bbox is not None else "50m")
    if res not in NE_RESOLUTIONS:
        raise ValueError(f"resolution must be one of {', '.join(NE_RESOLUTIONS)}, not {res!r}")
    dirs = _candidate_dirs(map_data)
    searched = tuple(str(d) for d in dirs)
    found = _natural_earth(dirs, res)
    if found is None and download:
        found = _download(res)
    if found is None:
        found = _gshhs(dirs)
    if found is None and map_data is not None:  # a folder given explicitly must hold map data
        folder = dirs[0]
        state = "is not a folder" if not folder.is_dir() else "holds no coastline shapefiles"
        raise DataError(
            f"map data {folder} {state} (expected shapefiles/natural_earth/physical/"
            "ne_<res>_coastline.shp or shapefiles/gshhs/<scale>/GSHHS_<scale>_L1.shp)"
        )
    if found is None:
        if warn:
            _warn_once(searched)
        return MapData(searched=searched)
    return MapData(**{**found.__dict__, "searched": searched})


@functools.lru_cache(maxsize=64)
def _warn_once(searched: tuple[str, ...]) -> None:
    message = (
        "no coastline shapefiles found (searched: " + ", ".join(searched or ("nothing",)) + "); "
        "maps are drawn without coastlines. Run `nowcast mapdata` once (it fetches them, or "
        f"copies them from a folder), or point {ENV_VAR} or --map-data at a folder with "
        "shapefiles/natural_earth/physical/ne_10m_coastline.shp (or GSHHS)."
    )
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
    """Draw what ``found`` holds on a GeoAxes (geometries cut to ``bbox``); returns layer names.

    A land tint under the data only with land polygons (GSHHS); lakes as water-coloured
    outlines (Natural Earth) or filled with the sea's white over the tint (GSHHS).
    """
    # Cartopy costs start-up time: imported when a map is drawn
    from cartopy.feature import ShapelyFeature

    def geoms(path):
        return _clipped(str(path), tuple(bbox)) if bbox is not None else _geometries(str(path))

    drawn = []
    if found.land is not None:  # land tint under the data, so sea and land differ
        land = ShapelyFeature(geoms(found.land), lonlat, facecolor=LAND, edgecolor="none")
        ax.add_feature(land, zorder=0)
        if found.lakes is not None:
            lakes = ShapelyFeature(geoms(found.lakes), lonlat, facecolor="white", edgecolor="none")
            ax.add_feature(lakes, zorder=0.5)
    layers = (
        ("coastlines", found.coastlines, {"edgecolor": "0.1", "linewidth": linewidth}),
        ("lakes", found.lakes, {"edgecolor": "#2b5d8a", "linewidth": linewidth * 0.6}),
        (
            "borders",
            found.borders,
            {"edgecolor": "0.15", "linewidth": linewidth * 0.8, "linestyle": (0, (4, 2))},
        ),
    )
    for name, path, style in layers:
        if path is None or (name == "lakes" and found.land is not None):
            continue
        feature = ShapelyFeature(geoms(path), lonlat, facecolor="none", **style)
        ax.add_feature(feature, zorder=3)
        drawn.append(name)
    return drawn
