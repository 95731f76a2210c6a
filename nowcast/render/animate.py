"""Animated GIF through the lead times of one issue time (observed | forecast when truth given).

Frames are the same maps as :func:`~nowcast.render.maps.render_forecast`, rendered to PNG in
memory, quantised to one adaptive palette each and saved with Pillow
(``save_all=True, loop=0``), atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import xarray as xr
from PIL import Image

from nowcast.conventions import ISSUE_TIME, LEAD_TIME
from nowcast.errors import NowcastError
from nowcast.fileio import write_atomic
from nowcast.render.maps import (
    Prepared,
    _safe,
    align_truth,
    frame_pngs,
    prepare,
    select_leads,
    with_layers,
)
from nowcast.render.options import GIF_DPI, RenderOptions

__all__ = ["render_gif", "write_gif", "gif_name", "gif_bytes"]


def gif_name(prep: Prepared, issue) -> str:
    """``{var}_{method}_{issue:%Y%m%dT%H%M}.gif``."""
    return f"{_safe(prep.name)}_{_safe(prep.method)}_{pd.Timestamp(issue):%Y%m%dT%H%M}.gif"


def render_gif(
    forecast: xr.DataArray,
    *,
    path: str | os.PathLike | None = None,
    outdir: str | os.PathLike | None = None,
    truth: xr.DataArray | None = None,
    issue_index: int = 0,
    options: RenderOptions | None = None,
    duration_ms: int = 700,
    method: str | None = None,
) -> Path:
    """Write an animated GIF with one frame per lead (``options.leads``, 1-based; default all).

    Give ``path``, or ``outdir`` for the name from :func:`gif_name`. With ``truth`` each
    frame shows observed | forecast | difference at that lead's valid time. ``options``
    default: all leads, the map data found, :data:`~nowcast.render.options.GIF_DPI` dpi.
    """
    prep = prepare(forecast, method=method)
    options = options or RenderOptions(dpi=GIF_DPI)
    n_issue = prep.da.sizes[ISSUE_TIME]
    if not -n_issue <= issue_index < n_issue:
        raise NowcastError(
            f"issue index {issue_index} out of range: the forecast has {n_issue} issue times"
        )
    lead_idx = select_leads(prep.da.sizes[LEAD_TIME], options.leads)
    aligned = align_truth(truth, prep) if truth is not None else None
    options = with_layers(prep, options)
    if path is None:
        if outdir is None:
            raise NowcastError("render_gif needs path= or outdir=")
        path = Path(outdir) / gif_name(prep, prep.da[ISSUE_TIME].values[issue_index])
    return write_gif(
        prep,
        issue_index % n_issue,
        lead_idx,
        path=path,
        truth=aligned,
        options=options,
        duration_ms=duration_ms,
    )


def write_gif(
    prep: Prepared,
    issue_index: int,
    lead_indices: Sequence[int],
    *,
    path: str | os.PathLike,
    truth: xr.DataArray | None,
    options: RenderOptions,
    duration_ms: int = 700,
) -> Path:
    """The GIF of a forecast already checked: ``truth`` aligned, 0-based ``lead_indices``."""
    pngs = frame_pngs(prep, issue_index, lead_indices, truth=truth, options=options)
    return write_atomic(path, gif_bytes((png for _, png in pngs), duration_ms=duration_ms))


def gif_bytes(pngs: Iterable[bytes], *, duration_ms: int = 700) -> bytes:
    """An endless animated GIF of PNG frames (one adaptive palette each)."""
    frames = []
    for png in pngs:
        with Image.open(io.BytesIO(png)) as im:
            frames.append(
                im.convert("RGB").quantize(
                    colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
                )
            )
    buf = io.BytesIO()
    frames[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=int(duration_ms),
        loop=0,
        disposal=1,
    )
    return buf.getvalue()
