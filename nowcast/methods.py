"""Forecast methods: a registry of named forecasters, and :func:`forecast_many`.

Every method (the baselines in :mod:`nowcast.baselines`, the trained ConvLSTM in
:mod:`nowcast.forecast`) shares one small interface, :class:`Forecaster`::

    fc = get_method("extrapolation", t_in=3)
    fc.predict(past, n_leads=12)          # past: (time, y, x) -> (lead_time, y, x)
    forecast_many(fc, archive, issue_times, 12)   # -> (issue_time, lead_time, y, x)

A method is registered with the :func:`register_method` decorator on a class (or any
factory callable) whose keyword arguments are the method's options. Modules that
register methods are imported on the first look-up, never at ``import nowcast``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import LEAD_TIME, TIME, X, Y, lead_times
from nowcast.errors import NowcastError

#: Modules whose import registers methods (looked up lazily, in this order).
METHOD_MODULES = ("nowcast.baselines", "nowcast.forecast")

_REGISTRY: dict[str, Callable[..., Forecaster]] = {}


@runtime_checkable
class Forecaster(Protocol):
    """A forecast method.

    ``predict(past, n_leads)``: ``past`` is ``(time, y, x)`` in physical units (NaN
    allowed), its last frame is the issue time and it holds at least ``t_in`` frames (a
    method uses the last ``t_in``; extra earlier frames are allowed). The result is
    ``(lead_time, y, x)`` float32 on the same grid, ``lead_time`` = ``lead_times(n_leads,
    step)``, with ``past``'s name, attrs and grid-mapping coordinate, NaN wherever the
    last input frame is NaN.
    """

    name: str
    t_in: int

    def predict(self, past: xr.DataArray, n_leads: int) -> xr.DataArray: ...


# --------------------------------------------------------------------------- registry


def register_method(name: str) -> Callable[[Callable[..., Forecaster]], Callable[..., Forecaster]]:
    """Class/factory decorator: ``@register_method("persistence")``.

    The factory's keyword arguments are the method's options (see :func:`get_method`).
    Registering a second, different factory under a taken name is a ``ValueError``.
    """
    if not name or not isinstance(name, str):
        raise ValueError("a method name must be a non-empty string")

    def decorator(factory: Callable[..., Forecaster]) -> Callable[..., Forecaster]:
        known = _REGISTRY.get(name)
        if known is not None and _qualname(known) != _qualname(factory):
            raise ValueError(
                f"forecast method {name!r} is already registered by {_qualname(known)}"
            )
        _REGISTRY[name] = factory
        return factory

    return decorator


def _qualname(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _load_method_modules() -> None:
    for module in METHOD_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a missing dependency inside it is a real error
                raise


def available_methods() -> list[str]:
    """Names of the registered forecast methods, sorted."""
    _load_method_modules()
    return sorted(_REGISTRY)


def get_method(name: str, **options) -> Forecaster:
    """A new forecaster for the method ``name`` with its ``options``.

    Unknown names and unknown options are a :class:`NowcastError` that lists the valid ones.
    """
    if name not in _REGISTRY:
        _load_method_modules()
    factory = _REGISTRY.get(name)
    if factory is None:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise NowcastError(f"unknown forecast method {name!r} (available: {known})")
    try:
        inspect.signature(factory).bind(**options)
    except TypeError:
        params = [p for p in inspect.signature(factory).parameters if p != "self"]
        raise NowcastError(
            f"method {name!r} takes options {', '.join(params) or 'none'}; got {', '.join(options)}"
        ) from None
    return factory(**options)


# --------------------------------------------------------------------------- helpers for methods


def infer_step(times, step=None) -> pd.Timedelta:
    """The time step: ``step`` when given, else the (uniform) spacing of ``times``."""
    if step is not None:
        try:
            out = pd.Timedelta(step)
        except ValueError:
            raise NowcastError(f"step {step!r} is not a time interval (e.g. '5min')") from None
        if out <= pd.Timedelta(0):
            raise NowcastError(f"step must be positive, got {step!r}")
        return out
    values = pd.DatetimeIndex(np.asarray(times)).values
    if len(values) < 2:
        raise NowcastError(
            "cannot infer the time step from a single input frame; pass step=... (e.g. '5min')"
        )
    diffs = np.unique(np.diff(values))
    if len(diffs) != 1 or diffs[0] <= np.timedelta64(0, "ns"):
        raise NowcastError(
            "input frames are not evenly spaced in time (steps "
            f"{', '.join(str(pd.Timedelta(d)) for d in diffs)})"
        )
    return pd.Timedelta(diffs[0])


def check_past(past: xr.DataArray, t_in: int, name: str) -> xr.DataArray:
    """Validate ``past`` for a method needing ``t_in`` frames; returns it as ``(time, y, x)``."""
    if not isinstance(past, xr.DataArray) or set(past.dims) != {TIME, Y, X}:
        dims = getattr(past, "dims", None)
        raise NowcastError(f"{name}: input must be a (time, y, x) DataArray, got dims {dims}")
    if past.sizes[TIME] < t_in:
        raise NowcastError(f"{name} needs {t_in} input frames, got {past.sizes[TIME]}")
    return past.transpose(TIME, Y, X)


def check_n_leads(n_leads: int) -> int:
    if isinstance(n_leads, bool) or int(n_leads) != n_leads or n_leads < 1:
        raise NowcastError(f"n_leads must be a positive integer, got {n_leads!r}")
    return int(n_leads)


def lead_array(values: np.ndarray, past: xr.DataArray, step: pd.Timedelta) -> xr.DataArray:
    """Wrap ``(lead_time, y, x)`` values on ``past``'s grid, with its name, attrs, grid mapping."""
    values = np.asarray(values, dtype=np.float32)
    coords = {
        LEAD_TIME: (
            LEAD_TIME,
            lead_times(values.shape[0], step),
            {"standard_name": "forecast_period"},
        ),
        Y: past[Y],
        X: past[X],
    }
    gm = past.attrs.get("grid_mapping")
    if gm and gm in past.coords:
        coords[gm] = past.coords[gm]
    return xr.DataArray(
        values, dims=(LEAD_TIME, Y, X), coords=coords, name=past.name, attrs=dict(past.attrs)
    )


# --------------------------------------------------------------------------- many issue times


def forecast_many(
    method: Forecaster, archive: xr.DataArray, issue_times: Sequence, n_leads: int, *, step=None
) -> xr.DataArray:
    """Run ``method`` at each issue time of ``archive``; returns ``(issue_time, lead_time, y, x)``.

    For each issue time the last ``t_in`` frames up to it, spaced by ``step`` (default:
    the archive's most common spacing), are passed to ``method.predict``; at least two
    frames, so that a one-frame method can read the step (an earlier frame the archive
    lacks comes as NaN, and such a method does not use it). An issue time outside the
    archive, or a required input frame the archive lacks, is a :class:`NowcastError`
    naming the time. The result is assembled with
    :func:`nowcast.products.forecast_array` (archive name, attrs, grid mapping).
    """
    from nowcast.products import forecast_array

    n_leads = check_n_leads(n_leads)
    if set(archive.dims) != {TIME, Y, X}:
        raise NowcastError(f"the archive must have dims (time, y, x), got {archive.dims}")
    archive = archive.transpose(TIME, Y, X)
    times = pd.DatetimeIndex(archive[TIME].values)
    if len(times) == 0:
        raise NowcastError("the archive holds no frames")
    if step is None and len(times) >= 2:
        from nowcast.data.timeaxis import time_step

        step = time_step(archive)  # the archive's most common spacing
    if step is None:
        step = getattr(method, "step", None)
    if step is None:
        raise NowcastError("cannot infer the archive's time step from one frame; pass step=...")
    step = infer_step(None, step)
    issues = [_as_timestamp(t) for t in issue_times]
    if not issues:
        raise NowcastError("no issue times given")
    t_in = int(method.t_in)
    n_frames = max(t_in, 2)
    out: np.ndarray | None = None
    result_step = step
    for i, issue in enumerate(issues):
        if issue < times[0] or issue > times[-1]:
            raise NowcastError(
                f"issue time {issue} is outside the archive ({times[0]} to {times[-1]})"
            )
        frame_times = pd.DatetimeIndex([issue - k * step for k in range(n_frames - 1, -1, -1)])
        for t in frame_times[-t_in:]:
            if t not in times:
                raise NowcastError(
                    f"input frame {t} (for issue time {issue}) is missing from the archive"
                )
        past = archive.reindex({TIME: frame_times}).load()
        pred = method.predict(past, n_leads)
        expected = (n_leads, archive.sizes[Y], archive.sizes[X])
        if tuple(pred.shape) != expected or (LEAD_TIME in pred.dims and pred.dims[0] != LEAD_TIME):
            raise NowcastError(
                f"method {method.name!r} returned shape {tuple(pred.shape)}, expected {expected}"
            )
        if out is None:
            out = np.empty((len(issues),) + expected, dtype=np.float32)
            if LEAD_TIME in pred.coords:
                result_step = pd.Timedelta(pred[LEAD_TIME].values[0])
        out[i] = np.asarray(pred.values, dtype=np.float32)
    return forecast_array(
        out, issue_times=pd.DatetimeIndex(issues), step=result_step, template=archive
    )


def _as_timestamp(value) -> pd.Timestamp:
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise NowcastError(f"{value!r} is not a time") from None
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t
