"""Series forecast methods: one interface, a registry, and the baselines a forecaster uses.

A method forecasts every station of a :class:`~nowcast.series.data.Series` at several
issue times in one call: ``forecast(series, issue_idx, n_leads) -> (station, issue,
lead)`` float array, ``issue_idx`` the indices of the issue times in ``series.times``.
Lead ``j`` (1-based) is valid at ``issue + j * step``. A method reads only values at or
before each issue time (tested), and gives NaN where the values it needs are missing.
``history(step)`` is how far back it reads (the input window).

Baselines (:func:`get_series_method` by name):

* ``persistence``: the value at the issue time, at every lead.
* ``diurnal``: the value one day before the valid time (``x(t + j - 24 h)``; two days for
  leads past a day).
* ``diurnal-tendency``: the same plus the last day's change, ``x(t) - x(t - 24 h)``.
* ``ets``: additive Holt-Winters exponential smoothing with a damped trend and a daily
  season (:mod:`nowcast.series.ets`, fitted per station with statsmodels).

The trained recurrent models are :class:`nowcast.series.forecast.SeriesModel`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from nowcast.errors import NowcastError
from nowcast.series.data import Series

__all__ = [
    "DAY",
    "SeriesMethod",
    "get_series_method",
    "lagged_values",
    "register_series_method",
    "series_methods",
]

DAY = pd.Timedelta("24h")
_REGISTRY: dict[str, Callable[..., SeriesMethod]] = {}


@runtime_checkable
class SeriesMethod(Protocol):
    name: str

    def history(self, step: pd.Timedelta) -> pd.Timedelta:
        """How far before the issue time the method reads (0: the issue time's value only)."""
        ...

    def forecast(self, series: Series, issue_idx: np.ndarray, n_leads: int) -> np.ndarray:
        """``(station, issue, lead)`` forecasts at ``series.times[issue_idx]``."""
        ...


def register_series_method(name: str):
    def decorator(factory):
        _REGISTRY[name] = factory
        return factory

    return decorator


def series_methods() -> list[str]:
    """The registered series methods' names."""
    return sorted(_REGISTRY)


def get_series_method(name: str, **options) -> SeriesMethod:
    factory = _REGISTRY.get(name)
    if factory is None:
        raise NowcastError(
            f"unknown series method {name!r} (series methods: {', '.join(series_methods())}; "
            "or --model for a trained series model)"
        )
    return factory(**options)


def lagged_values(series: Series, issue_idx: np.ndarray, offsets) -> np.ndarray:
    """``(station, issue, k)``: the values at ``times[issue] + offsets[k]`` (NaN where that
    time is not in the series)."""
    times = series.times.values
    want = (
        times[issue_idx][:, None]
        + np.asarray([pd.Timedelta(o).to_timedelta64() for o in offsets], dtype="timedelta64[ns]")[
            None, :
        ]
    )
    pos = np.searchsorted(times, want.ravel()).reshape(want.shape)
    pos = np.clip(pos, 0, len(times) - 1)
    found = times[pos] == want
    out = series.values[:, pos].astype(np.float64)  # (station, issue, k)
    out[:, ~found] = np.nan
    return out


def _leads(series: Series, n_leads: int) -> list[pd.Timedelta]:
    step = series.step
    return [j * step for j in range(1, n_leads + 1)]


def _day_back(lead: pd.Timedelta) -> pd.Timedelta:
    """The offset from the issue time of the same time of day on the last day observed."""
    days = int(np.ceil(lead / DAY)) if lead > pd.Timedelta(0) else 1
    return lead - days * DAY


@register_series_method("persistence")
class Persistence:
    name = "persistence"

    def history(self, step) -> pd.Timedelta:
        return pd.Timedelta(0)

    def forecast(self, series: Series, issue_idx, n_leads: int) -> np.ndarray:
        last = series.values[:, issue_idx].astype(np.float64)
        return np.repeat(last[:, :, None], n_leads, axis=2)


@register_series_method("diurnal")
class DiurnalPersistence:
    """The value at the same time of day one day earlier (``tendency``: plus the change over
    the last day, ``x(t) - x(t - 24 h)``)."""

    name = "diurnal"

    def __init__(self, tendency: bool = False):
        self.tendency = bool(tendency)
        self.name = "diurnal-tendency" if tendency else "diurnal"

    def history(self, step) -> pd.Timedelta:
        return DAY

    def forecast(self, series: Series, issue_idx, n_leads: int) -> np.ndarray:
        offsets = [_day_back(lead) for lead in _leads(series, n_leads)]
        out = lagged_values(series, issue_idx, offsets)
        if self.tendency:
            now = lagged_values(series, issue_idx, [pd.Timedelta(0), -DAY])
            out = out + (now[..., :1] - now[..., 1:])
        return out


@register_series_method("diurnal-tendency")
def diurnal_tendency() -> DiurnalPersistence:
    return DiurnalPersistence(tendency=True)


@register_series_method("ets")
def ets(**options):
    from nowcast.series.ets import HoltWinters  # statsmodels: imported when used

    return HoltWinters(**options)
