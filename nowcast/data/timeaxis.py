"""The time axis of an archive: regular step, gaps, and the contiguous runs between gaps.

A *gap* is any pair of consecutive times whose difference is not the regular step (within
``tolerance``, by default a tenth of the step): missing frames make a longer difference,
and an odd extra frame a shorter one. Windows for training must never cross a gap, so the
sampler draws them inside :func:`contiguous_segments`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nowcast.conventions import TIME
from nowcast.errors import DataError


def _times(obj) -> pd.DatetimeIndex:
    """The time axis of a DataArray/Dataset (coord ``time``) or of a time-like sequence."""
    if hasattr(obj, "coords") and TIME in obj.coords:
        values = obj[TIME].values
    else:
        values = obj
    return pd.DatetimeIndex(np.asarray(values, dtype="datetime64[ns]"))


def time_step(obj) -> pd.Timedelta:
    """The most common difference between consecutive times (the smallest one on a tie)."""
    times = _times(obj)
    if len(times) < 2:
        raise DataError(f"cannot find a time step from {len(times)} time(s); need at least 2")
    diffs = np.diff(times.values)
    values, counts = np.unique(diffs, return_counts=True)
    return pd.Timedelta(values[counts == counts.max()].min())


def _breaks(times: pd.DatetimeIndex, step: pd.Timedelta, tolerance) -> np.ndarray:
    tol = step / 10 if tolerance is None else pd.Timedelta(tolerance)
    diffs = np.diff(times.values).astype("timedelta64[ns]")
    off = np.abs(diffs - step.to_timedelta64()) > tol.to_timedelta64()
    return np.flatnonzero(off)  # index i: the break lies between times[i] and times[i + 1]


def find_gaps(obj, *, step=None, tolerance=None) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``(last time before, first time after)`` for each gap, in time order.

    ``step`` defaults to :func:`time_step`; ``tolerance`` (a timedelta) to ``step / 10``.
    """
    times = _times(obj)
    if len(times) < 2:
        return []
    step = time_step(times) if step is None else pd.Timedelta(step)
    return [(times[i], times[i + 1]) for i in _breaks(times, step, tolerance)]


def contiguous_segments(obj, *, step=None, tolerance=None) -> list[slice]:
    """Index ranges ``slice(start, stop)`` of the time axis that contain no gap.

    Together they cover every index once, in order; a single frame between two gaps is a
    segment of length 1.
    """
    times = _times(obj)
    n = len(times)
    if n == 0:
        return []
    if n == 1:
        return [slice(0, 1)]
    step = time_step(times) if step is None else pd.Timedelta(step)
    bounds = [0, *(int(i) + 1 for i in _breaks(times, step, tolerance)), n]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
