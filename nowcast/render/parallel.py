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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import ISSUE_TIME, LEAD_TIME, TIME, VALID_TIME, distinct_names
from nowcast.errors import DataError
from nowcast.interrupts import children_ignore_interrupts
from nowcast.products import read_forecast
from nowcast.render.animate import gif_name, write_gif
from nowcast.render.maps import (
    Prepared,
    align_truth,
    prepare,
    render_forecast,
    select_leads,
    with_layers,
)
from nowcast.render.options import GIF_DPI, RenderOptions

__all__ = ["render_many", "render_maps", "render_jobs", "plan_maps", "plan_tasks", "MapJob"]


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
        options=task["options"],
        method=task["method"],
        issue_indices=[task["issue"]],
    )
    return [str(p) for p in paths]


@dataclass(frozen=True)
class MapJob:
    """One forecast checked and ready to draw (nothing written, no pixel read).

    ``source``: the file the workers read it from (``None``: the data is sent to them);
    ``leads``: 0-based lead indices; ``truth``: the observations on its grid (or ``None``);
    ``options``: with ``map_data`` the layers found for its map.
    """

    source: str | None
    forecast: xr.DataArray
    prep: Prepared
    leads: tuple[int, ...]
    truth: xr.DataArray | None
    options: RenderOptions


Item = str | os.PathLike | xr.DataArray | tuple[str | os.PathLike, xr.DataArray]


def _is_pair(item) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], xr.DataArray)


def _read(item: Item) -> tuple[str | None, xr.DataArray]:
    """``(the file a worker reads, the forecast)`` of a path, a DataArray or a pair of both
    (a file read already)."""
    if isinstance(item, xr.DataArray):
        return None, item
    if _is_pair(item):
        path, forecast = item
        return str(Path(path)), forecast
    return str(Path(item)), read_forecast(item)


def plan_maps(
    items: Sequence[Item] | Item,
    *,
    truth: xr.DataArray | None = None,
    options: RenderOptions | None = None,
    warn: bool = True,
) -> list[MapJob]:
    """Read and check every forecast before anything is written: dims, grid and grid mapping
    of all, then the leads and ``truth``'s grid of each; the map layers are found once per
    grid. ``items``: forecast files, DataArrays, or ``(file, DataArray)`` pairs of files read
    already (each file is read once). ``warn=False``: no warning when no map data is found
    (for a caller that prints :meth:`~nowcast.render.mapdata.MapData.describe` instead).
    """
    if isinstance(items, (str, os.PathLike, xr.DataArray)) or _is_pair(items):
        items = [items]
    options = options or RenderOptions()
    read = [_read(item) for item in items]
    preps = [prepare(fc) for _, fc in read]  # dims, grid, grid mapping: before any write
    # forecasts of one name (a model's median and its sharp field) get distinct map names
    names = distinct_names([p.method for p in preps], [source for source, _ in read])
    preps = [replace(p, method=name) for p, name in zip(preps, names)]
    checked = []
    for (source, fc), prep in zip(read, preps):
        leads = select_leads(prep.da.sizes[LEAD_TIME], options.leads)
        aligned = align_truth(truth, prep) if truth is not None else None
        checked.append((source, fc, prep, tuple(leads), aligned))
    jobs: list[MapJob] = []
    for source, fc, prep, leads, aligned in checked:
        same = next(
            (j for j in jobs if j.prep.extent == prep.extent and j.prep.crs == prep.crs), None
        )
        found = same.options if same is not None else with_layers(prep, options, warn=warn)
        jobs.append(MapJob(source, fc, prep, leads, aligned, found))
    return jobs


def _tasks(jobs: Sequence[MapJob], outdir, workers: int) -> list[dict]:
    """The worker tasks of ``jobs``: (forecast, issue time, a chunk of leads) each."""
    pairs = []  # (worker source, issue index, lead indices, truth subset, job)
    for job in jobs:
        fc = job.forecast
        for i in range(fc.sizes[ISSUE_TIME]):
            obs = _truth_for_issue(job.truth, fc, i) if job.truth is not None else None
            if job.source is None:  # in-memory: send this issue time only
                pairs.append((fc.isel({ISSUE_TIME: [i]}).load(), 0, job.leads, obs, job))
            else:
                pairs.append((job.source, i, job.leads, obs, job))
    chunks = plan_tasks([len(p[2]) for p in pairs], workers)
    tasks = []
    for (source, issue, lead_idx, obs, job), sizes in zip(pairs, chunks):
        start = 0
        for size in sizes:
            leads = tuple(i + 1 for i in lead_idx[start : start + size])
            tasks.append(
                {
                    "source": source,
                    "issue": issue,
                    "truth": obs,
                    "outdir": str(outdir),
                    "method": job.prep.method,
                    "options": job.options.replace(leads=leads),
                }
            )
            start += size
    return tasks


def render_jobs(
    jobs: Sequence[MapJob], *, outdir: str | os.PathLike, workers: int = 1
) -> list[Path]:
    """Render checked forecasts with ``workers`` processes; returns the paths written."""
    if workers < 1:
        raise DataError(f"workers must be >= 1, got {workers}")
    tasks = _tasks(jobs, outdir, workers)
    if workers == 1 or len(tasks) <= 1:
        results = [_run(t) for t in tasks]
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
            with children_ignore_interrupts():  # the workers start here
                futures = [pool.submit(_run, t) for t in tasks]
            try:
                results = [f.result() for f in futures]
            except BaseException:  # Ctrl-C (or a failed task): no more tasks start
                for f in futures:
                    f.cancel()
                raise
    return [Path(p) for paths in results for p in paths]


def render_many(
    items: Sequence[Item] | Item,
    *,
    outdir: str | os.PathLike,
    workers: int = 1,
    truth: xr.DataArray | None = None,
    options: RenderOptions | None = None,
) -> list[Path]:
    """Render forecast files or DataArrays with ``workers`` processes; returns paths written.

    Same maps and options as :func:`~nowcast.render.maps.render_forecast`; ``truth`` (an
    archive DataArray) is used for every forecast that shares its grid. ``workers=1`` runs
    in this process.
    """
    if workers < 1:
        raise DataError(f"workers must be >= 1, got {workers}")
    jobs = plan_maps(items, truth=truth, options=options)
    return render_jobs(jobs, outdir=outdir, workers=workers)


def render_maps(
    jobs: Sequence[MapJob], *, outdir: str | os.PathLike, workers: int = 1, gif: bool = False
) -> list[Path]:
    """``nowcast render``'s maps: per forecast its PNGs (``workers`` processes), then with
    ``gif`` one animation per issue time (at most :data:`~nowcast.render.options.GIF_DPI`)."""
    paths: list[Path] = []
    for job in jobs:
        paths += render_jobs([job], outdir=outdir, workers=workers)
        if not gif:
            continue
        options = job.options.replace(dpi=min(job.options.dpi, GIF_DPI))
        for i in range(job.prep.da.sizes[ISSUE_TIME]):
            name = gif_name(job.prep, job.prep.da[ISSUE_TIME].values[i])
            paths.append(
                write_gif(
                    job.prep,
                    i,
                    job.leads,
                    path=Path(outdir) / name,
                    truth=job.truth,
                    options=options,
                )
            )
    return paths
