"""Motion fields and advection: the optical-flow code shared by methods that move fields.

* :func:`flow_field`: dense Lucas-Kanade optical flow (pySTEPS ``motion.get_method("LK")``,
  OpenCV underneath) on a transformed field (:func:`transform_frames`): for precipitation
  (``mm h-1``) the usual pySTEPS practice, dBR = 10 log10(R) where R >= ``rain_threshold``
  and :data:`DBR_ZERO` elsewhere; for any other variable (e.g. temperature in K) the
  z-scored field (x - mean) / std over all input frames (smooth fields give few trackable
  features; with none LK returns zero motion). NaN input pixels are masked for the feature
  tracking; dry (constant) inputs skip the flow and give zero motion.
* :func:`advect`: pySTEPS' semi-Lagrangian advection of one field along a motion field;
  pixels advected from outside the domain or from NaN get ``outval``.

Motion fields are ``(2, y, x)``: x and y components in pixels per time step.
"""

from __future__ import annotations

import contextlib
import io
import logging

import numpy as np

from nowcast.conventions import RATE_UNITS
from nowcast.errors import NowcastError

log = logging.getLogger(__name__)

#: dBR given to pixels below the rain threshold (pySTEPS' usual ``zerovalue``).
DBR_ZERO = -15.0

#: Transforms :func:`flow_field` can track on.
FLOW_TRANSFORMS = ("dbr", "zscore")


def import_pysteps():
    """``(pysteps.motion, pysteps.extrapolation)``, importing pySTEPS quietly."""
    # imported here, not at the top: pySTEPS costs seconds of start-up time
    with contextlib.redirect_stdout(io.StringIO()):
        import pysteps.extrapolation
        import pysteps.motion
    return pysteps.motion, pysteps.extrapolation


def auto_transform(units: str | None) -> str:
    """The flow transform for data in ``units``: ``"dbr"`` for ``mm h-1``, else ``"zscore"``."""
    return "dbr" if units == RATE_UNITS else "zscore"


def to_dbr(rate: np.ndarray, threshold: float) -> np.ndarray:
    """10 log10(R) where R >= threshold, ``DBR_ZERO`` below it, NaN kept."""
    out = np.full(rate.shape, DBR_ZERO)
    with np.errstate(invalid="ignore"):
        wet = rate >= threshold
    out[wet] = 10.0 * np.log10(rate[wet])
    out[~np.isfinite(rate)] = np.nan
    return out


def zscore(values: np.ndarray) -> np.ndarray:
    """``(values - mean) / std`` over the finite values (all 0 when they are constant)."""
    finite = values[np.isfinite(values)]
    std = finite.std() if finite.size else 0.0
    if std == 0:
        return np.where(np.isfinite(values), 0.0, np.nan)
    return (values - finite.mean()) / std


def transform_frames(frames: np.ndarray, transform: str, *, rain_threshold: float) -> np.ndarray:
    """``frames`` in the space the flow is tracked in (``"dbr"`` or ``"zscore"``)."""
    return to_dbr(frames, rain_threshold) if transform == "dbr" else zscore(frames)


def flow_field(
    frames: np.ndarray,
    transform: str,
    *,
    rain_threshold: float = 0.1,
    flow_options: dict | None = None,
) -> np.ndarray:
    """Motion field ``(2, y, x)`` (pixels per step) from ``(t, y, x)`` frames, last = newest.

    Only the consecutive frames with data up to the last are used; with fewer than two,
    or nothing to track, the motion is zero.
    """
    shape = (2,) + frames.shape[1:]
    has_data = [bool(np.isfinite(f).any()) for f in frames]
    n_usable = has_data[::-1].index(False) if False in has_data else len(has_data)
    usable = frames[len(frames) - n_usable :]  # the consecutive frames with data, up to the last
    if len(usable) < 2:
        log.warning(
            "extrapolation: fewer than 2 consecutive input frames with data; using zero motion"
        )
        return np.zeros(shape)
    field = transform_frames(usable, transform, rain_threshold=rain_threshold)
    finite = field[np.isfinite(field)]
    if finite.size == 0 or finite.min() == finite.max():  # dry / constant: nothing to track
        return np.zeros(shape)
    motion, _ = import_pysteps()
    with contextlib.redirect_stdout(io.StringIO()):
        velocity = motion.get_method("LK")(field, **(flow_options or {}))
    velocity = np.asarray(velocity, dtype=np.float64)
    if velocity.shape != shape:
        raise NowcastError(f"optical flow returned shape {velocity.shape}, expected {shape}")
    return np.nan_to_num(velocity, nan=0.0, posinf=0.0, neginf=0.0)


def advect(
    field: np.ndarray,
    velocity: np.ndarray,
    n_steps: int,
    *,
    outval: float = float("nan"),
    interp_order: int = 1,
) -> np.ndarray:
    """``(n_steps, y, x)``: ``field`` moved 1 .. ``n_steps`` steps along ``velocity``.

    Zero motion is the identity (no interpolation); otherwise pySTEPS' semi-Lagrangian
    scheme, ``interp_order`` 0, 1 or 3, ``outval`` for what comes in from outside.
    """
    if not velocity.any():
        return np.repeat(field[None], n_steps, axis=0)
    _, extrapolation = import_pysteps()
    return extrapolation.get_method("semilagrangian")(
        field,
        velocity,
        n_steps,
        outval=outval,
        allow_nonfinite_values=True,
        interp_order=interp_order,
    )
