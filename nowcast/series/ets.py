"""The statistical baseline: additive Holt-Winters exponential smoothing with a daily season.

Per station, statsmodels' ``ExponentialSmoothing(trend="add", damped_trend=True,
seasonal="add", seasonal_periods=<steps per day>)`` is fitted on the fit period (by default
everything before the first issue time; the benchmark gives the training period), with the
heuristic initial states. Its level ``l``, damped trend ``b`` and seasonal terms ``s`` are
then run forward over the whole series with those parameters (statsmodels' recursions,
vectorised over stations)::

    l_t = a (y_t - s_{t-m}) + (1 - a)(l_{t-1} + phi b_{t-1})
    b_t = beta (l_t - l_{t-1}) + (1 - beta) phi b_{t-1}
    s_t = g (y_t - l_{t-1} - phi b_{t-1}) + (1 - g) s_{t-m}

so each issue time's forecast uses the observations up to it only:
``l_t + (phi + ... + phi^h) b_t + s_{t+h-m}`` (the textbook formula; statsmodels' own
``forecast`` equals it except at lead ``m``, where it takes the season term from before the
last update). A missing observation (NaN, or a gap in the
time axis, which is filled onto the regular step) is replaced by its one-step forecast,
so the states carry on through it. The fit itself fills missing values linearly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from nowcast.errors import NowcastError
from nowcast.series.data import Series

__all__ = ["HoltWinters", "fit_station", "run_states"]


def fit_station(y: np.ndarray, m: int) -> np.ndarray:
    """Parameters ``[alpha, beta, gamma, phi, l0, b0, s0 .. s_{m-1}]`` of one station's fit
    (NaN for a station that cannot be fitted: too few values)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing  # heavy: imported when used

    y = pd.Series(np.asarray(y, dtype=np.float64)).interpolate(limit_direction="both").to_numpy()
    if not np.isfinite(y).all() or len(y) < 2 * m + 2:
        return np.full(6 + m, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter
        model = ExponentialSmoothing(
            y,
            trend="add",
            damped_trend=True,
            seasonal="add",
            seasonal_periods=m,
            initialization_method="heuristic",
        )
        p = model.fit().params
    return np.concatenate(
        [
            [p["smoothing_level"], p["smoothing_trend"], p["smoothing_seasonal"]],
            [p["damping_trend"], p["initial_level"], p["initial_trend"]],
            np.asarray(p["initial_seasons"], dtype=np.float64),
        ]
    )


def run_states(params: np.ndarray, y: np.ndarray, m: int):
    """Run the recursions over ``y (station, time)`` (NaN: no observation) with ``params
    (station, 6 + m)``: ``(level, trend, season)`` after each time, shaped ``(station,
    time)``, ``(station, time)`` and ``(station, time + m)``: ``season[:, t]`` is the
    seasonal term of time ``t``, computed after time ``t - m`` (the first ``m`` are the
    initial ones)."""
    alpha, beta, gamma, phi, l0, b0 = (params[:, k] for k in range(6))
    n_st, n = y.shape
    level = np.empty((n_st, n))
    trend = np.empty((n_st, n))
    season = np.empty((n_st, n + m))
    season[:, :m] = params[:, 6:]
    lev, tr = l0.copy(), b0.copy()
    for t in range(n):
        s_old = season[:, t]
        pred = lev + phi * tr + s_old
        obs = np.where(np.isfinite(y[:, t]), y[:, t], pred)
        new_lev = alpha * (obs - s_old) + (1 - alpha) * (lev + phi * tr)
        new_tr = beta * (new_lev - lev) + (1 - beta) * phi * tr
        season[:, t + m] = gamma * (obs - lev - phi * tr) + (1 - gamma) * s_old
        lev, tr = new_lev, new_tr
        level[:, t], trend[:, t] = lev, tr
    return level, trend, season


class HoltWinters:
    """``ets``: Holt-Winters (additive, damped trend, daily season), fitted per station.

    ``fit_end``: the last time of the fit period (default: the first issue time). The
    fitted parameters are kept (``params``) for the stations of the last fit, so forecasts
    of more issue times of the same series reuse them.
    """

    name = "ets"

    def __init__(self, fit_end=None, period: str = "24h"):
        self.fit_end = None if fit_end is None else pd.Timestamp(fit_end)
        self.period = pd.Timedelta(period)
        self.params: np.ndarray | None = None
        self._fitted_on: tuple | None = None

    def history(self, step) -> pd.Timedelta:
        return 2 * self.period  # at least two seasons to fit

    def _regular(self, series: Series):
        step = series.step
        m = int(round(self.period / step))
        if m < 2 or abs(m * step - self.period) > step / 10:
            raise NowcastError(f"ets needs a step that divides {self.period} (the series: {step})")
        grid = pd.date_range(series.times[0], series.times[-1], freq=step)
        if len(grid) > 50 * len(series.times):
            raise NowcastError("ets: the series' times are too irregular to put on one step")
        pos = grid.get_indexer(series.times)
        y = np.full((series.n_stations, len(grid)), np.nan)
        ok = pos >= 0
        y[:, pos[ok]] = series.values[:, ok]
        return grid, y, m

    def fit(self, series: Series, end) -> np.ndarray:
        """Fit every station on ``series`` up to ``end``; returns the parameters."""
        grid, y, m = self._regular(series)
        n_fit = int(np.searchsorted(grid.values, pd.Timestamp(end).to_datetime64(), "right"))
        if n_fit < 2 * m + 2:
            raise NowcastError(
                f"ets: {n_fit} times up to {pd.Timestamp(end)} to fit on; it needs at least "
                f"{2 * m + 2} (two days and a bit)"
            )
        self.params = np.stack([fit_station(row[:n_fit], m) for row in y])
        self._fitted_on = (series.names, grid[0], pd.Timestamp(end))
        return self.params

    def forecast(self, series: Series, issue_idx, n_leads: int) -> np.ndarray:
        issue_idx = np.asarray(issue_idx)
        end = self.fit_end if self.fit_end is not None else series.times[issue_idx.min()]
        grid, y, m = self._regular(series)
        if self._fitted_on != (series.names, grid[0], pd.Timestamp(end)):
            self.fit(series, end)
        level, trend, season = run_states(self.params, y, m)
        at = grid.get_indexer(series.times[issue_idx])  # issue indices on the regular grid
        phi = self.params[:, 3][:, None]
        out = np.empty((series.n_stations, len(at), n_leads))
        for j in range(1, n_leads + 1):
            damp = sum(phi**k for k in range(1, j + 1))
            # the season term of time at + j: stored at index at + j (see run_states), or
            # for leads past a season, the last one computed for that time of day
            k = at + j - m * int(np.ceil(max(j - m, 0) / m))
            out[:, :, j - 1] = level[:, at] + damp * trend[:, at] + season[:, k]
        return out
