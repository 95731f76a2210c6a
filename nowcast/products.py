"""Forecast products: build, write and read CF NetCDF (or Zarr) forecasts.

On disk a forecast is a CF-1.8 dataset, one layout whatever the number of issue times:

* the input variable's name, units and attributes, dims ``(issue_time, lead_time, y, x)``
  (``issue_time`` of length 1 for one issue time);
* coordinates ``issue_time`` (CF ``forecast_reference_time``, the time of the last input
  frame), ``lead_time`` (CF ``forecast_period``, whole minutes), the 2-D ``valid_time``
  and the input's ``x``/``y``; on projected grids also 2-D ``latitude``/``longitude``
  (WGS 84) auxiliary coordinates, named in the variable's ``coordinates`` attribute;
* the grid-mapping variable copied from the input (a scalar coordinate, so that files of
  several issue times combine with ``xr.open_mfdataset(paths)`` along ``issue_time``);
* global attributes naming the method (and the model and its training metadata).

Zarr stores are format 2 with consolidated metadata, like ``nowcast convert``'s.
In memory (:func:`read_forecast`) it is the 4-D DataArray of :mod:`nowcast.conventions`
(without latitude/longitude); files of the earlier layouts (``(lead_time, y, x)`` with a
scalar ``forecast_reference_time``) are read too. :func:`lead_array` (one issue time,
what a forecast method returns) and :func:`forecast_array` (many) build them in memory.
"""

from __future__ import annotations

import json
import logging
import os
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
from nowcast.fileio import ZARR_OPTIONS, atomic_output
from nowcast.geo import is_geographic, lonlat_grid
from nowcast.interrupts import interrupts_held

log = logging.getLogger(__name__)

_GRID_ATTRS_DROP = ("units_original",)
_ISSUE_ATTRS = {
    "standard_name": FORECAST_REFERENCE_TIME,
    "long_name": "issue time (time of the last input frame)",
}
_LEAD_ATTRS = {"standard_name": "forecast_period", "long_name": "lead time"}
_VALID_ATTRS = {"standard_name": "time", "long_name": "valid time"}
LATITUDE, LONGITUDE = "latitude", "longitude"


def _lead_coord(n_leads: int, step) -> tuple:
    return (LEAD_TIME, lead_times(n_leads, step), dict(_LEAD_ATTRS))


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
        ISSUE_TIME: (ISSUE_TIME, issue, dict(_ISSUE_ATTRS)),
        LEAD_TIME: lead,
        VALID_TIME: ((ISSUE_TIME, LEAD_TIME), valid_times(issue, lead[1]), dict(_VALID_ATTRS)),
        **_grid_coords(template),
    }
    attrs = {k: v for k, v in template.attrs.items() if k not in _GRID_ATTRS_DROP}
    return xr.DataArray(
        values, dims=(ISSUE_TIME, LEAD_TIME, Y, X), coords=coords, name=template.name, attrs=attrs
    )


def to_dataset(
    forecast: xr.DataArray,
    *,
    method: str,
    metadata: Mapping[str, Any] | None = None,
    extra: Mapping[str, xr.DataArray] | None = None,
) -> xr.Dataset:
    """The on-disk CF form of a 4-D forecast DataArray (see the module docstring).

    ``extra``: more variables by name, each ``(issue_time, D, lead_time, y, x)`` on the
    forecast's issue times, leads and grid with its own ``D`` coordinate (the members,
    exceedance probabilities and quantiles of :mod:`nowcast.probabilistic`); the main
    variable names them in its ``ancillary_variables`` attribute.
    """
    name = forecast.name or "forecast"
    gm = forecast.attrs.get("grid_mapping")
    da = forecast.transpose(ISSUE_TIME, LEAD_TIME, Y, X)
    da = da.drop_vars([c for c in (FORECAST_REFERENCE_TIME, LATITUDE, LONGITUDE) if c in da.coords])
    issue = da[ISSUE_TIME].values.astype("datetime64[ns]")
    leads = da[LEAD_TIME].values.astype("timedelta64[ns]")
    da = da.assign_coords(
        {
            ISSUE_TIME: (ISSUE_TIME, issue, dict(_ISSUE_ATTRS)),
            LEAD_TIME: (LEAD_TIME, leads, dict(_LEAD_ATTRS)),
            VALID_TIME: ((ISSUE_TIME, LEAD_TIME), valid_times(issue, leads), dict(_VALID_ATTRS)),
        }
    )
    ds = da.to_dataset(name=name)
    ds = ds.assign_coords(_lonlat_coords(ds, gm))
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
        ds.attrs["attribution"] = str(attribution)
    for key, value in (metadata or {}).items():
        ds.attrs[f"nowcast_{key}"] = (
            value if isinstance(value, (str, int, float)) else json.dumps(value, default=str)
        )
    ds[name].encoding.update(
        {"dtype": "float32", "zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan)}
    )
    whole_minutes = (leads % np.timedelta64(1, "m") == np.timedelta64(0, "ns")).all()
    ds[LEAD_TIME].encoding.update(
        {"units": "minutes" if whole_minutes else "seconds", "dtype": "int32", "_FillValue": None}
    )
    for coord in (ISSUE_TIME, VALID_TIME):
        ds[coord].encoding.update(
            {
                "units": "seconds since 1970-01-01 00:00:00",
                "calendar": "proleptic_gregorian",
                "dtype": "int64",
                "_FillValue": None,
            }
        )
    for coord in (Y, X, LATITUDE, LONGITUDE):
        if coord in ds.coords:
            ds[coord].encoding["_FillValue"] = None
    ds[name].attrs.pop("ancillary_variables", None)  # a read forecast's, naming none here
    if extra:
        _add_extra(ds, name, gm, extra)
    return ds


def _add_extra(ds: xr.Dataset, name: str, gm: str | None, extra: Mapping[str, xr.DataArray]):
    """Add the ``extra`` variables to ``ds`` (see :func:`to_dataset`), in place."""
    main = {ISSUE_TIME, LEAD_TIME, Y, X}
    for var, da in extra.items():
        dims = [d for d in da.dims if d not in main]
        if len(dims) != 1 or set(da.dims) != main | set(dims):
            raise ValueError(f"extra variable {var!r} has dims {da.dims}")
        da = da.transpose(ISSUE_TIME, dims[0], LEAD_TIME, Y, X)
        keep = {dims[0]}
        da = da.drop_vars([c for c in da.coords if c not in keep])
        da = da.assign_coords({ISSUE_TIME: ds[ISSUE_TIME], LEAD_TIME: ds[LEAD_TIME]})
        attrs = dict(da.attrs)
        if gm:
            attrs["grid_mapping"] = gm
        ds[var] = da.assign_attrs(attrs)
        ds[var].encoding = {
            "dtype": "float32",
            "zlib": True,
            "complevel": 4,
            "_FillValue": np.float32(np.nan),
        }
    ds[name].attrs["ancillary_variables"] = " ".join(extra)


def _lonlat_coords(ds: xr.Dataset, gm: str | None) -> dict[str, Any]:
    """2-D WGS 84 ``latitude``/``longitude`` of a projected grid (none for lat/lon grids)."""
    if not gm or gm not in ds.coords:
        return {}
    attrs = dict(ds[gm].attrs)
    try:
        if is_geographic(attrs):
            return {}
        lon, lat = lonlat_grid(attrs, ds[X].values, ds[Y].values, units=ds[X].attrs.get("units"))
    except DataError as exc:
        log.warning("no latitude/longitude coordinates written: %s", exc)
        return {}
    return {
        LATITUDE: ((Y, X), lat, {"standard_name": "latitude", "units": "degrees_north"}),
        LONGITUDE: ((Y, X), lon, {"standard_name": "longitude", "units": "degrees_east"}),
    }


def write_forecast(
    forecast: xr.DataArray,
    path: str | os.PathLike,
    *,
    method: str,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = True,
    extra: Mapping[str, xr.DataArray] | None = None,
) -> Path:
    """Write atomically as NetCDF (or Zarr when the path ends in ``.zarr``); returns the path.

    ``overwrite=False``: placed only if nothing is at ``path`` then (else ``PATH exists``).
    ``extra``: more variables (see :func:`to_dataset`).
    """
    ds = to_dataset(forecast, method=method, metadata=metadata, extra=extra)
    return write_dataset(ds, path, overwrite=overwrite)


def write_dataset(ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write ``ds`` atomically (:func:`nowcast.fileio.atomic_output`); Zarr for ``.zarr``.

    ``overwrite=False``: the new output is placed only if nothing is at ``path`` at that
    moment (a race-free exclusive placement, ``atomic_output(exclusive=True)``).
    """
    path = Path(path)
    with atomic_output(path, exclusive=not overwrite) as tmp:
        if path.suffix == ".zarr":
            ds.to_zarr(tmp, mode="w", **ZARR_OPTIONS)
        else:  # Ctrl-C waits for the write (xarray's NetCDF lock, see interrupts_held)
            with interrupts_held():
                ds.to_netcdf(tmp, engine="netcdf4")
    return path


def read_forecast(path: str | os.PathLike, *, check: bool = True) -> xr.DataArray:
    """Read a forecast file as the 4-D ``(issue_time, lead_time, y, x)`` DataArray.

    Raises :class:`DataError` for a file that is not a forecast (no ``lead_time``,
    wrong dims, no grid mapping) and, with ``check``, for wrong axes (see
    :func:`axis_problems`).
    """
    return forecast_from_dataset(open_forecast_dataset(path), source=str(path), check=check)


def open_forecast_dataset(path: str | os.PathLike) -> xr.Dataset:
    """The forecast file at ``path`` opened lazily as it is on disk (a :class:`DataError` when
    it is missing or unreadable)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"forecast file not found: {path}")
    try:
        if path.suffix == ".zarr":
            return xr.open_zarr(path)
        return xr.open_dataset(path, engine="netcdf4")
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read forecast {path}: {exc}") from None


def forecast_from_dataset(
    ds: xr.Dataset, *, source: str = "dataset", check: bool = True
) -> xr.DataArray:
    """The 4-D forecast DataArray held by an on-disk-form dataset (see :func:`to_dataset`).

    ``check``: a forecast whose axes are wrong (:func:`axis_problems`: leads not positive
    and strictly increasing, an issue time twice, a stored ``valid_time`` that is not issue
    time + lead) is a :class:`DataError` (one line) instead of being scored or drawn with
    wrong labels; ``nowcast info`` reads with ``check=False`` and says what is wrong.
    """
    # the deterministic forecast: members, probabilities and quantiles have one more dim
    main = {ISSUE_TIME, LEAD_TIME, Y, X}
    candidates = [v for v in ds.data_vars if LEAD_TIME in ds[v].dims and set(ds[v].dims) <= main]
    if len(candidates) != 1:
        extra = {v: sorted(set(ds[v].dims) - main) for v in ds.data_vars if LEAD_TIME in ds[v].dims}
        found = "; ".join(f"{v} has extra dims {d}" for v, d in extra.items()) or "none"
        raise DataError(
            f"{source}: not a nowcast forecast (expected one variable with dims (issue_time, "
            f"lead_time, y, x), found {candidates if candidates else found})"
        )
    name = candidates[0]
    da = ds[name]
    expected = {LEAD_TIME, Y, X} | ({ISSUE_TIME} if ISSUE_TIME in da.dims else set())
    if set(da.dims) != expected:
        raise DataError(
            f"{source}: variable {name!r} has dims {da.dims}; expected (issue_time, lead_time, y, "
            "x)"
        )
    gm = da.attrs.get("grid_mapping") or da.encoding.get("grid_mapping")
    if not gm or (gm not in ds.variables):
        raise DataError(
            f"{source}: variable {name!r} has no grid_mapping variable; cannot place it on a map"
        )
    if ISSUE_TIME in ds.coords and ISSUE_TIME in ds.indexes:
        issue = ds[ISSUE_TIME].values
    elif FORECAST_REFERENCE_TIME in ds.variables:  # files of the earlier layouts
        issue = np.atleast_1d(ds[FORECAST_REFERENCE_TIME].values)
    else:
        raise DataError(f"{source}: no issue_time (forecast_reference_time) coordinate")
    drop = [FORECAST_REFERENCE_TIME, VALID_TIME, LATITUDE, LONGITUDE, ISSUE_TIME]
    da = da.drop_vars([c for c in drop if c in da.coords])
    if ISSUE_TIME not in da.dims:
        da = da.expand_dims(ISSUE_TIME)
    issue = np.asarray(issue).astype("datetime64[ns]")
    leads = da[LEAD_TIME].values.astype("timedelta64[ns]")
    stored = ds[VALID_TIME].values if VALID_TIME in ds.variables else None
    problems = axis_problems(issue, leads, stored)
    if check and problems:
        raise DataError(f"{source}: {'; '.join(problems)}: not a forecast nowcast can use")
    da = da.assign_coords(
        {
            ISSUE_TIME: (ISSUE_TIME, issue, dict(_ISSUE_ATTRS)),
            LEAD_TIME: (LEAD_TIME, leads, dict(_LEAD_ATTRS)),
            VALID_TIME: ((ISSUE_TIME, LEAD_TIME), valid_times(issue, leads), dict(_VALID_ATTRS)),
            gm: ds[gm],
        }
    )
    da.attrs["grid_mapping"] = gm
    da.attrs.setdefault("nowcast_method", ds.attrs.get("nowcast_method", "unknown"))
    if ds.attrs.get("nowcast_model"):  # the display name's (display_name)
        da.attrs.setdefault("nowcast_model", str(ds.attrs["nowcast_model"]))
    return da.transpose(ISSUE_TIME, LEAD_TIME, Y, X)


def _duration(td) -> str:
    seconds = pd.Timedelta(td).total_seconds()
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{sign}{int(seconds // size)} {unit}"
    return f"{sign}{seconds:g} s"


def _durations(values) -> str:
    shown = ", ".join(_duration(v) for v in values[:6])
    return shown + (", ..." if len(values) > 6 else "")


def axis_problems(issue_times, leads, stored_valid_times=None) -> list[str]:
    """What is wrong with a forecast's axes, in words (empty when nothing is).

    Leads must be positive and strictly increasing, each issue time given once, and a
    stored ``valid_time`` must be issue time + lead (``(issue_time, lead_time)``, or
    ``(lead_time,)`` for one issue time).
    """
    issue = np.asarray(issue_times).astype("datetime64[ns]").ravel()
    leads = np.asarray(leads).astype("timedelta64[ns]").ravel()
    problems = []
    if len(leads) == 0:
        problems.append("lead_time is empty")
    if np.isnat(leads).any():
        problems.append("lead_time has missing values")
    elif (leads <= np.timedelta64(0, "ns")).any():
        bad = leads[leads <= np.timedelta64(0, "ns")]
        problems.append(f"lead_time has leads that are not positive ({_durations(bad)})")
    if not np.isnat(leads).any() and len(leads) > 1 and not (np.diff(leads) > 0).all():
        kind = "repeats a lead" if len(np.unique(leads)) < len(leads) else "is not increasing"
        problems.append(f"lead_time {kind} ({_durations(leads)})")
    if np.isnat(issue).any():
        problems.append("issue_time has missing values")
    elif len(np.unique(issue)) < len(issue):
        values, counts = np.unique(issue, return_counts=True)
        twice = pd.DatetimeIndex(values[counts > 1])
        problems.append(f"issue time {twice[0]:%Y-%m-%d %H:%M} is given more than once")
    if stored_valid_times is not None and not problems:
        stored = np.asarray(stored_valid_times)
        expected = valid_times(issue, leads)
        if stored.shape == expected.shape[1:] and len(issue) == 1:
            expected = expected[0]
        try:
            same = stored.shape == expected.shape and np.array_equal(
                stored.astype("datetime64[ns]"), expected
            )
        except (TypeError, ValueError):
            same = False
        if not same:
            problems.append("valid_time is not issue_time + lead_time")
    return problems


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
