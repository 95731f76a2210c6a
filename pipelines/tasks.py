"""One batch task = one issue time, run on a worker: forecast, write, render, manifest.

:func:`run_issue_time` takes a small picklable :class:`IssueTask` and returns an
:class:`IssueResult`; it never raises for a bad issue time (the error comes back as one
line), so one failure does not stop the batch. Each worker process keeps a few opened
archives (keyed by the files and their ``(mtime, size)`` stamps) and forecasters (keyed
by method and model) in small LRU caches, so a worker scans the archive's metadata and
loads a model once, then reads only the frames each issue time needs.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import pandas as pd

from nowcast.archive import open_archive, qc
from nowcast.conventions import X, Y
from nowcast.distribution import ProductRequest
from nowcast.errors import DataError, NowcastError, one_line
from nowcast.fileio import atomic_output
from nowcast.methods import forecast_and_write, make_forecaster
from nowcast.region import Region
from nowcast.render import RenderOptions, render_forecast
from pipelines.catalog import build_catalog
from pipelines.outputs import forecast_path, manifest_path, maps_dir, write_manifest


@dataclass(frozen=True)
class RenderSpec:
    """Maps per issue time: how they are drawn, and whether the observations are beside."""

    options: RenderOptions = RenderOptions()
    truth: bool = True


@dataclass(frozen=True)
class IssueTask:
    """Everything a worker needs for one issue time (small, picklable)."""

    issue_time: pd.Timestamp
    sources: tuple[str, ...]
    stamps: tuple[tuple[int, int], ...]
    variable: str | None
    kind: str
    methods: tuple[str, ...]
    model: str | None
    n_leads: int
    output: str
    signature: dict[str, Any]
    render: RenderSpec | None = None
    products: ProductRequest | None = None  # for the probabilistic methods
    tile: int | str | None = None  # the trained model's tiling (None: auto)
    region: Region | None = None  # forecast only this part of the grid


@dataclass
class IssueResult:
    issue_time: pd.Timestamp
    status: str  # "done" | "failed"
    error: str | None = None
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    pid: int = 0
    # implausible input values masked (nowcast.archive.qc) by frame and region
    masked: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=4)
def cached_archive(sources: tuple[str, ...], stamps: tuple, variable: str | None, kind: str):
    """This process's lazily opened archive for ``sources`` (``stamps`` invalidate it).

    Returns ``(archive, catalog)``; ``catalog`` is None unless a file became unreadable
    after the client's scan: then the archive holds the readable files only and the
    catalog names the unreadable ones (see :func:`pipelines.catalog.build_catalog`).
    """
    try:
        return open_archive(list(sources), variable=variable, kind=kind), None
    except DataError:
        if len(sources) == 1:
            raise
    catalog = build_catalog(sources, variable=variable, kind=kind)
    return open_archive(list(catalog.sources), variable=variable, kind=kind), catalog


@functools.lru_cache(maxsize=4)
def cached_forecaster(method: str, model: str | None, tile=None):
    """This process's forecaster (a ConvLSTM loads its network once per worker)."""
    return make_forecaster(model=model, method=method, tile=tile)


def _render(forecast, archive, *, outdir: Path, spec: RenderSpec, method: str | None) -> list[Path]:
    """Render into a temporary sibling folder, then put it in place of ``outdir``."""
    with atomic_output(outdir) as tmp:
        tmp.mkdir()
        made = render_forecast(
            forecast,
            outdir=tmp,
            truth=archive if spec.truth else None,
            options=spec.options,
            method=method,
        )
    return [outdir / Path(p).relative_to(tmp) for p in made]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A worker's warning as one ``Warning: ...`` line on stderr, as the CLI prints its own
    (not Python's two lines with the source file and line)."""
    text = str(message).splitlines()[0] if str(message) else category.__name__
    print(f"Warning: {text}", file=file or sys.stderr, flush=True)


def run_issue_time(task: IssueTask) -> IssueResult:
    """Forecast ``task.issue_time`` with every method, write, render, then the manifest."""
    warnings.showwarning = _show_warning  # in the worker process running the task
    start = time.perf_counter()
    issue = task.issue_time
    result = IssueResult(issue, "failed", pid=os.getpid())
    try:
        # an older manifest must not vouch for outputs this run is replacing
        manifest_path(task.output, issue).unlink(missing_ok=True)
        with dask.config.set(scheduler="synchronous"):  # read frames in this worker's thread
            archive, catalog = cached_archive(task.sources, task.stamps, task.variable, task.kind)
            forecasts: dict[str, Path] = {}
            maps: dict[str, list[Path]] = {}
            for name in task.methods:
                convlstm = name == "convlstm"
                forecaster = cached_forecaster(
                    name, task.model if convlstm else None, task.tile if convlstm else None
                )
                if catalog is not None:
                    needed = [issue - k * catalog.step for k in range(int(forecaster.t_in))]
                    error = catalog.missing_frame_error(issue, needed)
                    if error:
                        raise NowcastError(error)
                fc, forecasts[name] = forecast_and_write(
                    forecaster,
                    archive,
                    [issue],
                    task.n_leads,
                    forecast_path(task.output, name, issue),
                    request=task.products if getattr(forecaster, "probabilistic", False) else None,
                    region=task.region,
                )
                if task.render is not None:
                    maps[name] = _render(
                        fc,
                        archive if task.region is None else archive.sel({Y: fc[Y], X: fc[X]}),
                        outdir=maps_dir(task.output, name, issue),
                        spec=task.render,
                        method=None,  # the forecast's display name (radar-5min, sprog)
                    )
        seconds = time.perf_counter() - start
        write_manifest(
            task.output,
            issue,
            signature=task.signature,
            forecasts=forecasts,
            maps=maps,
            extra={"seconds": round(seconds, 3), "pid": os.getpid()},
        )
        result.status = "done"
        result.outputs = [str(p) for p in forecasts.values()] + [
            str(p) for ps in maps.values() for p in ps
        ]
    except Exception as exc:  # one issue time's failure is reported, never raised
        result.error = one_line(exc)
    result.masked = qc.masked()
    result.seconds = time.perf_counter() - start
    return result
