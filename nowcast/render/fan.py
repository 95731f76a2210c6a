"""Fan charts for ``nowcast render --point``: a probabilistic forecast's quantile bands.

From a forecast file's quantiles (``{name}_quantiles``), or else its members (their
quantiles at :data:`FAN_LEVELS`, pixel by pixel), at a point's pixel or the mean of its
neighbourhood (quantile fields averaged, so the median is the median forecast's value).
The bands pair the levels from the outside in (0.1 with 0.9, 0.25 with 0.75, ...), shaded
darker inwards, with the median (level 0.5) as a line. Only the latest issue time gets a
fan (the earlier ones stay lines, so the plot stays readable).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import ISSUE_TIME, LEAD_TIME, VALID_TIME, X, Y
from nowcast.distribution import QUANTILE, REALIZATION
from nowcast.probabilistic import MEMBERS, QUANTILES

__all__ = ["FAN_LEVELS", "Fan", "fan_part", "point_fan", "draw_fan"]

#: The quantile levels of a fan drawn from members.
FAN_LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class Fan:
    """One issue time's quantiles at a point: ``values`` ``(level, lead)`` in the file's
    units against ``valid`` times; ``members``: how many members they come from (0: the
    file's quantiles)."""

    issue: pd.Timestamp
    valid: np.ndarray
    levels: np.ndarray
    values: np.ndarray
    members: int = 0

    @property
    def median(self) -> np.ndarray | None:
        hit = np.flatnonzero(np.isclose(self.levels, 0.5))
        return self.values[hit[0]] if hit.size else None

    def bands(self) -> list[tuple[int, int]]:
        """Index pairs (low, high) from the outermost inwards."""
        n = len(self.levels)
        return [(i, n - 1 - i) for i in range(n // 2)]

    def replaces(self, issue, values: np.ndarray) -> bool:
        """Whether ``values`` (the deterministic forecast of ``issue``) is the fan's median,
        so the median line stands for it."""
        median = self.median
        return (
            median is not None
            and pd.Timestamp(issue) == self.issue
            and np.shape(values) == median.shape
            and np.allclose(values, median, rtol=1e-4, atol=1e-4, equal_nan=True)
        )


def fan_part(parts: Mapping[str, xr.DataArray] | None) -> xr.DataArray | None:
    """The product a fan is drawn from: the quantiles, else the members, else ``None``."""
    parts = parts or {}
    return parts.get(QUANTILES, parts.get(MEMBERS))


def point_fan(part: xr.DataArray, box: Callable[[xr.DataArray], xr.DataArray]) -> Fan:
    """The fan of ``part``'s latest issue time; ``box(da)`` cuts a DataArray to the point's
    pixels (its neighbourhood)."""
    last = part.isel({ISSUE_TIME: -1})
    cut = box(last)
    members = 0
    if QUANTILE in cut.dims:
        levels = np.asarray(cut[QUANTILE].values, dtype=float)
        values = np.asarray(cut.transpose(QUANTILE, LEAD_TIME, Y, X).values, dtype=np.float64)
    else:
        levels = np.asarray(FAN_LEVELS)
        data = np.asarray(cut.transpose(REALIZATION, LEAD_TIME, Y, X).values, dtype=np.float64)
        members = data.shape[0]
        with warnings.catch_warnings():  # all-NaN pixels (outside coverage) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            values = np.nanquantile(data, levels, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values.reshape(values.shape[:2] + (-1,)), axis=-1)
    valid = np.asarray(last[VALID_TIME].values)
    return Fan(pd.Timestamp(last[ISSUE_TIME].values), valid, levels, mean, members)


def _percent(level: float) -> str:
    return f"{100 * level:.3g}"


def draw_fan(ax, fan: Fan, *, colour, method: str, convert, several: bool) -> None:
    """Shade ``fan``'s bands and draw its median on ``ax`` (values through ``convert``);
    ``several``: the plot has several issue times (the labels then name this one)."""
    times = pd.DatetimeIndex(fan.valid)
    note = []
    if fan.members:
        note.append(f"{fan.members} members")
    if several:
        note.append(f"issue {fan.issue:%H:%M}")
    suffix = f" ({', '.join(note)})" if note else ""
    bands = fan.bands()
    for k, (lo, hi) in enumerate(bands):
        alpha = 0.25 if len(bands) == 1 else 0.14 + 0.22 * k / (len(bands) - 1)
        ax.fill_between(times, convert(fan.values[lo]), convert(fan.values[hi]),
                        color=colour, alpha=alpha, linewidth=0, zorder=2,
                        label=f"{method} {_percent(fan.levels[lo])}–"
                              f"{_percent(fan.levels[hi])} %{suffix}")  # fmt: skip
    if fan.median is not None:
        ax.plot(times, convert(fan.median), color=colour, linewidth=2.0, marker=".", zorder=4,
                label=f"{method} median{suffix}")  # fmt: skip
