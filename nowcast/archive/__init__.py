"""Reading archives: NetCDF files -> one lazy ``(time, y, x)`` DataArray, and its time axis.

Public API (imported on first use, so ``import nowcast.archive`` stays cheap)::

    open_archive(paths, *, variable=None, kind="auto", chunks=1) -> xr.DataArray
    time_step(da) -> pd.Timedelta
    find_gaps(da) -> list[tuple[pd.Timestamp, pd.Timestamp]]
    contiguous_segments(da) -> list[slice]
    describe_archive(da) -> dict;  format_description(d) -> str
    synthetic_rain(...) -> xr.DataArray;  write_synthetic_archive(path, ...) -> list[Path]
"""

from __future__ import annotations

from nowcast.lazy import lazy_exports

_EXPORTS = {
    "open_archive": "nowcast.archive.reader",
    "expand_paths": "nowcast.archive.reader",
    "source_files": "nowcast.archive.reader",
    "time_step": "nowcast.archive.timeaxis",
    "find_gaps": "nowcast.archive.timeaxis",
    "contiguous_segments": "nowcast.archive.timeaxis",
    "describe_archive": "nowcast.archive.describe",
    "format_description": "nowcast.archive.describe",
    "synthetic_rain": "nowcast.archive.synthetic",
    "write_synthetic_archive": "nowcast.archive.synthetic",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
