"""``steps``: pySTEPS' STEPS ensemble (Bowler, Pierce and Seed 2006) as a baseline.

The same optical flow, dBR transform and advection as ``sprog`` (the helpers of
:class:`~nowcast.methods.baselines.SProg`): the dBR field is split into a cascade of
spatial scales, each evolved by an AR(2) model in the Lagrangian frame, with stochastic
perturbations of every scale (pySTEPS' nonparametric noise) and of the motion field
(``bps``), then matched to the last observed rain distribution; ``members`` such forecasts
form the ensemble. It is probabilistic (``probabilistic = True``):
:meth:`Steps.predict_distribution` returns an
:class:`~nowcast.distribution.EnsembleDistribution` of the members, from which the
products are read (median, sharp, quantiles, exceedance probabilities, the members).
:meth:`Steps.predict` returns the ensemble **median** (per pixel), the deterministic
product of a probabilistic method (it minimises the expected absolute error).

Members are reproducible with ``seed`` (the same seed, inputs and options give the same
members, bit for bit); ``seed=None`` draws fresh noise each call. NaN exactly where
``sprog`` (and ``extrapolation``) are NaN; a member whose perturbed motion brings a pixel
in from outside the domain takes the (lower) median of the other members there. Precipitation
(``mm h-1``) only.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import X, Y
from nowcast.distribution import REALIZATION, EnsembleDistribution, realization_coord, stacked
from nowcast.errors import NowcastError
from nowcast.geo import metres_per_unit
from nowcast.methods.base import lead_array, register_method
from nowcast.methods.baselines import SProg

#: Ensemble size when neither the method options nor the caller say.
DEFAULT_MEMBERS = 20
#: pySTEPS' noise generators for the cascade perturbations (None: no noise).
NOISE_METHODS = ("nonparametric", "parametric", "ssft", "nested", None)


def km_per_pixel(grid: xr.DataArray) -> float:
    """The grid spacing in km (x/y in m or km; degrees of latitude x 111.2 km)."""
    spacing = []
    for dim in (X, Y):
        values = np.asarray(grid[dim].values, dtype=np.float64)
        if values.size > 1:
            spacing.append(float(np.abs(np.diff(values)).mean()))
    if not spacing:
        raise NowcastError("steps needs a grid of at least 2 x 2 pixels")
    units = grid[X].attrs.get("units", "m")
    metres = metres_per_unit(units)
    if metres is not None:
        factor = metres / 1000.0
    elif str(units).strip().lower().startswith("deg"):
        factor = 111.2
    else:  # metres (the conventions' default)
        factor = 1e-3
    return max(spacing) * factor


@register_method("steps")
class Steps(SProg):
    """pySTEPS STEPS: an ensemble of stochastic S-PROG forecasts (see the module doc).

    Options: those of ``sprog`` (flow, advection, ``n_cascade_levels``, ``ar_order``,
    ``probmatching``) and ``members`` (ensemble size, default 20), ``seed`` (int >= 0, or
    None for fresh noise), ``noise`` (pySTEPS noise method, default ``"nonparametric"``),
    ``perturb_motion`` (pySTEPS' ``bps`` motion perturbations, default on) and
    ``mask`` (``"incremental"``, pySTEPS' default, ``"obs"``, ``"sprog"`` or None).
    """

    name = "steps"
    probabilistic = True

    def __init__(
        self,
        *,
        members: int = DEFAULT_MEMBERS,
        seed: int | None = None,
        noise: str | None = "nonparametric",
        perturb_motion: bool = True,
        mask: str | None = "incremental",
        **sprog,
    ):
        super().__init__(**sprog)
        self.members = check_members(members)
        self.seed = check_seed(seed)
        if noise not in NOISE_METHODS:
            raise NowcastError(f"steps: noise must be one of {NOISE_METHODS}, got {noise!r}")
        if mask not in ("incremental", "obs", "sprog", None):
            raise NowcastError(
                f"steps: mask must be 'incremental', 'obs', 'sprog' or None, got {mask!r}"
            )
        self.noise = noise
        self.perturb_motion = bool(perturb_motion)
        self.mask = mask

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["method_options"].update(
            nowcast="pysteps steps",
            members=self.members,
            noise=str(self.noise),
            motion_perturbation="bps" if self.perturb_motion else "none",
            mask=str(self.mask),
            deterministic="ensemble median",
        )
        return out

    def predict(self, past: xr.DataArray, n_leads: int) -> xr.DataArray:
        """The ensemble median of ``members`` members (seeded with ``seed``)."""
        dist = self.predict_distribution(past, n_leads, members=self.members, seed=self.seed)
        return dist.median()

    def predict_distribution(
        self, past: xr.DataArray, n_leads: int, *, members: int = 0, seed: int | None = None
    ) -> EnsembleDistribution:
        """The STEPS ensemble ``(realization, lead_time, y, x)`` as a distribution.

        ``members``: the ensemble size (0: the method's ``members``); ``seed``: the noise
        seed (None: the method's ``seed``, which may be None for fresh noise).
        """
        n_members = check_members(members) if members else self.members
        seed = self.seed if seed is None else check_seed(seed)
        n_leads, past, step, frames, velocity, unknown = self._setup(past, n_leads)
        if velocity is None:  # nothing to forecast (dry, or no data): dry stays dry
            values = np.zeros((n_members,) + unknown.shape, dtype=np.float32)
        else:
            values = self._steps(past, step, frames, velocity, n_leads, n_members, seed)
        values[:, unknown] = np.nan
        template = lead_array(values[0], past, step)
        return EnsembleDistribution(
            stacked(values, template, REALIZATION, *realization_coord(n_members))
        )

    def _steps(
        self,
        past: xr.DataArray,
        step: pd.Timedelta,
        frames: np.ndarray,
        velocity: np.ndarray,
        n_leads: int,
        n_members: int,
        seed: int | None,
    ) -> np.ndarray:
        dbr = self._to_dbr(frames[-(self.ar_order + 1) :])
        # imported here, not at the top: pySTEPS costs seconds of start-up time
        with contextlib.redirect_stdout(io.StringIO()):
            import pysteps.nowcasts

            out = pysteps.nowcasts.get_method("steps")(
                dbr,
                velocity,
                n_leads,
                n_ens_members=n_members,
                n_cascade_levels=self.n_cascade_levels,
                precip_thr=10.0 * np.log10(self.flow.rain_threshold),
                kmperpixel=km_per_pixel(past),
                timestep=step / pd.Timedelta(minutes=1),
                noise_method=self.noise,
                ar_order=self.ar_order,
                vel_pert_method="bps" if self.perturb_motion else None,
                probmatching_method=self.probmatching,
                mask_method=self.mask,
                seed=seed,
                extrap_kwargs=self._extrap_kwargs(),
            )
        values = self._from_dbr(out)
        # a perturbed motion that brings a pixel in from outside: the other members' median
        # (a member's value: the lower median), NaN where every member has NaN
        stray = np.isnan(values)
        if stray.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nanquantile(values, 0.5, axis=0, method="lower")
            values = np.where(stray, median[None], values)
        return values.astype(np.float32)


def check_members(members) -> int:
    """A positive whole number of ensemble members."""
    if isinstance(members, bool) or not isinstance(members, (int, np.integer)) or members < 1:
        raise NowcastError(f"members must be a positive whole number, got {members!r}")
    return int(members)


def check_seed(seed) -> int | None:
    """A random seed: None or a whole number in 0 .. 2**32 - 1 (what pySTEPS takes)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise NowcastError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r}")
    return int(seed)
