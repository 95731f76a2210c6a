"""Station files as :class:`~nowcast.series.data.Series`: CSV and CF ``timeSeries`` NetCDF.

CSV (``time,value``): a header row, then one row per time. Columns: ``time`` (ISO times,
UTC unless they carry an offset), the value column (``column=``, default: the only other
column), and optionally ``station`` (several stations in one file, rows in time order per
station), ``latitude``/``longitude``. The units are named in the value column's header
(``t2m (K)`` or ``t2m [K]``) or given as ``units=``. Empty cells are missing values; lines
starting with ``#`` are comments.

NetCDF: CF ``featureType: timeSeries`` (orthogonal layout): the variable on ``(station,
time)`` or ``(time,)``, station names in the variable with ``cf_role: timeseries_id`` (else
the station coordinate), ``latitude``/``longitude`` per station. :func:`read_series`
chooses by the file's suffix; every problem is one :class:`~nowcast.errors.DataError` line
naming the file (and the CSV line).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.errors import DataError
from nowcast.kinds import temperature_scale
from nowcast.series.data import Series, make_series

__all__ = ["convert_units", "is_station_file", "read_csv", "read_netcdf", "read_series"]

CSV_SUFFIXES = (".csv", ".txt")
_TIME_NAMES = ("time", "valid_time", "datetime", "date")
_UNITS_IN_HEADER = re.compile(r"^\s*(?P<name>.*?)\s*[\(\[](?P<units>[^\)\]]+)[\)\]]\s*$")


def is_station_file(path: str | os.PathLike) -> bool:
    """A CSV file, or a NetCDF file of CF ``featureType: timeSeries`` with a ``time`` axis
    (an observed series, not a forecast)."""
    path = Path(path)
    if path.suffix.lower() in CSV_SUFFIXES:
        return True
    if not path.is_file() or path.suffix.lower() not in (".nc", ".nc4", ".cdf"):
        return False
    try:
        with xr.open_dataset(path, decode_times=False) as ds:
            return (
                str(ds.attrs.get("featureType", "")).lower() == "timeseries"
                and "time" in ds.dims
                and "issue_time" not in ds.dims
            )
    except (OSError, ValueError):
        return False


def read_series(path, *, column: str | None = None, units: str | None = None) -> Series:
    """A station file (CSV or CF timeSeries NetCDF, by suffix) as a :class:`Series`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"series file not found: {path}")
    if path.suffix.lower() in CSV_SUFFIXES:
        return read_csv(path, column=column, units=units)
    return read_netcdf(path, variable=column, units=units)


def _split_units(header: str) -> tuple[str, str | None]:
    m = _UNITS_IN_HEADER.match(header)
    return (m.group("name").strip(), m.group("units").strip()) if m else (header.strip(), None)


def read_csv(path, *, column: str | None = None, units: str | None = None) -> Series:
    """A CSV station file (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file (not UTF-8)") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    if "\0" in text:
        raise DataError(f"{path}: not a text CSV file (binary content)")
    lines = text.splitlines()
    skipped = {i for i, line in enumerate(lines) if not line.strip() or line.lstrip()[0] == "#"}
    try:
        table = pd.read_csv(
            io.StringIO(text), dtype=str, comment="#", skip_blank_lines=True, keep_default_na=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a CSV file ({str(exc).splitlines()[0]})") from None
    line_of = np.array([i + 1 for i in range(len(lines)) if i not in skipped][1:])
    headers = {_split_units(str(c))[0].lower(): str(c) for c in table.columns}
    time_col = next((headers[n] for n in _TIME_NAMES if n in headers), None)
    if time_col is None:
        raise DataError(f"{path}: no time column (expected a header like 'time,t2m (K)')")
    special = {
        time_col,
        *(
            headers[n]
            for n in ("station", "name", "latitude", "lat", "longitude", "lon")
            if n in headers
        ),
    }
    candidates = [c for c in table.columns if c not in special]
    if column is not None:
        chosen = [c for c in candidates if _split_units(c)[0].lower() == column.strip().lower()]
        if not chosen:
            names = ", ".join(_split_units(c)[0] for c in candidates) or "none"
            raise DataError(f"{path}: no column {column!r} (value columns: {names})")
    elif len(candidates) != 1:
        names = ", ".join(_split_units(c)[0] for c in candidates) or "none"
        raise DataError(f"{path}: choose the value column with --column (value columns: {names})")
    else:
        chosen = candidates
    name, header_units = _split_units(chosen[0])
    if header_units and units and header_units != units:
        raise DataError(f"{path}: the header says {name} is in {header_units}, not {units}")
    times = _parse_times(table[time_col], path, line_of)
    values = _parse_numbers(table[chosen[0]], path, line_of, name)
    station_col = headers.get("station", headers.get("name"))
    stations = (
        table[station_col].str.strip() if station_col else pd.Series([path.stem] * len(table))
    )
    lat = _station_constant(table, headers, ("latitude", "lat"), stations, path, line_of)
    lon = _station_constant(table, headers, ("longitude", "lon"), stations, path, line_of)
    order = list(dict.fromkeys(stations))
    all_times = pd.DatetimeIndex(sorted(set(times)))
    grid = np.full((len(order), len(all_times)), np.nan, dtype=np.float32)
    for k, station in enumerate(order):
        rows = np.flatnonzero((stations == station).to_numpy())
        where = f"{path}, station {station}" if station_col else str(path)
        _check_order(times[rows], where, line_of[rows])
        grid[k, all_times.get_indexer(times[rows])] = values[rows]
    return make_series(
        grid,
        all_times,
        names=order,
        variable=name,
        units=units or header_units,
        latitude=[lat.get(s, np.nan) for s in order],
        longitude=[lon.get(s, np.nan) for s in order],
        attrs={"source_file": str(path)},
        source=str(path),
    )


def _parse_times(col: pd.Series, path, line_of) -> pd.DatetimeIndex:
    parsed = pd.to_datetime(col.str.strip(), errors="coerce", utc=True, format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{path}, line {line_of[i]}: {col.iloc[i]!r} is not a time")
    return pd.DatetimeIndex(parsed).tz_convert(None)


def _parse_numbers(col: pd.Series, path, line_of, name: str) -> np.ndarray:
    text = col.str.strip()
    numbers = pd.to_numeric(text.replace("", np.nan), errors="coerce")
    bad = np.flatnonzero(
        (numbers.isna() & (text != "") & ~text.str.lower().isin(["nan", "na"])).to_numpy()
    )
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{path}, line {line_of[i]}: {name} {col.iloc[i]!r} is not a number")
    return numbers.to_numpy(dtype=np.float64)


def _check_order(times: pd.DatetimeIndex, where: str, lines) -> None:
    diffs = np.diff(times.values)
    bad = np.flatnonzero(diffs <= np.timedelta64(0, "ns"))
    if bad.size:
        i = int(bad[0])
        if diffs[i] == np.timedelta64(0, "ns"):
            raise DataError(
                f"{where}, line {lines[i + 1]}: time {times[i]:%Y-%m-%dT%H:%M} is given twice"
            )
        raise DataError(
            f"{where}, line {lines[i + 1]}: times are not in order ({times[i + 1]:%Y-%m-%dT%H:%M}"
            f" after {times[i]:%Y-%m-%dT%H:%M})"
        )


def _station_constant(table, headers, names, stations, path, line_of) -> dict[str, float]:
    col = next((headers[n] for n in names if n in headers), None)
    if col is None:
        return {}
    values = _parse_numbers(table[col], path, line_of, names[0])
    out = {}
    for station in dict.fromkeys(stations):
        v = values[(stations == station).to_numpy()]
        v = v[np.isfinite(v)]
        if v.size and np.ptp(v) > 1e-6:
            raise DataError(f"{path}: station {station} has more than one {names[0]}")
        out[station] = float(v[0]) if v.size else np.nan
    return out


def read_netcdf(path, *, variable: str | None = None, units: str | None = None) -> Series:
    """A CF ``featureType: timeSeries`` NetCDF file (see the module docstring)."""
    path = Path(path)
    try:
        ds = xr.load_dataset(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if str(ds.attrs.get("featureType", "")).lower() != "timeseries" or "time" not in ds.dims:
        raise DataError(
            f"{path}: not a CF featureType timeSeries file with a time dimension (a gridded "
            "archive is read at --point)"
        )
    roles = {str(v.attrs.get("cf_role", "")): k for k, v in ds.variables.items()}
    skip = {roles.get("timeseries_id"), "latitude", "longitude", "lat", "lon", "crs"}
    found = [k for k, v in ds.data_vars.items() if "time" in v.dims and k not in skip]
    if variable is not None and variable not in ds.variables:
        raise DataError(f"{path}: no variable {variable!r} (variables: {', '.join(found)})")
    if variable is None and len(found) != 1:
        raise DataError(f"{path}: choose the variable with --column ({', '.join(found)})")
    da = ds[variable or found[0]]
    if da.ndim == 1:
        da = da.expand_dims("station")
    if da.ndim != 2:
        raise DataError(f"{path}: {da.name} should be on (station, time), not {da.dims}")
    station_dim = next(d for d in da.dims if d != "time")
    da = da.transpose(station_dim, "time")
    n = da.sizes[station_dim]
    ids = roles.get("timeseries_id")
    if ids is not None:
        names = [str(v) for v in np.atleast_1d(ds[ids].values)]
    elif station_dim in ds.coords:
        names = [str(v) for v in ds[station_dim].values]
    else:
        names = [f"station{i}" for i in range(n)]
    lat = _coordinate(ds, ("latitude", "lat"), n)
    lon = _coordinate(ds, ("longitude", "lon"), n)
    if not np.issubdtype(da.dtype, np.number):
        raise DataError(f"{path}: {da.name} holds values that are not numbers")
    file_units = da.attrs.get("units")
    if file_units and units and file_units != units:
        raise DataError(f"{path}: {da.name} is in {file_units}, not {units}")
    attrs = {k: da.attrs[k] for k in ("long_name", "standard_name") if k in da.attrs}
    return make_series(
        da.values,
        ds["time"].values,
        names=names,
        variable=str(da.name),
        units=file_units or units,
        latitude=lat,
        longitude=lon,
        attrs={**attrs, "source_file": str(path)},
        source=str(path),
    )


def _coordinate(ds: xr.Dataset, names, n: int) -> np.ndarray:
    for name in names:
        if name in ds.variables:
            return np.broadcast_to(np.asarray(ds[name].values, float).ravel(), (n,)).copy()
    return np.full(n, np.nan)


def convert_units(series: Series, units: str) -> Series:
    """``series`` in ``units``: the same units, or temperatures between K, degC and degF;
    anything else is a one-line error."""
    if series.units == units:
        return series
    have, want = temperature_scale(series.units), temperature_scale(units)
    if have is None or want is None:
        raise DataError(f"{series.variable} is in {series.units}; the model needs {units}")
    kelvin = {"K": lambda v: v, "C": lambda v: v + 273.15, "F": lambda v: (v - 32) * 5 / 9 + 273.15}
    back = {"K": lambda v: v, "C": lambda v: v - 273.15, "F": lambda v: (v - 273.15) * 9 / 5 + 32}
    values = back[want](kelvin[have](series.values.astype(np.float64))).astype(np.float32)
    return replace(series, values=values, units=units)
