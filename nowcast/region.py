"""Regions: the part of a grid a forecast is made for (``predict --region``, a batch's
``region``).

A region is a box ``WEST,SOUTH,EAST,NORTH``: in longitude/latitude (degrees, WGS 84; the
default), or in the grid's own coordinates with their units after the last number
(``X0,Y0,X1,Y1m`` or ``...km``; converted to the grid's units). The region's pixels are
those whose cell centres lie in the box (for a longitude/latitude box on a projected grid:
in the grid rectangle that holds the box's outline). A box partly outside the grid is cut
to it; one that misses the grid, holds no cell centre, is empty or inverted, or reads as
impossible longitudes/latitudes (grid coordinates without their units) is a one-line error.

The forecast reads more than the region (:func:`region_window`): the region grown on every
side by the distance rain can travel in the forecast's span (the input frames and the
leads) at :data:`MAX_SPEED_KMH`, at least :data:`MIN_MARGIN_PIXELS`, plus what the method
asks for itself (a network's receptive field). The optical flow is estimated, and the
forecast made, on that context; the file holds the region.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj

from nowcast.errors import NowcastError
from nowcast.geo import grid_crs, is_geographic, xy_scale

#: Fastest motion a region's context allows for (km/h): rain systems rarely move faster.
MAX_SPEED_KMH = 100.0
#: The least context around a region (pixels): the optical flow's windows need that much.
MIN_MARGIN_PIXELS = 32

_UNITS = {"": "degrees", "deg": "degrees", "degrees": "degrees", "m": "m", "km": "km"}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class Region:
    """A box ``west, south, east, north`` in ``units``: ``degrees`` (longitude/latitude) or
    ``m``/``km`` (the grid's own coordinates); ``text``: as the user gave it."""

    west: float
    south: float
    east: float
    north: float
    units: str
    text: str

    @property
    def geographic(self) -> bool:
        return self.units == "degrees"

    def describe(self) -> str:
        what = "longitude/latitude" if self.geographic else f"grid coordinates in {self.units}"
        return f"{self.text} ({what})"


def parse_region(text: Any, option: str = "--region") -> Region:
    """``"W,S,E,N"`` (degrees) or ``"X0,Y0,X1,Y1km"`` (``m``/``km``) as a :class:`Region`."""
    raw = str(text).strip()
    match = re.fullmatch(
        rf"\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*([a-zA-Z]*)\s*",
        raw,
    )
    if match is None:
        raise NowcastError(
            f"{option} {raw!r}: give WEST,SOUTH,EAST,NORTH in degrees (e.g. 5.9,45.8,10.5,47.8) "
            "or in the grid's coordinates with their units (e.g. 480,75,840,300km)"
        )
    w, s, e, n = (float(v) for v in match.groups()[:4])
    unit = match.group(5).lower()
    if unit not in _UNITS:
        raise NowcastError(
            f"{option} {raw!r}: unknown units {match.group(5)!r} (none or deg for "
            "longitude/latitude, m or km for the grid's coordinates)"
        )
    units = _UNITS[unit]
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise NowcastError(f"{option} {raw!r}: the bounds must be finite numbers")
    if w == e or s == n:
        raise NowcastError(f"{option} {raw!r} is empty (WEST = EAST or SOUTH = NORTH)")
    if w > e or s > n:
        raise NowcastError(
            f"{option} {raw!r} is inverted: give WEST,SOUTH,EAST,NORTH with WEST < EAST and "
            "SOUTH < NORTH"
        )
    if units == "degrees" and not (-180 <= w and e <= 360 and -90 <= s and n <= 90):
        raise NowcastError(
            f"{option} {raw!r}: longitudes must be in -180..360 and latitudes in -90..90; "
            f"for the grid's own coordinates add their units (e.g. {w:g},{s:g},{e:g},{n:g}m)"
        )
    return Region(w, s, e, n, units, raw)


@dataclass(frozen=True)
class Window:
    """Where a region lies in a grid: ``region`` and ``context`` (the pixels the forecast
    reads) as ``(y, x)`` index slices; ``inner`` is the region within the context."""

    region: tuple[slice, slice]
    context: tuple[slice, slice]

    @property
    def inner(self) -> tuple[slice, slice]:
        return tuple(
            slice(r.start - c.start, r.stop - c.start) for r, c in zip(self.region, self.context)
        )

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(s.stop - s.start for s in self.region)


def _grid_box(region: Region, gm_attrs: Mapping[str, Any] | None, units: Any):
    """The region as ``(x0, x1, y0, y1)`` in the grid's coordinate units."""
    geographic_grid = bool(gm_attrs) and is_geographic(gm_attrs)
    if not region.geographic:
        if geographic_grid:
            raise NowcastError(
                f"region {region.text!r} is in {region.units}, but the grid's coordinates are "
                "longitude/latitude: give the region in degrees (no units)"
            )
        scale = {"m": 1.0, "km": 1000.0}[region.units] / xy_scale(units)
        return region.west * scale, region.east * scale, region.south * scale, region.north * scale
    if geographic_grid:
        return region.west, region.east, region.south, region.north
    if not gm_attrs:
        raise NowcastError(
            f"region {region.text!r} is in longitude/latitude, but the grid has no grid mapping: "
            "give it in the grid's coordinates with their units (e.g. ...km)"
        )
    # the box's outline (64 points a side) in the grid's coordinates
    t = np.linspace(0.0, 1.0, 64)
    w, e, s, n = region.west, region.east, region.south, region.north
    lon = np.concatenate([w + (e - w) * t, np.full(64, e), e - (e - w) * t, np.full(64, w)])
    lat = np.concatenate([np.full(64, s), s + (n - s) * t, np.full(64, n), n - (n - s) * t])
    tr = pyproj.Transformer.from_crs("EPSG:4326", grid_crs(gm_attrs), always_xy=True)
    x, y = tr.transform(lon, lat)
    x, y = np.asarray(x) / xy_scale(units), np.asarray(y) / xy_scale(units)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        raise NowcastError(f"region {region.text!r} cannot be placed on the grid's projection")
    return x[ok].min(), x[ok].max(), y[ok].min(), y[ok].max()


def _span(values: np.ndarray, lo: float, hi: float) -> slice | None:
    inside = np.flatnonzero((values >= lo) & (values <= hi))
    return slice(int(inside[0]), int(inside[-1]) + 1) if inside.size else None


def region_pixels(
    region: Region, x, y, *, gm_attrs: Mapping[str, Any] | None, units: Any = "m"
) -> tuple[slice, slice]:
    """The ``(y, x)`` index slices of the region's pixels on a grid with cell centres ``x``,
    ``y`` (in ``units``) and grid mapping ``gm_attrs``; one-line errors (module doc)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    x0, x1, y0, y1 = _grid_box(region, gm_attrs, units)
    xs, ys = _span(x, x0, x1), _span(y, y0, y1)
    if xs is not None and ys is not None:
        return ys, xs
    gx = f"{np.min(x):g}..{np.max(x):g}"
    gy = f"{np.min(y):g}..{np.max(y):g}"
    unit = str(units or "m")
    overlaps = x0 <= np.max(x) and x1 >= np.min(x) and y0 <= np.max(y) and y1 >= np.min(y)
    if overlaps:
        raise NowcastError(
            f"region {region.describe()} holds no grid cell centre (the grid's spacing is "
            f"{abs(np.median(np.diff(x))):g} {unit}): make it larger"
        )
    hint = ""
    if not region.geographic:
        for factor, other in ((1000.0, "km"), (0.001, "m")):
            if other != region.units:
                a, b = x0 * factor, x1 * factor
                if a <= np.max(x) and b >= np.min(x):
                    hint = f" (are its numbers in {other}?)"
    raise NowcastError(
        f"region {region.describe()} is outside the grid, which covers x {gx} and y {gy} "
        f"{unit} ({x0:g}..{x1:g}, {y0:g}..{y1:g} asked){hint}"
    )


def margin_pixels(spacing_m: float, hours: float, extra: int = 0) -> int:
    """The context around a region (pixels of ``spacing_m`` metres): what moves at
    :data:`MAX_SPEED_KMH` in ``hours``, at least :data:`MIN_MARGIN_PIXELS`, plus ``extra``."""
    travel = math.ceil(MAX_SPEED_KMH * 1000.0 * max(hours, 0.0) / max(spacing_m, 1e-9))
    return max(travel, MIN_MARGIN_PIXELS) + int(extra)


def region_window(
    region: Region,
    x,
    y,
    *,
    gm_attrs: Mapping[str, Any] | None,
    units: Any = "m",
    margin: int,
) -> Window:
    """The region's pixels and its context, ``margin`` pixels more on every side (cut to the
    grid)."""
    ys, xs = region_pixels(region, x, y, gm_attrs=gm_attrs, units=units)
    ny, nx = len(np.atleast_1d(y)), len(np.atleast_1d(x))
    context = (
        slice(max(0, ys.start - margin), min(ny, ys.stop + margin)),
        slice(max(0, xs.start - margin), min(nx, xs.stop + margin)),
    )
    return Window((ys, xs), context)
