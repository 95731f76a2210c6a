"""Where archives live: local NetCDF files, Zarr stores and fsspec URLs, and how they are opened.

:func:`expand_sources` turns what a user named (files, folders, globs, ``*.zarr`` stores,
URLs such as ``file:///data/x.nc``, ``memory://radar.zarr``, ``s3://bucket/radar/*.nc``)
into a list of sources: local NetCDF files and local Zarr stores as :class:`~pathlib.Path`,
other URLs as ``str`` (``file://`` URLs become local paths).

Local NetCDF files are read with ``netCDF4`` (:mod:`nowcast.archive.scan`). Everything else is
opened with xarray *without* CF decoding (:func:`open_source`) and wrapped in
:class:`NetCDFView`, which offers the small part of the ``netCDF4.Dataset`` interface that
:func:`nowcast.archive.scan.scan_opened` uses, so one scanner normalises every format (axes, y
ascending, km -> m, times, accumulation periods, grid mapping). :func:`opened_frames` gives
the data as a Dask array over the source's own chunks, decoded (fill -> NaN, scale/offset)
and put in ``(time, y, x)`` ascending order. Writing an archive is
:mod:`nowcast.archive.writer`.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import warnings
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import xarray as xr
from fsspec.implementations.local import LocalFileSystem

from nowcast.errors import DataError, one_line

#: File suffixes taken from a directory as NetCDF files.
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".h5")
ZARR_SUFFIX = ".zarr"
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zmetadata")
#: CF decoding of values only (fill -> NaN, scale/offset); times are decoded by the scanner.
_DECODE = dict(mask_and_scale=True, decode_times=False, decode_timedelta=False)


# --------------------------------------------------------------------------- naming sources


def is_url(text) -> bool:
    """``True`` for ``protocol://...`` strings (``file://`` and chained ``a::b://`` included)."""
    return (
        isinstance(text, str)
        and re.match(r"[A-Za-z][\w+.-]*(::[A-Za-z][\w+.-]*)*://", text) is not None
    )


def local_from_url(text: str) -> str | None:
    """The local path of a ``file://`` (or ``local://``) URL, else ``None``."""
    if text.split("://", 1)[0].lower() not in ("file", "local"):
        return None

    return LocalFileSystem._strip_protocol(text)


def is_zarr(source) -> bool:
    """``True`` for a Zarr store: a ``*.zarr`` name, or a local folder with Zarr metadata."""
    text = str(source).rstrip("/")
    if text.lower().endswith(ZARR_SUFFIX):
        return True
    p = Path(text)
    return not is_url(text) and p.is_dir() and any((p / m).exists() for m in _ZARR_MARKERS)


def _wanted(name: str, is_dir: bool) -> bool:
    """A folder entry that is an archive source: a NetCDF file or a ``*.zarr`` store."""
    name = name.rstrip("/").rsplit("/", 1)[-1].lower()
    if name.startswith("."):
        return False
    return name.endswith(ZARR_SUFFIX) if is_dir else os.path.splitext(name)[1] in NETCDF_SUFFIXES


def url_filesystem(url: str, storage_options: dict | None):
    """``(filesystem, path within it)`` for a URL; :class:`DataError` for unusable protocols."""
    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise DataError(f"cannot open {url}: {exc}") from None


def _unreadable_link(path: Path) -> str | None:
    """Why the symbolic link ``path`` cannot be followed (None: not a link, or fine)."""
    if not path.is_symlink():
        return None
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic-link loop"
        if exc.errno == errno.ENOENT:
            return "a broken symbolic link"
        return exc.strerror or str(exc)
    return None


def _local_entries(text: str) -> list[Path]:
    path = Path(text)
    if path.is_dir() and not is_zarr(path):
        found, skipped = [], []
        for p in sorted(path.iterdir()):
            if not _wanted(p.name, p.is_dir()):
                continue
            why = _unreadable_link(p)
            if why is None:
                found.append(p)
            else:
                skipped.append(f"{p.name} ({why})")
        if skipped:  # one bad link does not make the folder unreadable
            warnings.warn(
                f"skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} of {path} "
                f"that cannot be read: {', '.join(skipped)}",
                stacklevel=2,
            )
        if not found:
            raise DataError(
                f"no NetCDF files ({', '.join(NETCDF_SUFFIXES)}) or Zarr stores in directory {path}"
            )
        return found
    if path.exists():
        return [path]
    if glob.has_magic(text):
        found = sorted(
            Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file() or is_zarr(p)
        )
        if not found:
            raise DataError(f"no files match {text!r}")
        return found
    where = "" if os.path.isabs(text) else f" (resolved: {os.path.abspath(text)})"
    raise DataError(f"{'Zarr store' if is_zarr(text) else 'path'} not found: {text}{where}")


def _remote_entries(url: str, storage_options: dict | None) -> list[str]:
    fs, root = url_filesystem(url, storage_options)
    root = root.rstrip("/")
    try:
        if glob.has_magic(root):
            found = [
                p for p in sorted(fs.glob(root)) if is_zarr(fs.unstrip_protocol(p)) or fs.isfile(p)
            ]
            if not found:
                raise DataError(f"no files match {url!r}")
        elif (
            fs.isdir(root)
            and not is_zarr(url)
            and not any(fs.exists(f"{root}/{m}") for m in _ZARR_MARKERS)
        ):
            found = sorted(
                i["name"]
                for i in fs.ls(root, detail=True)
                if _wanted(i["name"], i["type"] == "directory")
            )
            if not found:
                raise DataError(f"no NetCDF files or Zarr stores under {url}")
        elif fs.exists(root):
            return [url.rstrip("/")]
        else:
            raise DataError(f"{'Zarr store' if is_zarr(url) else 'path'} not found: {url}")
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot list {url}: {one_line(exc, typed=False)}") from None
    return [fs.unstrip_protocol(p.rstrip("/")) for p in found]


def expand_sources(paths, *, storage_options: dict | None = None) -> list[Path | str]:
    """Sources named by ``paths``: a directory, a glob, a file, a Zarr store, a URL, or a list.

    Directories give their NetCDF files and ``*.zarr`` stores (hidden entries skipped); a
    directory that is itself a Zarr store is one source; globs are expanded (over URLs with
    ``fsspec.filesystem(protocol).glob``). Local sources are :class:`Path` (``file://`` URLs
    included), remote ones the URL string. The given order is kept (sorted within each
    directory or glob), without repeats.
    """
    entries = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not entries:
        raise DataError("no input paths given")
    found: list[Path | str] = []
    for entry in entries:
        text = os.fspath(entry) if isinstance(entry, os.PathLike) else str(entry)
        local = local_from_url(text) if is_url(text) else os.path.expanduser(text)
        found.extend(
            _remote_entries(text, storage_options) if local is None else _local_entries(local)
        )
    unique: dict[Any, Path | str] = {}
    for p in found:
        unique.setdefault(p.resolve() if isinstance(p, Path) else p, p)
    return list(unique.values())


# --------------------------------------------------------------------------- reading


def _nc_attrs(attrs) -> dict[str, Any]:
    """Attrs as netCDF4 gives them: numeric lists (Zarr's JSON) as numpy arrays."""
    out = {}
    for key, value in attrs.items():
        if (
            isinstance(value, (list, tuple))
            and value
            and all(
                isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in value
            )
        ):
            value = np.asarray(value)
        out[str(key)] = value
    return out


class _ViewVariable:
    """One variable of a :class:`NetCDFView`: dims, attrs and decoded (masked) values."""

    def __init__(self, name: str, var: xr.Variable):
        self.name = name
        self._var = var
        self._attrs = _nc_attrs(var.attrs)
        self.dimensions = tuple(str(d) for d in var.dims)
        self.shape = tuple(var.shape)
        self.ndim = var.ndim
        self.size = int(var.size)

    def ncattrs(self) -> list[str]:
        return list(self._attrs)

    def getncattr(self, key: str):
        return self._attrs[key]

    def __getattr__(self, key: str):  # netCDF4 exposes attributes as Python attributes
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._attrs[key]
        except KeyError:
            raise AttributeError(key) from None

    def __getitem__(self, key):
        """Values with fill values masked and scale/offset applied (as netCDF4 gives them)."""
        var = xr.conventions.decode_cf_variable(self.name, self._var, **_DECODE)
        values = np.asarray(var.values)[key]
        if values.dtype.kind == "f":
            return np.ma.masked_invalid(values)
        return np.ma.asarray(values)


class NetCDFView:
    """The ``netCDF4.Dataset`` interface that :func:`nowcast.archive.scan.scan_opened` needs,
    over xarray.

    ``ds`` must be opened without CF decoding (raw values, ``_FillValue``/``scale_factor``
    in the attrs), as :func:`open_source` does.
    """

    def __init__(self, ds: xr.Dataset):
        self.variables = {str(n): _ViewVariable(str(n), v) for n, v in ds.variables.items()}
        self._attrs = _nc_attrs(ds.attrs)

    def ncattrs(self) -> list[str]:
        return list(self._attrs)

    def getncattr(self, key: str):
        return self._attrs[key]


def open_source(source, *, storage_options: dict | None = None) -> xr.Dataset:
    """A Zarr store or a remote NetCDF file as a raw (undecoded, lazy, not Dask) Dataset.

    Zarr: ``xr.open_dataset(source, engine="zarr", consolidated=None)`` (local path or any
    fsspec URL). NetCDF URL: ``fsspec.open(url).open()`` read by ``h5netcdf`` (NetCDF-4/HDF5)
    or ``scipy`` (NetCDF-3 classic). :class:`DataError` naming the source if it cannot be read.
    """
    text = str(source)
    common = dict(decode_cf=False, chunks=None, cache=False)
    if is_zarr(source):
        if not is_url(text) and not Path(text).exists():
            raise DataError(f"Zarr store not found: {text}")
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated")
                return xr.open_dataset(
                    text,
                    engine="zarr",
                    consolidated=None,
                    storage_options=storage_options if is_url(text) else None,
                    **common,
                )
        except (OSError, ValueError, KeyError, TypeError, ImportError) as exc:
            raise DataError(
                f"{text}: not a readable Zarr store ({one_line(exc, typed=False)})"
            ) from None
        except Exception as exc:  # zarr's own errors (GroupNotFoundError, ...) have no common base
            raise DataError(
                f"{text}: not a readable Zarr store ({one_line(exc, typed=True)})"
            ) from None

    try:
        fobj = fsspec.open(text, mode="rb", **(storage_options or {})).open()
        magic = fobj.read(4)
        fobj.seek(0)
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"cannot open {text}: {one_line(exc, typed=False)}") from None
    engine = "scipy" if magic[:3] == b"CDF" else "h5netcdf"
    try:
        return xr.open_dataset(fobj, engine=engine, **common)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fobj.close()
        raise DataError(
            f"{text}: not a readable NetCDF file ({one_line(exc, typed=False)})"
        ) from None


def _chunk_sizes(var: xr.Variable, time_dim: str | None) -> dict:
    stored = var.encoding.get("chunks") or var.encoding.get("chunksizes")
    if stored and len(stored) == var.ndim:
        return {d: int(c) for d, c in zip(var.dims, stored)}
    return {d: (1 if d == time_dim else -1) for d in var.dims}


def opened_frames(ds: xr.Dataset, info) -> Any:
    """``info.variable`` of ``ds`` (from :func:`open_source`): a float32 Dask ``(time, y, x)``
    array.

    Chunks are the source's chunks (one frame per chunk for unchunked NetCDF); values are
    decoded (fill values -> NaN, scale/offset) and flipped like :class:`FileInfo` says
    (y and x ascending). Nothing is read until computed.
    """
    var = ds.variables[info.variable]
    dims = [str(d) for d in var.dims]
    time_dim = dims[info.time_axis] if info.time_axis is not None else None
    var = var.chunk(_chunk_sizes(var, time_dim))
    var = xr.conventions.decode_cf_variable(info.variable, var, **_DECODE)
    arr = var.data
    roles = {info.time_axis: "T", info.y_axis: "Y", info.x_axis: "X"}
    index = tuple(slice(None) if a in roles else 0 for a in range(var.ndim))
    arr = arr[index]
    kept = [roles[a] for a in range(var.ndim) if a in roles]
    arr = arr.transpose([kept.index(r) for r in ("T", "Y", "X") if r in kept])
    if info.time_axis is None:
        arr = arr[None]
    if info.flip_y:
        arr = arr[:, ::-1]
    if info.flip_x:
        arr = arr[:, :, ::-1]
    return arr.astype(np.float32)
