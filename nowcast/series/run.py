"""What the commands do with series: ``nowcast predict --point`` (or a station file),
``nowcast evaluate`` of series forecasts and ``nowcast render --point`` of them.

Every input is read and checked, and every output checked (never an input; an existing
one only with ``--overwrite``), before the first file is written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.archive.reader import open_archive, source_files
from nowcast.archive.timeaxis import select_issue_times
from nowcast.conventions import ISSUE_TIME, LEAD_TIME, VALID_TIME
from nowcast.errors import NowcastError
from nowcast.fileio import check_output
from nowcast.series.data import Series, all_points, series_at_points
from nowcast.series.forecast import STATION, SeriesModel, forecast_series, is_series_model
from nowcast.series.methods import get_series_method
from nowcast.series.products import csv_path, read_series_forecast, write_series_forecast
from nowcast.series.readers import convert_units, is_station_file, read_series
from nowcast.series.scores import at_stations, evaluate_series
from nowcast.trained.catalogue import resolve_model_file
from nowcast.trained.rundir import RunDir

__all__ = [
    "SeriesAtPoints",
    "evaluate_files",
    "load_input_series",
    "predict_series_to_file",
    "wants_series",
]

#: Points as ``(name, lat, lon)``; ``None`` for ``--point all`` (every grid point).
Points = Sequence[tuple[str, float, float]] | None


def wants_series(inputs, points, model) -> bool:
    """Whether ``nowcast predict`` forecasts series: ``--point`` given, a station file as
    input, or a series model."""
    if points:
        return True
    if len(inputs) == 1 and is_station_file(inputs[0]):
        return True
    if model is None:
        return False
    try:
        return is_series_model(model)
    except NowcastError:  # not a model at all: the gridded path says why, in its words
        return False


def load_input_series(
    inputs, points: Points, *, variable=None, column=None, units=None, kind="auto"
) -> tuple[Series, list]:
    """The series to forecast and the files read: a station file (``points`` choose
    stations by name) or a gridded archive at ``points`` (``None``: every grid point)."""
    if len(inputs) == 1 and is_station_file(inputs[0]):
        series = read_series(inputs[0], column=column or variable, units=units)
        if points:
            index = {n.lower(): i for i, n in enumerate(series.names)}
            missing = [p[0] for p in points if p[0].lower() not in index]
            if missing:
                raise NowcastError(
                    f"{inputs[0]} has no station {missing[0]!r} (stations: "
                    f"{', '.join(series.names[:8])})"
                )
            series = series.stations(np.asarray([index[p[0].lower()] for p in points]))
        return series, [inputs[0]]
    if column is not None or units is not None:
        raise NowcastError("--column and --units are for station files (CSV, timeSeries NetCDF)")
    if points is not None and not points:
        raise NowcastError(
            "a series forecast is made at points: give --point LAT,LON|NAME "
            "(repeatable) or --point all, or a station file as --input"
        )
    archive = open_archive(list(inputs), variable=variable, kind=kind, chunks="auto")
    if points is None:
        series = all_points(archive, source=str(inputs[0]))
    else:
        series = series_at_points(archive, points, source=str(inputs[0]))
    return series, [*inputs, *source_files(archive)]


def predict_series_to_file(
    inputs,
    points: Points,
    issue_times,
    output,
    *,
    model=None,
    method: str | None = None,
    variable=None,
    column=None,
    units=None,
    kind="auto",
    n_leads: int | None = None,
    start=None,
    end=None,
    every=None,
    overwrite: bool = False,
) -> list[Path]:
    """Forecast the series and write the CF timeSeries NetCDF ``output`` and its CSV."""
    output = Path(output)
    if output.suffix.lower() != ".nc":
        raise NowcastError(
            f"--output {output}: a series forecast is a NetCDF file (name.nc; "
            "the CSV is written beside it)"
        )
    if model is not None and method not in (None, "convlstm", "series"):
        raise NowcastError(f"give --model or --method {method}, not both")
    if model is not None:
        forecaster = SeriesModel(model)
        model_file = resolve_model_file(model)
        model_files = [model_file, RunDir(model_file.parent).metadata]
    elif method is not None:
        forecaster, model_files = get_series_method(method), []
    else:
        raise NowcastError(
            "give --model (a series model, e.g. t2m-series) or --method "
            "(persistence, diurnal, diurnal-tendency, ets)"
        )
    series, read = load_input_series(
        inputs, points, variable=variable, column=column, units=units, kind=kind
    )
    if isinstance(forecaster, SeriesModel):
        series = convert_units(series, forecaster.units)
    for path in (output, csv_path(output)):
        check_output(path, [*read, *model_files], overwrite=overwrite)
    times = select_issue_times(series.times, issue_times, start=start, end=end, every=every)
    n_leads = n_leads or getattr(forecaster, "t_out", None) or 6
    fc = forecast_series(forecaster, series, times, n_leads)
    meta = {"model": str(model)} if model is not None else None
    return write_series_forecast(fc, output, metadata=meta, overwrite=overwrite)


def _named(loaded) -> dict[str, xr.DataArray]:
    """``{method: forecast}`` of ``[(path, forecast)]``; two of one method are told apart by
    their file names, as ``nowcast.verify.load_forecasts`` does."""
    names = [str(fc.attrs.get("nowcast_method", p.stem)) for p, fc in loaded]
    out = {}
    for (path, fc), name in zip(loaded, names):
        key = name if names.count(name) == 1 else f"{name} ({path.stem})"
        if key in out:
            raise NowcastError(f"forecast file {path} is given twice")
        out[key] = fc
    return out


def evaluate_files(
    forecasts,
    truth,
    *,
    variable=None,
    kind="auto",
    issue_times=(),
    start=None,
    end=None,
    every=None,
    common_mask=True,
) -> tuple[pd.DataFrame, pd.Timestamp, list]:
    """Scores of the series forecast files among ``forecasts`` (and of the gridded ones, read
    at their stations) against ``truth`` (a station file, or a gridded archive read at the
    stations); returns ``(scores, truth's last time, files read)``."""
    from nowcast.series.products import is_series_forecast
    from nowcast.verify import load_forecasts

    series_paths = [Path(p) for p in forecasts if is_series_forecast(p)]
    first = read_series_forecast(series_paths[0])
    loaded = []
    for path in map(Path, forecasts):
        if path in series_paths:
            loaded.append((path, read_series_forecast(path)))
        else:  # a gridded forecast, read at the series' stations
            fc = next(iter(load_forecasts([path]).values()))
            loaded.append((path, at_stations(fc, first).assign_attrs(fc.attrs)))
    fcs = _chosen(_named(loaded), issue_times, start=start, end=end, every=every)
    names = [str(s) for s in first[STATION].values]
    if len(truth) == 1 and is_station_file(truth[0]):
        obs = read_series(truth[0], column=variable or first.name)
        read = [truth[0]]
    else:
        lat, lon = first["latitude"].values, first["longitude"].values
        if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
            raise NowcastError(
                "the series forecast's stations have no latitude/longitude: give "
                "the observations as a station file (--truth obs.csv)"
            )
        archive = open_archive(
            list(truth), variable=variable or first.name, kind=kind, chunks="auto"
        )
        obs = series_at_points(archive, list(zip(names, lat, lon)), source=str(truth[0]))
        read = [*truth, *source_files(archive)]
    units = first.attrs.get("units")
    if units and units != obs.units:
        obs = convert_units(obs, units)
    return evaluate_series(fcs, obs, common_mask=common_mask), obs.times[-1], read


def _chosen(fcs, explicit, *, start, end, every):
    if not explicit and start is None and end is None and every is None:
        return fcs
    available = sorted(set().union(*(set(fc[ISSUE_TIME].values) for fc in fcs.values())))
    wanted = select_issue_times(
        pd.DatetimeIndex(available), explicit, start=start, end=end, every=every
    )
    out = {m: fc.sel({ISSUE_TIME: fc[ISSUE_TIME].isin(wanted)}) for m, fc in fcs.items()}
    out = {m: fc for m, fc in out.items() if fc.sizes[ISSUE_TIME]}
    if not out:
        raise NowcastError("none of the chosen issue times is in the forecast files")
    return out


class SeriesAtPoints:
    """A series forecast file's rows at a point, for ``render --point`` (the station named
    like the point, else the nearest station within ``max_km``)."""

    def __init__(self, path: str | os.PathLike, *, max_km: float = 10.0):
        self.path = Path(path)
        self.forecast = read_series_forecast(path)
        self.method = str(self.forecast.attrs.get("nowcast_method", self.path.stem))
        self.max_km = max_km

    @property
    def attrs(self):
        return self.forecast.attrs

    def station(self, name: str, lat: float, lon: float) -> int:
        names = [str(s).lower() for s in self.forecast[STATION].values]
        if name.lower() in names:
            return names.index(name.lower())
        la = np.radians(self.forecast["latitude"].values)
        lo = np.radians(self.forecast["longitude"].values)
        p, q = math.radians(lat), math.radians(lon)
        d = 6371.0 * np.arccos(
            np.clip(np.sin(la) * math.sin(p) + np.cos(la) * math.cos(p) * np.cos(lo - q), -1, 1)
        )
        if not np.isfinite(d).any() or np.nanmin(d) > self.max_km:
            near = "" if not np.isfinite(d).any() else f" (nearest: {np.nanmin(d):.0f} km)"
            raise NowcastError(
                f"{self.path} has no station at {name} within {self.max_km:g} km{near}"
            )
        return int(np.nanargmin(d))

    def rows_at(self, name: str, lat: float, lon: float) -> list[tuple]:
        """``(method, issue_time, lead_minutes, valid_time, value)`` rows at the point."""
        one = self.forecast.isel({STATION: self.station(name, lat, lon)})
        minutes = one[LEAD_TIME].values / np.timedelta64(1, "m")
        rows = []
        for i, issue in enumerate(one[ISSUE_TIME].values):
            for j, lead in enumerate(minutes):
                rows.append(
                    (
                        self.method,
                        issue,
                        float(lead),
                        one[VALID_TIME].values[i, j],
                        float(one.values[i, j]),
                    )
                )
        return rows
