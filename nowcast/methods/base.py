"""The forecast-method interface (:class:`Forecaster`), the registry, and helpers for methods.

A method is a class (or any factory) registered with :func:`register_method`; its keyword
arguments are the method's options, and :func:`get_method` builds it by name. Methods
subclass :class:`Forecaster` to get the defaults of its optional capabilities.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import TIME, X, Y
from nowcast.distribution import Distribution
from nowcast.errors import NowcastError
from nowcast.products import lead_array

__all__ = [
    "Forecaster",
    "available_methods",
    "check_n_leads",
    "check_past",
    "deterministic_error",
    "get_method",
    "infer_step",
    "lead_array",
    "probabilistic_methods",
    "register_method",
]

_REGISTRY: dict[str, Callable[..., Forecaster]] = {}


@runtime_checkable
class Forecaster(Protocol):
    """A forecast method.

    Required: ``name``, ``t_in`` (input frames it needs) and ``predict(past, n_leads)``:
    ``past`` is ``(time, y, x)`` in physical units (NaN allowed), its last frame is the
    issue time and it holds at least ``t_in`` frames (a method uses the last ``t_in``;
    extra earlier frames are allowed). The result is ``(lead_time, y, x)`` float32 on the
    same grid, ``lead_time`` = ``lead_times(n_leads, step)``, with ``past``'s name, attrs
    and grid-mapping coordinate (:func:`lead_array` builds it), NaN wherever the last
    input frame is NaN.

    Optional, with defaults for subclasses: ``step`` (the lead-time step when the inputs
    cannot tell it), ``t_out`` (frames forecast per pass: the default number of leads),
    ``metadata`` (what the method knows of the data it was made for, e.g. a trained
    model's ``kind`` and ``units``), :meth:`describe`, :meth:`check_compatible` and
    :meth:`input_frames` (how many frames ``predict`` needs at a given archive step).

    Probabilistic methods set ``probabilistic = True`` and implement
    :meth:`predict_distribution` (one call per issue time, returning a
    :class:`nowcast.distribution.Distribution` from which the median, the sharp field,
    quantiles, exceedance probabilities and members are read); their ``predict`` returns
    the deterministic product they document (e.g. the median). The default
    ``predict_distribution`` of a deterministic method raises :func:`deterministic_error`.
    """

    name: str
    t_in: int
    step: pd.Timedelta | None = None
    t_out: int | None = None
    metadata: Mapping[str, Any] = MappingProxyType({})
    probabilistic: bool = False

    def predict(self, past: xr.DataArray, n_leads: int) -> xr.DataArray: ...

    def predict_distribution(
        self, past: xr.DataArray, n_leads: int, *, members: int = 0, seed: int | None = None
    ) -> Distribution:
        """The predictive distribution of one issue time (``past`` and ``n_leads`` as for
        :meth:`predict`). ``members``: ensemble members to draw (0: none beyond what the
        method needs), reproducible with ``seed``. Deterministic methods: a NowcastError."""
        raise deterministic_error(self.name)

    def describe(self) -> dict[str, Any] | None:
        """Global attributes for the forecast files this method writes (None: none)."""
        return None

    def check_compatible(self, archive: xr.DataArray) -> None:
        """Raise a :class:`NowcastError` when ``archive`` does not suit the method."""
        return None

    def input_frames(self, step: pd.Timedelta) -> int:
        """Input frames needed at an archive time step ``step`` (default: ``t_in``)."""
        return int(self.t_in)


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


def available_methods() -> list[str]:
    """Names of the registered forecast methods, sorted."""
    return sorted(_REGISTRY)


def probabilistic_methods() -> list[str]:
    """Names of the registered methods whose forecasters are probabilistic, sorted."""
    return sorted(n for n, f in _REGISTRY.items() if getattr(f, "probabilistic", False) is True)


def deterministic_error(name: str) -> NowcastError:
    """The one-line error for probabilistic products asked of a deterministic method."""
    names = ", ".join(probabilistic_methods()) or "none registered"
    return NowcastError(
        f"method {name} is deterministic; --members/--probabilities/--quantiles need a "
        f"probabilistic method ({names})"
    )


def get_method(name: str, **options) -> Forecaster:
    """A new forecaster for the method ``name`` with its ``options``.

    Unknown names and unknown options are a :class:`NowcastError` that lists the valid ones.
    """
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
