"""A summary of a forecast file (what ``nowcast info`` prints for one).

Method (and model), issue times, leads, valid times, grid, value range, the probabilistic
products (members, exceedance thresholds, quantile levels) and provenance, read
through :func:`nowcast.products.read_forecast` (so every layout it reads is described).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.archive.describe import format_duration, format_number
from nowcast.conventions import ISSUE_TIME, LEAD_TIME, VALID_TIME, X, Y, display_name
from nowcast.probabilistic import describe_products
from nowcast.products import LATITUDE, LONGITUDE, axis_problems, read_forecast

__all__ = ["describe_forecast", "is_forecast_file"]

_FMT = "%Y-%m-%d %H:%M"


def is_forecast_file(path: str | os.PathLike) -> bool:
    """True for a NetCDF file or Zarr store holding a variable with a ``lead_time`` dim."""
    path = Path(path)
    if not (path.is_file() or (path.is_dir() and path.suffix == ".zarr")):
        return False
    try:
        engine = "zarr" if path.suffix == ".zarr" else None
        with xr.open_dataset(path, engine=engine, decode_times=False) as ds:
            return any(LEAD_TIME in ds[v].dims for v in ds.data_vars)
    except (OSError, ValueError, TypeError):
        return False


def _times(values) -> str:
    times = pd.DatetimeIndex(np.unique(np.asarray(values).ravel()))
    if len(times) == 1:
        return f"{times[0]:{_FMT}} UTC"
    steps = np.unique(np.diff(times.values))
    every = f", every {format_duration(steps[0])}" if len(steps) == 1 else ", irregular"
    return f"{len(times)}: {times[0]:{_FMT}} .. {times[-1]:{_FMT}} UTC{every}"


def _leads(leads: pd.TimedeltaIndex, *, regular: bool) -> str:
    if not regular or len(leads) == 0:  # as stored, in order
        return (
            f"{len(leads)}: "
            + ", ".join(format_duration(v) for v in leads[:12])
            + (", ..." if len(leads) > 12 else "")
        )
    steps = np.unique(np.diff(leads.values))
    step = (
        f", step {format_duration(leads[0])}"
        if len(leads) == 1 or (len(steps) == 1 and steps[0] == leads[0])
        else (", irregular" if len(steps) > 1 else f", every {format_duration(steps[0])}")
    )
    return f"{len(leads)}: {format_duration(leads[0])} .. {format_duration(leads[-1])}{step}"


def describe_forecast(path: str | os.PathLike) -> str:
    """Readable multi-line text about the forecast file at ``path``."""
    path = Path(path)
    fc = read_forecast(path, check=False)  # wrong axes are described, not refused
    leads = pd.TimedeltaIndex(fc[LEAD_TIME].values)
    with xr.open_dataset(path, engine="zarr" if path.suffix == ".zarr" else None) as raw:
        stored = raw[VALID_TIME].values if VALID_TIME in raw.variables else None
    problems = axis_problems(fc[ISSUE_TIME].values, leads.values, stored)
    gm = fc.attrs.get("grid_mapping")
    gm_attrs = fc.coords[gm].attrs if gm in fc.coords else {}
    x, y = fc[X].values, fc[Y].values
    units = str(fc[X].attrs.get("units", "m"))
    spacing = (
        f"{format_number(abs(x[1] - x[0]))} x {format_number(abs(y[1] - y[0]))} {units}"
        if len(x) > 1 and len(y) > 1
        else "n/a"
    )
    grid = (
        f"{fc.sizes[Y]} x {fc.sizes[X]} (y, x), spacing {spacing}, "
        f"{gm_attrs.get('grid_mapping_name', '(no grid mapping)')} ({gm!r})"
    )
    engine = "zarr" if path.suffix == ".zarr" else None
    with xr.open_dataset(path, engine=engine) as ds:
        attrs = dict(ds.attrs)
        products = describe_products(ds)
        if LATITUDE in ds.coords:
            lat, lon = ds[LATITUDE].values, ds[LONGITUDE].values
            grid += (
                f"; latitude {np.nanmin(lat):.2f} .. {np.nanmax(lat):.2f}, longitude "
                f"{np.nanmin(lon):.2f} .. {np.nanmax(lon):.2f}"
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.asarray(fc.values)
        nan = float(np.isnan(values).mean())
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    named = "nowcast_method" in fc.attrs
    method = display_name(fc.attrs, with_method=True) if named else str(fc.name)
    name = str(fc.name) + (f" ({fc.attrs['long_name']})" if fc.attrs.get("long_name") else "")
    u = fc.attrs.get("units") or ""
    lines = [
        ("file", f"{path} ({'Zarr' if engine else 'NetCDF'} forecast)"),
        ("variable", f"{name}, {u or '(no units)'}"),
        ("method", method),
        ("issue times", _times(fc[ISSUE_TIME].values)),
        ("leads", _leads(leads, regular=not problems)),
        ("valid times", _times(fc[VALID_TIME].values).split(", every")[0]),
        ("grid", grid),
        *(
            [("network", f"on blocks of {attrs['nowcast_network_block']}")]
            if attrs.get("nowcast_network_block")
            else []
        ),
        ("NaN fraction", f"{100 * nan:.1f} %"),
        ("value range", f"{format_number(lo)} .. {format_number(hi)} {u}".rstrip()),
        *products,
    ]
    if problems:  # what evaluate and render refuse the file for
        lines.insert(1, ("PROBLEM", "; ".join(problems) + " (evaluate and render refuse it)"))
    if fc.attrs.get("attribution"):
        lines.append(("attribution", str(fc.attrs["attribution"])))
    if attrs.get("history"):
        lines.append(("history", str(attrs["history"])))
    width = max(len(k) for k, _ in lines) + 1
    return "\n".join(f"{k + ':':<{width}} {v}" for k, v in lines)
