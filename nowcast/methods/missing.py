"""Missing data around a forecast: input frames that hold nothing, leads that hold nothing.

An input frame with no valid value (a radar outage) stops the issue time with an error
(:func:`check_frames_have_data`). A forecast lead with no valid value is written (NaN means
"unknown", as for extrapolation) but said once per run (:func:`warn_empty_leads`): on a
small domain with fast motion every pixel's rain can come from beyond the grid within a
lead or two, and a file of NaN written in silence looks like a broken forecast.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import ISSUE_TIME, LEAD_TIME, TIME, X, Y
from nowcast.errors import NowcastError
from nowcast.kinds import kind_of


class EmptyLeadsWarning(UserWarning):
    """Some forecast leads hold no value at all (every pixel NaN)."""


def check_frames_have_data(frames: xr.DataArray, issue) -> None:
    """An error naming ``issue`` when an input frame holds no valid value (an outage)."""
    empty = empty_fields(frames.transpose(TIME, ...).values)
    if empty.any():
        when = ", ".join(f"{pd.Timestamp(t):%Y-%m-%d %H:%M}" for t in frames[TIME].values[empty])
        raise NowcastError(
            f"issue time {pd.Timestamp(issue):%Y-%m-%d %H:%M}: input frame(s) {when} hold no "
            "data (all missing, e.g. a radar outage); no forecast made"
        )


def empty_fields(values: np.ndarray) -> np.ndarray:
    """True for each ``(y, x)`` field of ``values`` ``(..., y, x)`` that holds no finite value
    (e.g. ``(issue, lead)`` booleans for a forecast ``(issue, lead, y, x)``)."""
    return ~np.isfinite(values).any(axis=(-2, -1))


def warn_empty_leads(forecast: xr.DataArray) -> None:
    """One :class:`EmptyLeadsWarning` line when a lead of ``forecast`` ``(issue_time,
    lead_time, y, x)`` holds no finite value at any issue time: how many issue times, the
    first one's empty leads (in minutes) and what to do. The text says "rain" for a
    precipitation forecast and "values" for any other kind (:func:`nowcast.kinds.kind_of`)."""
    forecast = forecast.transpose(ISSUE_TIME, LEAD_TIME, Y, X)
    empty = empty_fields(forecast.values)
    hit = np.flatnonzero(empty.any(axis=1))
    if hit.size == 0:
        return
    first = int(hit[0])
    minutes = pd.to_timedelta(forecast[LEAD_TIME].values[empty[first]]).total_seconds() / 60
    leads = ", ".join(f"{m:g}" for m in minutes)
    more = f" (and {hit.size - 1} more issue time(s))" if hit.size > 1 else ""
    issue = pd.Timestamp(forecast[ISSUE_TIME].values[first])
    what = "rain" if kind_of(forecast.attrs) == "precipitation" else "values"
    warnings.warn(
        f"issue time {issue:%Y-%m-%d %H:%M}{more}: no value at lead(s) {leads} min, every "
        f"pixel NaN: the {what} there would come from beyond the grid; forecast a larger "
        "domain (or a --region with more context)",
        EmptyLeadsWarning,
        stacklevel=3,
    )
