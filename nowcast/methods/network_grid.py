"""The grid the network works on: the input grid's pixels brought to the training size and back.

The network runs on pixels of the size it was trained on, as it runs at its own time step
whatever the input's: an input grid finer than the training grid by a factor ``r >= 1.5``
(:data:`FINER_THRESHOLD`) is block-averaged (NaN-aware) by ``round(r)`` first (by less
where that would leave a Lagrangian model's optical flow under 16 pixels a side)
(:func:`block_factor`; e.g. a 500 m radar for a model trained on 1 km composites: its
convolutions learned 1 km features and its spread the variability of 1 km pixels), and
every field of the forecast is brought back to the input grid by :func:`upsample`
(bilinear; a NaN block stays NaN over its pixels). Coarser inputs and longitude/latitude
grids run at their own pixels (the training coarsening alone). :func:`local_maximum` is
the cap the forecast is held under, on the network's grid.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: An input grid is averaged for the network when its pixels are at least this many times
#: smaller than the training grid's (module doc).
FINER_THRESHOLD = 1.5


def block_factor(trained_m: float, input_m: float) -> int:
    """The block size that brings pixels of ``input_m`` metres nearest ``trained_m``: 1 when
    the input is less than :data:`FINER_THRESHOLD` times finer, else ``round(ratio)``."""
    ratio = float(trained_m) / float(input_m)
    return 1 if ratio < FINER_THRESHOLD else int(np.floor(ratio + 0.5))


def upsample(values: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Undo a ``boundary='trim'`` block-mean coarsening: bilinear zoom, edge-padded; a NaN
    block (e.g. what moved in from beyond the grid) stays NaN over its ``factor x factor``
    pixels."""
    if factor == 1:
        return values
    lead = values.shape[:-2]
    zoomed = ndimage.zoom(
        np.nan_to_num(values),
        (1,) * len(lead) + (factor, factor),
        order=1,
        mode="nearest",
        grid_mode=True,
    )
    pad_y, pad_x = shape[0] - zoomed.shape[-2], shape[1] - zoomed.shape[-1]
    pad = [(0, 0)] * len(lead) + [(0, max(pad_y, 0)), (0, max(pad_x, 0))]
    out = np.pad(zoomed, pad, mode="edge")[..., : shape[0], : shape[1]]
    unknown = np.isnan(values)
    if unknown.any():
        blocks = unknown.repeat(factor, axis=-2).repeat(factor, axis=-1)
        out[np.pad(blocks, pad, mode="edge")[..., : shape[0], : shape[1]]] = np.nan
    return out


#: Half-width (pixels of the network's grid) of the neighbourhood whose largest input bounds
#: the forecast (:func:`local_maximum`).
CAP_RADIUS = 8


def local_maximum(
    inputs: np.ndarray, radius: int = CAP_RADIUS, *, smooth: bool = False
) -> np.ndarray:
    """``(y, x)``: the largest of the network's inputs ``(t, y, x)`` (all frames, in the frame
    the network works) within ``radius`` pixels. The forecast is capped by it: the network
    may grow rain up to what was observed nearby, never beyond (a trained network, next to
    no-data holes or at a small domain's edge, otherwise invents rain several times the
    inputs' largest value).

    Taken over a square of ``2 radius + 1`` pixels, the cap is flat over it, and wherever
    the network's value passes it (its upper quantiles above all) the forecast shows that
    square: squares of constant rain around isolated rain pixels in OPERA's members.
    ``smooth`` (rain, :func:`smooth_cap`): the square maximum smoothed with a Gaussian of
    ``radius / 2`` pixels (never below an input at its own pixel; it so reaches a few pixels
    beyond ``radius``, lower), so a capped field falls off in rounded hills instead."""
    peak = np.max(inputs, axis=0)
    flat = ndimage.maximum_filter(peak, size=2 * radius + 1, mode="nearest")
    if not smooth:
        return flat
    return np.maximum(ndimage.gaussian_filter(flat, sigma=radius / 2.0, mode="nearest"), peak)


def smooth_cap(kind: str) -> bool:
    """Whether a model's cap is smoothed (:func:`local_maximum`): for rain, whose isolated
    pixels otherwise leave squares; not for other quantities (temperature)."""
    return kind == "precipitation"
