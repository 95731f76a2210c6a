"""Missing data around a forecast: input frames that hold nothing, leads that hold nothing.

An input frame with no valid value (a radar outage) stops the issue time with an error
(:func:`check_frames_have_data`). A forecast lead with no valid value is written (NaN means
"unknown", as for extrapolation) but said once per run (:func:`warn_empty_leads`): on a
small domain with fast motion every pixel's rain can come from beyond the grid within a
lead or two, and a file of NaN written in silence looks like a broken forecast.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import TIME
from nowcast.errors import NowcastError


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


def warn_empty_leads(empty: np.ndarray, issues: Sequence, step) -> None:
    """One :class:`EmptyLeadsWarning` line when ``empty`` (``(issue, lead)``, from
    :func:`empty_fields`) holds any True: how many issue times, the first one's empty leads
    (in minutes, lead 1 = ``step``), and what to do."""
    hit = np.flatnonzero(empty.any(axis=1))
    if hit.size == 0:
        return
    first = int(hit[0])
    minutes = (np.flatnonzero(empty[first]) + 1) * pd.Timedelta(step).total_seconds() / 60
    leads = ", ".join(f"{m:g}" for m in minutes)
    more = f" (and {hit.size - 1} more issue time(s))" if hit.size > 1 else ""
    warnings.warn(
        f"issue time {pd.Timestamp(issues[first]):%Y-%m-%d %H:%M}{more}: no value at lead(s) "
        f"{leads} min, every pixel NaN: the rain there would come from beyond the grid; "
        "forecast a larger domain (or a --region with more context)",
        EmptyLeadsWarning,
        stacklevel=3,
    )
