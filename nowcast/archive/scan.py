"""Per-file metadata scan and block reads with ``netCDF4`` (used by :mod:`nowcast.archive.reader`).

:func:`scan_file` reads only coordinates, times and attributes; :func:`read_block` reads a
few frames of the data variable, decoded (scale/offset applied, fill values as NaN), as
float32 ``(time, y, x)`` in the file's own y/x order. :func:`scan_opened` runs the same scan
over any object with the ``netCDF4.Dataset`` interface (Zarr stores and URLs, through
:class:`nowcast.archive.sources.NetCDFView`).
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pandas as pd
from xarray.backends.locks import HDF5_LOCK, NETCDFC_LOCK, combine_locks
from xarray.coding.times import decode_cf_datetime

from nowcast.archive import cf
from nowcast.errors import DataError, one_line
from nowcast.geo import metres_per_unit

_ERRORS = (OSError, RuntimeError, ValueError, KeyError, IndexError, TypeError)


def netcdf_lock():
    """The lock xarray uses around netCDF-C/HDF5 calls (the libraries are not thread-safe)."""
    return combine_locks([NETCDFC_LOCK, HDF5_LOCK])


@dataclass(frozen=True, eq=False)
class FileInfo:
    """What :func:`scan_file` learnt about one file (coordinates already normalised)."""

    path: Path | str  # a local file or Zarr store, or a URL
    variable: str
    ndim: int
    time_axis: int | None  # None: scalar time, one frame
    y_axis: int
    x_axis: int
    times: np.ndarray  # datetime64[ns], file order
    periods: np.ndarray  # timedelta64[ns] accumulation period per frame, NaT if unknown
    y: np.ndarray  # ascending, metres (degrees for lat/lon)
    x: np.ndarray
    flip_y: bool
    flip_x: bool
    y_attrs: dict[str, Any] = field(default_factory=dict)
    x_attrs: dict[str, Any] = field(default_factory=dict)
    var_attrs: dict[str, Any] = field(default_factory=dict)
    global_attrs: dict[str, Any] = field(default_factory=dict)
    grid_mapping_name: str | None = None
    grid_mapping_attrs: dict[str, Any] | None = None


def _attrs(obj) -> dict[str, Any]:
    return {k: obj.getncattr(k) for k in obj.ncattrs()}


def scan_file(path: Path, variable: str | None = None) -> FileInfo:
    """Read one file's metadata; :class:`DataError` (naming the file) if it cannot be used."""
    with netcdf_lock():
        try:
            ds = netCDF4.Dataset(str(path), "r")
        except _ERRORS as exc:
            raise DataError(
                f"{path}: not a readable NetCDF file ({one_line(exc, typed=False)})"
            ) from None
        try:
            _check_classic_size(ds, Path(path))
            return _scan(ds, Path(path), variable)
        except DataError:
            raise
        except _ERRORS as exc:
            raise DataError(
                f"{path}: cannot read metadata ({one_line(exc, typed=False)})"
            ) from None
        finally:
            ds.close()


def _check_classic_size(ds, path: Path) -> None:
    """A NetCDF-3 file shorter than its header's variables is truncated (netCDF-C reads the
    missing data as fill values, which would pass for a bad grid)."""
    if not str(getattr(ds, "file_format", "")).startswith("NETCDF3"):
        return
    needed = 0
    for var in ds.variables.values():
        size = int(np.prod(var.shape, dtype=np.int64)) * var.dtype.itemsize
        needed += size + (-size % 4)  # each variable's data is padded to 4 bytes
    actual = os.path.getsize(path)
    if actual < needed:
        raise DataError(
            f"{path}: truncated or unreadable NetCDF-3 file ({actual} bytes; its header "
            f"describes at least {needed} bytes of data)"
        )


def scan_opened(ds, path, variable: str | None = None) -> FileInfo:
    """Like :func:`scan_file` for an open dataset with the ``netCDF4.Dataset`` interface.

    Used for Zarr stores and URLs through :class:`nowcast.archive.sources.NetCDFView`, so every
    format goes through the same normalisation. ``path`` only names the source in messages.
    """
    try:
        return _scan(ds, path, variable)
    except DataError:
        raise
    except _ERRORS as exc:
        raise DataError(f"{path}: cannot read metadata ({one_line(exc, typed=False)})") from None


def _dim_axis(ds, dim: str) -> str | None:
    v = ds.variables.get(dim)
    if v is not None and v.dimensions == (dim,):
        return cf.axis_of(dim, _attrs(v))
    return cf.axis_of(dim, {})


def _choose_variable(ds, path, variable: str | None) -> str:
    names = list(ds.variables)
    listing = ", ".join(names) if names else "none"
    if variable is not None:
        if variable not in ds.variables:
            raise DataError(f"{path}: no variable {variable!r}; variables: {listing}")
        axes = [_dim_axis(ds, d) for d in ds.variables[variable].dimensions]
        if axes.count("Y") != 1 or axes.count("X") != 1:
            dims = ds.variables[variable].dimensions
            raise DataError(f"{path}: variable {variable!r} has dims {dims}, not (time, y, x)")
        return variable
    skip = set()
    for v in ds.variables.values():
        a = _attrs(v)
        if "bounds" in a:
            skip.add(str(a["bounds"]))
        if "grid_mapping_name" in a:
            skip.add(v.name)
        gm = cf.grid_mapping_name_of(a)
        if gm:
            skip.add(gm)
    candidates = []
    extra = []  # (time, y, x) variables but for another dimension longer than 1
    for name, v in ds.variables.items():
        if v.ndim < 2 or v.dimensions == (name,) or name in skip:
            continue
        axes = [_dim_axis(ds, d) for d in v.dimensions]
        if axes.count("Y") == 1 and axes.count("X") == 1 and axes.count("T") <= 1:
            longer = [
                (d, n)
                for d, a, n in zip(v.dimensions, axes, v.shape)
                if a not in ("T", "Y", "X") and n != 1
            ]
            if not longer:
                candidates.append(name)
            else:
                extra.append((name, longer))
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise DataError(
            f"{path}: several data variables ({', '.join(candidates)}); choose one with variable"
        )
    if len(extra) == 1:
        name, longer = extra[0]
        listed = ", ".join(f"{d!r} of size {n}" for d, n in longer)
        first = longer[0][0]
        raise DataError(
            f"{path}: variable {name!r} has an extra dimension {listed} besides (time, y, x): "
            f"select one {first} first (e.g. with xarray: ds.isel({first}=0))"
        )
    raise DataError(f"{path}: no (time, y, x) data variable; variables: {listing}")


_UNIT_NS = {
    "nanosecond": 1,
    "microsecond": 1_000,
    "millisecond": 1_000_000,
    "second": 1_000_000_000,
    "sec": 1_000_000_000,
    "minute": 60_000_000_000,
    "min": 60_000_000_000,
    "hour": 3_600_000_000_000,
    "hr": 3_600_000_000_000,
    "day": 86_400_000_000_000,
}


@functools.lru_cache(maxsize=64)
def _time_origin(units: str, calendar: str):
    """``(nanoseconds per unit, origin datetime64[ns])`` for simple Gregorian units, else None.

    A fast path for the common case (many files, one scalar time each); anything unusual
    goes through xarray's decoder instead.
    """
    if calendar.lower() not in ("standard", "gregorian", "proleptic_gregorian"):
        return None
    unit, _, date = units.partition(" since ")
    unit = unit.strip().lower()
    ns = _UNIT_NS.get(unit[:-1] if unit.endswith("s") else unit)
    if ns is None:
        return None
    try:
        origin = pd.Timestamp(date.strip())
    except (ValueError, TypeError):
        return None
    if origin.tzinfo is not None:
        origin = origin.tz_convert(None)
    if origin.year < 1583:  # Julian/Gregorian switch: leave it to the full decoder
        return None
    return ns, origin.as_unit("ns").to_datetime64()


def _decode_times(var, values=None) -> np.ndarray:
    raw = var[...] if values is None else values
    if np.ma.is_masked(raw):
        raise DataError(f"missing values in time variable {var.name!r}")
    num = np.atleast_1d(np.ma.getdata(raw))
    units = getattr(var, "units", None)
    if not cf.is_time_units(units):
        raise DataError(f"time variable {var.name!r} has units {units!r}, not 'UNIT since DATE'")
    calendar = getattr(var, "calendar", "standard")
    fast = _time_origin(units, str(calendar))
    if fast is not None and num.dtype.kind in "iuf" and np.isfinite(num).all():
        ns, origin = fast
        if num.dtype.kind in "iu":
            offsets = num.astype(np.int64) * np.int64(ns)
        else:
            offsets = np.round(num.astype(np.float64) * ns).astype(np.int64)
        return origin + offsets.astype("timedelta64[ns]")
    try:
        times = np.asarray(decode_cf_datetime(num, units, calendar))
    except Exception as exc:  # decoding raises a variety of errors
        raise DataError(
            f"cannot decode time variable {var.name!r} ({one_line(exc, typed=False)})"
        ) from None
    if times.dtype.kind != "M":
        raise DataError(f"time variable {var.name!r}: calendar {calendar!r} is not supported")
    return times.astype("datetime64[ns]")


def _is_start(name: str, attrs: dict) -> bool:
    return name.lower().startswith("start") or "start" in str(attrs.get("long_name", "")).lower()


def _periods_from_bounds(ds, tvar, n: int) -> np.ndarray | None:
    bname = getattr(tvar, "bounds", None)
    if bname and bname in ds.variables:
        b = _decode_times(tvar, ds.variables[bname][...]).reshape(n, 2)
        return (b[:, 1] - b[:, 0]).astype("timedelta64[ns]")
    return None


def _times(ds, path, variable: str, dims, axes):
    """(time_axis, times, periods) for ``variable``."""
    gattrs = _attrs(ds)
    if "T" in axes:
        time_axis = axes.index("T")
        tdim = dims[time_axis]
        tvar = ds.variables.get(tdim)
        if tvar is None:
            raise DataError(
                f"{path}: no time information (dimension {tdim!r} has no coordinate variable)"
            )
        times = _decode_times(tvar)
        periods = _periods_from_bounds(ds, tvar, len(times))
    else:
        time_axis = None
        cands = []
        for name, v in ds.variables.items():
            a = _attrs(v)
            if (
                v.size == 1
                and v.ndim <= 1
                and cf.is_time_units(a.get("units"))
                and not _is_start(name, a)
            ):
                rank = (
                    0
                    if a.get("standard_name") == "time"
                    else 1
                    if name in ("valid_time", "time")
                    else 2
                )
                cands.append((rank, name))
        if not cands:
            raise DataError(
                f"{path}: no time information (no time dimension in {variable!r} and no scalar "
                "time variable)"
            )
        tvar = ds.variables[min(cands)[1]]
        times = _decode_times(tvar)[:1]
        periods = _periods_from_bounds(ds, tvar, 1)
        if periods is None:
            starts = [
                v
                for name, v in ds.variables.items()
                if v.size == 1
                and cf.is_time_units(getattr(v, "units", None))
                and _is_start(name, _attrs(v))
            ]
            if starts:
                periods = (times - _decode_times(starts[0])[:1]).astype("timedelta64[ns]")
    if periods is None and "accumulation_minutes" in gattrs:
        minutes = float(np.asarray(gattrs["accumulation_minutes"]).ravel()[0])
        periods = np.full(len(times), np.timedelta64(int(round(minutes * 60e9)), "ns"))
    if periods is None:
        periods = np.full(len(times), np.timedelta64("NaT"), dtype="timedelta64[ns]")
    return time_axis, times, periods


def _coord(ds, path, dim: str, axis: str):
    v = ds.variables.get(dim)
    if v is None or v.dimensions != (dim,):
        raise DataError(f"{path}: no coordinate values for dimension {dim!r}")
    attrs = _attrs(v)
    raw = v[:]
    if np.ma.is_masked(raw):
        raise DataError(f"{path}: missing values in coordinate {dim!r}")
    values = np.ma.getdata(raw).astype(np.float64)
    geographic = cf.is_lonlat_coordinate(attrs)
    out = {k: val for k, val in cf.plain_attrs(attrs).items() if k not in cf.ENCODING_ATTRS}
    if not geographic:
        factor = metres_per_unit(attrs.get("units"))
        if factor is None:
            raise DataError(
                f"{path}: coordinate {dim!r} has units {attrs.get('units')!r}, not a length"
            )
        values = values * factor
        out["units"] = "m"
        out.setdefault("standard_name", f"projection_{axis.lower()}_coordinate")
    out["axis"] = axis
    flip = False
    if len(values) > 1:
        d = np.diff(values)
        if (d < 0).all():
            flip, values = True, values[::-1].copy()
        elif not (d > 0).all():
            raise DataError(f"{path}: coordinate {dim!r} is not monotonic")
    return values, out, flip, geographic


@functools.lru_cache(maxsize=1)
def _latlon_items() -> tuple:
    return tuple(cf.latlon_grid_mapping().items())


def _scan(ds, path, variable: str | None) -> FileInfo:
    variable = _choose_variable(ds, path, variable)
    var = ds.variables[variable]
    dims = var.dimensions
    axes = [_dim_axis(ds, d) for d in dims]
    for d, a, n in zip(dims, axes, var.shape):
        if a not in ("T", "Y", "X") and n != 1:
            raise DataError(
                f"{path}: variable {variable!r} has an extra dimension {d!r} of size {n}"
            )
    if axes.count("T") > 1:
        raise DataError(f"{path}: variable {variable!r} has more than one time dimension")
    time_axis, times, periods = _times(ds, path, variable, dims, axes)
    y_axis, x_axis = axes.index("Y"), axes.index("X")
    y, y_attrs, flip_y, geo_y = _coord(ds, path, dims[y_axis], "Y")
    x, x_attrs, flip_x, geo_x = _coord(ds, path, dims[x_axis], "X")
    var_attrs = _attrs(var)
    gm = cf.grid_mapping_name_of(var_attrs)
    gm_attrs = None
    if gm and gm in ds.variables:
        gm_attrs = _attrs(ds.variables[gm])
    else:
        if gm:
            warnings.warn(f"{path}: grid mapping variable {gm!r} not found; ignored", stacklevel=4)
        found = [n for n, v in ds.variables.items() if "grid_mapping_name" in v.ncattrs()]
        gm = found[0] if len(found) == 1 else None
        gm_attrs = _attrs(ds.variables[gm]) if gm else None
    if gm is None and geo_y and geo_x:
        gm = "crs" if "crs" not in ds.variables else "crs_latlon"
        gm_attrs = dict(_latlon_items())
    return FileInfo(
        path=path,
        variable=variable,
        ndim=var.ndim,
        time_axis=time_axis,
        y_axis=y_axis,
        x_axis=x_axis,
        times=times,
        periods=periods,
        y=y,
        x=x,
        flip_y=flip_y,
        flip_x=flip_x,
        y_attrs=y_attrs,
        x_attrs=x_attrs,
        var_attrs=var_attrs,
        global_attrs=_attrs(ds),
        grid_mapping_name=gm,
        grid_mapping_attrs=gm_attrs,
    )


def read_block(
    info: FileInfo, variable: str, start: int, count: int, ysl: slice, xsl: slice
) -> np.ndarray:
    """Frames ``start .. start+count`` of ``variable``: float32 ``(count, y, x)``, NaN for fill."""
    idx: list[Any] = [0] * info.ndim
    if info.time_axis is not None:
        idx[info.time_axis] = slice(start, start + count)
    elif (start, count) != (0, 1):
        raise DataError(f"{info.path}: one frame only, asked for {count} from {start}")
    idx[info.y_axis] = ysl
    idx[info.x_axis] = xsl
    with netcdf_lock():
        try:
            with netCDF4.Dataset(str(info.path), "r") as ds:
                raw = ds.variables[variable][tuple(idx)]
        except _ERRORS as exc:
            raise DataError(
                f"{info.path}: cannot read {variable!r} ({one_line(exc, typed=False)})"
            ) from None
    arr = np.ma.filled(np.ma.asarray(raw).astype(np.float32), np.nan)
    kept = [a for a in range(info.ndim) if isinstance(idx[a], slice)]
    roles = ["T" if a == info.time_axis else "Y" if a == info.y_axis else "X" for a in kept]
    arr = arr.transpose([roles.index(r) for r in ("T", "Y", "X") if r in roles])
    if info.time_axis is None:
        arr = arr[None]
    return arr if arr.flags.writeable else arr.copy()
