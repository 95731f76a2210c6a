"""Animated GIF through the lead times of one issue time (observed | forecast when truth given).

Frames are the same maps as :func:`~nowcast.render.maps.render_forecast`, rendered to PNG in
memory, quantised to one adaptive palette each and saved with Pillow
(``save_all=True, loop=0``), atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
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
    map_layers,
    prepare,
    select_leads,
)

__all__ = ["render_gif", "gif_name"]


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
    leads: Sequence[int] | None = None,
    map_data=None,
    download_map_data: bool = False,
    dpi: float = 80,
    figsize: tuple[float, float] | None = None,
    duration_ms: int = 700,
    method: str | None = None,
) -> Path:
    """Write an animated GIF with one frame per lead (1-based ``leads``, default all).

    Give ``path``, or ``outdir`` for the name from :func:`gif_name`. With ``truth`` each
    frame shows observed | forecast | difference at that lead's valid time.
    """
    prep = prepare(forecast, method=method)
    n_issue = prep.da.sizes[ISSUE_TIME]
    if not -n_issue <= issue_index < n_issue:
        raise NowcastError(
            f"issue index {issue_index} out of range: the forecast has {n_issue} issue times"
        )
    lead_idx = select_leads(prep.da.sizes[LEAD_TIME], leads)
    aligned = align_truth(truth, prep) if truth is not None else None
    map_data = map_layers(prep, map_data, download=download_map_data)
    if path is None:
        if outdir is None:
            raise NowcastError("render_gif needs path= or outdir=")
        path = Path(outdir) / gif_name(prep, prep.da[ISSUE_TIME].values[issue_index])
    frames = []
    pngs = frame_pngs(
        prep,
        issue_index % n_issue,
        lead_idx,
        truth=aligned,
        map_data=map_data,
        dpi=dpi,
        figsize=figsize,
    )
    for _, png in pngs:
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
    return write_atomic(path, buf.getvalue())
