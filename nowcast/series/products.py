"""Series forecast files: CF ``featureType: timeSeries`` NetCDF and a CSV beside it.

NetCDF (CF-1.8, orthogonal multidimensional timeSeries):

| variable | dims | what |
| --- | --- | --- |
| ``<variable>`` | ``(station, issue_time, lead_time)`` | float32, the input's name and units |
| ``station_name`` | ``(station,)`` | CF ``cf_role: timeseries_id`` |
| ``latitude``, ``longitude`` | ``(station,)`` | WGS 84 (NaN when the input did not say) |
| ``issue_time`` | ``(issue_time,)`` | CF ``forecast_reference_time`` |
| ``lead_time`` | ``(lead_time,)`` | CF ``forecast_period``, whole minutes |
| ``valid_time`` | ``(issue_time, lead_time)`` | CF ``time`` |

Global attributes: ``featureType: timeSeries``, ``nowcast_method`` and the model's. The
CSV (``station, latitude, longitude, method, issue_time, lead_minutes, valid_time,
value``, times in UTC) holds the same numbers, one row per station, issue time and lead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from nowcast import __version__
from nowcast.conventions import ISSUE_TIME, LEAD_TIME, VALID_TIME
from nowcast.errors import DataError
from nowcast.fileio import atomic_output, write_atomic
from nowcast.interrupts import interrupts_held
from nowcast.series.forecast import STATION

__all__ = [
    "CSV_COLUMNS",
    "csv_path",
    "is_series_forecast",
    "read_series_forecast",
    "to_csv_text",
    "write_series_forecast",
]

CSV_COLUMNS = (
    "station",
    "latitude",
    "longitude",
    "method",
    "issue_time",
    "lead_minutes",
    "valid_time",
    "value",
)
FEATURE_TYPE = "timeSeries"


def csv_path(path: str | os.PathLike) -> Path:
    """The CSV written beside a series forecast's NetCDF file."""
    return Path(path).with_suffix(".csv")


def to_dataset(
    forecast: xr.DataArray, *, method: str, metadata: Mapping[str, Any] | None = None
) -> xr.Dataset:
    """The CF timeSeries form of a ``(station, issue_time, lead_time)`` forecast."""
    name = str(forecast.name or "forecast")
    da = forecast.transpose(STATION, ISSUE_TIME, LEAD_TIME)
    names = np.asarray(da[STATION].values, dtype=str)
    da = da.drop_vars([STATION])
    ds = da.to_dataset(name=name)
    ds = ds.assign_coords(
        station_name=(STATION, names, {"cf_role": "timeseries_id", "long_name": "station"}),
    )
    ds["latitude"].attrs.update(standard_name="latitude", units="degrees_north")
    ds["longitude"].attrs.update(standard_name="longitude", units="degrees_east")
    ds[ISSUE_TIME].attrs.update(
        standard_name="forecast_reference_time", long_name="issue time (time of the last input)"
    )
    ds[LEAD_TIME].attrs.update(standard_name="forecast_period", long_name="lead time")
    ds[VALID_TIME].attrs.update(standard_name="time", long_name="valid time")
    ds[name].attrs.pop("nowcast_method", None)
    now = pd.Timestamp.now(tz="UTC")
    ds.attrs = {
        "Conventions": "CF-1.8",
        "featureType": FEATURE_TYPE,
        "title": f"{name} forecast at points ({method})",
        "source": f"nowcast {__version__}, method {method}",
        "nowcast_method": method,
        "history": f"{now:%Y-%m-%dT%H:%M:%SZ} created by nowcast {__version__}",
    }
    if forecast.attrs.get("attribution"):
        ds.attrs["attribution"] = str(forecast.attrs["attribution"])
    for key, value in (metadata or {}).items():
        ds.attrs[f"nowcast_{key}"] = (
            value if isinstance(value, (str, int, float)) else json.dumps(value, default=str)
        )
    ds[name].encoding.update({"dtype": "float32", "_FillValue": np.float32(np.nan)})
    ds[LEAD_TIME].encoding.update({"units": "minutes", "dtype": "int32", "_FillValue": None})
    for coord in (ISSUE_TIME, VALID_TIME):
        ds[coord].encoding.update(
            {
                "units": "seconds since 1970-01-01 00:00:00",
                "calendar": "proleptic_gregorian",
                "dtype": "int64",
                "_FillValue": None,
            }
        )
    for coord in ("latitude", "longitude"):
        ds[coord].encoding["_FillValue"] = None
    return ds


def to_csv_text(forecast: xr.DataArray) -> str:
    """The CSV form (:data:`CSV_COLUMNS`) of a ``(station, issue_time, lead_time)`` forecast."""
    da = forecast.transpose(STATION, ISSUE_TIME, LEAD_TIME)
    n_st, n_is, n_ld = da.shape
    minutes = da[LEAD_TIME].values / np.timedelta64(1, "m")
    table = pd.DataFrame(
        {
            "station": np.repeat(da[STATION].values.astype(str), n_is * n_ld),
            "latitude": np.repeat(da["latitude"].values, n_is * n_ld),
            "longitude": np.repeat(da["longitude"].values, n_is * n_ld),
            "method": da.attrs.get("nowcast_method", "forecast"),
            "issue_time": np.tile(np.repeat(da[ISSUE_TIME].values, n_ld), n_st),
            "lead_minutes": np.tile(minutes, n_st * n_is),
            "valid_time": np.tile(da[VALID_TIME].values.ravel(), n_st),
            "value": da.values.ravel(),
        }
    )
    return table.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ", float_format="%.6g")


def write_series_forecast(
    forecast: xr.DataArray,
    path: str | os.PathLike,
    *,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = True,
) -> list[Path]:
    """Write the NetCDF file at ``path`` and the CSV beside it (:func:`csv_path`), each
    atomically; returns both paths."""
    path = Path(path)
    method = str(forecast.attrs.get("nowcast_method", "forecast"))
    ds = to_dataset(forecast, method=method, metadata=metadata)
    text = to_csv_text(forecast)
    with atomic_output(path, exclusive=not overwrite) as tmp:
        with interrupts_held():
            ds.to_netcdf(tmp, engine="netcdf4")
    return [path, write_atomic(csv_path(path), text)]


def is_series_forecast(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a series forecast file (timeSeries with issue and lead times)."""
    path = Path(path)
    if path.suffix.lower() not in (".nc", ".nc4") or not path.is_file():
        return False
    try:
        with xr.open_dataset(path, decode_times=False) as ds:
            return str(ds.attrs.get("featureType", "")).lower() == "timeseries" and {
                STATION,
                ISSUE_TIME,
                LEAD_TIME,
            } <= set(ds.dims)
    except (OSError, ValueError):
        return False


def read_series_forecast(path: str | os.PathLike) -> xr.DataArray:
    """A series forecast file as the ``(station, issue_time, lead_time)`` DataArray
    (coordinates ``station`` = names, ``latitude``, ``longitude``, ``valid_time``; attrs
    with ``nowcast_method``)."""
    path = Path(path)
    if not is_series_forecast(path):
        raise DataError(
            f"{path} is not a series forecast (CF timeSeries with issue_time, "
            "lead_time and station)"
        )
    ds = xr.load_dataset(path)
    names = [k for k, v in ds.data_vars.items() if set(v.dims) == {STATION, ISSUE_TIME, LEAD_TIME}]
    if len(names) != 1:
        raise DataError(f"{path}: expected one forecast variable, found {names}")
    da = ds[names[0]].transpose(STATION, ISSUE_TIME, LEAD_TIME)
    da = da.assign_coords({STATION: ds["station_name"].values.astype(str)})
    da = da.drop_vars("station_name")
    da.attrs["nowcast_method"] = str(ds.attrs.get("nowcast_method", path.stem))
    if "attribution" in ds.attrs:
        da.attrs["attribution"] = ds.attrs["attribution"]
    return da
