"""Probabilistic forecasts of one issue time: the :class:`Distribution` protocol and the
ensemble form every method can use.

A probabilistic method (``Forecaster.probabilistic`` true) has
``predict_distribution(past, n_leads, *, members, seed) -> Distribution``: one call per
issue time that does the expensive work once (the flow, the network pass, the cascade).
The products are then read off it, all in the input's physical units (``mm h-1`` for
rain), on the input grid, NaN where the deterministic forecast is NaN:

* :meth:`Distribution.median` ``(lead_time, y, x)``: the deterministic forecast (the
  default product of a probabilistic method: it minimises the expected absolute error);
* :meth:`Distribution.sharp` ``(lead_time, y, x)``: a sharp deterministic field that keeps
  the rain area and heavy rain: the mean's spatial pattern with the value distribution of
  the last observation (probability matching, as pySTEPS' S-PROG; an ensemble's: its
  members' values, which pySTEPS matches to the last observation);
* :meth:`Distribution.quantiles` ``(quantile, lead_time, y, x)`` for levels in (0, 1);
* :meth:`Distribution.exceedance` ``(threshold, lead_time, y, x)``: ``P(value >= threshold)``
  in [0, 1];
* :meth:`Distribution.members` ``(realization, lead_time, y, x)``: the ``members`` coherent
  samples asked for (a :class:`NowcastError` when it was made with ``members=0``).

:class:`EnsembleDistribution` is the distribution of a finite ensemble (STEPS, or any member
set); a learned quantile model has its own form (``nowcast.methods.quantile``).
Coordinates: ``realization`` (int, CF standard name ``realization``), ``quantile`` (float,
units ``1``), ``threshold`` (float, the variable's units).

:class:`ProductRequest` is what a user asks of a probabilistic forecast (``nowcast predict
--members/--seed/--probabilities/--quantiles/--deterministic``, the batch config's keys of
the same names), checked when made; :func:`issue_seed` derives each issue time's seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import LEAD_TIME, RATE_UNITS, X, Y
from nowcast.errors import NowcastError
from nowcast.kinds import temperature_scale

REALIZATION, QUANTILE, THRESHOLD = "realization", "quantile", "threshold"
#: A members variable's attribute saying how the members were made, in a few words (a
#: nowcast attribute, so that a ``comment`` copied from the input is never taken for it).
MEMBERS_KIND = "nowcast_members"
#: The deterministic products of a probabilistic forecast (the first is the default).
DETERMINISTIC = ("median", "sharp")
#: Exceedance thresholds that make sense, by units: (lowest, highest, lowest allowed).
PLAUSIBLE_THRESHOLDS = {
    RATE_UNITS: (0.0, 1000.0, False),  # rain rates: above 0 (P(R >= 0) = 1), at most 1000
    "K": (150.0, 350.0, True),
    "C": (-125.0, 80.0, True),
    "F": (-195.0, 175.0, True),
}


@runtime_checkable
class Distribution(Protocol):
    """The predictive distribution of one issue time (see the module doc)."""

    def median(self) -> xr.DataArray: ...

    def sharp(self) -> xr.DataArray: ...

    def quantiles(self, levels: Sequence[float]) -> xr.DataArray: ...

    def exceedance(self, thresholds: Sequence[float]) -> xr.DataArray: ...

    def members(self) -> xr.DataArray: ...


def check_levels(levels: Sequence[float]) -> np.ndarray:
    """Quantile levels as a sorted float array, each strictly inside (0, 1)."""
    out = np.asarray([float(q) for q in levels], dtype=float)
    if out.size == 0 or not np.all((out > 0) & (out < 1)):
        raise NowcastError(f"quantile levels must lie strictly between 0 and 1, got {list(levels)}")
    if np.any(np.diff(out) <= 0):
        raise NowcastError(
            f"quantile levels must be strictly increasing (sorted, each once), got {list(levels)}"
        )
    return out


def check_thresholds(thresholds: Sequence[float]) -> np.ndarray:
    out = np.asarray([float(t) for t in thresholds], dtype=float)
    if out.size == 0 or not np.all(np.isfinite(out)):
        raise NowcastError(f"thresholds must be finite numbers, got {list(thresholds)}")
    if np.any(np.diff(out) <= 0):
        raise NowcastError(
            f"thresholds must be strictly increasing (sorted, each once), got {list(thresholds)}"
        )
    return out


def stacked(
    values: np.ndarray, template: xr.DataArray, dim: str, coord: np.ndarray, attrs: dict
) -> xr.DataArray:
    """``values`` ``(n, lead_time, y, x)`` on ``template``'s ``(lead_time, y, x)`` grid, with a
    leading ``dim`` coordinate ``coord`` (attrs ``attrs``)."""
    out = xr.DataArray(
        np.asarray(values, dtype=np.float32),
        dims=(dim, LEAD_TIME, Y, X),
        coords={dim: (dim, np.asarray(coord), dict(attrs)), **template.coords},
        name=template.name,
        attrs=dict(template.attrs),
    )
    return out


def quantile_coord(levels) -> tuple[np.ndarray, dict]:
    return np.asarray(levels, dtype=float), {"long_name": "quantile level", "units": "1"}


def threshold_coord(thresholds, units: str | None) -> tuple[np.ndarray, dict]:
    attrs = {"long_name": "exceedance threshold (value >= threshold)"}
    if units:
        attrs["units"] = units
    return np.asarray(thresholds, dtype=float), attrs


def realization_coord(n: int) -> tuple[np.ndarray, dict]:
    return np.arange(n, dtype=np.int32), {"standard_name": "realization", "long_name": "member"}


def probability_attrs(template: xr.DataArray) -> dict:
    """Attributes of an exceedance-probability field made from ``template``'s variable."""
    name = template.name or "forecast"
    return {
        "long_name": f"probability of {name} at or above the threshold",
        "units": "1",
        "valid_min": 0.0,
        "valid_max": 1.0,
    }


def match_values(
    pattern: np.ndarray, pool: np.ndarray, *, ranked: np.ndarray | None = None
) -> np.ndarray:
    """Probability matching: ``pattern``'s ranks with values from ``pool`` (any size).

    The finite pixels of ``pattern`` (one 2-D field) receive the pool's quantiles at their
    rank: the output's value distribution is ``pool``'s, its ordering ``pattern``'s. NaN
    stays NaN; ties in ``pattern`` keep a stable order. ``ranked`` (a boolean mask): only
    those pixels are ranked (e.g. where the pool was observed); the other finite pixels take
    the value the same mapping gives their pattern value (interpolated, monotonic).
    """
    out = np.full(pattern.shape, np.nan, dtype=np.float32)
    valid = np.isfinite(pattern)
    inside = valid if ranked is None else valid & ranked
    n = int(inside.sum())
    pool = np.sort(np.asarray(pool, dtype=np.float64)[np.isfinite(pool)])
    if n == 0 or pool.size == 0:
        return out
    order = np.argsort(pattern[inside], kind="stable")
    ranks = (np.arange(n) + 0.5) / n
    values = np.interp(ranks, (np.arange(pool.size) + 0.5) / pool.size, pool)
    flat = np.empty(n, dtype=np.float32)
    flat[order] = values
    out[inside] = flat
    outside = valid & ~inside
    if outside.any():
        out[outside] = np.interp(pattern[outside], pattern[inside][order], values)
    return out


class EnsembleDistribution:
    """The predictive distribution of a finite ensemble ``(realization, lead_time, y, x)``."""

    def __init__(self, members: xr.DataArray) -> None:
        if members.dims != (REALIZATION, LEAD_TIME, Y, X):
            members = members.transpose(REALIZATION, LEAD_TIME, Y, X)
        if members.sizes[REALIZATION] < 1:
            raise NowcastError("an ensemble needs at least one member")
        self._members = members
        self._template = members.isel({REALIZATION: 0}, drop=True)

    def members(self) -> xr.DataArray:
        return self._members

    def _values(self) -> np.ndarray:
        return np.asarray(self._members.values, dtype=np.float32)

    def _field(self, values: np.ndarray) -> xr.DataArray:
        return self._template.copy(data=np.asarray(values, dtype=np.float32))

    def median(self) -> xr.DataArray:
        v = self._values()
        with np.errstate(all="ignore"):
            med = np.median(v, axis=0)
        return self._field(med)

    def sharp(self) -> xr.DataArray:
        v = self._values()
        mean = v.mean(axis=0)
        out = np.stack([match_values(mean[j], v[:, j]) for j in range(v.shape[1])])
        out[~np.isfinite(mean)] = np.nan
        return self._field(out)

    def quantiles(self, levels: Sequence[float]) -> xr.DataArray:
        levels = check_levels(levels)
        q = np.quantile(self._values(), levels, axis=0)
        return stacked(q, self._template, QUANTILE, *quantile_coord(levels))

    def exceedance(self, thresholds: Sequence[float]) -> xr.DataArray:
        thresholds = check_thresholds(thresholds)
        v = self._values()
        p = np.stack([(v >= t).mean(axis=0) for t in thresholds]).astype(np.float32)
        p[:, ~np.isfinite(v).all(axis=0)] = np.nan
        units = self._template.attrs.get("units")
        out = stacked(p, self._template, THRESHOLD, *threshold_coord(thresholds, units))
        out.attrs = probability_attrs(self._template)
        return out


@dataclass(frozen=True)
class ProductRequest:
    """The products asked of a probabilistic forecast, checked when made.

    ``members``: ensemble members to write (None: none; the method then draws its own
    ensemble size, e.g. ``steps``' 20); ``seed``: the random seed (None: fresh noise; see
    :func:`issue_seed`); ``probabilities``: exceedance thresholds in the data's units,
    strictly increasing; ``quantiles``: levels strictly inside (0, 1), strictly
    increasing; ``deterministic``: the main variable, ``median`` (None: the default) or
    ``sharp``. Bad values are a one-line :class:`NowcastError`.
    """

    members: int | None = None
    seed: int | None = None
    probabilities: tuple[float, ...] = ()
    quantiles: tuple[float, ...] = ()
    deterministic: str | None = None

    def __post_init__(self) -> None:
        if self.members is not None and (not _whole(self.members) or self.members < 1):
            raise NowcastError(f"members: must be a whole number >= 1, got {self.members!r}")
        if self.seed is not None and (not _whole(self.seed) or not 0 <= self.seed < 2**32):
            raise NowcastError(f"seed: must be a whole number 0 .. 2**32 - 1, got {self.seed!r}")
        if self.deterministic not in (None, *DETERMINISTIC):
            raise NowcastError(
                f"deterministic: must be {' or '.join(DETERMINISTIC)}, got {self.deterministic!r}"
            )
        probabilities = tuple(self.probabilities or ())
        quantiles = tuple(self.quantiles or ())
        try:
            if probabilities:
                probabilities = tuple(float(t) for t in check_thresholds(probabilities))
        except (NowcastError, TypeError, ValueError) as exc:
            raise NowcastError(f"probabilities: {exc}") from None
        try:
            if quantiles:
                quantiles = tuple(float(q) for q in check_levels(quantiles))
        except (NowcastError, TypeError, ValueError) as exc:
            raise NowcastError(f"quantiles: {exc}") from None
        object.__setattr__(self, "probabilities", probabilities)
        object.__setattr__(self, "quantiles", quantiles)

    @property
    def asked(self) -> bool:
        """True when any option is set (only a probabilistic method can honour it)."""
        return (
            self.members is not None
            or self.seed is not None
            or bool(self.probabilities)
            or bool(self.quantiles)
            or self.deterministic is not None
        )

    @property
    def product(self) -> str:
        """The deterministic product written as the main variable."""
        return self.deterministic or DETERMINISTIC[0]

    @property
    def extra_fields(self) -> int:
        """Fields written per issue time besides the deterministic forecast."""
        return (self.members or 0) + len(self.probabilities) + len(self.quantiles)

    def check_units(self, units: str | None) -> None:
        """An error for thresholds outside what data in ``units`` can plausibly take."""
        if not self.probabilities:
            return
        scale = RATE_UNITS if units == RATE_UNITS else temperature_scale(units)
        if scale not in PLAUSIBLE_THRESHOLDS:
            return
        lo, hi, closed = PLAUSIBLE_THRESHOLDS[scale]
        bad = [t for t in self.probabilities if t > hi or t < lo or (t == lo and not closed)]
        if bad:
            low = f"{'at least' if closed else 'above'} {lo:g}"
            raise NowcastError(
                f"probabilities: thresholds must be {low} and at most {hi:g} {units} for this "
                f"data, got {', '.join(f'{t:g}' for t in bad)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain values (file metadata, batch signatures); only what was asked."""
        out: dict[str, Any] = {"deterministic": self.product}
        if self.members is not None:
            out["members"] = int(self.members)
        if self.seed is not None:
            out["seed"] = int(self.seed)
        if self.probabilities:
            out["probability_thresholds"] = list(self.probabilities)
        if self.quantiles:
            out["quantile_levels"] = list(self.quantiles)
        return out


def _whole(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def issue_seed(seed: int | None, issue_time) -> int | None:
    """The seed of one issue time's members: derived from ``seed`` and the issue time (None
    stays None), so that a forecast's members are the same whether its issue time is
    forecast alone or among others (``predict`` with a range, or a batch)."""
    if seed is None:
        return None
    minutes = int(pd.Timestamp(issue_time).value // 60_000_000_000) % 2**63
    return int(np.random.SeedSequence([int(seed), minutes]).generate_state(1)[0])
