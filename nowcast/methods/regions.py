"""Where a region lies in an archive's grid, and how much context its forecast reads.

:func:`locate_region` places a :class:`~nowcast.region.Region` on an archive and grows it
by the context the method needs (:func:`nowcast.region.margin_pixels`);
:func:`check_region` only checks that it meets the grid (a batch, before any work).
:func:`nowcast.methods.run.forecast_region` forecasts the context and cuts the region out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.archive.timeaxis import time_step
from nowcast.conventions import TIME, X, Y
from nowcast.geo import coord_spacing, is_geographic, xy_scale
from nowcast.methods.base import Forecaster
from nowcast.region import Region, Window, margin_pixels, region_pixels, region_window


def locate_region(
    method: Forecaster, archive: xr.DataArray, region: Region, n_leads: int
) -> Window:
    """Where ``region`` lies in ``archive``'s grid, and the context its forecast reads: the
    region grown by what moves at :data:`nowcast.region.MAX_SPEED_KMH` over the input frames
    and the leads, plus the method's own ``context_pixels`` (a network's receptive field)."""
    step = time_step(archive) if archive.sizes[TIME] > 1 else getattr(method, "step", None)
    step = pd.Timedelta(step or pd.Timedelta(minutes=5))
    needs = getattr(method, "input_frames", None)
    frames = int(needs(step) if needs is not None else method.t_in)
    hours = (n_leads + frames) * step / pd.Timedelta(hours=1)
    x, y, gm, units = _grid(archive)
    spacing = min(coord_spacing(archive[X].values) or 1.0, coord_spacing(archive[Y].values) or 1.0)
    if gm and is_geographic(gm):
        spacing_m = spacing * 111_000.0 * np.cos(np.deg2rad(min(80.0, np.abs(archive[Y]).max())))
    else:
        spacing_m = spacing * xy_scale(units)
    context = getattr(method, "context_pixels", None)
    extra = int(context(archive)) if context is not None else 0
    return region_window(
        region,
        x,
        y,
        gm_attrs=gm,
        units=units,
        margin=margin_pixels(float(spacing_m), hours, extra),
    )


def _grid(archive: xr.DataArray):
    """``(x, y, grid-mapping attrs or None, x/y units)`` of an archive's grid."""
    gm_name = archive.attrs.get("grid_mapping")
    gm = dict(archive.coords[gm_name].attrs) if gm_name in archive.coords else None
    return archive[X].values, archive[Y].values, gm, archive[X].attrs.get("units")


def check_region(archive: xr.DataArray, region: Region) -> None:
    """A one-line error when ``region`` does not meet ``archive``'s grid (module
    :mod:`nowcast.region`)."""
    x, y, gm, units = _grid(archive)
    region_pixels(region, x, y, gm_attrs=gm, units=units)
