"""Reading archives: NetCDF files -> one lazy ``(time, y, x)`` DataArray, and its time axis.

Public API (imported on first use, so ``import nowcast.data`` stays cheap)::

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
    "open_archive": "nowcast.data.archive",
    "expand_paths": "nowcast.data.archive",
    "source_files": "nowcast.data.archive",
    "time_step": "nowcast.data.timeaxis",
    "find_gaps": "nowcast.data.timeaxis",
    "contiguous_segments": "nowcast.data.timeaxis",
    "describe_archive": "nowcast.data.describe",
    "format_description": "nowcast.data.describe",
    "synthetic_rain": "nowcast.data.synthetic",
    "write_synthetic_archive": "nowcast.data.synthetic",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
