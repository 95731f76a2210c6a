"""Baseline forecast methods: ``persistence`` and ``extrapolation``.

* ``persistence`` repeats the last observed frame at every lead time.
* ``extrapolation`` estimates a motion field by dense Lucas-Kanade optical flow on the
  last ``t_in`` frames and advects the last observed field along it with pySTEPS'
  semi-Lagrangian scheme (:mod:`nowcast.methods.motion`, where the flow transforms are
  described: dBR for precipitation, the z-scored field otherwise, so extrapolation works
  for temperature too and equals persistence when there is nothing to track). The
  *untransformed* last field is advected (bilinear by default). Pixels advected from
  outside the domain or from NaN get ``outval`` (NaN: unknown), and pixels that are NaN in
  the last input frame stay NaN. Dry (constant) inputs skip the flow: zero motion, and the
  forecast is the input (zeros stay zeros).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from nowcast.conventions import TIME
from nowcast.errors import NowcastError
from nowcast.methods.base import (
    Forecaster,
    check_n_leads,
    check_past,
    infer_step,
    lead_array,
    register_method,
)
from nowcast.methods.motion import FLOW_TRANSFORMS, advect, auto_transform, flow_field


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
    ``flow_options`` (keyword arguments for ``pysteps.motion.dense_lucaskanade``).
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
        if isinstance(t_in, bool) or int(t_in) != t_in or t_in < 2:
            raise NowcastError(
                f"extrapolation needs t_in >= 2 frames for the optical flow, got {t_in!r}"
            )
        if transform not in ("auto", *FLOW_TRANSFORMS):
            raise NowcastError(
                f"extrapolation transform must be 'auto', 'dbr' or 'zscore', got {transform!r}"
            )
        if interp_order not in (0, 1, 3):
            raise NowcastError(f"interp_order must be 0, 1 or 3, got {interp_order!r}")
        if not rain_threshold > 0:
            raise NowcastError(f"rain_threshold must be > 0, got {rain_threshold!r}")
        self.t_in = int(t_in)
        self.step = infer_step(None, step) if step is not None else None
        self.transform = transform
        self.rain_threshold = float(rain_threshold)
        self.interp_order = int(interp_order)
        self.outval = float(outval)
        self.flow_options = dict(flow_options or {})

    def describe(self) -> dict[str, Any]:
        return {
            "method_options": {
                "t_in": self.t_in,
                "flow": "pysteps dense Lucas-Kanade",
                "advection": "pysteps semilagrangian",
                "transform": self.transform,
                "interp_order": self.interp_order,
            }
        }

    def flow_transform(self, past: xr.DataArray) -> str:
        """The transform used for the flow of ``past``: ``"dbr"`` or ``"zscore"``."""
        if self.transform != "auto":
            return self.transform
        return auto_transform(past.attrs.get("units"))

    def motion(self, frames: np.ndarray, transform: str) -> np.ndarray:
        """Motion field ``(2, y, x)`` (x and y components, pixels per step) from ``(t, y, x)``."""
        return flow_field(
            frames, transform, rain_threshold=self.rain_threshold, flow_options=self.flow_options
        )

    def predict(self, past: xr.DataArray, n_leads: int) -> xr.DataArray:
        n_leads = check_n_leads(n_leads)
        past = check_past(past, self.t_in, self.name)
        step = infer_step(past[TIME].values[-self.t_in :], self.step)
        frames = np.asarray(past.isel({TIME: slice(-self.t_in, None)}).values, dtype=np.float64)
        last = frames[-1]
        invalid = ~np.isfinite(last)
        if invalid.all():
            return lead_array(np.full((n_leads,) + last.shape, np.nan), past, step)
        velocity = self.motion(frames, self.flow_transform(past))
        values = advect(last, velocity, n_leads, outval=self.outval, interp_order=self.interp_order)
        values = np.asarray(values, dtype=np.float32)
        values[:, invalid] = np.nan
        return lead_array(values, past, step)
