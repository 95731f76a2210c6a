"""Station series in memory (:class:`Series`), taken from gridded archives, and their windows.

A :class:`Series` is one or more stations' values of one variable on one time axis:
``values (station, time)`` float32 (NaN = missing), ``times`` strictly increasing (UTC),
each station with a name and a latitude/longitude (NaN when a file does not give them).
:func:`make_series` builds and checks one (a one-line :class:`~nowcast.errors.DataError`
for times out of order or given twice, values that are not numbers, missing units);
:func:`series_at_points` reads a gridded archive at points (the nearest pixel),
:func:`all_points` at every pixel. Station files are :mod:`nowcast.series.readers`.

Windows (:func:`window_starts`) are slid inside the runs of the time axis that hold no
gap (:func:`nowcast.archive.timeaxis.contiguous_segments`: any difference that is not the
regular step, longer or shorter, breaks a run) and, with labels, inside one split, so a
window never joins two sides of a gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.archive.timeaxis import contiguous_segments, time_step
from nowcast.conventions import TIME, X, Y
from nowcast.errors import DataError, NowcastError
from nowcast.geo import is_geographic, lonlat_grid, to_grid_xy

__all__ = [
    "Series",
    "all_points",
    "make_series",
    "series_at_points",
    "valid_windows",
    "window_starts",
]


@dataclass(frozen=True)
class Series:
    """Stations' values of one variable: ``values (station, time)`` float32, NaN missing."""

    values: np.ndarray
    times: pd.DatetimeIndex
    names: tuple[str, ...]
    latitude: np.ndarray
    longitude: np.ndarray
    variable: str
    units: str
    attrs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_stations(self) -> int:
        return int(self.values.shape[0])

    @property
    def step(self) -> pd.Timedelta:
        """The regular time step (the most common difference)."""
        return time_step(self.times)

    def stations(self, index) -> Series:
        """The stations at ``index`` (an integer array or slice)."""
        idx = np.arange(self.n_stations)[index]
        return replace(
            self,
            values=self.values[idx],
            names=tuple(self.names[i] for i in idx),
            latitude=self.latitude[idx],
            longitude=self.longitude[idx],
        )

    def until(self, end) -> Series:
        """The series up to ``end`` (inclusive)."""
        keep = self.times <= pd.Timestamp(end)
        return replace(self, values=self.values[:, keep], times=self.times[keep])


def make_series(
    values,
    times,
    *,
    names: Sequence[str],
    variable: str,
    units: str | None,
    latitude=None,
    longitude=None,
    attrs: Mapping[str, Any] | None = None,
    source: str = "series",
) -> Series:
    """A checked :class:`Series`; ``source`` names the input in the one-line errors."""
    if not units or not str(units).strip():
        raise DataError(
            f"{source}: the units of {variable!r} are missing (name them, e.g. a CSV header "
            "'time,t2m (K)', or --units K)"
        )
    try:
        data = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{source}: the values of {variable!r} are not numbers") from None
    data = np.atleast_2d(data)
    times = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]"))
    if data.shape != (len(names), len(times)):
        raise DataError(
            f"{source}: {data.shape} values for {len(names)} station(s) and {len(times)} times"
        )
    if times.hasnans:
        raise DataError(f"{source}: a time is missing (NaT)")
    check_times(times, source)
    if np.isinf(data).any():
        raise DataError(f"{source}: {variable!r} holds infinite values")
    n = len(names)
    lat = np.full(n, np.nan) if latitude is None else np.asarray(latitude, dtype=np.float64)
    lon = np.full(n, np.nan) if longitude is None else np.asarray(longitude, dtype=np.float64)
    if len(set(names)) != n:
        raise DataError(f"{source}: a station name is given twice")
    return Series(
        data,
        times,
        tuple(str(s) for s in names),
        lat,
        lon,
        str(variable),
        str(units).strip(),
        dict(attrs or {}),
    )


def check_times(times: pd.DatetimeIndex, source: str) -> None:
    """Strictly increasing times, else one line naming the first offending time."""
    if len(times) < 2:
        raise DataError(f"{source}: {len(times)} time(s); a series needs at least 2")
    diffs = np.diff(times.values)
    bad = np.flatnonzero(diffs <= np.timedelta64(0, "ns"))
    if bad.size:
        i = int(bad[0])
        if diffs[i] == np.timedelta64(0, "ns"):
            raise DataError(f"{source}: time {times[i]:%Y-%m-%dT%H:%M} is given twice")
        raise DataError(
            f"{source}: times are not in order ({times[i + 1]:%Y-%m-%dT%H:%M} comes after "
            f"{times[i]:%Y-%m-%dT%H:%M})"
        )


# --------------------------------------------------------------------------- from grids


def _grid_mapping(da: xr.DataArray) -> dict[str, Any]:
    gm = da.attrs.get("grid_mapping")
    if not gm or gm not in da.coords:
        raise DataError(f"{da.name or 'data'}: no grid mapping; cannot place points on it")
    return dict(da.coords[gm].attrs)


def grid_index(da: xr.DataArray, lat: float, lon: float, name: str) -> tuple[int, int]:
    """``(iy, ix)`` of the pixel nearest to ``lat, lon``; a point outside the grid (more than
    half a pixel beyond its outer cells) is a :class:`NowcastError` naming it."""
    gm = _grid_mapping(da)
    x, y = to_grid_xy(gm, lon, lat, units=da[X].attrs.get("units"))
    xs, ys = np.asarray(da[X].values, float), np.asarray(da[Y].values, float)
    if is_geographic(gm) and xs.max() > 180 and x < 0:
        x += 360.0
    out = []
    for value, coord in ((y, ys), (x, xs)):
        step = abs(coord[1] - coord[0]) if len(coord) > 1 else 1.0
        if not (coord.min() - step / 2 <= value <= coord.max() + step / 2):
            where = name if "°" in name else f"{name} ({lat:.4g}, {lon:.4g})"  # once
            raise NowcastError(f"point {where} is outside the grid of {da.name or 'the archive'}")
        out.append(int(np.argmin(np.abs(coord - value))))
    return out[0], out[1]


def _from_grid(da: xr.DataArray, iy, ix, names, lat, lon, source: str) -> Series:
    da = da.transpose(TIME, Y, X)
    block = np.asarray(da.values, dtype=np.float32)  # one read of the whole archive
    values = block[:, np.asarray(iy), np.asarray(ix)].T
    attrs = {k: da.attrs[k] for k in ("long_name", "standard_name", "attribution") if k in da.attrs}
    return make_series(
        values,
        da[TIME].values,
        names=names,
        variable=str(da.name),
        units=da.attrs.get("units"),
        latitude=lat,
        longitude=lon,
        attrs=attrs,
        source=source,
    )


def series_at_points(
    da: xr.DataArray, points: Sequence[tuple[str, float, float]], *, source: str = "archive"
) -> Series:
    """The archive's values at each ``(name, lat, lon)`` point (the nearest pixel)."""
    if not points:
        raise NowcastError("no points given")
    where = [grid_index(da, lat, lon, name) for name, lat, lon in points]
    names = [p[0] for p in points]
    if len(set(names)) != len(names):
        raise NowcastError("a point is given twice")
    return _from_grid(
        da,
        [w[0] for w in where],
        [w[1] for w in where],
        names,
        [p[1] for p in points],
        [p[2] for p in points],
        source,
    )


def all_points(da: xr.DataArray, *, source: str = "archive") -> Series:
    """Every pixel of the archive as a station (named ``y{iy}x{ix}``, at its centre)."""
    gm = _grid_mapping(da)
    ny, nx = da.sizes[Y], da.sizes[X]
    iy, ix = (a.ravel() for a in np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij"))
    if is_geographic(gm):
        xx, yy = np.meshgrid(da[X].values, da[Y].values)
        lon, lat = xx.ravel(), yy.ravel()
    else:
        lon2, lat2 = lonlat_grid(gm, da[X].values, da[Y].values, units=da[X].attrs.get("units"))
        lon, lat = lon2.ravel(), lat2.ravel()
    names = [f"y{a}x{b}" for a, b in zip(iy, ix)]
    return _from_grid(da, iy, ix, names, lat, lon, source)


# --------------------------------------------------------------------------- windows


def window_starts(times, length: int, *, labels=None, step=None, stride: int = 1) -> np.ndarray:
    """Start indices of the windows of ``length`` consecutive times without a gap (and, with
    ``labels`` per time, within one label), every ``stride`` times within a run."""
    times = pd.DatetimeIndex(times)
    if len(times) < length:
        return np.zeros(0, dtype=np.int64)
    runs = contiguous_segments(times, step=step) if len(times) > 1 else [slice(0, len(times))]
    starts = []
    for run in runs:
        if labels is None:
            pieces = [run]
        else:
            lab = np.asarray(labels)[run]
            cuts = [0, *(np.flatnonzero(np.diff(lab)) + 1), len(lab)]
            pieces = [slice(run.start + a, run.start + b) for a, b in zip(cuts[:-1], cuts[1:])]
        for piece in pieces:
            n = piece.stop - piece.start - length + 1
            if n > 0:
                starts.append(np.arange(piece.start, piece.start + n, stride))
    return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)


def valid_windows(values: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """``(n, 2)`` rows ``(station, start)`` of the windows whose values are all finite."""
    finite = np.isfinite(values)
    csum = np.concatenate([np.zeros((len(values), 1), np.int64), finite.cumsum(axis=1)], axis=1)
    if starts.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    full = (csum[:, starts + length] - csum[:, starts]) == length  # (station, start)
    station, k = np.nonzero(full)
    return np.stack([station, starts[k]], axis=1).astype(np.int64)
