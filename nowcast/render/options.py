"""How maps are drawn: one frozen :class:`RenderOptions` that every render function takes.

The leads to draw, where the coastlines come from, and the image's resolution and size
travel together through :func:`~nowcast.render.maps.render_forecast`,
:func:`~nowcast.render.animate.render_gif`, :func:`~nowcast.render.parallel.render_many`
and the batch pipeline, instead of as five loose parameters each.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nowcast.render.mapdata import MapData

__all__ = ["RenderOptions", "GIF_DPI"]

#: The default resolution of an animation's frames (smaller files than the maps' 100).
GIF_DPI = 80


@dataclass(frozen=True)
class RenderOptions:
    """What to draw and how (immutable; :meth:`replace` makes a changed copy).

    ``leads``: 1-based lead indices to draw (``None``: all). ``map_data``: the offline
    map-data folder (default: ``NOWCAST_MAP_DATA``, then Cartopy's data folders) or a
    :class:`~nowcast.render.mapdata.MapData` already found. ``download_map_data``: let
    Cartopy download missing Natural Earth layers (network). ``dpi`` and ``figsize``
    (inches; ``None``: from the map's aspect ratio) size the PNG.
    """

    leads: tuple[int, ...] | None = None
    map_data: str | os.PathLike | MapData | None = None
    download_map_data: bool = False
    dpi: float = 100
    figsize: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.leads is not None and not isinstance(self.leads, tuple):
            object.__setattr__(self, "leads", tuple(self.leads))
        if self.figsize is not None and not isinstance(self.figsize, tuple):
            object.__setattr__(self, "figsize", tuple(self.figsize))

    def replace(self, **changes) -> RenderOptions:
        """A copy with ``changes`` (e.g. ``map_data=`` the layers found once)."""
        return dataclasses.replace(self, **changes)
