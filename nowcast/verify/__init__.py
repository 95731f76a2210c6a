"""Verification of forecasts against observations: pooled scores per method and lead time.

:func:`evaluate` (:mod:`~nowcast.verify.scores`) takes 4-D forecasts ``(issue_time,
lead_time, y, x)`` (one per method) and the observation archive ``(time, y, x)`` and returns
a tidy table of scores pooled over issue times (:mod:`~nowcast.verify.metrics` defines
them); :func:`nowcast.verify.report.write_report` writes it as CSV, Markdown and PNG plots.
Forecasts with members, exceedance probabilities or quantiles
(:class:`~nowcast.verify.probinputs.ProbabilisticForecast`) add CRPS, Brier score and skill,
ROC area (:mod:`~nowcast.verify.probabilistic`) and, through :func:`verification`, the
reliability, ROC and rank-histogram diagrams.
The default thresholds and FSS scales live here, for the CLI, the batch config and
:func:`evaluate`; the rest is imported on first use.
"""

from __future__ import annotations

from nowcast.lazy import lazy_exports

#: Event thresholds for precipitation (value >= threshold, mm h-1).
DEFAULT_THRESHOLDS = (0.5, 1.0, 5.0, 10.0)
#: FSS neighbourhood sizes, in pixels (odd).
DEFAULT_SCALES = (1, 5, 21)


def default_thresholds(kind: str) -> tuple[float, ...]:
    """The event thresholds scored by default for a kind of data.

    Precipitation: :data:`DEFAULT_THRESHOLDS` (mm h-1). Temperature (and any other field
    kept in its units): none, so only the continuous scores; give thresholds to score
    events, e.g. 273.15 K (0 degC).
    """
    return DEFAULT_THRESHOLDS if kind == "precipitation" else ()


_EXPORTS = {
    "COLUMNS": "nowcast.verify.scores",
    "ProbabilisticForecast": "nowcast.verify.probinputs",
    "Verification": "nowcast.verify.scores",
    "evaluate": "nowcast.verify.scores",
    "load_forecast_files": "nowcast.verify.scores",
    "load_forecasts": "nowcast.verify.scores",
    "verification": "nowcast.verify.scores",
}

__all__ = sorted([*_EXPORTS, "DEFAULT_SCALES", "DEFAULT_THRESHOLDS", "default_thresholds"])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
