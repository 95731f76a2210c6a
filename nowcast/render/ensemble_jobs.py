"""Render probabilistic maps (:mod:`nowcast.render.ensemble`) in worker processes, and their
animations over leads.

Tasks are (product, issue time, threshold, a chunk of leads), as for the deterministic maps
(:mod:`nowcast.render.parallel`): everything is checked in the calling process first; workers
(``spawn``) re-read a forecast file themselves, or get the one issue time of an in-memory
forecast, and the observations cut to that issue time's valid times.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import xarray as xr

from nowcast.conventions import ISSUE_TIME
from nowcast.errors import DataError
from nowcast.fileio import write_atomic
from nowcast.probabilistic import MEMBERS, PROBABILITY, read_probabilistic
from nowcast.products import read_forecast
from nowcast.render.animate import gif_bytes
from nowcast.render.ensemble import (
    ProductJob,
    member_frames,
    orient_part,
    plan_products,
    probability_frames,
    product_name,
    threshold_tag,
)
from nowcast.render.maps import prepare
from nowcast.render.options import GIF_DPI, RenderOptions
from nowcast.render.parallel import _truth_for_issue, plan_maps, plan_tasks

__all__ = ["render_products", "render_probabilistic"]


def _frames(prep, part, product, issue, key, leads, *, truth, options):
    if product == PROBABILITY:
        return probability_frames(prep, part, issue, key, leads, truth=truth, options=options)
    return member_frames(prep, part, issue, key, leads, truth=truth, options=options)


def _run(task: dict) -> list[str]:
    """Worker: draw one task's maps; returns the paths written."""
    source, product = task["source"], task["product"]
    if isinstance(source, str):
        main, part = read_forecast(source), read_probabilistic(source)[product]
    else:
        main, part = source
    prep = prepare(main, method=task["method"], attribution=task["attribution"])
    part = orient_part(part, prep, product, str(source if isinstance(source, str) else "forecast"))
    frames = _frames(prep, part, product, task["issue"], task["key"], task["leads"],
                     truth=task["truth"], options=task["options"])  # fmt: skip
    outdir = Path(task["outdir"])
    return [str(write_atomic(outdir / name, png)) for name, png, _ in frames]


def _tasks(pjobs: Sequence[ProductJob], outdir, workers: int) -> list[dict]:
    pairs = []  # (worker source, issue index, key, job)
    for pjob in pjobs:
        job = pjob.job
        keys = pjob.keys if pjob.product == PROBABILITY else [pjob.keys]
        for i in range(job.forecast.sizes[ISSUE_TIME]):
            obs = _truth_for_issue(job.truth, job.forecast, i) if job.truth is not None else None
            if job.source is None:  # in-memory: send this issue time only
                one = job.forecast.isel({ISSUE_TIME: [i]}).load()
                source, issue = (one, pjob.part.isel({ISSUE_TIME: [i]}).load()), 0
            else:
                source, issue = job.source, i
            pairs += [(source, issue, key, obs, pjob) for key in keys]
    chunks = plan_tasks([len(p[4].job.leads) for p in pairs], workers)
    tasks = []
    for (source, issue, key, obs, pjob), sizes in zip(pairs, chunks):
        start = 0
        for size in sizes:
            prep = pjob.job.prep
            tasks.append({"source": source, "product": pjob.product, "issue": issue, "key": key,
                          "leads": pjob.job.leads[start : start + size], "truth": obs,
                          "outdir": str(outdir), "method": prep.method,
                          "attribution": prep.attribution,
                          "options": pjob.job.options})  # fmt: skip
            start += size
    return tasks


def render_products(
    pjobs: Sequence[ProductJob],
    *,
    outdir: str | os.PathLike,
    workers: int = 1,
    gif: bool = False,
) -> list[Path]:
    """Draw checked probabilistic products with ``workers`` processes (PNG per lead), then
    with ``gif`` one animation per issue time and threshold (members: per issue time) at
    most :data:`~nowcast.render.options.GIF_DPI`; returns the paths written."""
    if workers < 1:
        raise DataError(f"workers must be >= 1, got {workers}")
    tasks = _tasks(pjobs, outdir, workers)
    if workers == 1 or len(tasks) <= 1:
        results = [_run(t) for t in tasks]
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
            results = list(pool.map(_run, tasks))
    paths = [Path(p) for written in results for p in written]
    if gif:
        for pjob in pjobs:
            paths += _gifs(pjob, outdir)
    return paths


def _gifs(pjob: ProductJob, outdir) -> list[Path]:
    job, prep = pjob.job, pjob.job.prep
    options = job.options.replace(dpi=min(job.options.dpi, GIF_DPI))
    keys = pjob.keys if pjob.product == PROBABILITY else [pjob.keys]
    out = []
    for i in range(prep.da.sizes[ISSUE_TIME]):
        issue = prep.da[ISSUE_TIME].values[i]
        for key in keys:
            tag = threshold_tag(key) if pjob.product == PROBABILITY else MEMBERS
            frames = _frames(prep, pjob.part, pjob.product, i, key, job.leads,
                             truth=job.truth, options=options)  # fmt: skip
            data = gif_bytes(png for _, png, _ in frames)
            out.append(write_atomic(Path(outdir) / product_name(prep, issue, tag, None, ".gif"),
                                    data))  # fmt: skip
    return out


def render_probabilistic(
    forecast: str | os.PathLike | xr.DataArray,
    parts: Mapping[str, xr.DataArray] | None = None,
    *,
    outdir: str | os.PathLike,
    products: Sequence[str] | None = None,
    thresholds: Sequence[float] | None = None,
    truth: xr.DataArray | None = None,
    options: RenderOptions | None = None,
    workers: int = 1,
    gif: bool = False,
) -> list[Path]:
    """Probability maps and postage stamps of one forecast (a file, or the deterministic
    DataArray with ``parts`` = ``{"probability"|"members": DataArray}``; a file's parts are
    read from it when not given). ``products``, ``thresholds``: see
    :func:`~nowcast.render.ensemble.plan_products` (the deterministic maps are
    :func:`~nowcast.render.parallel.render_maps`' work). Returns the paths written."""
    if parts is None and not isinstance(forecast, xr.DataArray):
        parts = read_probabilistic(forecast)
    item = forecast if isinstance(forecast, xr.DataArray) else (forecast, read_forecast(forecast))
    jobs = plan_maps(item, truth=truth, options=options)
    pjobs = plan_products(jobs, [parts], products=products, thresholds=thresholds)
    return render_products(pjobs, outdir=outdir, workers=workers, gif=gif)
