"""Forecasting series: a trained series model (:class:`SeriesModel`) and any method at many
issue times (:func:`forecast_series`), as one ``(station, issue_time, lead_time)`` array.

:class:`SeriesModel` loads a run directory written by ``nowcast train`` for a config with
``model.kind: series`` (or a shipped one, e.g. ``t2m-series``): its ``metadata.json`` says
the variable, units, step, input window, strategy and normalisation. Leads past the
network's ``t_out`` are forecast by feeding its outputs back in (always so for the
``recursive`` strategy, one step at a time).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import ISSUE_TIME, LEAD_TIME, VALID_TIME, as_time, lead_times
from nowcast.errors import NowcastError
from nowcast.series.data import Series
from nowcast.series.methods import SeriesMethod, lagged_values
from nowcast.series.readers import convert_units
from nowcast.trained.catalogue import resolve_model_file
from nowcast.trained.rundir import RunDir

__all__ = ["STATION", "SeriesModel", "forecast_series", "is_series_model", "series_forecast"]

STATION = "station"
MODEL_KIND = "series"


def is_series_model(spec) -> bool:
    """Whether the model ``spec`` (run directory, ``.keras`` file or shipped name) is a
    series model (its metadata's ``model_kind``)."""
    meta = RunDir(resolve_model_file(spec).parent).read_metadata()
    return meta.get("model_kind") == MODEL_KIND


class SeriesModel:
    """A trained series model as a :class:`~nowcast.series.methods.SeriesMethod`."""

    def __init__(self, spec, *, name: str | None = None):
        path = resolve_model_file(spec)
        self.run = RunDir(path.parent)
        meta = self.run.read_metadata()
        if meta.get("model_kind") != MODEL_KIND:
            raise NowcastError(
                f"{self.run.path} is a gridded model; --point with a gridded model: forecast the "
                "grid (nowcast predict) and read it there (render --point, evaluate)"
            )
        self.metadata: Mapping[str, Any] = meta
        self.t_in, self.t_out = int(meta["t_in"]), int(meta["t_out"])
        self.step = pd.Timedelta(seconds=float(meta["time_step_seconds"]))
        self.units = str(meta["units"])
        self.strategy = str(meta.get("strategy", "direct"))
        self.time_features = bool(meta.get("time_features", True))
        norm = meta["normalisation"]
        self.mean, self.std = float(norm["mean"]), float(norm["std"])
        self.name = name or Path(self.run.path).name
        from nowcast.model import load_model  # Keras: imported when a model is used

        self.model = load_model(path)

    def history(self, step) -> pd.Timedelta:
        return (self.t_in - 1) * self.step

    def _predict(self, windows: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Changes (physical units) over the network's outputs, for ``windows (n, t_in)``
        ending at ``times (n,)``."""
        from nowcast.series.network import encode_windows, time_features

        feats = None
        if self.time_features:
            steps = (np.arange(self.t_in) - self.t_in + 1) * self.step.to_timedelta64()
            when = times[:, None] + steps[None, :]
            feats = time_features(when.ravel()).reshape(len(times), self.t_in, -1)
        x = encode_windows(windows, feats, self.mean, self.std)
        out = self.model.predict(x, batch_size=4096, verbose=0) if len(x) else np.zeros((0, 1))
        return np.asarray(out, dtype=np.float64) * self.std

    def forecast(self, series: Series, issue_idx, n_leads: int) -> np.ndarray:
        if series.step != self.step:
            raise NowcastError(
                f"{self.name} was trained on a step of {self.step}; the series' step is "
                f"{series.step}"
            )
        series = convert_units(series, self.units)
        issue_idx = np.asarray(issue_idx)
        offsets = [(k - self.t_in + 1) * self.step for k in range(self.t_in)]
        win = lagged_values(series, issue_idx, offsets)  # (station, issue, t_in)
        n_st, n_is = win.shape[:2]
        win = win.reshape(n_st * n_is, self.t_in)
        times = np.tile(series.times.values[issue_idx], n_st)
        ok = np.isfinite(win).all(axis=1)
        out = np.full((n_st * n_is, n_leads), np.nan)
        history, when, done = win[ok], times[ok], 0
        while done < n_leads:
            change = self._predict(history[:, -self.t_in :], when)
            block = history[:, -1:] + change
            take = min(block.shape[1], n_leads - done)
            out[ok, done : done + take] = block[:, :take]
            history = np.concatenate([history, block[:, :take]], axis=1)
            when = when + take * self.step.to_timedelta64()
            done += take
        return out.reshape(n_st, n_is, n_leads)


def duration(td) -> str:
    """A time span as ``25 h`` or ``90 min``."""
    minutes = pd.Timedelta(td) / pd.Timedelta("1min")
    return f"{minutes / 60:g} h" if minutes % 60 == 0 else f"{minutes:g} min"


def series_forecast(
    values: np.ndarray,
    series: Series,
    issue_times,
    step,
    *,
    method: str,
) -> xr.DataArray:
    """The forecast array ``(station, issue_time, lead_time)`` of ``values`` for ``series``'
    stations."""
    issue_times = pd.DatetimeIndex(issue_times)
    leads = lead_times(values.shape[-1], step)
    valid = issue_times.values[:, None] + leads[None, :]
    da = xr.DataArray(
        values.astype(np.float32),
        dims=(STATION, ISSUE_TIME, LEAD_TIME),
        coords={
            STATION: np.asarray(series.names, dtype=str),
            "latitude": (STATION, np.asarray(series.latitude, dtype=np.float64)),
            "longitude": (STATION, np.asarray(series.longitude, dtype=np.float64)),
            ISSUE_TIME: issue_times.values,
            LEAD_TIME: leads,
            VALID_TIME: ((ISSUE_TIME, LEAD_TIME), valid),
        },
        name=series.variable,
        attrs={**dict(series.attrs), "units": series.units, "nowcast_method": method},
    )
    da.attrs.pop("source_file", None)
    return da


def forecast_series(
    method: SeriesMethod, series: Series, issue_times, n_leads: int, *, strict: bool = True
) -> xr.DataArray:
    """``method``'s forecasts of every station at ``issue_times`` (which must be times of
    the series). ``strict``: an issue time without the method's input window (too early
    in the series, after a gap, or a missing value at every station) is a one-line error;
    otherwise its forecasts are NaN."""
    times = pd.DatetimeIndex([as_time(t) for t in issue_times])
    if len(times) == 0:
        raise NowcastError("give --issue-time TIME (repeatable) or a range --start/--end/--every")
    idx = series.times.get_indexer(times)
    if (idx < 0).any():
        t = times[int(np.flatnonzero(idx < 0)[0])]
        raise NowcastError(
            f"issue time {t:%Y-%m-%dT%H:%M} is not a time of the series "
            f"({series.times[0]:%Y-%m-%dT%H:%M} to {series.times[-1]:%Y-%m-%dT%H:%M})"
        )
    step = series.step
    need = method.history(step)
    n_need = int(need / step) + 1
    if need > series.times[-1] - series.times[0]:
        raise NowcastError(
            f"the series holds {len(series.times)} times; {method.name} needs {n_need} (its "
            f"input window: the issue time and {duration(need)} before it)"
        )
    values = method.forecast(series, idx, n_leads)
    if strict:
        empty = ~np.isfinite(values).any(axis=(0, 2))
        if empty.any():
            t = times[int(np.flatnonzero(empty)[0])]
            raise NowcastError(
                f"issue time {t:%Y-%m-%dT%H:%M}: no station has the {n_need} values up to it "
                f"without a gap ({duration(need)}) that {method.name} needs"
            )
    return series_forecast(values, series, times, step, method=method.name)
