"""Postage stamps: a grid of small maps (ensemble members) sharing one colour scale.

Like :func:`~nowcast.render.figure.draw_figure` (Agg canvas, GeoAxes in the data's own
projection, coastlines from :mod:`nowcast.render.mapdata`, two title lines, a background key
and the attribution footer), but every panel is a small map without gridlines, in
rows and columns, with one colour bar under the grid. The layout is computed in inches from
the map's aspect ratio, so the PNG is exactly ``figsize * dpi`` pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nowcast.render.colours import Style
from nowcast.render.figure import Layout, Panel, colourbar, finish_figure, fit_figure
from nowcast.render.mapdata import MapData, add_map_features, lonlat_bbox
from nowcast.render.options import RenderOptions
from nowcast.render.projection import lonlat_crs

__all__ = ["StampLayout", "grid_shape", "stamp_layout", "draw_stamps"]

# Layout constants (inches).
_STAMP = (1.75, 2.6)  # longest side of one stamp: least, most (few columns)
_HGAP, _VGAP = 0.12, 0.28  # between stamps; the vertical gap holds a stamp's title
_SIDE = 0.25  # left and right margins
_TOP = 0.78  # two title lines + the first row's stamp titles
_BELOW = 0.2 + 0.13 + 0.45 + 0.42  # gap, colour bar, its labels, footer
_CBAR_H = 0.13
_MIN_WIDTH = 5.6  # fits the title at 10 pt


def grid_shape(n: int) -> tuple[int, int]:
    """``(rows, columns)`` for ``n`` stamps: about square, the fewest empty cells (of
    ``ceil(sqrt(n))`` and one more columns): 4 -> 2 x 2, 5 -> 2 x 3, 20 -> 4 x 5, 21 -> 4 x 6."""
    if n < 1:
        raise ValueError(f"need at least one stamp, got {n}")
    first = math.ceil(math.sqrt(n))
    cols = min((first, first + 1), key=lambda c: (math.ceil(n / c) * c, c))
    return math.ceil(n / cols), cols


@dataclass(frozen=True)
class StampLayout:
    """The figure's :class:`~nowcast.render.figure.Layout` (its ``maps`` one per stamp,
    row by row; its single colour bar) and the grid's shape."""

    layout: Layout
    rows: int
    cols: int


def stamp_layout(
    extent: Sequence[float],
    n: int,
    *,
    figsize: tuple[float, float] | None = None,
    dpi: float = 100,
) -> StampLayout:
    """Place ``n`` stamps of the grid's ``extent`` (x0, x1, y0, y1) in rows and columns.

    With ``figsize`` the natural layout is scaled uniformly to fit it (and centred);
    otherwise the figure size is rounded to whole pixels at ``dpi``.
    """
    rows, cols = grid_shape(n)
    x0, x1, y0, y1 = extent
    aspect = (y1 - y0) / (x1 - x0)
    side = max(_STAMP[0], min(_STAMP[1], 7.5 / cols))  # a few members: larger stamps
    w = side if aspect <= 1 else side / aspect
    h = w * aspect
    grid_w = cols * w + (cols - 1) * _HGAP
    width = max(2 * _SIDE + grid_w, _MIN_WIDTH)
    height = _TOP + rows * h + (rows - 1) * _VGAP + _BELOW
    fw, fh, scale, ox, oy = fit_figure(width, height, figsize, dpi)
    left = ox + scale * (width - grid_w) / 2
    maps = []
    for k in range(n):
        r, c = divmod(k, cols)
        mx = left + scale * c * (w + _HGAP)
        my = oy + scale * (_BELOW + (rows - 1 - r) * (h + _VGAP))
        maps.append((mx / fw, my / fh, scale * w / fw, scale * h / fh))
    bar_w = min(grid_w, 4.0)
    bx = left + scale * (grid_w - bar_w) / 2
    by = oy + scale * (_BELOW - 0.2 - _CBAR_H)
    cbar = (bx / fw, by / fh, scale * bar_w / fw, scale * _CBAR_H / fh)
    layout = Layout(
        (fw, fh), tuple(maps), (cbar,), (oy + scale * 0.06) / fh, 1 - (oy + scale * 0.1) / fh
    )
    return StampLayout(layout, rows, cols)


def draw_stamps(
    panels: Sequence[Panel],
    *,
    style: Style,
    crs,
    extent: Sequence[float],
    title: str,
    subtitle: str,
    footer: str,
    layers: MapData | None = None,
    legend: Sequence[tuple] = (),
    options: RenderOptions | None = None,
    return_figure: bool = False,
):
    """Render ``panels`` as a grid of stamps with one colour bar of ``style``; returns PNG
    bytes (and the Figure if ``return_figure``). Every panel is drawn with ``style``."""
    options = options or RenderOptions()
    dpi = options.dpi
    placed = stamp_layout(extent, len(panels), figsize=options.figsize, dpi=dpi)
    layout = placed.layout
    fig = Figure(figsize=layout.figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    lonlat = lonlat_crs()
    drawn = layers is not None and not layers.empty
    bbox = lonlat_bbox(crs, extent, lonlat=lonlat) if drawn else None
    for panel, rect in zip(panels, layout.maps):
        ax = fig.add_axes(rect, projection=crs)
        ax.set_extent(extent, crs=crs)
        if panel.data is not None:
            ax.imshow(panel.data, origin="lower", extent=tuple(extent), transform=crs,
                      cmap=style.cmap, norm=style.norm, interpolation="nearest",
                      zorder=1)  # fmt: skip
            ax.set_extent(extent, crs=crs)
        if panel.note:
            ax.text(0.5, 0.5, panel.note, transform=ax.transAxes, ha="center", va="center",
                    fontsize=7, color="0.25", zorder=5)  # fmt: skip
        if drawn:
            add_map_features(ax, layers, lonlat=lonlat, bbox=bbox, linewidth=0.45)
        ax.set_title(panel.title, fontsize=7, pad=2)
    colourbar(fig, layout.cbars[0], style)
    data = finish_figure(
        fig, layout, title=title, subtitle=subtitle, footer=footer, legend=legend, dpi=dpi
    )
    return (data, fig) if return_figure else data
