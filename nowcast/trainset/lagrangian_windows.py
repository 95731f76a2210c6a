"""Training windows in the Lagrangian frame, computed once into a prepared store (Zarr).

A Lagrangian window (L-CNN, Ritvanen et al. 2023) is a window of ``t_in + t_out`` frames
brought to its issue time (the last input frame) along one optical flow: the flow is
computed on the last ``flow.frames`` inputs (:class:`nowcast.motion.FlowOptions`, the
``extrapolation`` baseline's flow), input ``t0 - k`` is moved ``k`` steps forward, target
``t0 + j`` is moved ``j`` steps back (:func:`nowcast.motion.align_past`,
:func:`~nowcast.motion.align_future`). In that frame advection is gone: persistence of the
last frame *is* extrapolation, and a network only has to learn growth, decay and the loss
of predictability. A pixel is valid where every frame of the window is finite (what moves
in from outside the domain or from no-data is NaN).

:class:`LagrangianStore` holds one event's windows: a
:class:`~nowcast.trainset.prepared.WindowStore` (``<event>-<key>.zarr`` under the store
root, a local folder or an fsspec URL), ``key`` a digest of its provenance (source files'
names, sizes and content digests, :mod:`nowcast.trainset.provenance`; preprocessing,
``t_in``, ``t_out``, flow options, window starts, format version). Arrays: ``windows``
``(n, t_in + t_out, y, x)`` (physical units, NaN outside the valid area), chunked ``(1, all
frames, tile, tile)`` so that one crop of one window is one to four reads; ``done``
``(n,)``, written after a window's data, so an interrupted build resumes where it stopped
and a half-written window is recomputed; ``start`` ``(n,)`` the windows' first frames in
the event. A store with another provenance is another key: a changed input or option never
reads stale windows, and stale stores are removed when their event is rebuilt. Windows are
computed in parallel with Dask (one task per window, a bounded number in flight, so memory
stays bounded whatever the event's size).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from nowcast.motion import FlowOptions, align_future, align_past
from nowcast.trainset.prepared import WindowStore
from nowcast.trainset.roots import StoreRoot


def lagrangian_window(
    frames: np.ndarray, *, t_in: int, flow: FlowOptions, units: str | None
) -> np.ndarray:
    """``(t_in + t_out, y, x)`` physical frames -> the same window in the Lagrangian frame.

    Inputs moved forward to the last input frame, targets moved back to it, all along the
    flow of the last ``flow.frames`` inputs; float32, NaN where unknown.
    """
    frames = np.asarray(frames, dtype=np.float64)
    past, future = frames[:t_in], frames[t_in:]
    velocity = flow.velocity(past, units)
    kw = {"outval": flow.outval, "interp_order": flow.interp_order}
    parts = [align_past(past, velocity, **kw)]
    if len(future):
        parts.append(align_future(future, velocity, **kw))
    return np.concatenate(parts).astype(np.float32)


class LagrangianStore(WindowStore):
    """The stored Lagrangian windows of one event (see the module doc).

    ``data``: the event's prepared archive (lazy, physical units); ``starts``: the first
    frames of the windows to hold; ``source``: the archive it was prepared from (its files
    and their sizes and content digests go into the provenance); ``prepare``: the
    preprocessing that made ``data`` from it (e.g. crop and coarsen settings); ``dtype``:
    ``float32`` or ``float16`` (half the bytes).
    """

    all_frames_valid = True  # the Lagrangian frame's valid area: every frame moved there is

    def __init__(
        self,
        root: str | Path | StoreRoot,
        name: str,
        data: xr.DataArray,
        starts: Sequence[int],
        *,
        t_in: int,
        t_out: int,
        flow: FlowOptions,
        source: xr.DataArray | None = None,
        prepare: dict | None = None,
        dtype: str = "float32",
        codec: str = "zstd",
    ) -> None:
        self.t_in, self.t_out, self.flow = int(t_in), int(t_out), flow
        self.units_name = data.attrs.get("units")
        options = {"t_in": self.t_in, "t_out": self.t_out, "flow": flow.to_dict()}
        super().__init__(
            root,
            name,
            data,
            starts,
            length=self.t_in + self.t_out,
            options=options,
            source=source,
            prepare=prepare,
            dtype=dtype,
            codec=codec,
        )

    def transform(self, frames: np.ndarray) -> np.ndarray:
        return lagrangian_window(frames, t_in=self.t_in, flow=self.flow, units=self.units_name)
