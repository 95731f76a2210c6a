"""What the skill scripts share (``eval_models``, ``compare_cells``): the issue times of a
held-out archive, and every method's forecasts at them, timed."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd


def issue_times(archive, t_in: int, n_leads: int, every: int, start=None):
    """Every ``every``-th time with ``t_in`` frames up to it and ``n_leads`` after it (from
    ``start`` on)."""
    times = pd.DatetimeIndex(archive.time.values)
    idx = np.arange(t_in - 1, len(times) - n_leads, every)
    out = [times[i] for i in idx]
    return [t for t in out if start is None or t >= pd.Timestamp(start)]


def forecast_all(methods, archive, issues, n_leads):
    """``({name: forecast}, {name: seconds})`` of ``forecast_many`` per method."""
    from nowcast.methods import forecast_many

    out, seconds = {}, {}
    for name, method in methods.items():
        t0 = time.perf_counter()
        out[name] = forecast_many(method, archive, issues, n_leads)
        seconds[name] = time.perf_counter() - t0
    return out, seconds
