"""Training windows in the Lagrangian frame, computed once and cached on disk (Zarr).

A Lagrangian window (L-CNN, Ritvanen et al. 2023) is a window of ``t_in + t_out`` frames
brought to its issue time (the last input frame) along one optical flow: the flow is
computed on the last ``flow.frames`` inputs (:class:`nowcast.motion.FlowOptions`, the
``extrapolation`` baseline's flow), input ``t0 - k`` is moved ``k`` steps forward, target
``t0 + j`` is moved ``j`` steps back (:func:`nowcast.motion.align_past`,
:func:`~nowcast.motion.align_future`). In that frame advection is gone: persistence of the
last frame *is* extrapolation, and a network only has to learn growth, decay and the loss
of predictability. A pixel is valid where every frame of the window is finite (what moves
in from outside the domain or from no-data is NaN).

:class:`LagrangianStore` holds one event's windows: a Zarr group ``<event>-<key>.zarr``
under the cache folder, ``key`` a digest of its provenance (source files with their sizes
and times, preprocessing, ``t_in``, ``t_out``, flow options, window starts, format
version). Arrays: ``windows`` ``(n, t_in + t_out, y, x)`` float32 (physical units, NaN
outside the valid area), chunked ``(1, all frames, tile, tile)`` so that one crop of one
window is one to four reads; ``done`` ``(n,)``, written after a window's data, so an
interrupted build resumes where it stopped and a half-written window is recomputed;
``start`` ``(n,)`` the windows' first frames in the event. A store with another provenance
is another key: a changed input or option never reads stale windows, and stale stores are
removed when their event is rebuilt. Windows are computed in parallel with Dask (one task
per window, a bounded number in flight, so memory stays bounded whatever the event's size).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import dask
import numpy as np
import xarray as xr

from nowcast.conventions import TIME
from nowcast.errors import DataError
from nowcast.fileio import atomic_output
from nowcast.motion import FlowOptions, align_future, align_past

#: Bump when the content of a window changes for the same provenance.
FORMAT_VERSION = 1
#: Spatial chunk (pixels) of the cached windows: near the usual crop size.
TILE = 128


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


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/nowcast`` (or ``~/.cache/nowcast``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nowcast"


def _sources(data: xr.DataArray) -> list[dict]:
    files = data.encoding.get("source_files") or (
        [data.encoding["source"]] if "source" in data.encoding else []
    )
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append({"path": str(f), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
        except OSError:
            out.append({"path": str(f)})
    return out


def _compute(data: xr.DataArray, start: int, length: int, t_in: int, flow, units):
    frames = np.asarray(data.isel({TIME: slice(start, start + length)}).values)
    return lagrangian_window(frames, t_in=t_in, flow=flow, units=units)


class LagrangianStore:
    """The cached Lagrangian windows of one event (see the module doc).

    ``data``: the event's prepared archive (lazy, physical units); ``starts``: the first
    frames of the windows to hold; ``source``: the archive it was prepared from (its files
    and their sizes and times go into the provenance); ``prepare``: the preprocessing that
    made ``data`` from it (e.g. crop and coarsen settings).
    """

    def __init__(
        self,
        root: str | Path,
        name: str,
        data: xr.DataArray,
        starts: Sequence[int],
        *,
        t_in: int,
        t_out: int,
        flow: FlowOptions,
        source: xr.DataArray | None = None,
        prepare: dict | None = None,
    ) -> None:
        self.root = Path(root)
        self.name = name
        self.data = data
        self.starts = np.array(sorted({int(s) for s in starts}), dtype=np.int64)
        self.t_in, self.t_out, self.flow = int(t_in), int(t_out), flow
        self.provenance = {
            "format": FORMAT_VERSION,
            "event": name,
            "sources": _sources(source if source is not None else data),
            "prepare": prepare or {},
            "grid": [int(data.sizes["y"]), int(data.sizes["x"])],
            "times": [str(data[TIME].values[0]), str(data[TIME].values[-1])],
            "t_in": self.t_in,
            "t_out": self.t_out,
            "flow": flow.to_dict(),
            "starts": self.starts.tolist(),
        }
        text = json.dumps(self.provenance, sort_keys=True, default=str)
        self.key = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.path = self.root / f"{name}-{self.key}.zarr"
        self._row = {int(s): i for i, s in enumerate(self.starts)}
        self._group = None

    @property
    def length(self) -> int:
        return self.t_in + self.t_out

    def _open(self, mode: str = "r"):
        import zarr  # imported here: only the Lagrangian frame needs it

        return zarr.open_group(str(self.path), mode=mode)

    def missing(self) -> list[int]:
        """Rows not computed yet (all of them when the store does not exist)."""
        if not self.path.exists():
            return list(range(len(self.starts)))
        done = np.asarray(self._open("r")["done"][:], dtype=bool)
        return [int(i) for i in np.flatnonzero(~done)]

    def build(
        self,
        *,
        workers: int = 1,
        in_flight: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Compute and write the missing windows; returns how many were computed.

        ``workers`` > 1: that many processes (the flow and the interpolations are
        CPU-bound); at most ``in_flight`` windows (default ``2 * workers``) are in memory.
        Other stores of this event (another provenance) are removed first.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        mine = re.compile(rf"{re.escape(self.name)}-[0-9a-f]{{16}}\.zarr")
        for old in self.root.glob(f"{self.name}-*.zarr"):
            if old != self.path and mine.fullmatch(old.name):
                shutil.rmtree(old, ignore_errors=True)
        if not self.path.exists():
            self._create()
        rows = self.missing()
        if not rows:
            return 0
        group = self._open("r+")
        windows, done = group["windows"], group["done"]
        units = self.data.attrs.get("units")
        in_flight = max(1, in_flight or 2 * workers)
        scheduler = "processes" if workers > 1 else "synchronous"
        for k in range(0, len(rows), in_flight):
            batch = rows[k : k + in_flight]
            tasks = [
                dask.delayed(_compute)(
                    self.data, int(self.starts[r]), self.length, self.t_in, self.flow, units
                )
                for r in batch
            ]
            results = dask.compute(*tasks, scheduler=scheduler, num_workers=workers)
            for r, window in zip(batch, results):
                windows[r] = window
                done[r] = True  # after the data: an interrupted write is recomputed
            if progress is not None:
                progress(k + len(batch), len(rows))
        self._group = None
        return len(rows)

    def _create(self) -> None:
        import zarr  # imported here: only the Lagrangian frame needs it

        with atomic_output(self.path) as tmp:  # the empty store appears whole
            group = zarr.open_group(str(tmp), mode="w")
            ny, nx = (int(v) for v in self.provenance["grid"])
            n = len(self.starts)
            group.create_array(
                "windows",
                shape=(n, self.length, ny, nx),
                chunks=(1, self.length, min(TILE, ny), min(TILE, nx)),
                dtype="float32",
                fill_value=np.nan,
            )
            group.create_array("done", shape=(n,), chunks=(1,), dtype="bool", fill_value=False)
            group.create_array("start", data=self.starts, chunks=(max(n, 1),))
            group.attrs["provenance"] = json.loads(json.dumps(self.provenance, default=str))

    def read(self, start: int, oy: int, ox: int, py: int, px: int) -> np.ndarray:
        """``(t_in + t_out, py, px)``: the window starting at frame ``start``, crop at (oy, ox)."""
        row = self._row.get(int(start))
        if row is None:
            raise DataError(f"{self.name}: no cached Lagrangian window starts at frame {start}")
        if self._group is None:
            self._group = self._open("r")
        return np.asarray(self._group["windows"][row, :, oy : oy + py, ox : ox + px])

    def __getstate__(self):  # worker processes open the store themselves
        state = dict(self.__dict__)
        state["_group"] = None
        return state
