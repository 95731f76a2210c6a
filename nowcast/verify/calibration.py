"""How often a quantile forecast's levels are exceeded: the randomised PIT coverage per lead.

For one issue time, a forecast gives at every pixel and lead the values ``q_1 <= ... <= q_K``
at levels ``tau_1 < ... < tau_K`` (physical units, ``(K, n_leads, y, x)``); its cumulative
distribution ``F`` is piecewise linear in the standard-normal score through
``(Phi^-1(tau_k), q_k)`` and flat beyond the ends (as :mod:`nowcast.methods.quantile`). The
observation's probability integral transform is ``F(y)`` for wet ``y > 0`` (``0`` below
``q_1``, ``1`` above ``q_K``), and for a dry observation uniform on ``[0, F(0)]``, ``F(0)``
the level at which the forecast leaves zero (the randomised PIT of a distribution with an
atom at zero: Czado et al. 2009). :func:`pit_sums` adds, per lead and level, the
probability that the PIT is at most ``tau_k``; divided by the counts it is the coverage
``G(tau_k)`` (``= tau_k`` for a calibrated forecast), which
:mod:`nowcast.trained.calibration` stores and forecasting uses to recalibrate the levels.
:func:`calibrate` runs a quantile forecaster over chosen issue times of archives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtr, ndtri

from nowcast.conventions import TIME
from nowcast.errors import NowcastError

#: Smallest fraction of a frame at or above 1 mm/h for an issue time to be picked.
WET_FRACTION = 0.002


def pit_sums(
    levels: Sequence[float], quantiles: np.ndarray, truth: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(sums (n_leads, K), counts (n_leads,))``: per lead, the summed probabilities that
    the PIT is at most each level, over pixels where the truth and every quantile are finite.
    ``quantiles`` ``(K, n_leads, y, x)``, ``truth`` ``(n_leads, y, x)``."""
    from nowcast.methods.quantile import exceedance_scores

    tau = np.asarray(levels, dtype=float)
    knots = ndtri(tau)
    n_leads = truth.shape[0]
    sums, counts = np.zeros((n_leads, len(tau))), np.zeros(n_leads)
    for j in range(n_leads):
        q = np.moveaxis(np.asarray(quantiles[:, j], dtype=float), 0, -1)  # (y, x, K)
        y = np.asarray(truth[j], dtype=float)
        ok = np.isfinite(y) & np.all(np.isfinite(q), axis=-1)
        y, q = y[ok], np.sort(q[ok], axis=-1)
        dry = y <= 0
        u0 = ndtr(exceedance_scores(knots, q[dry], np.full(int(dry.sum()), 1e-6)))
        pit = ndtr(exceedance_scores(knots, q[~dry], y[~dry]))
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(u0[:, None] > 0, np.minimum(tau / u0[:, None], 1.0), 1.0)
        sums[j] = share.sum(axis=0) + (pit[:, None] <= tau).sum(axis=0)
        counts[j] = y.size
    return sums, counts


def pick_issue_times(archive: xr.DataArray, n: int, *, before: int, after: int) -> list[int]:
    """``n`` indices of ``archive``'s times, evenly spread over those with ``before`` frames
    before and ``after`` after them and at least :data:`WET_FRACTION` of the frame at or
    above 1 mm/h (none when no frame qualifies)."""
    values = archive.values
    wet = np.array([np.mean(np.nan_to_num(frame) >= 1.0) for frame in values])
    candidates = np.arange(before, len(values) - after)
    candidates = candidates[wet[candidates] >= WET_FRACTION]
    if not len(candidates) or n < 1:
        return []
    picks = np.linspace(0, len(candidates) - 1, min(n, len(candidates))).round().astype(int)
    return [int(i) for i in candidates[np.unique(picks)]]


def calibrate(
    forecaster,
    archives: dict[str, xr.DataArray],
    *,
    per_archive: int,
    n_leads: int,
    echo: Callable[[str], None] = print,
) -> tuple[np.ndarray, int]:
    """The coverage ``(n_leads, K)`` of ``forecaster``'s levels (uncalibrated) over
    ``per_archive`` issue times of each archive (``{name: archive}``, :func:`pick_issue_times`),
    at leads of each archive's own step; and the number of issue times used."""
    levels = tuple(forecaster.levels)
    sums, counts, used = np.zeros((n_leads, len(levels))), np.zeros(n_leads), 0
    for name, archive in archives.items():
        times = pd.DatetimeIndex(archive[TIME].values)
        step = pd.Timedelta(times[1] - times[0])
        if step != forecaster.step:
            raise NowcastError(
                f"{name}: its step ({step}) is not the model's ({forecaster.step}): a "
                "calibration is per model step, calibrate on archives of the model's step"
            )
        before = forecaster.input_frames(step)
        for i in pick_issue_times(archive, per_archive, before=before, after=n_leads):
            past = archive.isel({TIME: slice(i - before + 1, i + 1)})
            dist = forecaster.predict_distribution(past, n_leads)
            truth = archive.isel({TIME: slice(i + 1, i + 1 + n_leads)}).values
            s, c = pit_sums(levels, dist.quantiles(levels).values, truth)
            sums, counts, used = sums + s, counts + c, used + 1
            echo(f"  {name} {times[i]:%Y-%m-%dT%H:%M}: {int(c.sum()):,} values")
    if not used:
        raise NowcastError(
            "no issue time to calibrate on: no wet frame with enough frames before and after"
        )
    if not counts.all():
        empty = ", ".join(str(j + 1) for j in np.flatnonzero(counts == 0))
        raise NowcastError(
            f"no forecast value at lead {empty} (the grids are too small for the motion): "
            "calibrate on larger archives"
        )
    return sums / counts[:, None], used
