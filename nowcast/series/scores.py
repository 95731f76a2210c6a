"""Scores of series forecasts: MAE, RMSE, bias and correlation per lead, pooled like
:func:`nowcast.verify.evaluate` (sums over every station and issue time, in
:class:`nowcast.verify.metrics.ContinuousSums`, never means of per-issue scores).

:func:`evaluate_series` takes ``(station, issue_time, lead_time)`` forecasts (one per
method) and the observed :class:`~nowcast.series.data.Series`, matched by station name,
and returns the table of :data:`nowcast.verify.COLUMNS`, so the report writer and the
terminal tables of ``nowcast evaluate`` serve both. A gridded forecast is read at the
stations with :func:`at_stations` (the nearest pixel), so a series model and the gridded
ConvLSTM are scored on the same points. With ``common_mask`` a value counts only where
every method that forecast that issue time and lead has one.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import ISSUE_TIME, LEAD_TIME, VALID_TIME, X, Y
from nowcast.errors import NowcastError
from nowcast.series.data import Series, grid_index
from nowcast.series.forecast import STATION
from nowcast.verify.metrics import CONTINUOUS_METRICS, ContinuousSums
from nowcast.verify.scores import COLUMNS

__all__ = ["at_stations", "evaluate_series", "observed"]


def at_stations(forecast: xr.DataArray, stations: xr.DataArray) -> xr.DataArray:
    """A gridded ``(issue_time, lead_time, y, x)`` forecast at the stations of the series
    forecast ``stations`` (nearest pixel), as a ``(station, issue_time, lead_time)``
    forecast; a station outside the grid (or without a position) is a one-line error."""
    lat, lon = stations["latitude"].values, stations["longitude"].values
    names = [str(s) for s in stations[STATION].values]
    if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
        raise NowcastError(
            "the series forecast's stations have no latitude/longitude: a "
            "gridded forecast cannot be read there"
        )
    where = [grid_index(forecast, a, o, n) for n, a, o in zip(names, lat, lon)]
    fc = forecast.transpose(ISSUE_TIME, LEAD_TIME, Y, X)
    iy = xr.DataArray([w[0] for w in where], dims=STATION)
    ix = xr.DataArray([w[1] for w in where], dims=STATION)
    out = fc.isel({Y: iy, X: ix}).transpose(STATION, ISSUE_TIME, LEAD_TIME)
    out = out.drop_vars([c for c in out.coords if c not in (ISSUE_TIME, LEAD_TIME, VALID_TIME)])
    out = out.assign_coords(
        {STATION: names, "latitude": (STATION, lat), "longitude": (STATION, lon)}
    )
    return out.load()


def observed(forecast: xr.DataArray, truth: Series) -> np.ndarray:
    """``(station, issue, lead)``: the observed values at the forecast's valid times, at its
    stations (by name; a station the truth lacks is a one-line error)."""
    index = {name: i for i, name in enumerate(truth.names)}
    names = [str(s) for s in forecast[STATION].values]
    missing = [n for n in names if n not in index]
    if missing:
        raise NowcastError(
            f"station {missing[0]!r} is not in the observed series (stations: "
            f"{', '.join(truth.names[:5])}{', ...' if truth.n_stations > 5 else ''})"
        )
    sub = truth.stations(np.asarray([index[n] for n in names], dtype=int))
    issues = np.asarray(forecast[ISSUE_TIME].values, dtype="datetime64[ns]")
    leads = np.asarray(forecast[LEAD_TIME].values, dtype="timedelta64[ns]")
    valid = (issues[:, None] + leads[None, :]).ravel()
    times = sub.times.values
    pos = np.clip(np.searchsorted(times, valid), 0, len(times) - 1)
    out = sub.values[:, pos].astype(np.float64)
    out[:, times[pos] != valid] = np.nan
    return out.reshape(sub.n_stations, len(issues), len(leads))


def evaluate_series(
    forecasts: Mapping[str, xr.DataArray], truth: Series, *, common_mask: bool = True
) -> pd.DataFrame:
    """Scores per method and lead (:data:`nowcast.verify.COLUMNS`; continuous metrics,
    threshold NaN, scale <NA>), pooled over stations and issue times."""
    if not forecasts:
        raise NowcastError("no forecasts to evaluate")
    issues = sorted(set().union(*(set(fc[ISSUE_TIME].values) for fc in forecasts.values())))
    leads = sorted(set().union(*(set(fc[LEAD_TIME].values) for fc in forecasts.values())))
    stations = None
    for fc in forecasts.values():
        names = [str(s) for s in fc[STATION].values]
        stations = names if stations is None else [s for s in stations if s in set(names)]
    if not stations:
        raise NowcastError("the forecasts share no station")
    grid = {}
    for m, fc in forecasts.items():
        fc = fc.assign_coords({STATION: [str(s) for s in fc[STATION].values]})
        grid[m] = fc.sel({STATION: stations}).reindex({ISSUE_TIME: issues, LEAD_TIME: leads})
    template = next(iter(grid.values()))
    obs = observed(template, truth)
    present = {
        m: np.isin(np.asarray(issues)[:, None], fc[ISSUE_TIME].values)
        & np.isin(np.asarray(leads)[None, :], fc[LEAD_TIME].values)
        for m, fc in forecasts.items()
    }  # (issue, lead): the method forecast it
    values = {m: np.asarray(g.values, dtype=np.float64) for m, g in grid.items()}
    valid = {m: np.isfinite(v) & np.isfinite(obs) for m, v in values.items()}
    if common_mask and len(values) > 1:
        common = np.logical_and.reduce(
            [valid[m] | ~present[m][None] for m in values] + [np.isfinite(obs)]
        )
        valid = {m: common & present[m][None] for m in values}
    minutes = np.asarray(leads, dtype="timedelta64[ns]") / np.timedelta64(1, "m")
    rows = []
    for m, v in values.items():
        sums = ContinuousSums.zeros(len(leads))
        for j in range(len(leads)):
            sums.add(v[:, :, j], obs[:, :, j], valid[m][:, :, j], lead=j)
        n_issues = valid[m].any(axis=0).sum(axis=0)
        keep = present[m].any(axis=0)
        for metric in CONTINUOUS_METRICS:
            scores = metric.compute(sums)
            rows += [
                (
                    m,
                    float(minutes[j]),
                    metric.name,
                    np.nan,
                    pd.NA,
                    float(scores[j]),
                    int(n_issues[j]),
                )
                for j in range(len(leads))
                if keep[j]
            ]
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["threshold"] = df["threshold"].astype("float64")
    df["scale"] = df["scale"].astype("Int64")
    df.attrs["units"] = truth.units
    df.attrs["stations"] = len(stations)
    return df
