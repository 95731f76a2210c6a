"""Motion fields and advection: the one optical-flow module of the project.

``extrapolation``, ``sprog`` and the Lagrangian ConvLSTM (its training windows and its
forecasts) all move fields with the code here, so the same :class:`FlowOptions` give the
same motion and the same advection everywhere.

* :meth:`FlowOptions.velocity`: dense Lucas-Kanade optical flow (pySTEPS
  ``motion.get_method("LK")``, OpenCV underneath) on the last ``frames`` inputs, tracked
  on a transformed field (:func:`transform_frames`): for precipitation (``mm h-1``) the
  usual pySTEPS practice, dBR = 10 log10(R) where R >= ``rain_threshold`` and
  :data:`DBR_ZERO` elsewhere; for any other variable (e.g. temperature in K) the z-scored
  field (x - mean) / std (smooth fields give few trackable features; with none LK returns
  zero motion). NaN pixels are masked for the tracking; fewer than two consecutive frames
  with data, or dry (constant) frames, give zero motion.
* :func:`displacements` / :func:`warp`: pySTEPS' semi-Lagrangian scheme (backward
  trajectories, midpoint rule, one inner iteration) split in its two parts: the
  displacement after 1 .. n steps along a motion field (it depends on the motion only), and
  moving one field by one displacement (``interp_order`` 0, 1 or 3, with pySTEPS' masking
  for cubic; pixels that come from outside the domain or from NaN get ``outval``).
  :func:`advect` (one field, n steps) equals ``pysteps.extrapolation.semilagrangian``
  to the last bit; :func:`advect_each` moves field ``j`` by ``j + 1`` steps (a forecast made
  in the Lagrangian frame, moved lead by lead); :func:`align_past` / :func:`align_future`
  bring past and future frames to the issue time (the Lagrangian frame of L-CNN,
  Ritvanen et al. 2023).

Motion fields are ``(2, y, x)`` float64: x and y components in pixels per time step. Fields
are ``(y, x)``; stacks ``(t, y, x)``, oldest first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import map_coordinates

from nowcast.conventions import RATE_UNITS
from nowcast.errors import NowcastError

log = logging.getLogger(__name__)

#: dBR given to pixels below the rain threshold (pySTEPS' usual ``zerovalue``).
DBR_ZERO = -15.0

#: Transforms :meth:`FlowOptions.velocity` can track on.
FLOW_TRANSFORMS = ("dbr", "zscore")

#: The smallest grid (pixels, each side) the optical flow is computed on. pySTEPS' dense
#: Lucas-Kanade tracks features at least 10 pixels apart in 50 x 50 pixel windows and
#: declusters them on 20-pixel cells: on an 8 x 8 or 12 x 12 crop of a real radar event
#: it returns 2.5-5x the motion found on the whole grid (20 pixels a step on an 8-pixel
#: grid: every forecast pixel comes from outside, all NaN), at 16 x 16 about 1.5x, from
#: 32 x 32 about the whole grid's. Smaller grids are refused (:func:`check_flow_grid`).
MIN_FLOW_GRID = 16


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


@dataclass(frozen=True, eq=False)
class FlowOptions:
    """How motion is estimated and fields are moved (shared by every method that moves fields).

    ``frames``: inputs the flow is computed on (>= 2; the last ``frames`` of the window).
    ``transform``: ``"auto"`` (dBR for ``mm h-1``, z-score otherwise), ``"dbr"`` or
    ``"zscore"``. ``rain_threshold``: mm h-1, for dBR. ``interp_order``: 0, 1 or 3 for the
    advection. ``outval``: the value advected in from outside the domain (NaN: unknown).
    ``lk_options``: keyword arguments for ``pysteps.motion.dense_lucaskanade``.
    """

    frames: int = 3
    transform: str = "auto"
    rain_threshold: float = 0.1
    interp_order: int = 1
    outval: float = float("nan")
    lk_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.frames, bool) or int(self.frames) != self.frames or self.frames < 2:
            raise NowcastError(f"the optical flow needs t_in >= 2 frames, got {self.frames!r}")
        if self.transform not in ("auto", *FLOW_TRANSFORMS):
            raise NowcastError(
                f"flow transform must be 'auto', 'dbr' or 'zscore', got {self.transform!r}"
            )
        if self.interp_order not in (0, 1, 3):
            raise NowcastError(f"interp_order must be 0, 1 or 3, got {self.interp_order!r}")
        if not self.rain_threshold > 0:
            raise NowcastError(f"rain_threshold must be > 0, got {self.rain_threshold!r}")
        object.__setattr__(self, "frames", int(self.frames))
        object.__setattr__(self, "lk_options", dict(self.lk_options or {}))

    def __eq__(self, other) -> bool:  # by value, NaN outval equal to NaN
        return isinstance(other, FlowOptions) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def key(self) -> str:
        """A short stable digest of the options (for cache keys)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def transform_for(self, units: str | None) -> str:
        """The transform the flow of data in ``units`` is tracked on."""
        return auto_transform(units) if self.transform == "auto" else self.transform

    def velocity(self, frames: np.ndarray, units: str | None) -> np.ndarray:
        """Motion ``(2, y, x)`` (pixels per step) from the last ``self.frames`` of ``frames``."""
        frames = np.asarray(frames, dtype=np.float64)[-self.frames :]
        return flow_field(
            frames,
            self.transform_for(units),
            rain_threshold=self.rain_threshold,
            flow_options=self.lk_options,
        )

    def to_dict(self) -> dict:
        """Plain values (for metadata and cache keys); NaN ``outval`` as ``None``."""
        return {
            "frames": self.frames,
            "transform": self.transform,
            "rain_threshold": self.rain_threshold,
            "interp_order": self.interp_order,
            "outval": None if math.isnan(self.outval) else self.outval,
            "lk_options": dict(sorted(self.lk_options.items())),
        }

    @classmethod
    def from_config(cls, flow_config) -> FlowOptions:
        """From a :class:`nowcast.config.FlowConfig` (same field names)."""
        return cls(**dataclasses.asdict(flow_config))

    @classmethod
    def from_dict(cls, values: dict) -> FlowOptions:
        values = dict(values)
        if values.get("outval", 0.0) is None:
            values["outval"] = float("nan")
        return cls(**values)


def check_flow_grid(shape) -> None:
    """A :class:`NowcastError` naming the size when a ``(y, x)`` grid is too small for the
    optical flow (:data:`MIN_FLOW_GRID`)."""
    ny, nx = (int(n) for n in shape[-2:])
    if min(ny, nx) < MIN_FLOW_GRID:
        raise NowcastError(
            f"the grid is {ny} x {nx} pixels, too small for the optical flow of the "
            f"motion-based methods (extrapolation, sprog, Lagrangian models): they need at "
            f"least {MIN_FLOW_GRID} x {MIN_FLOW_GRID}; use a larger domain or --method "
            "persistence"
        )


def flow_field(
    frames: np.ndarray,
    transform: str,
    *,
    rain_threshold: float = 0.1,
    flow_options: dict | None = None,
) -> np.ndarray:
    """Motion field ``(2, y, x)`` (pixels per step) from ``(t, y, x)`` frames, last = newest.

    Only the consecutive frames with data up to the last are used; with fewer than two,
    or nothing to track, the motion is zero. A grid smaller than :data:`MIN_FLOW_GRID`
    pixels a side is a :class:`NowcastError`.
    """
    shape = (2,) + frames.shape[1:]
    check_flow_grid(frames.shape[1:])
    has_data = [bool(np.isfinite(f).any()) for f in frames]
    n_usable = has_data[::-1].index(False) if False in has_data else len(has_data)
    usable = frames[len(frames) - n_usable :]  # the consecutive frames with data, up to the last
    if len(usable) < 2:
        log.warning("fewer than 2 consecutive input frames with data; using zero motion")
        return np.zeros(shape)
    tracked = transform_frames(usable, transform, rain_threshold=rain_threshold)
    finite = tracked[np.isfinite(tracked)]
    if finite.size == 0 or finite.min() == finite.max():  # dry / constant: nothing to track
        return np.zeros(shape)
    motion, _ = import_pysteps()
    with contextlib.redirect_stdout(io.StringIO()):
        velocity = motion.get_method("LK")(tracked, **(flow_options or {}))
    velocity = np.asarray(velocity, dtype=np.float64)
    if velocity.shape != shape:
        raise NowcastError(f"optical flow returned shape {velocity.shape}, expected {shape}")
    return np.nan_to_num(velocity, nan=0.0, posinf=0.0, neginf=0.0)


# --------------------------------------------------------------------------- advection


def displacements(velocity: np.ndarray, n_steps: int) -> list[np.ndarray]:
    """The displacements ``(2, y, x)`` after 1 .. ``n_steps`` steps along ``velocity``.

    pySTEPS' semi-Lagrangian trajectories, one step at a time (``displacement_prev``), which
    gives exactly the displacements of one ``n_steps`` call. Zero motion: zeros.
    """
    if not velocity.any():
        return [np.zeros_like(velocity, dtype=np.float64) for _ in range(n_steps)]
    _, extrapolation = import_pysteps()
    out, previous = [], None
    for _ in range(n_steps):
        _, previous = extrapolation.semilagrangian.extrapolate(
            None,
            velocity,
            1,
            displacement_prev=previous,
            return_displacement=True,
            allow_nonfinite_values=True,
        )
        out.append(previous.copy())
    return out


def warp(
    field: np.ndarray,
    displacement: np.ndarray,
    *,
    interp_order: int = 1,
    outval: float = float("nan"),
) -> np.ndarray:
    """``field`` moved by ``displacement``: the value at ``(y, x)`` is read at ``(y, x) + D``.

    The interpolation of pySTEPS' semi-Lagrangian scheme (order 0, 1, or 3 with its masks
    that keep the field's minimum and NaN where they were). A zero displacement returns
    the field unchanged.
    """
    field = np.asarray(field, dtype=np.float64)
    if not displacement.any():
        return field.copy()
    ny, nx = field.shape
    x_idx, y_idx = np.meshgrid(np.arange(nx), np.arange(ny), copy=False)
    coords = [y_idx + displacement[1], x_idx + displacement[0]]
    if interp_order <= 1:
        return map_coordinates(
            field, coords, mode="constant", cval=outval, order=interp_order, prefilter=False
        )
    finite = np.isfinite(field)
    if not finite.any():
        return np.full(field.shape, np.nan)
    minval = np.nanmin(field)
    above_min = (field > minval).astype(float)
    filled = np.where(finite, field, 0.0)
    out = map_coordinates(filled, coords, mode="constant", cval=outval, order=3, prefilter=True)
    out[map_coordinates(above_min, coords, mode="constant", cval=0, order=1) < 0.5] = minval
    out[map_coordinates(finite.astype(float), coords, mode="constant", cval=0, order=1) < 0.5] = (
        np.nan
    )
    return out


def warp_fields(fields: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """``(n, y, x)`` finite fields all moved by one ``displacement``, bilinear, in one pass.

    OpenCV's ``remap`` (float32, interpolation weights in steps of 1/32 pixel, outside the
    grid 0): about 20x :func:`warp` for a stack of fields, for ensemble members. Equal to
    :func:`warp` (``interp_order=1``) at interior points to within 1/32 of the local
    difference between neighbours; NaN must be filled before and masked after by the caller.
    """
    import cv2  # imported here: OpenCV is only needed for ensembles

    fields = np.asarray(fields, dtype=np.float32)
    if not displacement.any():
        return fields.copy()
    ny, nx = fields.shape[-2:]
    x_idx, y_idx = np.meshgrid(np.arange(nx, dtype=np.float32), np.arange(ny, dtype=np.float32))
    map_x = x_idx + displacement[0].astype(np.float32)
    map_y = y_idx + displacement[1].astype(np.float32)
    out = np.empty_like(fields)
    for start in range(0, len(fields), 256):  # OpenCV takes at most 512 channels
        part = np.ascontiguousarray(np.moveaxis(fields[start : start + 256], 0, -1))
        moved = cv2.remap(
            part, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0
        )
        out[start : start + 256] = np.moveaxis(moved.reshape(ny, nx, -1), -1, 0)
    return out


def advect(
    field: np.ndarray,
    velocity: np.ndarray,
    n_steps: int,
    *,
    outval: float = float("nan"),
    interp_order: int = 1,
) -> np.ndarray:
    """``(n_steps, y, x)``: ``field`` moved 1 .. ``n_steps`` steps along ``velocity``."""
    return advect_each(
        np.broadcast_to(field, (n_steps,) + np.shape(field)),
        velocity,
        outval=outval,
        interp_order=interp_order,
    )


def advect_each(
    fields: np.ndarray,
    velocity: np.ndarray,
    *,
    outval: float = float("nan"),
    interp_order: int = 1,
    moved: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """``(n, y, x)``: ``fields[j]`` moved ``j + 1`` steps along ``velocity`` (lead by lead).

    ``moved``: ``displacements(velocity, m)`` for some ``m >= n`` when the caller has them
    (they cost more than the warps).
    """
    fields = np.asarray(fields)
    moved = _moved(velocity, len(fields), moved)
    return np.stack(
        [warp(f, d, interp_order=interp_order, outval=outval) for f, d in zip(fields, moved)]
    )


def _moved(velocity: np.ndarray, n: int, moved: Sequence[np.ndarray] | None) -> list:
    """The first ``n`` displacements: from ``moved`` when given (checked), else computed."""
    if moved is None:
        return displacements(velocity, n)
    if len(moved) < n:
        raise ValueError(f"{n} steps need {n} displacements, got {len(moved)}")
    return list(moved[:n])


def align_past(
    frames: np.ndarray,
    velocity: np.ndarray,
    *,
    outval: float = float("nan"),
    interp_order: int = 1,
    moved: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """``(t, y, x)`` past frames, each moved forward to the time of the last one.

    ``frames[-1 - k]`` is moved ``k`` steps along ``velocity``; the last frame is unchanged.
    ``moved``: as for :func:`advect_each` (``m >= t - 1``).
    """
    frames = np.asarray(frames, dtype=np.float64)
    n = len(frames)
    moved = _moved(velocity, n - 1, moved)
    out = [
        warp(frames[n - 1 - k], moved[k - 1], interp_order=interp_order, outval=outval)
        for k in range(n - 1, 0, -1)
    ]
    return np.stack(out + [frames[-1]])


def align_future(
    frames: np.ndarray,
    velocity: np.ndarray,
    *,
    outval: float = float("nan"),
    interp_order: int = 1,
) -> np.ndarray:
    """``(t, y, x)`` future frames, ``frames[j]`` moved ``j + 1`` steps back (``-velocity``)."""
    return advect_each(frames, -np.asarray(velocity), outval=outval, interp_order=interp_order)
