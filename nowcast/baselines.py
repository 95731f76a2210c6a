"""Baseline forecast methods: ``persistence`` and ``extrapolation``.

* ``persistence`` repeats the last observed frame at every lead time.
* ``extrapolation`` estimates a motion field by dense Lucas-Kanade optical flow
  (pySTEPS ``motion.get_method("LK")``, OpenCV underneath) on the last ``t_in`` frames
  and advects the last observed field along it with pySTEPS' semi-Lagrangian scheme.

  The flow is computed on a transformed field: for precipitation (``mm h-1``) the usual
  pySTEPS practice, dBR = 10 log10(R) where R >= ``rain_threshold`` and -15 dBR
  elsewhere; for any other variable (e.g. temperature in K) the z-scored field
  (x - mean) / std over all input frames, so extrapolation works for temperature too
  (smooth fields give few trackable features; with none LK returns zero motion and the
  forecast equals persistence). NaN input pixels are masked for the feature tracking. The
  *untransformed* last field is advected (bilinear by default). Pixels advected from
  outside the domain or from NaN get ``outval`` (NaN: unknown), and pixels that are NaN in
  the last input frame stay NaN. Dry (constant) inputs skip the flow: zero motion, and the
  forecast is the input (zeros stay zeros).

pySTEPS is imported on first use with its start-up message kept off stdout.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

import numpy as np
import xarray as xr

from nowcast.conventions import RATE_UNITS, TIME
from nowcast.errors import NowcastError
from nowcast.methods import check_n_leads, check_past, infer_step, lead_array, register_method

log = logging.getLogger(__name__)

#: dBR given to pixels below the rain threshold (pySTEPS' usual ``zerovalue``).
DBR_ZERO = -15.0


def import_pysteps():
    """``(pysteps.motion, pysteps.extrapolation)``, importing pySTEPS quietly."""
    with contextlib.redirect_stdout(io.StringIO()):
        import pysteps.extrapolation
        import pysteps.motion
    return pysteps.motion, pysteps.extrapolation


@register_method("persistence")
class Persistence:
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
class Extrapolation:
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
        if transform not in ("auto", "dbr", "zscore"):
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
        return "dbr" if past.attrs.get("units") == RATE_UNITS else "zscore"

    def motion(self, frames: np.ndarray, transform: str) -> np.ndarray:
        """Motion field ``(2, y, x)`` (x and y components, pixels per step) from ``(t, y, x)``."""
        shape = (2,) + frames.shape[1:]
        has_data = [bool(np.isfinite(f).any()) for f in frames]
        n_usable = has_data[::-1].index(False) if False in has_data else len(has_data)
        usable = frames[
            len(frames) - n_usable :
        ]  # the consecutive frames with data, up to the last
        if len(usable) < 2:
            log.warning(
                "extrapolation: fewer than 2 consecutive input frames with data; using zero motion"
            )
            return np.zeros(shape)
        field = _to_dbr(usable, self.rain_threshold) if transform == "dbr" else _zscore(usable)
        finite = field[np.isfinite(field)]
        if finite.size == 0 or finite.min() == finite.max():  # dry / constant: nothing to track
            return np.zeros(shape)
        motion, _ = import_pysteps()
        with contextlib.redirect_stdout(io.StringIO()):
            velocity = motion.get_method("LK")(field, **self.flow_options)
        velocity = np.asarray(velocity, dtype=np.float64)
        if velocity.shape != shape:
            raise NowcastError(f"optical flow returned shape {velocity.shape}, expected {shape}")
        return np.nan_to_num(velocity, nan=0.0, posinf=0.0, neginf=0.0)

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
        if not velocity.any():  # zero motion: advection is the identity
            values = np.repeat(last[None], n_leads, axis=0)
        else:
            _, extrapolation = import_pysteps()
            values = extrapolation.get_method("semilagrangian")(
                last,
                velocity,
                n_leads,
                outval=self.outval,
                allow_nonfinite_values=True,
                interp_order=self.interp_order,
            )
        values = np.asarray(values, dtype=np.float32)
        values[:, invalid] = np.nan
        return lead_array(values, past, step)


def _to_dbr(rate: np.ndarray, threshold: float) -> np.ndarray:
    """10 log10(R) where R >= threshold, ``DBR_ZERO`` below it, NaN kept."""
    out = np.full(rate.shape, DBR_ZERO)
    with np.errstate(invalid="ignore"):
        wet = rate >= threshold
    out[wet] = 10.0 * np.log10(rate[wet])
    out[~np.isfinite(rate)] = np.nan
    return out


def _zscore(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    std = finite.std() if finite.size else 0.0
    if std == 0:
        return np.where(np.isfinite(values), 0.0, np.nan)
    return (values - finite.mean()) / std
