"""The time axis of an archive: regular step, gaps, and the contiguous runs between gaps.

A *gap* is any pair of consecutive times whose difference is not the regular step (within
``tolerance``, by default a tenth of the step): missing frames make a longer difference,
and an odd extra frame a shorter one. Windows for training must never cross a gap, so the
sampler draws them inside :func:`contiguous_segments`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nowcast.conventions import TIME, as_interval, as_time
from nowcast.errors import DataError, NowcastError


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


def issue_range(
    times, *, start=None, end=None, every=None, t_in: int = 1, step=None
) -> pd.DatetimeIndex:
    """Issue times ``start`` to ``end`` (inclusive) every ``every`` (``--start/--end/--every``).

    ``times``: the archive's (or the forecasts') times. Defaults: ``start`` = the first time
    with ``t_in`` frames before it (by ``step``, default :func:`time_step` of ``times``),
    ``end`` = the last time, ``every`` = ``step``. Times are read by
    :func:`nowcast.conventions.as_time` (UTC); a bad value or an empty range is a
    :class:`~nowcast.errors.NowcastError`.
    """
    times = _times(times)
    if len(times) == 0:
        raise NowcastError("no times to choose issue times from")
    if step is None:
        step = time_step(times) if len(times) >= 2 else pd.Timedelta(0)
    step = pd.Timedelta(step)
    first = as_time(start) if start is not None else times[0] + (max(t_in, 1) - 1) * step
    last = as_time(end) if end is not None else times[-1]
    if every is not None:
        freq = as_interval(every, "--every")  # with its unit: "5" is an error, not 5 ns
    elif step > pd.Timedelta(0):
        freq = step
    else:
        raise NowcastError("give --every: one time has no step to step by")
    if first > last:
        raise NowcastError(f"no issue times: start {first} is after end {last}")
    return pd.date_range(first, last, freq=freq)


def select_issue_times(
    times, explicit=(), *, start=None, end=None, every=None, t_in: int = 1, step=None
) -> pd.DatetimeIndex:
    """``explicit`` issue times (``--issue-time``) and, when any of ``start``/``end``/
    ``every`` is given, the :func:`issue_range` over ``times``: sorted, each once."""
    out = pd.DatetimeIndex([as_time(t) for t in explicit])
    if start is not None or end is not None or every is not None:
        out = out.append(
            issue_range(times, start=start, end=end, every=every, t_in=t_in, step=step)
        )
    return out.unique().sort_values()
