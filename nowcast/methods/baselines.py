"""Baseline forecast methods: ``persistence``, ``extrapolation`` and ``sprog``.

* ``persistence`` repeats the last observed frame at every lead time.
* ``extrapolation`` estimates a motion field by dense Lucas-Kanade optical flow on the
  last ``t_in`` frames and advects the last observed field along it with pySTEPS'
  semi-Lagrangian scheme (:mod:`nowcast.motion`, where the flow transforms are
  described: dBR for precipitation, the z-scored field otherwise, so extrapolation works
  for temperature too and equals persistence when there is nothing to track). The
  *untransformed* last field is advected (bilinear by default). Pixels advected from
  outside the domain or from NaN get ``outval`` (NaN: unknown), and pixels that are NaN in
  the last input frame stay NaN. Dry (constant) inputs skip the flow: zero motion, and the
  forecast is the input (zeros stay zeros).
* ``sprog``: pySTEPS' S-PROG (Seed 2003), the extrapolation with scale-dependent
  smoothing: the dBR field is split into a cascade of spatial scales, each evolved by an
  AR(2) model in the Lagrangian frame (small scales, which live shortly, fade first), then
  matched to the last observed rain distribution. Same flow and advection options as
  ``extrapolation`` (:class:`nowcast.motion.FlowOptions`); NaN where extrapolation is
  NaN. Precipitation (``mm h-1``) only.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import numpy as np
import xarray as xr

from nowcast.conventions import RATE_UNITS, TIME
from nowcast.errors import NowcastError
from nowcast.methods.base import (
    Forecaster,
    check_n_leads,
    check_past,
    infer_step,
    lead_array,
    register_method,
)
from nowcast.motion import DBR_ZERO, FlowOptions, advect, to_dbr


@register_method("persistence")
class Persistence(Forecaster):
    """The last observed frame, unchanged, at every lead time (``t_in`` = 1).

    ``step``: the lead-time step; inferred from ``past.time`` when it holds two or more
    frames.
    """

    name = "persistence"
    t_in = 1

    def __init__(self, *, step=None):
        self.step = infer_step(None, step) if step is not None else None

    def predict(self, past: xr.DataArray, n_leads: int) -> xr.DataArray:
        n_leads = check_n_leads(n_leads)
        past = check_past(past, self.t_in, self.name)
        step = infer_step(past[TIME].values[-2:], self.step)
        last = np.asarray(past.isel({TIME: -1}).values, dtype=np.float32)
        return lead_array(np.repeat(last[None], n_leads, axis=0), past, step)

    def describe(self) -> dict[str, Any]:
        return {"method_options": {"t_in": self.t_in}}


@register_method("extrapolation")
class Extrapolation(Forecaster):
    """Optical flow (dense Lucas-Kanade) + semi-Lagrangian advection of the last frame.

    Options: ``t_in`` (frames for the flow, >= 2; default 3), ``step`` (inferred from
    ``past.time`` when omitted), ``transform`` (``"auto"``: ``"dbr"`` for ``mm h-1``
    data, ``"zscore"`` otherwise), ``rain_threshold`` (mm h-1, for dBR), ``interp_order``
    (0, 1 or 3), ``outval`` (value advected in from outside the domain; NaN = unknown),
    ``flow_options`` (keyword arguments for ``pysteps.motion.dense_lucaskanade``); together
    a :class:`nowcast.motion.FlowOptions` (``self.flow``).
    """

    name = "extrapolation"

    def __init__(
        self,
        *,
        t_in: int = 3,
        step=None,
        transform: str = "auto",
        rain_threshold: float = 0.1,
        interp_order: int = 1,
        outval: float = float("nan"),
        flow_options: dict | None = None,
    ):
        self.flow = FlowOptions(
            frames=t_in,
            transform=transform,
            rain_threshold=rain_threshold,
            interp_order=interp_order,
            outval=outval,
            lk_options=flow_options or {},
        )
        self.t_in = self.flow.frames
        self.step = infer_step(None, step) if step is not None else None

    def describe(self) -> dict[str, Any]:
        return {
            "method_options": {
                "t_in": self.t_in,
                "flow": "pysteps dense Lucas-Kanade",
                "advection": "pysteps semilagrangian",
                "transform": self.flow.transform,
                "interp_order": self.flow.interp_order,
            }
        }

    def _inputs(self, past: xr.DataArray, n_leads: int):
        """Checked inputs: ``(n_leads, past, step, frames, last, invalid)``."""
        n_leads = check_n_leads(n_leads)
        past = check_past(past, self.t_in, self.name)
        step = infer_step(past[TIME].values[-self.t_in :], self.step)
        frames = np.asarray(past.isel({TIME: slice(-self.t_in, None)}).values, dtype=np.float64)
        last = frames[-1]
        return n_leads, past, step, frames, last, ~np.isfinite(last)

    def predict(self, past: xr.DataArray, n_leads: int) -> xr.DataArray:
        n_leads, past, step, frames, last, invalid = self._inputs(past, n_leads)
        if invalid.all():
            return lead_array(np.full((n_leads,) + last.shape, np.nan), past, step)
        velocity = self.flow.velocity(frames, past.attrs.get("units"))
        values = advect(
            last, velocity, n_leads, outval=self.flow.outval, interp_order=self.flow.interp_order
        )
        values = np.asarray(values, dtype=np.float32)
        values[:, invalid] = np.nan
        return lead_array(values, past, step)


@register_method("sprog")
class SProg(Extrapolation):
    """pySTEPS S-PROG on dBR: extrapolation with scale-dependent smoothing (Seed 2003).

    Options: those of ``extrapolation`` (the same flow and advection) and
    ``n_cascade_levels`` (spatial scales, default 6), ``ar_order`` (1 or 2; needs
    ``ar_order + 1 <= t_in`` frames), ``probmatching`` (``"cdf"``: match the last observed
    rain distribution, pySTEPS' default; ``"mean"``; ``None``). Rain below
    ``rain_threshold`` is forecast as 0; pixels where ``extrapolation`` gives NaN (advected
    from outside the domain or from no-data) are NaN.
    """

    name = "sprog"

    def __init__(
        self,
        *,
        n_cascade_levels: int = 6,
        ar_order: int = 2,
        probmatching: str | None = "cdf",
        **flow,
    ):
        super().__init__(**flow)
        if ar_order not in (1, 2) or ar_order + 1 > self.t_in:
            raise NowcastError(
                f"sprog: ar_order must be 1 or 2 and at most t_in - 1 = {self.t_in - 1}, "
                f"got {ar_order!r}"
            )
        if isinstance(n_cascade_levels, bool) or not 1 <= int(n_cascade_levels) <= 12:
            raise NowcastError(f"sprog: n_cascade_levels must be 1 .. 12, got {n_cascade_levels!r}")
        if probmatching not in ("cdf", "mean", None):
            raise NowcastError(
                f"sprog: probmatching must be 'cdf', 'mean' or None, got {probmatching!r}"
            )
        self.n_cascade_levels = int(n_cascade_levels)
        self.ar_order = int(ar_order)
        self.probmatching = probmatching

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["method_options"].update(
            nowcast="pysteps sprog",
            n_cascade_levels=self.n_cascade_levels,
            ar_order=self.ar_order,
            probmatching=str(self.probmatching),
        )
        return out

    def check_compatible(self, archive: xr.DataArray) -> None:
        units = archive.attrs.get("units")
        if units != RATE_UNITS:
            raise NowcastError(
                f"sprog is a precipitation method (rain rates in {RATE_UNITS}); the input is in "
                f"{units}: use extrapolation or persistence"
            )

    def predict(self, past: xr.DataArray, n_leads: int) -> xr.DataArray:
        n_leads, past, step, frames, velocity, unknown = self._setup(past, n_leads)
        if velocity is None:  # nothing to forecast (dry, or no data): dry stays dry
            values = np.zeros(unknown.shape, dtype=np.float32)
        else:
            values = self._sprog(frames[-(self.ar_order + 1) :], velocity, n_leads)
        values[unknown] = np.nan
        return lead_array(values, past, step)

    def _setup(self, past: xr.DataArray, n_leads: int):
        """What S-PROG and STEPS share: checked inputs, the flow and the NaN mask.

        Returns ``(n_leads, past, step, frames, velocity, unknown)``: ``velocity`` is None
        when there is nothing to forecast (the last frame dry below ``rain_threshold`` or
        all NaN); ``unknown`` ``(n_leads, y, x)`` is True exactly where ``extrapolation``
        is NaN (the last frame's no-data pattern advected, and what comes from outside).
        """
        n_leads, past, step, frames, last, invalid = self._inputs(past, n_leads)
        self.check_compatible(past)
        if invalid.all():
            return n_leads, past, step, frames, None, np.ones((n_leads,) + last.shape, bool)
        velocity = self.flow.velocity(frames, RATE_UNITS)
        # NaN exactly where extrapolation has NaN: advect the no-data pattern of the last frame
        nodata = np.where(invalid, np.nan, 0.0)
        unknown = ~np.isfinite(
            advect(nodata, velocity, n_leads, outval=self.flow.outval, interp_order=1)
        )
        unknown[:, invalid] = True
        if not (np.nan_to_num(last) >= self.flow.rain_threshold).any():
            velocity = None
        return n_leads, past, step, frames, velocity, unknown

    def _to_dbr(self, frames: np.ndarray) -> np.ndarray:
        """Rain rates as the finite dBR pySTEPS' nowcasts take (no-data as no rain; it is
        masked after)."""
        dbr = to_dbr(frames, self.flow.rain_threshold)
        dbr[~np.isfinite(dbr)] = DBR_ZERO
        return dbr

    def _from_dbr(self, out) -> np.ndarray:
        """pySTEPS' dBR output as rain rates: 0 below ``rain_threshold``, NaN kept."""
        threshold = self.flow.rain_threshold
        out = np.asarray(out, dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            rate = np.where(out >= 10.0 * np.log10(threshold), 10.0 ** (out / 10.0), 0.0)
        rate[~np.isfinite(out)] = np.nan
        return rate.astype(np.float32)

    def _extrap_kwargs(self) -> dict:
        return {"interp_order": self.flow.interp_order, "allow_nonfinite_values": True}

    def _sprog(self, frames: np.ndarray, velocity: np.ndarray, n_leads: int) -> np.ndarray:
        threshold = self.flow.rain_threshold
        dbr = self._to_dbr(frames)
        # imported here, not at the top: pySTEPS costs seconds of start-up time
        with contextlib.redirect_stdout(io.StringIO()):
            import pysteps.nowcasts

            with warnings.catch_warnings(record=True) as caught:  # said only if it works
                out = self._run_sprog(pysteps, dbr, velocity, n_leads, threshold)
            for w in caught:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return self._from_dbr(out)

    def _run_sprog(self, pysteps, dbr, velocity, n_leads: int, threshold: float) -> np.ndarray:
        """pySTEPS' S-PROG; a cascade it cannot compute (a small grid) is one line."""
        try:
            return pysteps.nowcasts.get_method("sprog")(
                dbr,
                velocity,
                n_leads,
                precip_thr=10.0 * np.log10(threshold),
                n_cascade_levels=self.n_cascade_levels,
                ar_order=self.ar_order,
                probmatching_method=self.probmatching,
                extrap_kwargs=self._extrap_kwargs(),
            )
        except ValueError as exc:  # e.g. a cascade level with no finite value
            ny, nx = dbr.shape[-2:]
            raise NowcastError(
                f"sprog: the {self.n_cascade_levels}-level cascade cannot be computed on this "
                f"{ny} x {nx} grid ({exc}): the domain is too small or too much of it moves out "
                "or is missing; use a larger domain or --method extrapolation"
            ) from None
