"""Draw one map figure (one or more panels side by side) to PNG bytes.

Plain Matplotlib ``Figure`` + Agg canvas (no pyplot, so no global figure registry and
nothing to close), Cartopy GeoAxes in the data's own projection, the field drawn with
``imshow`` over the grid's cell edges (``origin="lower"``: y ascending), coastlines from
:mod:`nowcast.render.mapdata`, lon/lat gridlines with labels, a horizontal colour bar under
each panel, a two-line title and a small attribution footer.

The layout is computed in inches from the map's aspect ratio, so labels never overlap
and the PNG is exactly ``figsize * dpi`` pixels.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from nowcast.render.colours import Style
from nowcast.render.mapdata import MapData, add_map_features, lonlat_bbox
from nowcast.render.options import RenderOptions
from nowcast.render.projection import lonlat_crs

__all__ = ["Panel", "Layout", "figure_layout", "draw_figure", "finish_figure", "colourbar"]

# Layout constants (inches).
_MAP = 4.0  # longest side of one map panel
_LEFT, _RIGHT, _GAP = 0.7, 0.3, 0.8  # margins; gap between panels (latitude labels)
_TOP = 0.95  # two title lines + panel title
_BELOW_MAP = 0.32  # longitude labels
_CBAR_H = 0.13
_CBAR_TEXT = 0.45  # tick labels + colour-bar label
_FOOTER = 0.42  # attribution (up to three small lines)
_MIN_WIDTH = 5.6  # fits the title at 10 pt


@dataclass(frozen=True)
class Panel:
    """One map panel: ``data`` (2-D, y ascending, display units) or ``None`` with a ``note``."""

    data: np.ndarray | None
    style: Style
    title: str
    note: str = ""


@dataclass(frozen=True)
class Layout:
    """Figure size (inches) and per-panel map / colour-bar rectangles (figure fractions)."""

    figsize: tuple[float, float]
    maps: tuple[tuple[float, float, float, float], ...]
    cbars: tuple[tuple[float, float, float, float], ...]
    footer_y: float
    title_y: float

    def pixel_size(self, dpi: float) -> tuple[int, int]:
        """``(width, height)`` of the PNG written at ``dpi``."""
        return (int(self.figsize[0] * dpi), int(self.figsize[1] * dpi))


def fit_figure(
    width: float, height: float, figsize: tuple[float, float] | None, dpi: float
) -> tuple[float, float, float, float, float]:
    """The figure's size and placement for content of ``width`` x ``height`` inches:
    ``(fig_width, fig_height, scale, x_offset, y_offset)``. With ``figsize`` the content is
    scaled uniformly to fit it and centred; otherwise the figure is the content rounded up
    to whole pixels at ``dpi`` (centred horizontally)."""
    if figsize is None:
        # Whole pixels; the tiny excess keeps int(size * dpi) from rounding down.
        fw = (math.ceil(width * dpi) + 1e-3) / dpi
        fh = (math.ceil(height * dpi) + 1e-3) / dpi
        return fw, fh, 1.0, (fw - width) / 2, 0.0
    fw, fh = float(figsize[0]) + 1e-4, float(figsize[1]) + 1e-4
    scale = min(fw / width, fh / height)
    return fw, fh, scale, (fw - width * scale) / 2, (fh - height * scale) / 2


def figure_layout(
    extent: Sequence[float],
    n_panels: int,
    *,
    figsize: tuple[float, float] | None = None,
    dpi: float = 100,
) -> Layout:
    """Place ``n_panels`` maps of the grid's ``extent`` (x0, x1, y0, y1) side by side.

    With ``figsize`` the natural layout is scaled uniformly to fit it (and centred);
    otherwise the figure size is rounded to whole pixels at ``dpi``.
    """
    x0, x1, y0, y1 = extent
    aspect = (y1 - y0) / (x1 - x0)
    w = _MAP if aspect <= 1 else _MAP / aspect
    h = w * aspect
    below = _BELOW_MAP + 0.1 + _CBAR_H + _CBAR_TEXT + _FOOTER
    width = max(
        _LEFT + n_panels * w + (n_panels - 1) * _GAP + _RIGHT, _MIN_WIDTH if n_panels == 1 else 0.0
    )
    height = _TOP + h + below
    fw, fh, scale, ox, oy = fit_figure(width, height, figsize, dpi)
    content_w = n_panels * w + (n_panels - 1) * _GAP
    left = ox + scale * ((width - content_w) / 2 if n_panels == 1 else _LEFT)
    maps, cbars = [], []
    for i in range(n_panels):
        mx = left + scale * i * (w + _GAP)
        my = oy + scale * below
        maps.append((mx / fw, my / fh, scale * w / fw, scale * h / fh))
        cy = oy + scale * (below - _BELOW_MAP - 0.1 - _CBAR_H)
        cbars.append(
            ((mx + scale * 0.05 * w) / fw, cy / fh, scale * 0.9 * w / fw, scale * _CBAR_H / fh)
        )
    return Layout(
        (fw, fh), tuple(maps), tuple(cbars), (oy + scale * 0.06) / fh, 1 - (oy + scale * 0.1) / fh
    )


def colourbar(fig, rect, style: Style):
    """A horizontal colour bar of ``style`` in ``rect`` (figure fractions); the Colorbar."""
    cax = fig.add_axes(rect)
    mappable = ScalarMappable(norm=style.norm, cmap=style.cmap)
    cb = fig.colorbar(
        mappable,
        cax=cax,
        orientation="horizontal",
        extend=style.extend,
        ticks=list(style.ticks) if style.ticks else None,
    )
    if style.ticklabels:
        cb.set_ticklabels(list(style.ticklabels))
    cb.ax.tick_params(labelsize=7, length=2, pad=1.5)
    cb.set_label(style.label, fontsize=8, labelpad=2)
    return cb


def _gridlines(ax, lonlat) -> None:
    # Cartopy costs start-up time: imported when a map is drawn
    from cartopy.mpl.ticker import LatitudeLocator, LongitudeLocator

    gl = ax.gridlines(
        crs=lonlat,
        draw_labels=True,
        x_inline=False,
        y_inline=False,
        linewidth=0.4,
        color="0.35",
        alpha=0.6,
        linestyle="--",
        zorder=4,
    )
    gl.top_labels = False
    gl.right_labels = False
    gl.xlocator = LongitudeLocator(nbins=4)
    gl.ylocator = LatitudeLocator(nbins=4)
    gl.xlabel_style = {"size": 7}
    gl.ylabel_style = {"size": 7}
    gl.rotate_labels = False


def draw_figure(
    panels: Sequence[Panel],
    *,
    crs,
    extent: Sequence[float],
    title: str,
    subtitle: str,
    footer: str,
    layers: MapData | None = None,
    legend: Sequence[tuple] = (),
    options: RenderOptions | None = None,
    return_axes: bool = False,
):
    """Render ``panels`` side by side; returns PNG bytes (and the Figure if ``return_axes``).

    ``layers``: the coastlines found for this map (``None``: none drawn); ``options``: the
    resolution and size (its ``leads`` and ``map_data`` are the caller's: not read here).
    """
    options = options or RenderOptions()
    dpi = options.dpi
    layout = figure_layout(extent, len(panels), figsize=options.figsize, dpi=dpi)
    fig = Figure(figsize=layout.figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    lonlat = lonlat_crs()
    drawn = layers is not None and not layers.empty
    bbox = lonlat_bbox(crs, extent, lonlat=lonlat) if drawn else None
    for panel, rect, crect in zip(panels, layout.maps, layout.cbars):
        ax = fig.add_axes(rect, projection=crs)
        ax.set_extent(extent, crs=crs)
        if panel.data is not None:
            ax.imshow(
                panel.data,
                origin="lower",
                extent=tuple(extent),
                transform=crs,
                cmap=panel.style.cmap,
                norm=panel.style.norm,
                interpolation="nearest",
                zorder=1,
            )
            ax.set_extent(extent, crs=crs)
        if panel.note:
            ax.text(
                0.5,
                0.5,
                panel.note,
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=11,
                color="0.25",
                zorder=5,
                bbox={
                    "boxstyle": "round,pad=0.4",
                    "facecolor": "white",
                    "edgecolor": "0.6",
                    "alpha": 0.9,
                },
            )
        if layers is not None:
            add_map_features(ax, layers, lonlat=lonlat, bbox=bbox)
        _gridlines(ax, lonlat)
        ax.set_title(panel.title, fontsize=9, pad=4)
        colourbar(fig, crect, panel.style)
    data = finish_figure(
        fig, layout, title=title, subtitle=subtitle, footer=footer, legend=legend, dpi=dpi
    )
    if return_axes:
        return data, fig
    return data


def finish_figure(
    fig, layout: Layout, *, title: str, subtitle: str, footer: str, legend, dpi: float
) -> bytes:
    """Add the two title lines, the background key and the footer to ``fig``; its PNG bytes."""
    fw = layout.figsize[0]
    fig.text(
        0.5,
        layout.title_y,
        title,
        ha="center",
        va="top",
        fontsize=_fit(title, fw, 10, 0.085),
        fontweight="bold",
    )
    fig.text(
        0.5,
        layout.title_y - 0.2 / layout.figsize[1],
        subtitle,
        ha="center",
        va="top",
        fontsize=_fit(subtitle, fw, 9, 0.07),
    )
    most = 2 if legend else 3  # the background key takes the footer's top line
    lines = textwrap.wrap(footer, max(40, int(fw * 20)))
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] = lines[-1][: max(0, len(lines[-1]) - 1)] + "…"
    fig.text(
        0.01,
        layout.footer_y,
        "\n".join(lines),
        ha="left",
        va="bottom",
        fontsize=6,
        color="0.3",
        linespacing=1.2,
    )
    if legend:
        _background_key(fig, layout, legend)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": "nowcast"})
    return buf.getvalue()


def _background_key(fig, layout: Layout, legend: Sequence[tuple]) -> None:
    """Swatches saying what the map's background colours mean, above the footer's text."""
    handles = [Patch(facecolor=c, edgecolor="0.4", linewidth=0.4, label=t) for c, t in legend]
    fig.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.005, layout.footer_y + 0.2 / layout.figsize[1]),
        ncol=len(handles),
        fontsize=6,
        frameon=False,
        handlelength=1.2,
        handleheight=0.9,
        columnspacing=1.0,
        borderaxespad=0.0,
    )


def _fit(text: str, width_in: float, size: float, inch_per_char: float) -> float:
    """Font size (at most ``size``, at least 6) at which ``text`` fits the figure width."""
    need = len(text) * inch_per_char * size / 10
    return max(6.0, min(size, size * (width_in - 0.6) / need)) if need else size
