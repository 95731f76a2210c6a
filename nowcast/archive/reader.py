"""Open an archive (NetCDF files, Zarr stores, fsspec URLs) as one lazy, CF-normalised array.

:func:`open_archive` scans each source's metadata (local NetCDF with ``netCDF4``; Zarr stores
and URLs through xarray and :mod:`nowcast.archive.sources`, by the same scanner: coordinates,
times and attributes only), checks that all sources share one grid, builds the time axis (from
a ``time`` dimension or from a scalar time variable, one file per time), and returns a
Dask-backed :class:`xarray.DataArray` in the archive convention of
:mod:`nowcast.conventions`. Pixel data is read only when computed, a few frames per task.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from nowcast.archive import cf, qc, sources
from nowcast.archive.scan import FileInfo, netcdf_lock, read_block, scan_file, scan_opened
from nowcast.archive.sources import NETCDF_SUFFIXES
from nowcast.archive.timeaxis import time_step
from nowcast.conventions import RATE_UNITS, TIME, X, Y
from nowcast.errors import DataError
from nowcast.kinds import check_kind, kind_of

__all__ = [
    "NETCDF_SUFFIXES",
    "expand_paths",
    "netcdf_lock",
    "open_archive",
    "source_files",
    "source_path",
]

_AUTO_CHUNK_BYTES = 16 * 2**20


def expand_paths(paths, *, storage_options: dict | None = None) -> list[Path | str]:
    """Sources named by ``paths``: a directory, a glob, a file, a Zarr store, a URL, or a list.

    Directories give their NetCDF files and ``*.zarr`` stores (hidden entries skipped); globs
    are expanded (also over fsspec URLs); local sources come as :class:`Path` (``file://``
    URLs included), remote ones as the URL string. The given order is kept (sorted within
    each directory or glob), without repeats. See :func:`nowcast.archive.sources.expand_sources`.
    """
    return sources.expand_sources(paths, storage_options=storage_options)


def _is_local_netcdf(source) -> bool:
    return isinstance(source, Path) and not sources.is_zarr(source)


def _scan_source(source, variable, storage_options):
    """``(FileInfo, opened source or None)``: local NetCDF scanned by netCDF4, others by xarray."""
    if _is_local_netcdf(source):
        return scan_file(source, variable), None
    ds = sources.open_source(source, storage_options=storage_options)
    return scan_opened(sources.NetCDFView(ds), str(source), variable), ds


class _LazyFrames:
    """Array-like ``(time, y, x)`` view over many files; ``__getitem__`` reads from disk."""

    def __init__(self, files, variable, frame_file, frame_index, factors, ny, nx, clip_min=None):
        self.files = tuple(files)
        self.clip_min = clip_min
        self.variable = variable
        self.frame_file = np.asarray(frame_file, dtype=np.int64)
        self.frame_index = np.asarray(frame_index, dtype=np.int64)
        self.factors = np.asarray(factors, dtype=np.float32)
        self.shape = (len(self.frame_file), ny, nx)
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (3 - len(key) + 1) + key[i + 1 :]
        key = key + (slice(None),) * (3 - len(key))
        tkey, ykey, xkey = key
        frames = np.arange(self.shape[0])[tkey]
        scalar_t = np.ndim(frames) == 0
        frames = np.atleast_1d(frames)
        ny, nx = self.shape[1:]
        blocks = []
        i = 0
        while i < len(frames):
            f = self.frame_file[frames[i]]
            j = i + 1
            while (
                j < len(frames)
                and self.frame_file[frames[j]] == f
                and self.frame_index[frames[j]] == self.frame_index[frames[j - 1]] + 1
            ):
                j += 1
            info = self.files[f]
            ysl, ypost = _file_slice(ykey, ny, info.flip_y)
            xsl, xpost = _file_slice(xkey, nx, info.flip_x)
            block = read_block(
                info, self.variable, int(self.frame_index[frames[i]]), j - i, ysl, xsl
            )
            block *= self.factors[frames[i:j], None, None]
            if self.clip_min is not None:  # precipitation: the plausible range (archive.qc)
                first = int(self.frame_index[frames[i]])
                region = (_region(ysl), _region(xsl))
                for k in range(j - i):
                    qc.check_rain(block[k], (str(info.path), first + k, region))
            if info.flip_y:
                block = block[:, ::-1]
            if info.flip_x:
                block = block[:, :, ::-1]
            if xpost is not None:
                block = block[:, :, xpost]
            if ypost is not None:
                block = block[:, ypost]
            blocks.append(block)
            i = j
        if not blocks:
            probe = np.empty((0, ny, nx), np.float32)[(slice(None), ykey, xkey)]
            return probe[0] if scalar_t else probe
        out = np.ascontiguousarray(np.concatenate(blocks, axis=0))
        return out[0] if scalar_t else out


def _region(index) -> tuple:
    """A hashable form of a y or x index (a slice or integers)."""
    if isinstance(index, slice):
        return (index.start, index.stop, index.step)
    return tuple(np.atleast_1d(np.asarray(index)).tolist())


def _file_slice(key, n: int, flip: bool):
    """(slice to read from the file, index still to apply after reading and flipping)."""
    if isinstance(key, slice):
        start, stop, step = key.indices(n)
        if step == 1:
            stop = max(stop, start)
            return (slice(n - stop, n - start) if flip else slice(start, stop)), None
    return slice(None), key


def _time_chunks(frame_file, frame_index, chunks) -> tuple[int, ...]:
    """Chunk lengths along time: runs of consecutive frames of one file, at most ``chunks`` long."""
    sizes: list[int] = []
    run = 0
    for k in range(len(frame_file)):
        same = (
            k > 0
            and frame_file[k] == frame_file[k - 1]
            and frame_index[k] == frame_index[k - 1] + 1
        )
        if run and (not same or run >= chunks):
            sizes.append(run)
            run = 0
        run += 1
    if run:
        sizes.append(run)
    return tuple(sizes)


def _check_grid(ref: FileInfo, info: FileInfo) -> None:
    def differs(reason: str) -> DataError:
        return DataError(f"{info.path}: grid differs from {ref.path} ({reason})")

    for axis, a, b in (("y", ref.y, info.y), ("x", ref.x, info.x)):
        if a.shape != b.shape:
            raise differs(f"{len(b)} {axis} values instead of {len(a)}")
        spacing = float(np.median(np.abs(np.diff(a)))) if len(a) > 1 else 1.0
        if not np.allclose(a, b, rtol=0, atol=1e-3 * spacing):
            raise differs(f"{axis} coordinates differ")
    if ref.grid_mapping_name != info.grid_mapping_name or not cf.attrs_equal(
        ref.grid_mapping_attrs or {}, info.grid_mapping_attrs or {}
    ):
        raise differs("grid mapping differs")


def _keep_lineage(ref: FileInfo, attrs: dict) -> None:
    """A file written by ``write_archive`` records the units its archive was first read in."""
    first = ref.var_attrs.get("units_original")
    if isinstance(first, str) and first:
        attrs["units_original"] = first


def _rate_factors(ref: FileInfo, infos: list[FileInfo], kind: str, times: np.ndarray):
    """Per-frame factor to the output units, and the attrs describing the conversion."""
    n = len(times)
    units = ref.var_attrs.get("units")
    attrs: dict = {"units_original": "" if units is None else str(units)}
    if kind != "precipitation":
        attrs["units"] = attrs["units_original"]
        _keep_lineage(ref, attrs)
        return np.ones(n, np.float32), attrs
    try:
        what, factor = cf.precipitation_units(units, ref.var_attrs.get("standard_name"))
    except ValueError as exc:
        raise DataError(
            f"{ref.path}: variable {ref.variable!r}: {exc}; open other fields as temperature "
            "(--kind temperature: units kept)"
        ) from None
    attrs["units"] = RATE_UNITS
    _keep_lineage(ref, attrs)
    sn = ref.var_attrs.get("standard_name")
    if what == "rate":
        attrs["standard_name"] = sn if sn else "precipitation_rate"
        return np.full(n, factor, np.float32), attrs
    periods = np.concatenate([i.periods for i in infos]).astype("timedelta64[ns]")
    missing = np.isnat(periods)
    if missing.any():
        if n < 2:
            raise DataError(
                f"{ref.path}: accumulation period unknown (no time bounds, start time or "
                "accumulation_minutes)"
            )
        step = time_step(np.sort(times)).to_timedelta64()
        warnings.warn(
            f"accumulation period unknown for {int(missing.sum())} frame(s); assuming the time "
            "step "
            f"{pd.Timedelta(step)}",
            stacklevel=3,
        )
        periods = np.where(missing, step, periods)
    seconds = periods.astype("timedelta64[ns]").astype(np.int64) / 1e9
    if (seconds <= 0).any():
        raise DataError(f"{ref.path}: accumulation period is not positive")
    attrs["standard_name"] = cf.rate_standard_name(sn)
    minutes = np.unique(seconds / 60)
    if len(minutes) == 1:
        m = float(minutes[0])
        attrs["cell_methods"] = f"time: mean (interval: {m:g} minutes)"
        attrs["long_name"] = (
            f"{attrs['standard_name'].replace('_', ' ')} from {m:g} min accumulation"
        )
    return (factor * 3600.0 / seconds).astype(np.float32), attrs


def open_archive(
    paths,
    *,
    variable: str | None = None,
    kind: str = "auto",
    chunks=1,
    storage_options: dict | None = None,
) -> xr.DataArray:
    """Open NetCDF files or Zarr stores as one lazy ``(time, y, x)`` float32 DataArray (an archive).

    ``paths``: a directory, a glob, a file, a ``*.zarr`` store, an fsspec URL (``file://``,
    ``memory://``, ``s3://`` ... with ``storage_options`` for the filesystem) or a list of
    them. ``variable``: the data variable (default: the only ``(time?, y, x)`` variable).
    ``kind``: ``"precipitation"`` converts accumulations and other rate units to ``mm h-1``;
    ``"temperature"`` keeps units; ``"auto"`` (default) is the kind the first file's units and
    standard name say (:func:`nowcast.kinds.kind_of`: K, degC -> temperature). ``chunks``:
    frames per Dask chunk (``"auto"``: about 16 MiB per chunk); a Zarr store keeps its own
    y/x chunks.

    Negative precipitation (a few packed -0.1 mm values in BOM files) is set to 0; fill
    values become NaN. Times are sorted; duplicate times are dropped with a warning (the
    first file's frame is kept). Raises :class:`DataError` for missing/unreadable files, a missing
    or ambiguous variable, files on different grids, or files without time information.
    """
    if kind != "auto":
        check_kind(kind)
    files = expand_paths(paths, storage_options=storage_options)
    infos: list[FileInfo] = []
    opened_sources: list = []
    for path in files:
        info, opened = _scan_source(path, variable, storage_options)
        if infos:
            _check_grid(infos[0], info)
            if info.var_attrs.get("units") != infos[0].var_attrs.get("units"):
                raise DataError(
                    f"{path}: units {info.var_attrs.get('units')!r} differ from "
                    f"{infos[0].var_attrs.get('units')!r} in {infos[0].path}"
                )
        else:
            variable = info.variable
        infos.append(info)
        opened_sources.append(opened)
    ref = infos[0]
    if kind == "auto":
        kind = kind_of(ref.var_attrs, is_precipitation_units=_is_precipitation_units)

    times = np.concatenate([i.times for i in infos]).astype("datetime64[ns]")
    frame_file = np.concatenate([np.full(len(i.times), k) for k, i in enumerate(infos)])
    frame_index = np.concatenate([np.arange(len(i.times)) for i in infos])
    factors, conv_attrs = _rate_factors(ref, infos, kind, times)

    order = np.argsort(times, kind="stable")
    times, frame_file, frame_index, factors = (
        a[order] for a in (times, frame_file, frame_index, factors)
    )
    keep = np.concatenate([[True], times[1:] != times[:-1]])
    if not keep.all():
        dup = times[~keep]
        warnings.warn(
            f"{len(dup)} duplicate time(s) dropped, keeping the first file's frame "
            f"(first duplicate: {pd.Timestamp(dup[0])})",
            stacklevel=2,
        )
        times, frame_file, frame_index, factors = (
            a[keep] for a in (times, frame_file, frame_index, factors)
        )

    ny, nx = len(ref.y), len(ref.x)
    if chunks == "auto":
        chunks = max(1, _AUTO_CHUNK_BYTES // (ny * nx * 4))
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < 1:
        raise DataError(f"chunks must be a positive number of frames or 'auto', not {chunks!r}")
    clip = 0.0 if kind == "precipitation" else None
    if all(opened is None for opened in opened_sources):
        lazy = _LazyFrames(infos, variable, frame_file, frame_index, factors, ny, nx, clip)
        tchunks = _time_chunks(frame_file, frame_index, int(chunks))
        data = _to_dask(lazy, files, variable, kind, tchunks)
    else:
        parts = [_source_frames(i, opened, kind) for i, opened in zip(infos, opened_sources)]
        data = _combine(parts, infos, frame_file, frame_index, factors, clip, int(chunks))
    return _build(data, ref, variable, times, conv_attrs, files)


def _source_frames(info: FileInfo, opened, kind: str):
    """One source's frames as a Dask ``(time, y, x)`` float32 array (unscaled, file order)."""
    if opened is not None:
        return sources.opened_frames(opened, info)
    n = len(info.times)
    ny, nx = len(info.y), len(info.x)
    lazy = _LazyFrames([info], info.variable, np.zeros(n), np.arange(n), np.ones(n), ny, nx)
    return _to_dask(
        lazy, [info.path], info.variable, kind, _time_chunks(lazy.frame_file, lazy.frame_index, 1)
    )


def _combine(parts, infos, frame_file, frame_index, factors, clip, chunks: int):
    """Sources' frames in archive order, scaled to the output units, ``chunks`` frames per chunk."""
    data = dsa.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    offsets = np.cumsum([0] + [len(i.times) for i in infos])[:-1]
    index = offsets[frame_file] + frame_index
    if not np.array_equal(index, np.arange(data.shape[0])):
        data = data[index]
    if not (factors == 1).all():
        data = data * dsa.from_array(
            factors[:, None, None].astype(np.float32), chunks=(data.chunks[0], 1, 1)
        )
    data = data.astype(np.float32)
    if clip is not None:  # precipitation: the plausible range (archive.qc), frame by frame
        source = "+".join(str(i.path) for i in infos)
        data = data.map_blocks(_check_rain_block, source, dtype=np.float32)
    return data.rechunk({0: chunks})


def _check_rain_block(block: np.ndarray, source: str, block_info=None) -> np.ndarray:
    block = np.array(block, dtype=np.float32, copy=True)
    loc = (block_info or {}).get(0, {}).get("array-location") or [(0, len(block)), None, None]
    (t0, _), ys, xs = loc
    for k in range(len(block)):
        qc.check_rain(block[k], (source, t0 + k, tuple(ys or ()), tuple(xs or ())))
    return block


def _to_dask(lazy: _LazyFrames, files, variable, kind, tchunks):
    stats = [(str(p), os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in files]
    token = tokenize(
        stats, variable, kind, tchunks, lazy.frame_file, lazy.frame_index, lazy.factors
    )
    return dsa.from_array(
        lazy,
        chunks=(tchunks, (lazy.shape[1],), (lazy.shape[2],)),
        name=f"open_archive-{variable}-{token}",
        lock=False,
        fancy=False,
        asarray=False,
        meta=np.empty((0, 0, 0), np.float32),
    )


def _build(data, ref: FileInfo, variable: str, times, conv_attrs: dict, files) -> xr.DataArray:
    attrs = {k: v for k, v in cf.plain_attrs(ref.var_attrs).items() if k not in cf.ENCODING_ATTRS}
    if attrs.get("standard_name") in ("unknown", ""):
        del attrs["standard_name"]
    attrs.update(conv_attrs)
    attrs.pop("grid_mapping", None)
    coords = {
        TIME: xr.Variable(TIME, times, {"standard_name": "time", "axis": "T"}),
        Y: xr.Variable(Y, ref.y, ref.y_attrs),
        X: xr.Variable(X, ref.x, ref.x_attrs),
    }
    if ref.grid_mapping_name:
        coords[ref.grid_mapping_name] = xr.Variable(
            (), np.int32(0), cf.plain_attrs(ref.grid_mapping_attrs)
        )
        attrs["grid_mapping"] = ref.grid_mapping_name
    text = cf.attribution(ref.global_attrs)
    if text:
        attrs["attribution"] = text
    da = xr.DataArray(data, dims=(TIME, Y, X), coords=coords, name=variable, attrs=attrs)
    da.encoding["source"] = str(files[0])
    da.encoding["source_files"] = tuple(str(p) for p in files)
    return da


def _is_precipitation_units(units, standard_name) -> bool:
    try:
        cf.precipitation_units(units, standard_name)
    except ValueError:
        return False
    return True


def source_files(da: xr.DataArray) -> list[str]:
    """The files an archive was opened from (as recorded by :func:`open_archive`; for an array
    opened by xarray, its ``source``); ``[]`` when unknown. The one lookup of an archive's files."""
    files = da.encoding.get("source_files") or (
        [da.encoding["source"]] if "source" in da.encoding else []
    )
    return list(files)


def source_path(da: xr.DataArray, default: str) -> str:
    """Where an archive came from: its file, or the common folder of its files (``default``
    when unknown)."""
    files = source_files(da)
    if len(files) > 1:
        return os.path.commonpath([str(f) for f in files])
    return str(files[0]) if files else default
