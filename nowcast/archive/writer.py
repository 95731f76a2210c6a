"""Writing an archive (the :func:`~nowcast.archive.reader.open_archive` form) to NetCDF or Zarr.

:func:`write_archive` (``nowcast convert``) writes whole frames per chunk, atomically, to a
local path or an fsspec URL; :func:`archive_dataset` is the on-disk form it writes (the
grid mapping as a variable, ``attribution`` and ``units_original`` kept), which
:func:`~nowcast.archive.reader.open_archive` reads back unchanged.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import numpy as np
import xarray as xr

from nowcast.archive.sources import (
    NETCDF_SUFFIXES,
    ZARR_SUFFIX,
    is_url,
    local_from_url,
    url_filesystem,
)
from nowcast.conventions import TIME, X, Y
from nowcast.errors import DataError, NowcastError
from nowcast.fileio import ZARR_OPTIONS, atomic_output


def archive_dataset(da: xr.DataArray, *, chunks: int = 1) -> tuple[xr.Dataset, dict]:
    """The on-disk form of an archive DataArray, and the encoding to write it with.

    The grid-mapping coordinate becomes a CF grid-mapping variable named by the data
    variable's ``grid_mapping`` attr; ``attribution`` becomes the global ``attribution`` attr (so
    it reads back unchanged); ``units_original`` is kept as a variable attr (the units the
    archive was first read in). Values float32 with NaN fill, ``chunks`` frames per chunk.
    """
    if tuple(da.dims) != (TIME, Y, X):
        raise DataError(f"an archive has dims ({TIME}, {Y}, {X}), not {tuple(da.dims)}")
    name = str(da.name) if da.name is not None else "data"
    attrs = {k: v for k, v in da.attrs.items() if k not in ("attribution", "grid_mapping")}
    gm = da.attrs.get("grid_mapping")
    data_vars: dict[str, xr.Variable] = {}
    if gm and gm in da.coords:
        attrs["grid_mapping"] = gm
        data_vars[gm] = xr.Variable((), np.int32(0), dict(da.coords[gm].attrs))
    ny, nx = da.sizes[Y], da.sizes[X]
    data = da.data
    if hasattr(data, "rechunk"):
        data = data.rechunk((chunks, ny, nx))
    data_vars[name] = xr.Variable(da.dims, data, attrs)
    times = np.asarray(da[TIME].values, dtype="datetime64[ns]")
    coords = {
        TIME: xr.Variable(TIME, times, {"standard_name": "time", "axis": "T"}),
        Y: xr.Variable(Y, np.asarray(da[Y].values, np.float64), dict(da[Y].attrs)),
        X: xr.Variable(X, np.asarray(da[X].values, np.float64), dict(da[X].attrs)),
    }
    ds = xr.Dataset(data_vars, coords)
    ds.attrs["Conventions"] = "CF-1.8"
    if da.attrs.get("attribution"):
        ds.attrs["attribution"] = str(da.attrs["attribution"])
    whole = (times.astype(np.int64) % 1_000_000_000 == 0).all()
    unit = "seconds" if whole else "nanoseconds"
    encoding: dict[str, dict] = {
        name: {"dtype": "float32", "_FillValue": np.float32(np.nan)},
        TIME: {
            "units": f"{unit} since 1970-01-01 00:00:00",
            "calendar": "proleptic_gregorian",
            "dtype": "int64",
        },
        Y: {"_FillValue": None},
        X: {"_FillValue": None},
    }
    if gm in data_vars:
        encoding[gm] = {"_FillValue": None}
    return ds, encoding


def _write(ds: xr.Dataset, encoding: dict, target, zarr: bool, chunks: int) -> None:
    name = next(n for n in ds.data_vars if ds[n].ndim == 3)
    shape = (chunks, ds.sizes[Y], ds.sizes[X])
    if zarr:
        encoding[name]["chunks"] = shape
    else:
        encoding[name].update(zlib=True, complevel=1, chunksizes=shape)
    # our own thread pool, joined before returning: on Ctrl-C no thread may still be writing
    # chunks into the temporary output while it is being removed
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    try:
        with dask.config.set(pool=pool):
            if zarr:
                ds.to_zarr(target, mode="w-", encoding=encoding, **ZARR_OPTIONS)
            else:
                ds.to_netcdf(target, engine="netcdf4", format="NETCDF4", encoding=encoding)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def write_archive(
    da: xr.DataArray,
    path,
    *,
    chunks: int = 1,
    storage_options: dict | None = None,
    overwrite: bool = True,
) -> Path | str:
    """Write an archive (the :func:`~nowcast.archive.reader.open_archive` form) to NetCDF or Zarr.

    The format follows the suffix: ``.zarr`` -> a Zarr (format 2, consolidated metadata)
    store, ``.nc``/``.nc4``/... -> NetCDF-4; ``chunks`` whole frames per chunk. Local targets
    (and ``file://`` URLs) are written through :func:`nowcast.fileio.atomic_output` (a
    temporary sibling renamed into place; an existing store is moved aside only once the new
    one is complete); other fsspec URLs are
    written to a temporary sibling and moved with the filesystem's ``mv`` (as atomic as that
    filesystem's move). Dask data are streamed chunk by chunk. Returns the path (the URL
    string for a remote target). ``overwrite=False``: a local output is placed only if
    nothing is at ``path`` at that moment (``atomic_output(exclusive=True)``: of two
    converts started together one wins, the other gets ``PATH exists``); a remote one is
    checked just before the move.
    """
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < 1:
        raise DataError(f"chunks must be a positive number of frames, not {chunks!r}")
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    zarr = text.rstrip("/").lower().endswith(ZARR_SUFFIX)
    if not zarr and not text.lower().endswith(NETCDF_SUFFIXES):
        raise DataError(
            f"output must end in .zarr or a NetCDF suffix ({', '.join(NETCDF_SUFFIXES)}): {text}"
        )
    ds, encoding = archive_dataset(da, chunks=int(chunks))
    local = local_from_url(text) if is_url(text) else os.path.expanduser(text)
    if local is None:
        _write_remote(ds, encoding, text, zarr, int(chunks), storage_options, overwrite)
        return text
    with atomic_output(local, exclusive=not overwrite) as tmp:
        _write(ds, encoding, tmp, zarr, int(chunks))
    return Path(local)


def _write_remote(
    ds, encoding, url: str, zarr: bool, chunks: int, storage_options, overwrite: bool = True
) -> None:
    fs, root = url_filesystem(url, storage_options)
    root = root.rstrip("/")
    parent, _, leaf = root.rpartition("/")
    tmp = f"{parent}/.{leaf}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        if zarr:
            _write(ds, encoding, fs.get_mapper(tmp), True, chunks)
        else:
            with tempfile.TemporaryDirectory() as local:
                _write(ds, encoding, Path(local) / leaf, False, chunks)
                fs.put(str(Path(local) / leaf), tmp)
        if fs.exists(root):
            if not overwrite:
                raise NowcastError(f"{url} exists: pass --overwrite to replace it")
            fs.rm(root, recursive=True)
        fs.mv(tmp, root, recursive=zarr)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp, recursive=True)
