"""Maps of forecasts and observations with Cartopy (offline coastlines, data's own projection).

Public API: :func:`render_forecast`, :func:`render_field`, :func:`render_many`,
:func:`render_gif`, :func:`crs_from_grid_mapping`, :func:`render_probabilistic` (probability
maps and postage stamps of members), and :class:`RenderOptions` (the leads,
map data, resolution and size they all take). Cartopy is imported only when a map is
drawn (it costs start-up time); Matplotlib with the package.
"""

from __future__ import annotations

from nowcast.render.animate import render_gif
from nowcast.render.ensemble_jobs import render_probabilistic
from nowcast.render.maps import render_field, render_forecast
from nowcast.render.options import RenderOptions
from nowcast.render.parallel import render_many
from nowcast.render.projection import crs_from_grid_mapping

__all__ = [
    "RenderOptions",
    "render_forecast",
    "render_field",
    "render_many",
    "render_gif",
    "render_probabilistic",
    "crs_from_grid_mapping",
]
