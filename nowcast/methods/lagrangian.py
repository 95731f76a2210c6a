"""Forecasting in the Lagrangian frame, at any radar cadence near the model's own.

The trained network of a ``model.frame: lagrangian`` run works at its training step
``s_m`` (e.g. 5 min) on frames already brought to the issue time. For an archive with step
``s`` (e.g. 5, 6 or 10 min) and ratio ``r = s / s_m`` in
:data:`nowcast.trained.cadence.STEP_RATIOS`:

1. the motion is the ``extrapolation`` baseline's: the flow of the last ``flow.frames``
   inputs, in pixels per *input* step (:class:`nowcast.motion.FlowOptions`);
2. the past inputs are moved forward to the issue time (:func:`nowcast.motion.align_past`)
   and encoded; in that frame the motion is gone, so the ``t_in`` model inputs at
   ``t0 - k s_m`` are read off the aligned inputs by linear interpolation in time
   (identity when ``r = 1``);
3. the network forecasts the change of the last frame at ``s_m, 2 s_m, ...`` (rolling:
   its last ``t_in`` outputs become the inputs while more leads are needed);
4. lead ``j`` (time ``j s``) is interpolated linearly in time between the network's
   outputs (with the last observed frame at lead 0), decoded, and moved forward ``j``
   input steps along the flow (:func:`nowcast.motion.advect_each`): lead by lead with the
   same displacements as ``extrapolation``.

A network whose output change is zero therefore reproduces ``extrapolation`` at any step
(to float rounding of the encoding). Pixels NaN in the last frame, or moved in from
outside the domain or from no-data, are NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from nowcast.errors import NowcastError
from nowcast.motion import FlowOptions, advect_each, align_past, displacements, warp_fields
from nowcast.trained.cadence import input_frames


def interpolate_times(frames: np.ndarray, times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Linear interpolation in time of ``frames`` ``(n, y, x)`` at ``times`` (ascending) to
    ``at`` (inside ``[times[0], times[-1]]``); exact frames where ``at`` hits ``times``.
    NaN where either neighbour is NaN."""
    out = np.empty((len(at),) + frames.shape[1:], dtype=frames.dtype)
    for i, t in enumerate(at):
        k = int(np.searchsorted(times, t - 1e-9))
        if k < len(times) and abs(times[k] - t) < 1e-9:
            out[i] = frames[k]
            continue
        if k == 0 or k >= len(times):
            raise ValueError(f"time {t} outside {times[0]} .. {times[-1]}")
        w = (t - times[k - 1]) / (times[k] - times[k - 1])
        out[i] = (1.0 - w) * frames[k - 1] + w * frames[k]
    return out


class LagrangianFrame:
    """The Lagrangian frame of one issue time: its flow, the displacements of the leads and
    the valid area (pixels finite in the last frame)."""

    def __init__(self, frames: np.ndarray, *, flow: FlowOptions, units: str | None, n_steps: int):
        self.velocity = flow.velocity(frames, units)
        self.invalid = ~np.isfinite(frames[-1])
        # one trajectory computation for the past and the leads (both move forward)
        self.kw = {
            "outval": flow.outval,
            "interp_order": flow.interp_order,
            "moved": displacements(self.velocity, n_steps),
        }
        self._unknown: np.ndarray | None = None  # advect's NaN, for advect_members

    def align(self, frames: np.ndarray) -> np.ndarray:
        """Past frames moved forward to the issue time (:func:`nowcast.motion.align_past`)."""
        return align_past(frames, self.velocity, **self.kw)

    def advect(self, fields: np.ndarray) -> np.ndarray:
        """``(n, y, x)`` fields of the leads 1 .. n moved forward along the flow, float32;
        NaN where the last frame was (what moves out of the no-data area is unknown)."""
        values = np.array(fields, dtype=np.float64)
        values[:, self.invalid] = np.nan
        return advect_each(values, self.velocity, **self.kw).astype(np.float32)

    def advect_members(self, fields: np.ndarray, *, in_place: bool = False) -> np.ndarray:
        """``(m, n, y, x)`` fields (e.g. ensemble members) moved as :meth:`advect` moves
        ``(n, y, x)``, all ``m`` of a lead in one bilinear pass
        (:func:`nowcast.motion.warp_fields`), with :meth:`advect`'s NaN exactly.
        ``in_place``: written over ``fields`` (float32) instead of a new array (one
        ensemble's worth of memory less)."""
        fields = np.asarray(fields, dtype=np.float32)
        n = fields.shape[1]
        if self._unknown is None or len(self._unknown) < n:
            self._unknown = np.isnan(self.advect(np.zeros(fields.shape[1:], np.float32)))
        out = fields if in_place else np.empty_like(fields)
        for j in range(n):
            out[:, j] = warp_fields(np.nan_to_num(fields[:, j]), self.kw["moved"][j])
        out[:, self._unknown[:n]] = np.nan
        return out


def network_leads(
    network: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    *,
    t_in: int,
    ratio: float,
    n_leads: int,
    feedback: int = 0,
) -> np.ndarray:
    """The network's values at leads ``1 .. n_leads`` (archive steps), ``(n_leads, y, x, K)``.

    ``x``: ``(1, t_in, y, x, 1)`` inputs at model steps ending at the issue time. The network
    is rolled (channel ``feedback`` of its last ``t_in`` outputs becomes the input) while more
    leads are needed; lead ``j`` is interpolated in time between its outputs (the last input
    at lead 0).
    """
    horizon = n_leads * ratio
    at = ratio * np.arange(1, n_leads + 1)
    # the model steps the leads are read from (each lead's neighbours in time): only these
    # are kept, not every step of every pass (at 3x the model's step, 12 of 37)
    needed = {math.floor(t + 1e-9) for t in at} | {math.ceil(t - 1e-9) for t in at}
    steps = sorted(needed)
    row = {step: i for i, step in enumerate(steps)}
    stack = None  # (len(steps), y, x, K): the kept model steps, filled as the passes go
    produced = 0
    while produced < horizon - 1e-9:
        y = np.asarray(network(x), dtype=np.float32)
        if stack is None:
            stack = np.empty((len(steps),) + y.shape[2:], dtype=np.float32)
            if 0 in row:  # lead 0: the last frame, in every channel
                stack[row[0]] = np.repeat(x[0, -1], y.shape[-1], axis=-1)
        for i in range(y.shape[1]):
            if produced + 1 + i in row:
                stack[row[produced + 1 + i]] = y[0, i]
        produced += y.shape[1]
        x = np.concatenate([x, y[..., feedback : feedback + 1]], axis=1)[:, -t_in:]
        del y
    return interpolate_times(stack, np.asarray(steps, dtype=float), at)


def lagrangian_inputs(
    frames: np.ndarray,
    *,
    encode: Callable[[np.ndarray], np.ndarray],
    fill_value: float,
    flow: FlowOptions,
    units: str | None,
    t_in: int,
    ratio: float,
    n_leads: int,
) -> tuple[np.ndarray, np.ndarray, LagrangianFrame] | None:
    """Encoded network inputs ``(1, t_in, y, x, 1)`` in the Lagrangian frame of ``frames``
    (physical, oldest first, step ``ratio`` model steps), the encoded aligned inputs
    ``(span + 1, y, x)`` (NaN kept) and the frame; None when the last frame is all NaN."""
    frames = np.asarray(frames, dtype=np.float64)
    need = input_frames(t_in, flow.frames, ratio)
    if len(frames) < need:
        raise NowcastError(f"the Lagrangian model needs {need} input frames, got {len(frames)}")
    if not np.isfinite(frames[-1]).any():
        return None
    span = int(math.ceil((t_in - 1) / ratio - 1e-9))
    frame = LagrangianFrame(frames, flow=flow, units=units, n_steps=max(span, n_leads))
    aligned = encode(frame.align(frames[len(frames) - span - 1 :]))
    # model times (in model steps, 0 = issue time) and the aligned inputs' times
    inputs = interpolate_times(
        aligned, -ratio * np.arange(span, -1, -1.0), -np.arange(t_in - 1, -1, -1.0)
    )
    inputs = fill_from_later(inputs)
    x = np.where(np.isfinite(inputs), inputs, fill_value).astype(np.float32)[None, ..., None]
    return x, aligned, frame


def fill_from_later(inputs: np.ndarray) -> np.ndarray:
    """``(t, y, x)`` inputs (oldest first) with each NaN taken from the next later frame
    that has a value there (a copy). Moved to the issue time, the past frames hold no value
    where the rain came from beyond the grid or the radar's range; filled as dry, the
    network reads rain appearing out of nothing there, i.e. fast growth, and invents rain
    far above the inputs at a domain's upstream edge (up to 4.3 times the inputs' maximum
    on MeteoSwiss crops); filled with the later value, it reads steady rain."""
    out = np.array(inputs, copy=True)
    for t in range(len(out) - 2, -1, -1):
        np.copyto(out[t], out[t + 1], where=~np.isfinite(out[t]))
    return out


def lagrangian_forecast(
    network: Callable[[np.ndarray], np.ndarray],
    frames: np.ndarray,
    *,
    encode: Callable[[np.ndarray], np.ndarray],
    decode: Callable[[np.ndarray], np.ndarray],
    fill_value: float,
    flow: FlowOptions,
    units: str | None,
    t_in: int,
    ratio: float,
    n_leads: int,
) -> np.ndarray:
    """``(n_leads, y, x)`` physical forecast from ``frames`` (physical, oldest first, step
    ``ratio`` model steps) with the Lagrangian ``network`` (see the module doc).

    ``network``: ``(1, t_in, y, x, 1)`` encoded inputs -> ``(1, t_out, y, x, 1)``;
    ``encode``/``decode``: physical <-> the network's values (NaN kept by ``encode``).
    """
    prepared = lagrangian_inputs(
        frames,
        encode=encode,
        fill_value=fill_value,
        flow=flow,
        units=units,
        t_in=t_in,
        ratio=ratio,
        n_leads=n_leads,
    )
    if prepared is None:
        return np.full((n_leads,) + np.shape(frames)[1:], np.nan, dtype=np.float32)
    x, _, frame = prepared
    leads = network_leads(network, x, t_in=t_in, ratio=ratio, n_leads=n_leads)
    return frame.advect(np.asarray(decode(leads[..., 0]), dtype=np.float64))
