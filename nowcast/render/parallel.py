"""Render many forecasts (or many leads of one) in parallel worker processes.

Work is split into tasks of (forecast, issue time, a chunk of leads). Everything is checked
in the calling process first (so a bad input writes nothing); workers are started with
``spawn`` (safe with Dask/Torch threads in the parent) and each writes its own PNGs
atomically. Observations are cut to each issue time's valid times in the parent and sent
with the task, so workers never re-scan an archive.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import ISSUE_TIME, LEAD_TIME, TIME, VALID_TIME
from nowcast.errors import DataError
from nowcast.products import read_forecast
from nowcast.render.maps import (
    align_truth,
    map_layers,
    prepare,
    render_forecast,
    select_leads,
)

__all__ = ["render_many", "plan_tasks"]


def _load(item) -> tuple[Any, xr.DataArray]:
    """``(what a worker gets, the forecast DataArray)`` for a path or a DataArray."""
    if isinstance(item, xr.DataArray):
        return None, item

    path = Path(item)
    return str(path), read_forecast(path)


def _truth_for_issue(
    aligned: xr.DataArray, forecast: xr.DataArray, issue_index: int
) -> xr.DataArray:
    """The observations at one issue time's valid times (those present), loaded."""
    valid = pd.DatetimeIndex(forecast[VALID_TIME].isel({ISSUE_TIME: issue_index}).values)
    present = valid[valid.isin(pd.DatetimeIndex(aligned[TIME].values))]
    return aligned.sel({TIME: present}).load()


def plan_tasks(n_pairs_leads: Sequence[int], workers: int) -> list[list[int]]:
    """Lead chunks per (forecast, issue) pair so that there are about ``2 * workers`` tasks."""
    pairs = len(n_pairs_leads)
    per_pair = 1 if workers <= 1 or pairs == 0 else max(1, math.ceil(2 * workers / pairs))
    out = []
    for n in n_pairs_leads:
        k = min(per_pair, n) if n else 1
        out.append([len(c) for c in np.array_split(np.arange(n), k) if len(c)])
    return out


def _run(task: dict) -> list[str]:
    """Worker: render one task; returns the paths written."""
    source = task["source"]
    if isinstance(source, str):
        source = read_forecast(source)
    paths = render_forecast(
        source,
        outdir=task["outdir"],
        truth=task["truth"],
        leads=[i + 1 for i in task["leads"]],
        issue_indices=[task["issue"]],
        **task["options"],
    )
    return [str(p) for p in paths]


def render_many(
    items: Sequence[str | os.PathLike | xr.DataArray] | str | os.PathLike | xr.DataArray,
    *,
    outdir: str | os.PathLike,
    workers: int = 1,
    truth: xr.DataArray | None = None,
    leads: Sequence[int] | None = None,
    map_data=None,
    dpi: float = 100,
    figsize: tuple[float, float] | None = None,
    download_map_data: bool = False,
) -> list[Path]:
    """Render forecast files or DataArrays with ``workers`` processes; returns paths written.

    Same maps and options as :func:`~nowcast.render.maps.render_forecast`; ``truth`` (an
    archive DataArray) is used for every forecast that shares its grid. ``workers=1`` runs
    in this process.
    """
    if isinstance(items, (str, os.PathLike, xr.DataArray)):
        items = [items]
    if workers < 1:
        raise DataError(f"workers must be >= 1, got {workers}")
    options = {
        "dpi": dpi,
        "figsize": figsize,
    }
    pairs = []  # (worker source, forecast, issue index, lead indices, truth subset)
    for item in items:
        source, fc = _load(item)
        prep = prepare(fc)
        found = map_layers(prep, map_data, download=download_map_data)  # once, for the workers
        lead_idx = select_leads(prep.da.sizes[LEAD_TIME], leads)
        aligned = align_truth(truth, prep) if truth is not None else None
        for i in range(fc.sizes[ISSUE_TIME]):
            obs = _truth_for_issue(aligned, fc, i) if aligned is not None else None
            if source is None:  # in-memory: send this issue time only
                pairs.append(
                    (fc.isel({ISSUE_TIME: [i]}).load(), 0, lead_idx, obs, prep.method, found)
                )
            else:
                pairs.append((source, i, lead_idx, obs, prep.method, found))
    chunks = plan_tasks([len(p[2]) for p in pairs], workers)
    tasks = []
    for (source, issue, lead_idx, obs, method, found), sizes in zip(pairs, chunks):
        start = 0
        for size in sizes:
            opts = dict(options, method=method, map_data=found)
            tasks.append(
                {
                    "source": source,
                    "issue": issue,
                    "leads": lead_idx[start : start + size],
                    "truth": obs,
                    "outdir": str(outdir),
                    "options": opts,
                }
            )
            start += size
    if workers == 1 or len(tasks) <= 1:
        results = [_run(t) for t in tasks]
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
            results = list(pool.map(_run, tasks))
    return [Path(p) for paths in results for p in paths]
