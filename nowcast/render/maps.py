"""Forecast maps: one PNG per (issue time, lead), optionally observed | forecast | difference.

:func:`render_forecast` draws a forecast DataArray ``(issue_time, lead_time, y, x)`` in its
own projection (see :mod:`nowcast.render.projection`), with coastlines from offline map
data only (:mod:`nowcast.render.mapdata`). :func:`render_field` draws one observed frame.
:func:`frame_pngs` yields the PNG bytes per lead (used by :mod:`nowcast.render.animate`).

Colour scales are fixed per issue time (over all its leads and observations), so maps of
one run are comparable and workers splitting the leads draw identical scales.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import ISSUE_TIME, LEAD_TIME, TIME, VALID_TIME, X, Y, display_name
from nowcast.errors import DataError, NowcastError
from nowcast.fileio import write_atomic
from nowcast.geo import metres_per_unit
from nowcast.products import nearest_indices
from nowcast.render import colours
from nowcast.render.figure import Panel, draw_figure
from nowcast.render.mapdata import LAND, MapData, find_map_data, lonlat_bbox
from nowcast.render.options import RenderOptions
from nowcast.render.projection import (
    crs_from_grid_mapping,
    grid_edges,
    grid_mapping_attrs,
    lonlat_crs,
)

__all__ = [
    "render_forecast",
    "render_field",
    "forecast_figure",
    "frame_pngs",
    "prepare",
    "output_name",
    "select_leads",
    "map_layers",
    "with_layers",
    "Prepared",
]

_FORECAST_DIMS = (ISSUE_TIME, LEAD_TIME, Y, X)


@dataclass(frozen=True)
class Prepared:
    """A forecast checked and ready to draw: y/x ascending in metres, its CRS and labels."""

    da: xr.DataArray
    crs: Any
    extent: tuple[float, float, float, float]
    kind: str
    units: str
    method: str
    attribution: str
    name: str
    long_name: str


def _to_metres_ascending(da: xr.DataArray) -> xr.DataArray:
    for dim in (X, Y):
        factor = metres_per_unit(da[dim].attrs.get("units"))
        if factor is not None and factor != 1.0:  # km
            da = da.assign_coords(
                {dim: (dim, da[dim].values * factor, {**da[dim].attrs, "units": "m"})}
            )
        values = da[dim].values
        if values.size > 1 and values[0] > values[-1]:
            da = da.isel({dim: slice(None, None, -1)})
    return da


def _check_regular(da: xr.DataArray) -> None:
    for dim in (X, Y):
        d = np.diff(da[dim].values.astype(float))
        if d.size and not np.allclose(d, d[0], rtol=1e-4, atol=0):
            raise DataError(f"{da.name}: {dim} is not a regular grid; cannot draw it as an image")


def prepare(
    forecast: xr.DataArray, *, method: str | None = None, attribution: str | None = None
) -> Prepared:
    """Check a forecast DataArray and derive everything the maps need (no pixel data read)."""
    if not isinstance(forecast, xr.DataArray):
        raise DataError(f"expected a forecast DataArray, got {type(forecast).__name__}")
    if set(forecast.dims) != set(_FORECAST_DIMS):
        raise DataError(
            f"{forecast.name or 'forecast'}: dims {forecast.dims}; expected {_FORECAST_DIMS}"
        )
    da = _to_metres_ascending(forecast.transpose(*_FORECAST_DIMS))
    _check_regular(da)
    extent = grid_edges(da[X].values, da[Y].values)
    crs = crs_from_grid_mapping(grid_mapping_attrs(da), extent=extent)
    kind = colours.field_kind(da.attrs)
    _, units = colours.to_display(da.attrs)
    name = str(da.name or "forecast")
    method = method or display_name(da.attrs)
    attribution = (
        attribution
        if attribution is not None
        else str(da.attrs.get("attribution", "") or da.attrs.get("references", ""))
    )
    long_name = str(da.attrs.get("long_name") or name.replace("_", " "))
    return Prepared(da, crs, extent, kind, units, method, attribution, name, long_name)


def title_name(prep: Prepared) -> str:
    """What titles and footers call the forecast: ``radar-5min, convlstm`` for a model's
    (the file names' ``radar-5min`` with its method), else the name the maps go by."""
    attrs = prep.da.attrs
    if prep.method != display_name(attrs) or prep.method == display_name(attrs, with_method=True):
        return prep.method  # a method, or a name given by the caller
    return f"{prep.method}, {attrs['nowcast_method']}"


def map_layers(
    prep: Prepared, map_data=None, *, download: bool = False, warn: bool = True
) -> MapData:
    """The coastlines, lakes and borders for ``prep``'s map (resolution from its extent).

    ``map_data``: a folder (see :mod:`nowcast.render.mapdata`), or a :class:`MapData`
    already found (returned as is). ``warn=False``: no warning when none is found (for a
    caller that prints :meth:`MapData.describe` instead).
    """
    if isinstance(map_data, MapData):
        return map_data
    bbox = lonlat_bbox(prep.crs, prep.extent, lonlat=lonlat_crs())
    return find_map_data(map_data, bbox=bbox, download=download, warn=warn)


def with_layers(prep: Prepared, options: RenderOptions, *, warn: bool = True) -> RenderOptions:
    """``options`` with ``map_data`` the layers found for ``prep``'s map (to find them once)."""
    found = map_layers(prep, options.map_data, download=options.download_map_data, warn=warn)
    return options.replace(map_data=found)


def _legend(prep: Prepared, found: MapData, panels) -> list[tuple[Any, str]]:
    """What the map's background colours mean: no data, dry, land and sea."""
    items = []
    if any(p.data is not None and np.isnan(p.data).any() for p in panels):
        items.append((colours.NO_DATA, "no data (outside coverage)"))
    if prep.kind == "precipitation":
        dry = "dry (< 0.1 mm h$^{-1}$)"
        if found.land is not None:
            items += [(LAND, f"{dry}, land"), ("white", f"{dry}, sea or lake")]
        else:
            items.append(("white", dry))
    return items


def select_leads(n_leads: int, leads: Sequence[int] | None) -> list[int]:
    """0-based indices for 1-based ``leads`` (all when ``None``); errors name a bad lead."""
    if leads is None:
        return list(range(n_leads))
    out = []
    for lead in leads:
        if not isinstance(lead, (int, np.integer)) or not 1 <= int(lead) <= n_leads:
            raise NowcastError(f"lead {lead!r} out of range: this forecast has leads 1..{n_leads}")
        if int(lead) - 1 not in out:
            out.append(int(lead) - 1)
    return out


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-") or "x"


def output_name(
    prep: Prepared, issue: np.datetime64, lead: np.timedelta64, suffix: str = ".png"
) -> str:
    """``{var}_{method}_{issue:%Y%m%dT%H%M}_lead{minutes:03d}.png``."""
    minutes = int(pd.Timedelta(lead).total_seconds() // 60)
    stamp = f"{pd.Timestamp(issue):%Y%m%dT%H%M}"
    return f"{_safe(prep.name)}_{_safe(prep.method)}_{stamp}_lead{minutes:03d}{suffix}"


def _format_lead(lead) -> str:
    minutes = int(pd.Timedelta(lead).total_seconds() // 60)
    if minutes >= 120 and minutes % 60 == 0:
        return f"+{minutes // 60} h"
    return f"+{minutes} min"


def align_truth(truth: xr.DataArray, prep: Prepared) -> xr.DataArray:
    """The observations on the forecast's grid (y/x ascending, metres); DataError otherwise."""
    if not isinstance(truth, xr.DataArray) or set(truth.dims) != {TIME, Y, X}:
        dims = getattr(truth, "dims", None)
        raise DataError(f"truth must be an archive DataArray with dims (time, y, x), got {dims}")
    t = _to_metres_ascending(truth.transpose(TIME, Y, X))
    fx, fy = prep.da[X].values, prep.da[Y].values
    same = t.sizes[X] == fx.size and t.sizes[Y] == fy.size
    if (
        same
        and np.allclose(t[X].values, fx, atol=1e-3 * abs(fx[1] - fx[0]))
        and np.allclose(t[Y].values, fy, atol=1e-3 * abs(fy[1] - fy[0]))
    ):
        return t.assign_coords({X: prep.da[X], Y: prep.da[Y]})
    tol = 0.01 * min(abs(fx[1] - fx[0]), abs(fy[1] - fy[0]))
    ix, iy = nearest_indices(t[X].values, fx, tol), nearest_indices(t[Y].values, fy, tol)
    if ix is None or iy is None:
        raise DataError(
            f"truth {truth.name!r} is not on the forecast's grid (x/y differ); cannot compare maps"
        )
    return t.isel({X: ix, Y: iy}).assign_coords({X: prep.da[X], Y: prep.da[Y]})


def _observed(truth: xr.DataArray | None, valid_times: np.ndarray) -> list[np.ndarray | None]:
    """Observed frames at ``valid_times`` (None where missing or all-NaN)."""
    if truth is None:
        return [None] * len(valid_times)
    index = pd.DatetimeIndex(truth[TIME].values)
    pos = index.get_indexer(pd.DatetimeIndex(valid_times))
    out: list[np.ndarray | None] = []
    for p in pos:
        if p < 0:
            out.append(None)
            continue
        frame = np.asarray(truth.isel({TIME: int(p)}).values, dtype=np.float32)
        out.append(None if not np.isfinite(frame).any() else frame)
    return out


def _styles(
    prep: Prepared, fc: np.ndarray, obs: list[np.ndarray | None]
) -> tuple[colours.Style, colours.Style | None]:
    """Field style and difference style for one issue time (all leads, display units)."""
    present = [o for o in obs if o is not None]
    label_units = prep.units
    if prep.kind == "precipitation":
        field = colours.precipitation_style(f"rain rate ({label_units})")
    else:
        stack = np.concatenate([fc.ravel()] + [o.ravel() for o in present])
        if prep.kind == "temperature":
            lo, hi = colours.robust_range(stack)
        else:
            lo, hi = colours.robust_range(stack, 0.0, 100.0)
        label = f"{prep.long_name} ({label_units})" if label_units else prep.long_name
        field = (
            colours.temperature_style(lo, hi, label=label)
            if prep.kind == "temperature"
            else colours.generic_style(lo, hi, label=label)
        )
    if not present and not any(o is None for o in obs):
        return field, None
    diffs = [np.abs(fc[i] - o) for i, o in enumerate(obs) if o is not None]
    values = np.concatenate([d.ravel() for d in diffs]) if diffs else np.array([])
    values = values[np.isfinite(values)]
    q = float(np.percentile(values, 99)) if values.size else 0.0
    minimum = 0.1 if prep.kind == "temperature" else max(q, 1e-6)
    diff = colours.difference_style(
        colours.nice_limit(q, minimum=minimum), kind=prep.kind, units=label_units
    )
    return field, diff


def _footer(prep: Prepared, found: MapData, *extra: str) -> str:
    """``Data: <owner> · <extra> · Map: <map data>``."""
    data = f"Data: {prep.attribution or 'source unknown (the file names none)'}"
    maps = f"Map: {found.source}" if not found.empty else "Map: no coastline data"
    return " · ".join([data, *extra, maps])


def frame_pngs(
    prep: Prepared,
    issue_index: int,
    lead_indices: Sequence[int],
    *,
    truth: xr.DataArray | None = None,
    options: RenderOptions | None = None,
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(file name, PNG bytes)`` per lead of one issue time (``truth`` pre-aligned;
    0-based ``lead_indices``: ``options.leads`` is not read here)."""
    options = options or RenderOptions()
    for name, png, _ in _frames(prep, issue_index, lead_indices, truth=truth, options=options):
        yield name, png


def forecast_figure(
    forecast: xr.DataArray,
    *,
    issue_index: int = 0,
    lead: int = 1,
    truth: xr.DataArray | None = None,
    options: RenderOptions | None = None,
):
    """``(PNG bytes, Figure)`` of one map (1-based ``lead``; ``options.leads`` is not read):
    to inspect axes, extent, artists."""
    prep = prepare(forecast)
    (lead_idx,) = select_leads(prep.da.sizes[LEAD_TIME], [lead])
    aligned = align_truth(truth, prep) if truth is not None else None
    (item,) = _frames(
        prep,
        issue_index,
        [lead_idx],
        truth=aligned,
        options=options or RenderOptions(),
        keep_figure=True,
    )
    return item[1], item[2]


def _frames(prep, issue_index, lead_indices, *, truth, options: RenderOptions, keep_figure=False):
    found = map_layers(prep, options.map_data, download=options.download_map_data)
    convert, _ = colours.to_display(prep.da.attrs)
    one = prep.da.isel({ISSUE_TIME: issue_index})
    issue = one[ISSUE_TIME].values
    valid = one[VALID_TIME].values
    leads = one[LEAD_TIME].values
    need_all = prep.kind != "precipitation" or truth is not None
    idx = list(range(one.sizes[LEAD_TIME])) if need_all else list(lead_indices)
    fc_all = convert(one.isel({LEAD_TIME: idx}).values)
    where = {j: k for k, j in enumerate(idx)}
    obs_raw = _observed(truth, valid[idx]) if truth is not None else [None] * len(idx)
    obs = [None if o is None else convert(o) for o in obs_raw]
    field, diff = _styles(prep, fc_all, obs if truth is not None else [])
    title = f"{prep.long_name}: nowcast ({title_name(prep)})"
    footer = _footer(prep, found, f"nowcast {title_name(prep)}")
    for j in lead_indices:
        k = where[j]
        fc = fc_all[k]
        lead_txt = _format_lead(leads[j])
        subtitle = (
            f"issue {pd.Timestamp(issue):%Y-%m-%d %H:%M} UTC   lead {lead_txt}   valid "
            f"{pd.Timestamp(valid[j]):%Y-%m-%d %H:%M} UTC"
        )
        panels = [Panel(fc, field, f"Forecast ({lead_txt})")]
        if truth is not None:
            o = obs[k]
            note = "" if o is not None else "no observation"
            panels = [
                Panel(o, field, "Observed", note),
                panels[0],
                Panel(None if o is None else fc - o, diff, "Forecast − observed", note),
            ]
        out = draw_figure(
            panels,
            crs=prep.crs,
            extent=prep.extent,
            title=title,
            subtitle=subtitle,
            footer=footer,
            legend=_legend(prep, found, panels),
            layers=found,
            options=options,
            return_axes=keep_figure,
        )
        png, fig = out if keep_figure else (out, None)
        yield output_name(prep, issue, leads[j]), png, fig


def render_forecast(
    forecast: xr.DataArray,
    *,
    outdir: str | os.PathLike,
    truth: xr.DataArray | None = None,
    options: RenderOptions | None = None,
    method: str | None = None,
    attribution: str | None = None,
    issue_indices: Sequence[int] | None = None,
) -> list[Path]:
    """Write one PNG per (issue time, lead) of ``forecast`` into ``outdir``; returns the paths.

    ``truth`` is an archive ``(time, y, x)`` on the same grid: each map then shows observed |
    forecast | forecast - observed at the valid time ("no observation" where it is missing).
    ``options``: the leads, map data, resolution and size (see :class:`RenderOptions`; default
    all leads, the map data found, 100 dpi). Files are named by :func:`output_name` and
    written atomically; everything is checked before the first write.
    """
    prep = prepare(forecast, method=method, attribution=attribution)
    options = with_layers(prep, options or RenderOptions())
    lead_idx = select_leads(prep.da.sizes[LEAD_TIME], options.leads)
    issues = range(prep.da.sizes[ISSUE_TIME]) if issue_indices is None else issue_indices
    aligned = align_truth(truth, prep) if truth is not None else None
    outdir = Path(outdir)
    written = []
    for i in issues:
        for name, png in frame_pngs(prep, i, lead_idx, truth=aligned, options=options):
            written.append(write_atomic(outdir / name, png))
    return written


def render_field(
    field: xr.DataArray,
    *,
    path: str | os.PathLike,
    title: str | None = None,
    options: RenderOptions | None = None,
) -> Path:
    """Draw one observed frame ``(y, x)`` (or ``(time=1, y, x)``) to ``path`` (PNG, atomic);
    ``options``: the map data, resolution and size (its ``leads`` are not read)."""
    options = options or RenderOptions()
    if TIME in field.dims:
        if field.sizes[TIME] != 1:
            raise DataError(
                f"render_field draws one frame; {field.name} has {field.sizes[TIME]} times"
            )
        field = field.isel({TIME: 0})
    if set(field.dims) != {Y, X}:
        raise DataError(f"{field.name}: dims {field.dims}; expected (y, x)")
    when = field.coords[TIME].values if TIME in field.coords else None
    fake = field.expand_dims(
        {ISSUE_TIME: [np.datetime64("1970-01-01", "ns")], LEAD_TIME: [np.timedelta64(0, "ns")]}
    )
    prep = prepare(fake, method="observed")
    convert, _ = colours.to_display(prep.da.attrs)
    data = convert(prep.da.isel({ISSUE_TIME: 0, LEAD_TIME: 0}).values)
    style, _ = _styles(prep, data[None], [])
    when_txt = f"{pd.Timestamp(when):%Y-%m-%d %H:%M} UTC" if when is not None else ""
    found = map_layers(prep, options.map_data, download=options.download_map_data)
    panels = [Panel(data, style, "Observed")]
    png = draw_figure(
        panels,
        crs=prep.crs,
        extent=prep.extent,
        title=title or f"{prep.long_name}: observed",
        subtitle=when_txt,
        footer=_footer(prep, found),
        legend=_legend(prep, found, panels),
        layers=found,
        options=options,
    )
    return write_atomic(path, png)
