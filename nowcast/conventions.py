"""Names and time conventions, fixed in one place.

Every module uses these constants instead of spelling dimension names itself.

Archive (observations) after loading: an ``xarray.DataArray`` with dims
``(TIME, Y, X)``; ``y`` ascending, ``x``/``y`` in metres (or degrees for
``latitude_longitude`` grids), the CF grid-mapping variable carried as a scalar
coordinate named in ``attrs["grid_mapping"]``.

Forecast: an ``xarray.DataArray`` with dims ``(ISSUE_TIME, LEAD_TIME, Y, X)``.
``issue_time`` is the time of the last observed input frame (the forecast
reference time); ``lead_time`` is a ``timedelta64`` (lead 1 = one time step);
``valid_time = issue_time + lead_time`` is a 2-D coordinate.

Model tensors: ``(batch, time, y, x, channels)``, float32, channels last.

Training: the splits :data:`SPLITS`; a model's frame of reference :class:`Frame`.
"""

from __future__ import annotations

from enum import Enum
from pathlib import PurePath

import numpy as np
import pandas as pd

from nowcast.errors import NowcastError

TIME = "time"
Y = "y"
X = "x"
ISSUE_TIME = "issue_time"
LEAD_TIME = "lead_time"
VALID_TIME = "valid_time"
FORECAST_REFERENCE_TIME = "forecast_reference_time"

#: Unit string for precipitation rates after conversion.
RATE_UNITS = "mm h-1"

#: The splits of training data, in the order of their label codes (0, 1, 2); a trained
#: model's metadata names them so too.
SPLITS = ("train", "validation", "test")


class Frame(str, Enum):
    """The frame a model works in: ``model.frame`` in a config, ``frame`` in a trained
    model's metadata (both hold the string value; a member equals its string)."""

    EULERIAN = "eulerian"
    LAGRANGIAN = "lagrangian"

    def __str__(self) -> str:
        return self.value


def lead_times(n_leads: int, step: np.timedelta64 | pd.Timedelta) -> np.ndarray:
    """Lead times ``1*step .. n_leads*step`` as ``timedelta64[ns]``."""
    step = pd.Timedelta(step).to_timedelta64().astype("timedelta64[ns]")
    return np.arange(1, n_leads + 1) * step


def valid_times(issue_times, leads) -> np.ndarray:
    """2-D array ``(issue_time, lead_time)`` of valid times."""
    issue = np.asarray(issue_times, dtype="datetime64[ns]")
    leads = np.asarray(leads, dtype="timedelta64[ns]")
    return issue[:, None] + leads[None, :]


def as_interval(value, what: str = "--every") -> pd.Timedelta:
    """A positive time interval with its unit (``10min``, ``1h``, ``PT10M``); a bare number
    (``5``: minutes? seconds? pandas would read nanoseconds) or anything else is a
    :class:`NowcastError` naming ``what``."""
    text = str(value).strip()
    try:
        float(text)
    except ValueError:
        pass
    else:
        raise NowcastError(
            f"{what} {value!r} has no unit: write e.g. {text}min, {text}h or {text}s"
        )
    try:
        interval = pd.Timedelta(text)
    except (ValueError, TypeError):
        interval = None
    if interval is None or pd.isna(interval) or interval <= pd.Timedelta(0):
        raise NowcastError(f"{what} {value!r} is not a positive time interval (e.g. 10min)")
    return interval


def as_time(value) -> pd.Timestamp:
    """A naive UTC timestamp (time zones are converted to UTC, then dropped)."""
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise NowcastError(f"{value!r} is not a time (use e.g. 2016-07-11T12:00)") from None
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t


def distinct_names(names: list[str], sources: list) -> list[str]:
    """The names forecasts go by, told apart where two share one: ``name (stem)`` by their
    file's name (``sources``: paths, or None for a forecast in memory: its position from 1),
    ``name (path)`` where the stems agree too. Names still alike (one file given twice) are
    left alike for the caller to refuse."""
    out: list[str] = []
    for k, (name, source) in enumerate(zip(names, sources)):
        label = name
        if names.count(name) > 1:
            where = PurePath(source) if source is not None else None
            label = f"{name} ({where.stem if where is not None else k + 1})"
            if label in out:  # same name and same stem (different folders)
                label = f"{name} ({where})"
        out.append(label)
    return out


def display_name(attrs, *, with_method: bool = False) -> str:
    """The name a forecast goes by in titles, file names, legends and score tables: its
    model for a trained model (``radar-5min``, the model's folder name; with
    ``with_method``: ``radar-5min (convlstm)``), else its method (``extrapolation``).
    ``attrs``: a forecast's (``nowcast_method``, ``nowcast_model``), as ``read_forecast``
    and :func:`nowcast.methods.forecast_and_write` give them."""
    method = str(attrs.get("nowcast_method") or "forecast")
    model = attrs.get("nowcast_model")
    if not model or str(model) == method:
        return method
    return f"{model} ({method})" if with_method else str(model)


def method_name(forecast) -> str:
    """The name of a forecast read by :func:`nowcast.products.read_forecast` (a DataArray;
    :func:`display_name`: the model for a trained model, else the method)."""
    if "nowcast_method" not in forecast.attrs:
        return str(forecast.name)
    return display_name(forecast.attrs)
