"""A summary of an opened archive (what ``nowcast info`` prints)."""

from __future__ import annotations

import warnings

import dask
import numpy as np
import pandas as pd
import xarray as xr

from nowcast.archive.reader import source_files
from nowcast.archive.timeaxis import find_gaps, time_step
from nowcast.conventions import TIME, X, Y
from nowcast.geo import coord_spacing


def describe_archive(da: xr.DataArray) -> dict:
    """Facts about an archive opened by :func:`~nowcast.archive.open_archive`.

    Metadata comes from coordinates and attrs; ``nan_fraction``, ``min`` and ``max`` are
    computed over the whole archive with Dask (one pass).
    """
    times = pd.DatetimeIndex(da[TIME].values)
    step = time_step(da) if len(times) > 1 else None
    gm_name = da.attrs.get("grid_mapping")
    gm_attrs = da.coords[gm_name].attrs if gm_name in da.coords else {}
    projection = gm_attrs.get("grid_mapping_name")
    geographic = projection == "latitude_longitude" or str(da[X].attrs.get("units", "")).startswith(
        "degree"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        nan_fraction, vmin, vmax = dask.compute(da.isnull().mean(), da.min(), da.max())
    return {
        "files": len(source_files(da)),
        "first_file": (source_files(da) or [None])[0],
        "variable": da.name,
        "long_name": da.attrs.get("long_name"),
        "units": da.attrs.get("units"),
        "units_original": da.attrs.get("units_original"),
        "ny": da.sizes[Y],
        "nx": da.sizes[X],
        "dy": coord_spacing(da[Y].values),
        "dx": coord_spacing(da[X].values),
        "spacing_units": "degrees" if geographic else "m",
        "x_range": (float(da[X].min()), float(da[X].max())),
        "y_range": (float(da[Y].min()), float(da[Y].max())),
        "projection": projection,
        "grid_mapping": gm_name,
        "time_start": times[0] if len(times) else None,
        "time_end": times[-1] if len(times) else None,
        "step": step,
        "n_frames": len(times),
        "gaps": find_gaps(da) if step is not None else [],
        "nan_fraction": float(nan_fraction),
        "min": float(vmin),
        "max": float(vmax),
        "attribution": da.attrs.get("attribution"),
    }


def format_duration(td) -> str:
    if td is None:
        return "n/a"
    seconds = pd.Timedelta(td).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def format_number(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.6g}"


def format_description(d: dict) -> str:
    """Readable multi-line text for :func:`describe_archive`'s dict."""
    unit = d["spacing_units"]
    sp = f"{format_number(d['dx'])} x {format_number(d['dy'])} {unit} (x, y)"
    units = d["units"] or "(none)"
    if d["units_original"] not in (None, d["units"]):
        units = f"{d['units_original'] or '(none)'} as read -> {units}"
    else:
        units = f"{units} (as read)"
    gaps = d["gaps"]
    if gaps:
        fmt = "%Y-%m-%d %H:%M"
        gap_text = f"{len(gaps)}: " + ", ".join(
            f"{a.strftime(fmt)} .. {b.strftime(fmt)} ({format_duration(b - a)})" for a, b in gaps
        )
    else:
        gap_text = "none"
    proj = d["projection"] or "(no grid mapping)"
    if d["grid_mapping"]:
        proj += f" (grid mapping variable {d['grid_mapping']!r})"
    variable = d["variable"] + (f" ({d['long_name']})" if d["long_name"] else "")
    first = f" (first: {d['first_file']})" if d["first_file"] else ""
    start = d["time_start"].isoformat() if d["time_start"] is not None else "n/a"
    end = d["time_end"].isoformat() if d["time_end"] is not None else "n/a"
    lines = [
        ("files", f"{d['files']}{first}"),
        ("variable", variable),
        ("units", units),
        ("grid", f"{d['ny']} x {d['nx']} (y, x), spacing {sp}"),
        (
            "extent",
            f"x {format_number(d['x_range'][0])} .. {format_number(d['x_range'][1])}, y "
            f"{format_number(d['y_range'][0])} .. {format_number(d['y_range'][1])} {unit}",
        ),
        ("projection", proj),
        ("time", f"{start} .. {end}"),
        ("step", format_duration(d["step"])),
        ("frames", str(d["n_frames"])),
        ("gaps", gap_text),
        ("NaN fraction", f"{100 * d['nan_fraction']:.1f} %"),
        (
            "value range",
            f"{format_number(d['min'])} .. {format_number(d['max'])} {d['units'] or ''}".rstrip(),
        ),
    ]
    if d.get("attribution"):
        lines.append(("attribution", d["attribution"]))
    width = max(len(k) for k, _ in lines) + 1
    return "\n".join(f"{k + ':':<{width}} {v}" for k, v in lines)
