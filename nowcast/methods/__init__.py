"""Forecast methods: one interface, a registry of named methods, and running them.

Every method (the baselines, the trained ConvLSTM) shares the :class:`Forecaster`
interface::

    fc = get_method("extrapolation", t_in=3)
    fc.predict(past, n_leads=12)                  # past: (time, y, x) -> (lead_time, y, x)
    forecast_many(fc, archive, issue_times, 12)   # -> (issue_time, lead_time, y, x)

Modules: :mod:`~nowcast.methods.base` (the interface, the registry, helpers for methods),
:mod:`~nowcast.methods.baselines` (``persistence``, ``extrapolation``, ``sprog``; their
optical flow and advection are :mod:`nowcast.motion`, shared by every method that moves
fields), :mod:`~nowcast.methods.steps` (``steps``, pySTEPS' STEPS ensemble, probabilistic),
:mod:`~nowcast.methods.convlstm` (``convlstm``; models are found by
:mod:`nowcast.trained.catalogue`) and
:mod:`~nowcast.methods.run` (many issue times, then a forecast file). Importing the
package registers the built-in methods; Keras and pySTEPS are imported on first use.
"""

from nowcast.methods import (  # noqa: F401  (registers the built-in methods)
    baselines,
    convlstm,
    steps,
)
from nowcast.methods.base import (
    Forecaster,
    available_methods,
    check_n_leads,
    check_past,
    deterministic_error,
    get_method,
    infer_step,
    lead_array,
    probabilistic_methods,
    register_method,
)
from nowcast.methods.convlstm import ConvLSTMForecaster
from nowcast.methods.run import forecast_and_write, forecast_many, make_forecaster
from nowcast.trained.catalogue import resolve_model

__all__ = [
    "ConvLSTMForecaster",
    "Forecaster",
    "available_methods",
    "check_n_leads",
    "check_past",
    "deterministic_error",
    "forecast_and_write",
    "forecast_many",
    "get_method",
    "infer_step",
    "lead_array",
    "make_forecaster",
    "probabilistic_methods",
    "register_method",
    "resolve_model",
]
