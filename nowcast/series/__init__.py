"""Time series at a point: recurrent (LSTM, GRU) forecasters of 1-D weather series, the
baselines a forecaster uses, their forecast files and scores.

Modules: :mod:`~nowcast.series.data` (:class:`Series`, series from gridded archives at
points or at every grid point, windows that never cross a gap),
:mod:`~nowcast.series.readers` (station files: CSV, CF timeSeries NetCDF),
:mod:`~nowcast.series.methods` (the interface, the registry, persistence and diurnal
persistence), :mod:`~nowcast.series.ets` (Holt-Winters exponential smoothing, statsmodels),
:mod:`~nowcast.series.network` (the Keras network), :mod:`~nowcast.series.train`
(``nowcast train`` with ``model.kind: series``), :mod:`~nowcast.series.forecast`
(:class:`SeriesModel`, :func:`forecast_series`), :mod:`~nowcast.series.products` (CF
timeSeries NetCDF and CSV), :mod:`~nowcast.series.scores` (MAE, RMSE, bias per lead) and
:mod:`~nowcast.series.run` (what ``nowcast predict`` and ``evaluate`` do with series).
Names are imported on first use (Keras and statsmodels only when a model is used).
"""

from __future__ import annotations

from nowcast.lazy import lazy_exports

_EXPORTS = {
    "Series": "nowcast.series.data",
    "all_points": "nowcast.series.data",
    "make_series": "nowcast.series.data",
    "series_at_points": "nowcast.series.data",
    "window_starts": "nowcast.series.data",
    "read_series": "nowcast.series.readers",
    "get_series_method": "nowcast.series.methods",
    "series_methods": "nowcast.series.methods",
    "SeriesModel": "nowcast.series.forecast",
    "forecast_series": "nowcast.series.forecast",
    "is_series_model": "nowcast.series.forecast",
    "read_series_forecast": "nowcast.series.products",
    "write_series_forecast": "nowcast.series.products",
    "evaluate_series": "nowcast.series.scores",
    "train_series": "nowcast.series.train",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
