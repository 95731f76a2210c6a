"""Prepared training stores: an event's training data written once as Zarr, chunked for the loader.

A training loader that cuts small crops out of whole frames reads far more than it uses
(one chunk per frame in the archives); at scale it waits on the disk. A prepared store
holds the event's training data once more, chunked for the access pattern: spatial tiles
of :data:`TILE` pixels (near the crop size) and all frames of a window in a few reads.
Two layouts, one life cycle (:class:`PreparedStore`):

* :class:`FrameStore` (Eulerian): the prepared frames (crop + coarsen, physical units)
  ``frames (t, y, x)`` chunked ``(FRAME_CHUNK, TILE, TILE)``; a window of ``T`` frames is
  ``ceil(T / FRAME_CHUNK) + 1`` time chunks at most. No frame is stored twice.
* :class:`WindowStore` (the Lagrangian frame,
  :class:`nowcast.trainset.lagrangian_windows.LagrangianStore`): each window's frames after
  a per-window transform, ``windows (n, T, y, x)`` chunked ``(1, T, TILE, TILE)``: one crop
  of one window is one to four reads. Overlapping windows repeat frames: ``T / stride``
  times the frames' bytes before compression.

Values are float32 (or float16, half the bytes: about 3 significant digits) with NaN where
missing, compressed with Zarr's default codec (zstd) or LZ4 (:data:`CODECS`); reads go
chunk by chunk through :mod:`nowcast.trainset.chunks`. A store lives under a store root, a
local folder or an fsspec URL (``file://``, ``s3://``, ``memory://``:
:class:`~nowcast.trainset.roots.StoreRoot`), as ``<event>-[<layout>-]<key>.zarr``, ``key``
a digest of its provenance (the source files' names, sizes and content digests,
:mod:`nowcast.trainset.provenance`; preprocessing, grid, time range, layout and its
options, format version): a changed input or option is another key and never reads stale
data; building a store removes the event's other stores of the same layout. The key holds
no path and no file time, so a copied or re-provisioned data folder (another place, new
times) finds its stores again; the paths are kept beside it in the store, to find an
event's stale stores. It is built in units (a window, or a time chunk of frames), in
parallel worker processes through Dask with a bounded number in flight (memory stays a few
units whatever the event's size); each unit writes its own chunks (on a local root Zarr
writes each chunk atomically, a temporary file renamed; on object storage a chunk is one
object) and then a ``done`` flag, so an interrupted build resumes and recomputes only
unfinished units. An empty store is created whole: on a local root built aside and renamed
into place (:func:`nowcast.fileio.atomic_output`), on a URL (no rename there) with its
``provenance`` attribute written last; a store without provenance is incomplete and is
rebuilt.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Protocol

import dask
import numpy as np
import xarray as xr

from nowcast.conventions import TIME
from nowcast.errors import DataError
from nowcast.fileio import atomic_output
from nowcast.interrupts import start_workers
from nowcast.trainset.chunks import chunk_reader
from nowcast.trainset.provenance import source_stats, store_key
from nowcast.trainset.roots import StoreRoot

#: Bump when the content of a store changes for the same provenance.
FORMAT_VERSION = 1
#: Spatial chunk (pixels) of prepared stores: near the usual crop size.
TILE = 128
#: Time chunk (frames) of a frame store.
FRAME_CHUNK = 8
DTYPES = ("float32", "float16")
#: Chunk compression of prepared stores: Zarr's default (zstd), or LZ4 through Blosc (byte
#: shuffle): larger, faster to decode (measured in docs/benchmarks.md, "Streaming").
CODECS = ("zstd", "lz4")


class WindowReader(Protocol):
    """What the prepared loader reads from: one event's windows, crop by crop."""

    name: str
    length: int  # frames per window
    all_frames_valid: bool  # True: a pixel is valid only where all its window's frames are

    def read(self, start: int, oy: int, ox: int, py: int, px: int, *, out=None) -> np.ndarray:
        """``(length, py, px)`` float32 physical values (NaN where missing); written into
        ``out`` (float32, that shape) when given, so a caller can reuse one buffer."""


class _Lazy:
    """A lazy array handed to a Dask task as it is (Dask would compute a bare DataArray)."""

    def __init__(self, data: xr.DataArray) -> None:
        self.data = data

    def values(self) -> np.ndarray:
        with dask.config.set(scheduler="synchronous"):
            return np.asarray(self.data.values)


def _fill_unit(store: PreparedStore, data: _Lazy, unit: int) -> int:
    store.write_unit(unit, data.values())
    return unit


class PreparedStore:
    """One event's prepared training data (see the module doc); subclasses set the layout.

    ``data``: the event's prepared archive (lazy, physical units); ``length``: frames per
    window; ``source``: the archive ``data`` was prepared from (its files go into the
    provenance); ``prepare``: the preprocessing that made ``data`` (crop, coarsen).
    """

    layout = ""  # part of the store's name ("" for the Lagrangian windows' original names)
    array = ""  # the data array's name
    all_frames_valid = False

    def __init__(
        self,
        root: str | os.PathLike | StoreRoot,
        name: str,
        data: xr.DataArray,
        *,
        length: int,
        source: xr.DataArray | None = None,
        prepare: dict | None = None,
        dtype: str = "float32",
        codec: str = "zstd",
        options: dict | None = None,
    ) -> None:
        if dtype not in DTYPES:
            raise DataError(f"prepared store dtype must be one of {', '.join(DTYPES)}: {dtype!r}")
        if codec not in CODECS:
            raise DataError(f"prepared store codec must be one of {', '.join(CODECS)}: {codec!r}")
        self.codec = codec
        self.root = root if isinstance(root, StoreRoot) else StoreRoot(root)
        self.name = name
        self.data = data
        self.length = int(length)
        self.dtype = dtype
        self.provenance = {
            "format": FORMAT_VERSION,
            "event": name,
            "sources": source_stats(source if source is not None else data),
            "prepare": prepare or {},
            "grid": [int(data.sizes["y"]), int(data.sizes["x"])],
            "times": [str(data[TIME].values[0]), str(data[TIME].values[-1])],
            **(options or {}),
        }
        if codec != "zstd":  # absent for the default: earlier stores keep their keys
            self.provenance["codec"] = codec
        self.key = store_key(self.provenance)
        prefix = f"{name}-{self.layout}-" if self.layout else f"{name}-"
        self.store_name = f"{prefix}{self.key}.zarr"
        self._mine = re.compile(rf"{re.escape(prefix)}[0-9a-f]{{16}}\.zarr")
        self._arr = None
        self._reader = None  # a ChunkReader, False when the array needs Zarr, None: not looked at

    # ---- subclass hooks
    def units(self) -> int:
        """How many build units (windows, time chunks) the store has."""
        raise NotImplementedError

    def unit_data(self, unit: int) -> xr.DataArray:
        """The lazy frames a unit is computed from."""
        raise NotImplementedError

    def write_unit(self, unit: int, frames: np.ndarray) -> None:
        """Compute unit ``unit`` from its ``frames`` and write its chunks."""
        raise NotImplementedError

    def _create_arrays(self, group) -> None:
        raise NotImplementedError

    # ---- life cycle
    @property
    def path(self) -> Path | str:
        return self.root.location(self.store_name)

    def _complete(self) -> bool:
        if not self.root.exists(self.store_name):
            return False
        try:
            return "provenance" in self.root.open(self.store_name).attrs
        except Exception:  # unreadable metadata: an interrupted creation
            return False

    def missing(self) -> list[int]:
        """Units not computed yet (all of them when the store does not exist)."""
        if not self._complete():
            return list(range(self.units()))
        done = np.asarray(self.root.open(self.store_name)["done"][:], dtype=bool)
        return [int(i) for i in np.flatnonzero(~done)]

    def build(
        self,
        *,
        workers: int = 1,
        in_flight: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Compute and write the missing units; returns how many were computed.

        ``workers`` > 1: that many processes (on a root other processes can see); at most
        ``in_flight`` units (default ``2 * workers``) at a time. The event's other stores
        of this layout (another provenance: a changed input or option) are removed first;
        a store is the event's when its stored provenance names one of the event's source
        files (an event's identity is its path: another event with the same name, from
        another folder, keeps its stores).
        """
        for other in self.root.names():
            if other != self.store_name and self._mine.fullmatch(other) and self._stale(other):
                self.root.remove(other)
        if not self._complete():
            self.root.remove(self.store_name)
            self._create()
        rows = self.missing()
        if not rows:
            return 0
        done = self.root.open(self.store_name, "r+")["done"]
        workers = max(1, int(workers)) if self.root.shared else 1
        in_flight = max(1, in_flight or 2 * workers)
        pool = None
        if workers > 1:
            context = multiprocessing.get_context(
                dask.config.get("multiprocessing.context", "spawn")
            )
            pool = ProcessPoolExecutor(workers, mp_context=context)
        try:
            if pool is not None:  # Ctrl-C is this process's: no worker prints a traceback
                start_workers(pool, workers)
            for k in range(0, len(rows), in_flight):
                batch = rows[k : k + in_flight]
                tasks = [
                    dask.delayed(_fill_unit, pure=False)(self, _Lazy(self.unit_data(r)), r)
                    for r in batch
                ]
                if pool is None:
                    finished = dask.compute(*tasks, scheduler="synchronous")
                else:
                    finished = dask.compute(*tasks, scheduler="processes", pool=pool)
                for r in finished:
                    done[r] = True  # after the unit's data: an interrupted write is redone
                if progress is not None:
                    progress(k + len(batch), len(rows))
        finally:
            if pool is not None:
                pool.shutdown()
        self._arr = self._reader = None
        return len(rows)

    def _stale(self, other: str) -> bool:
        """Whether store ``other`` (of this name and layout) is an earlier one of this event:
        its provenance names a source file this event has (an unreadable one: kept)."""
        try:
            provenance = self.root.open(other).attrs.get("provenance")
        except Exception:  # unreadable metadata: not known to be ours
            return False
        if not isinstance(provenance, dict):
            return False

        def paths(sources) -> set[str]:
            return {os.path.realpath(str(src.get("path"))) for src in sources or ()}

        return bool(paths(provenance.get("sources")) & paths(self.provenance["sources"]))

    def _create(self) -> None:
        """The empty store: on a local root built aside and renamed into place
        (:func:`nowcast.fileio.atomic_output`); on a URL written in place, provenance last."""
        if self.root.remote:
            self._fill_empty(self.root.open(self.store_name, "w"))
            return
        import zarr  # imported here: only prepared stores need it

        with atomic_output(self.path) as tmp:  # the empty store appears whole
            self._fill_empty(zarr.open_group(str(tmp), mode="w"))

    def _fill_empty(self, group) -> None:
        self._create_arrays(group)
        n = self.units()
        group.create_array(
            "done",
            shape=(n,),
            chunks=(1,),
            dtype="bool",
            fill_value=False,
            dimension_names=["unit"],
        )
        # written last: a store without it is an interrupted creation
        group.attrs["provenance"] = json.loads(json.dumps(self.provenance, default=str))

    def nbytes(self) -> int:
        """Bytes the store takes on its root (compressed)."""
        return self.root.nbytes(self.store_name)

    def _array(self, mode: str = "r"):
        if mode != "r":
            return self.root.open(self.store_name, mode)[self.array]
        if self._arr is None:
            self._arr = self.root.open(self.store_name)[self.array]
        return self._arr

    def _compressors(self):
        """The data array's compressors (``"auto"``: Zarr's default, zstd)."""
        if self.codec == "zstd":
            return "auto"
        from zarr.codecs import BloscCodec  # imported here: only prepared stores need it

        return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")

    def _box(self, box: tuple[slice, ...], out: np.ndarray | None = None) -> np.ndarray:
        """The stored values in ``box`` as float32 (into ``out`` when given): chunk by chunk
        (:mod:`nowcast.trainset.chunks`), or through Zarr for a layout that reader does not take."""
        if self._reader is None:
            self._reader = chunk_reader(self.root, self.store_name, self.array) or False
        if self._reader and (out is not None or self._reader.dtype == np.float32):
            return self._reader.read(box, out=out)
        values = self._reader.read(box) if self._reader else self._array()[box]
        if out is None:
            return np.asarray(values, dtype=np.float32)
        out[...] = values
        return out

    def __getstate__(self):  # worker processes open the store themselves and get data per unit
        state = dict(self.__dict__)
        state["_arr"] = None
        state["_reader"] = None
        state["data"] = None
        state["_mine"] = None
        return state


class FrameStore(PreparedStore):
    """The prepared frames of an event (Eulerian windows), chunked for crops of windows."""

    layout = "frames"
    array = "frames"

    def __init__(self, root, name, data, *, length, frame_chunk: int = FRAME_CHUNK, **kwargs):
        self.frame_chunk = int(frame_chunk)
        options = {"layout": "frames", "dtype": kwargs.get("dtype", "float32")}
        options["chunks"] = [self.frame_chunk, TILE, TILE]
        options["n_times"] = int(data.sizes[TIME])
        super().__init__(root, name, data, length=length, options=options, **kwargs)

    def units(self) -> int:
        return -(-int(self.data.sizes[TIME]) // self.frame_chunk)

    def unit_data(self, unit: int) -> xr.DataArray:
        a = unit * self.frame_chunk
        return self.data.isel({TIME: slice(a, a + self.frame_chunk)})

    def write_unit(self, unit: int, frames: np.ndarray) -> None:
        a = unit * self.frame_chunk
        self._array("r+")[a : a + len(frames)] = frames.astype(self.dtype)

    def _create_arrays(self, group) -> None:
        nt = int(self.data.sizes[TIME])
        ny, nx = self.provenance["grid"]
        group.create_array(
            self.array,
            shape=(nt, ny, nx),
            chunks=(min(self.frame_chunk, nt), min(TILE, ny), min(TILE, nx)),
            dtype=self.dtype,
            fill_value=np.nan,
            compressors=self._compressors(),
            dimension_names=["time", "y", "x"],  # xarray opens the store too
        )

    def read(self, start: int, oy: int, ox: int, py: int, px: int, *, out=None) -> np.ndarray:
        """``(length, py, px)``: frames ``start .. start + length``, crop at (oy, ox)."""
        box = (slice(start, start + self.length), slice(oy, oy + py), slice(ox, ox + px))
        return self._box(box, out)


class WindowStore(PreparedStore):
    """Windows of an event, each ``transform``-ed from its frames (see the module doc).

    ``starts``: the windows' first frames; ``options``: what else the windows depend on
    (part of the provenance); subclasses define :meth:`transform`.
    """

    array = "windows"

    def __init__(self, root, name, data, starts: Sequence[int], *, length, options=None, **kw):
        self.starts = np.array(sorted({int(s) for s in starts}), dtype=np.int64)
        self._row = {int(s): i for i, s in enumerate(self.starts)}
        options = dict(options or {}, starts=self.starts.tolist())
        if kw.get("dtype", "float32") != "float32":  # absent for float32: earlier stores stay valid
            options["dtype"] = kw["dtype"]
        super().__init__(root, name, data, length=length, options=options, **kw)

    def transform(self, frames: np.ndarray) -> np.ndarray:
        """``(length, y, x)`` prepared frames -> the stored window."""
        return np.asarray(frames, dtype=np.float32)

    def units(self) -> int:
        return len(self.starts)

    def unit_data(self, unit: int) -> xr.DataArray:
        a = int(self.starts[unit])
        return self.data.isel({TIME: slice(a, a + self.length)})

    def write_unit(self, unit: int, frames: np.ndarray) -> None:
        self._array("r+")[unit] = self.transform(frames).astype(self.dtype)

    def _create_arrays(self, group) -> None:
        ny, nx = self.provenance["grid"]
        n = len(self.starts)
        group.create_array(
            self.array,
            shape=(n, self.length, ny, nx),
            chunks=(1, self.length, min(TILE, ny), min(TILE, nx)),
            dtype=self.dtype,
            fill_value=np.nan,
            compressors=self._compressors(),
            dimension_names=["unit", "frame", "y", "x"],  # xarray opens the store too
        )
        group.create_array("start", data=self.starts, chunks=(max(n, 1),), dimension_names=["unit"])

    def read(self, start: int, oy: int, ox: int, py: int, px: int, *, out=None) -> np.ndarray:
        """``(length, py, px)``: the window starting at frame ``start``, crop at (oy, ox)."""
        row = self._row.get(int(start))
        if row is None:
            raise DataError(f"{self.name}: no prepared window starts at frame {start}")
        box = (slice(row, row + 1), slice(0, self.length), slice(oy, oy + py), slice(ox, ox + px))
        return self._box(box, None if out is None else out[None])[0]
