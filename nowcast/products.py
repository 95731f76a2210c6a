"""Forecast products: build, write and read CF NetCDF (or Zarr) forecasts.

On disk a forecast is a CF-1.8 dataset with

* the input variable's name, units and attributes, dims ``(issue_time, lead_time, y, x)``,
  or ``(lead_time, y, x)`` when there is one issue time;
* ``forecast_reference_time`` (the issue time; a coordinate along ``issue_time``, or a
  scalar), ``lead_time`` (CF ``forecast_period``) and the 2-D or 1-D ``valid_time``;
* the grid-mapping variable copied from the input, and the input's ``x``/``y``;
* global attributes naming the method (and the model and its training metadata).

In memory (:func:`read_forecast`) it is always the 4-D DataArray of
:mod:`nowcast.conventions`, whatever the file holds. :func:`lead_array` (one issue time,
what a forecast method returns) and :func:`forecast_array` (many) build them in memory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from nowcast import __version__
from nowcast.conventions import (
    FORECAST_REFERENCE_TIME,
    ISSUE_TIME,
    LEAD_TIME,
    TIME,
    VALID_TIME,
    X,
    Y,
    lead_times,
    valid_times,
)
from nowcast.errors import DataError

_GRID_ATTRS_DROP = ("units_original",)


def _lead_coord(n_leads: int, step) -> tuple:
    return (
        LEAD_TIME,
        lead_times(n_leads, step),
        {"standard_name": "forecast_period", "long_name": "lead time"},
    )


def _grid_coords(template: xr.DataArray) -> dict[str, Any]:
    """``template``'s x/y coordinates and its grid-mapping coordinate."""
    coords: dict[str, Any] = {Y: template[Y], X: template[X]}
    gm = template.attrs.get("grid_mapping")
    if gm and gm in template.coords:
        coords[gm] = template.coords[gm]
    return coords


def lead_array(values: np.ndarray, template: xr.DataArray, step) -> xr.DataArray:
    """Wrap ``(lead_time, y, x)`` values (one issue time) on ``template``'s grid.

    ``template`` is the method's input (``time, y, x``): its name, attrs, x/y coordinates
    and grid-mapping coordinate are copied; lead ``k`` is ``k * step``.
    """
    values = np.asarray(values, dtype=np.float32)
    coords = {LEAD_TIME: _lead_coord(values.shape[0], step), **_grid_coords(template)}
    return xr.DataArray(
        values,
        dims=(LEAD_TIME, Y, X),
        coords=coords,
        name=template.name,
        attrs=dict(template.attrs),
    )


def forecast_array(
    values: np.ndarray,
    *,
    issue_times,
    step,
    template: xr.DataArray,
) -> xr.DataArray:
    """Wrap ``values`` shaped ``(issue_time, lead_time, y, x)`` as a forecast DataArray.

    ``template`` is the archive (``time, y, x``) the forecast was made from: its name,
    attrs, x/y coordinates and grid-mapping coordinate are copied.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 4:
        raise ValueError(
            f"forecast values must be 4-D (issue_time, lead_time, y, x), got {values.shape}"
        )
    issue = pd.DatetimeIndex(issue_times).values.astype("datetime64[ns]")
    lead = _lead_coord(values.shape[1], step)
    coords: dict[str, Any] = {
        ISSUE_TIME: (
            ISSUE_TIME,
            issue,
            {"standard_name": FORECAST_REFERENCE_TIME, "long_name": "issue time"},
        ),
        LEAD_TIME: lead,
        VALID_TIME: (
            (ISSUE_TIME, LEAD_TIME),
            valid_times(issue, lead[1]),
            {"standard_name": "time", "long_name": "valid time"},
        ),
        **_grid_coords(template),
    }
    attrs = {k: v for k, v in template.attrs.items() if k not in _GRID_ATTRS_DROP}
    return xr.DataArray(
        values, dims=(ISSUE_TIME, LEAD_TIME, Y, X), coords=coords, name=template.name, attrs=attrs
    )


def to_dataset(
    forecast: xr.DataArray, *, method: str, metadata: Mapping[str, Any] | None = None
) -> xr.Dataset:
    """The on-disk CF form of a 4-D forecast DataArray."""
    name = forecast.name or "forecast"
    gm = forecast.attrs.get("grid_mapping")
    if forecast.sizes[ISSUE_TIME] == 1:  # one issue time: (lead_time, y, x), scalar reference time
        da = forecast.isel({ISSUE_TIME: 0}).rename({ISSUE_TIME: FORECAST_REFERENCE_TIME})
    else:  # several: dim issue_time, coordinate forecast_reference_time along it
        issue = forecast[ISSUE_TIME]
        da = forecast.drop_vars(ISSUE_TIME).assign_coords(
            {FORECAST_REFERENCE_TIME: (ISSUE_TIME, issue.values, issue.attrs)}
        )
    ds = da.to_dataset(name=name)
    if gm and gm in ds.coords:
        ds = ds.reset_coords(gm)
    attribution = forecast.attrs.get("attribution")
    now = pd.Timestamp.now(tz="UTC")
    ds.attrs = {
        "Conventions": "CF-1.8",
        "title": f"{name} nowcast ({method})",
        "source": f"nowcast {__version__}, method {method}",
        "nowcast_method": method,
        "history": f"{now:%Y-%m-%dT%H:%M:%SZ} created by nowcast {__version__}",
    }
    if attribution:
        ds.attrs["references"] = f"input data: {attribution}"
    for key, value in (metadata or {}).items():
        ds.attrs[f"nowcast_{key}"] = (
            value if isinstance(value, (str, int, float)) else json.dumps(value, default=str)
        )
    ds[name].encoding.update(
        {"dtype": "float32", "zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan)}
    )
    for coord in (LEAD_TIME,):
        ds[coord].encoding.update({"units": "minutes", "dtype": "int32"})
    return ds


def write_forecast(
    forecast: xr.DataArray,
    path: str | os.PathLike,
    *,
    method: str,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write atomically as NetCDF (or Zarr when the path ends in ``.zarr``); returns the path."""
    ds = to_dataset(forecast, method=method, metadata=metadata)
    return write_dataset(ds, path)


def write_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to a temporary sibling, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    zarr = path.suffix == ".zarr"
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        if zarr:
            ds.to_zarr(tmp, mode="w", consolidated=False)
        else:
            ds.to_netcdf(tmp, engine="netcdf4")
        if zarr and path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)
    return path


def read_forecast(path: str | os.PathLike) -> xr.DataArray:
    """Read a forecast file as the 4-D ``(issue_time, lead_time, y, x)`` DataArray.

    Raises :class:`DataError` for a file that is not a forecast (no ``lead_time``,
    wrong dims, no grid mapping).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"forecast file not found: {path}")
    try:
        if path.suffix == ".zarr":
            ds = xr.open_zarr(path, consolidated=False)
        else:
            ds = xr.open_dataset(path, engine="netcdf4")
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read forecast {path}: {exc}") from None
    return forecast_from_dataset(ds, source=str(path))


def forecast_from_dataset(ds: xr.Dataset, *, source: str = "dataset") -> xr.DataArray:
    """The 4-D forecast DataArray held by an on-disk-form dataset (see :func:`to_dataset`)."""
    candidates = [v for v in ds.data_vars if LEAD_TIME in ds[v].dims]
    if len(candidates) != 1:
        raise DataError(
            f"{source}: not a nowcast forecast (expected one variable with a lead_time dimension, "
            f"found {candidates or 'none'})"
        )
    name = candidates[0]
    da = ds[name]
    expected = {LEAD_TIME, Y, X} | ({ISSUE_TIME} if ISSUE_TIME in da.dims else set())
    if set(da.dims) != expected:
        raise DataError(
            f"{source}: variable {name!r} has dims {da.dims}; expected (issue_time, lead_time, y, "
            "x) or (lead_time, y, x)"
        )
    gm = da.attrs.get("grid_mapping") or da.encoding.get("grid_mapping")
    if not gm or (gm not in ds.variables):
        raise DataError(
            f"{source}: variable {name!r} has no grid_mapping variable; cannot place it on a map"
        )
    if FORECAST_REFERENCE_TIME not in ds.coords and FORECAST_REFERENCE_TIME not in ds.variables:
        raise DataError(f"{source}: no forecast_reference_time coordinate")
    frt = ds[FORECAST_REFERENCE_TIME]
    if ISSUE_TIME not in da.dims:
        da = da.expand_dims({ISSUE_TIME: [frt.values]})
    else:
        da = da.assign_coords({ISSUE_TIME: (ISSUE_TIME, frt.values)})
    da = da.drop_vars([FORECAST_REFERENCE_TIME, VALID_TIME], errors="ignore")
    leads = da[LEAD_TIME].values.astype("timedelta64[ns]")
    da = da.assign_coords(
        {
            ISSUE_TIME: (
                ISSUE_TIME,
                da[ISSUE_TIME].values.astype("datetime64[ns]"),
                {"standard_name": FORECAST_REFERENCE_TIME},
            ),
            LEAD_TIME: (LEAD_TIME, leads, {"standard_name": "forecast_period"}),
            gm: ds[gm],
        }
    )
    da = da.assign_coords(
        {VALID_TIME: ((ISSUE_TIME, LEAD_TIME), valid_times(da[ISSUE_TIME].values, leads))}
    )
    da.attrs["grid_mapping"] = gm
    da.attrs.setdefault("nowcast_method", ds.attrs.get("nowcast_method", "unknown"))
    da = da.transpose(ISSUE_TIME, LEAD_TIME, Y, X)
    return da


def method_name(forecast: xr.DataArray) -> str:
    """The method that produced a forecast read by :func:`read_forecast`."""
    return str(forecast.attrs.get("nowcast_method", forecast.name))


def nearest_indices(coord, values, atol: float) -> np.ndarray | None:
    """Indices of ``values`` in the ascending coordinate ``coord``, each within ``atol``.

    None when some value has no grid point that close (the grids differ). Used to find a
    forecast's grid inside an observation archive's grid (the same grid, or a sub-grid).
    """
    coord = np.asarray(coord, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if not len(coord) or not len(values) or not np.all(np.diff(coord) > 0):
        return None
    idx = np.clip(np.searchsorted(coord, values), 0, len(coord) - 1)
    below = np.maximum(idx - 1, 0)
    near = np.where(np.abs(coord[below] - values) < np.abs(coord[idx] - values), below, idx)
    return near if np.allclose(coord[near], values, rtol=0, atol=atol) else None


def truth_for(forecast: xr.DataArray, archive: xr.DataArray) -> xr.DataArray:
    """Observations at the forecast's valid times, shaped like the forecast.

    Missing valid times come back as NaN (verification then skips them).
    """
    vt = forecast[VALID_TIME]
    flat = pd.DatetimeIndex(vt.values.ravel())
    obs = archive.reindex({TIME: flat})
    data = obs.data.reshape(vt.shape + obs.shape[1:])
    return xr.DataArray(
        data,
        dims=(ISSUE_TIME, LEAD_TIME, Y, X),
        coords={k: forecast.coords[k] for k in (ISSUE_TIME, LEAD_TIME, VALID_TIME)}
        | {Y: archive[Y], X: archive[X]},
        name=archive.name,
        attrs=archive.attrs,
    )
