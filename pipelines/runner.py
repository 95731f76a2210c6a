"""Run a batch config on ``dask.distributed``: one task per issue time.

:func:`run_batch` scans the archive on the client, skips issue times whose outputs are
already complete (see :mod:`pipelines.outputs`), submits one
:func:`~pipelines.tasks.run_issue_time` task per remaining issue time to a
``LocalCluster`` (processes, one thread each, no dashboard, loopback only) or to an
existing scheduler, shows a progress bar while they finish, and returns a
:class:`BatchSummary` (done, skipped, failed with one-line errors, wall time). A worker
that dies mid-task is replaced by its nanny and the scheduler reruns its tasks
elsewhere; outputs are atomic, so a rerun task overwrites cleanly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pandas as pd

from nowcast.archive import open_archive, qc
from nowcast.config import BatchConfig
from nowcast.errors import ConfigError, NowcastError, one_line
from nowcast.fileio import check_output
from nowcast.interrupts import children_ignore_interrupts
from nowcast.methods import make_forecaster, probabilistic_methods
from nowcast.methods.regions import check_region
from nowcast.region import parse_region
from nowcast.render.options import RenderOptions
from pipelines.catalog import Catalog, build_catalog, issue_times
from pipelines.outputs import is_complete, remove_temporaries_of, write_json
from pipelines.page import BatchPage
from pipelines.tasks import IssueResult, IssueTask, RenderSpec, run_issue_time

#: Failed issue times listed one per line in the summary (the rest are in batch-summary.json).
MAX_FAILED_LINES = 20


@dataclass
class BatchSummary:
    """What a batch did. ``exit_code`` is 1 when any issue time failed."""

    mode: str
    output: Path
    issue_times: list[pd.Timestamp]
    done: list[pd.Timestamp] = field(default_factory=list)
    skipped: list[pd.Timestamp] = field(default_factory=list)
    failed: dict[pd.Timestamp, str] = field(default_factory=dict)
    seconds: float = 0.0
    task_seconds: float = 0.0  # wall time from the first submit to the last result
    busy_seconds: float = 0.0  # sum of the tasks' own run times (on the workers)
    workers: int = 0
    report: list[Path] = field(default_factory=list)
    report_issue_times: int = 0
    sources: tuple[str, ...] = ()  # the readable archive files
    page: BatchPage | None = field(default=None, repr=False, compare=False)  # index.html

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def lines(self) -> list[str]:
        """The closing summary printed by ``nowcast batch``."""
        failed = sorted(self.failed.items())
        out = [f"FAILED {t:%Y-%m-%d %H:%M}: {msg}" for t, msg in failed[:MAX_FAILED_LINES]]
        if len(failed) > MAX_FAILED_LINES:
            out.append(
                f"... and {len(failed) - MAX_FAILED_LINES} more failed issue times (all in "
                f"{self.output / 'batch-summary.json'})"
            )
        rate = (
            f", {len(self.done) / self.task_seconds:.2f} issue times/s"
            if self.done and self.task_seconds > 0
            else ""
        )
        out.append(
            f"{self.mode}: {len(self.issue_times)} issue times: {len(self.done)} done, "
            f"{len(self.skipped)} skipped (already complete), {len(self.failed)} failed "
            f"in {self.seconds:.1f} s{rate}"
        )
        if self.report:
            out.append(f"report ({self.report_issue_times} issue times): {self.output / 'report'}")
        out.append(f"outputs: {self.output}")
        return out

    def to_dict(self) -> dict[str, Any]:
        iso = [t.isoformat() for t in self.issue_times]
        return {
            "mode": self.mode,
            "output": str(self.output),
            "issue_times": iso,
            "done": [t.isoformat() for t in self.done],
            "skipped": [t.isoformat() for t in self.skipped],
            "failed": {t.isoformat(): msg for t, msg in sorted(self.failed.items())},
            "seconds": round(self.seconds, 3),
            "task_seconds": round(self.task_seconds, 3),
            "busy_seconds": round(self.busy_seconds, 3),
            "workers": self.workers,
            "report": [str(p) for p in self.report],
        }


def signature(cfg: BatchConfig) -> dict[str, Any]:
    """The settings an issue time's outputs depend on (stored in its manifest)."""
    r = cfg.render
    out = {
        "methods": list(cfg.methods),
        "model": cfg.model,
        "n_leads": cfg.n_leads,
        "variable": cfg.variable,
        "kind": cfg.kind,
        "render": {"leads": list(r.leads) if r.leads else None, "truth": r.truth}
        if r.enabled
        else None,
    }
    products = cfg.products()
    if products is not None:  # only then: earlier batches' manifests stay complete
        out["products"] = products.to_dict()
    if cfg.region is not None:  # likewise (the tiling gives the same forecast: not here)
        out["region"] = cfg.region
    return out


@contextlib.contextmanager
def batch_client(*, scheduler: str | None = None, workers: int = 2) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler`` when given, else to a new ``LocalCluster``
    of ``workers`` processes with one thread each (loopback only, no dashboard)."""
    # dask.distributed costs start-up time: imported when a batch runs
    from distributed import Client, LocalCluster

    with _quiet("distributed", logging.CRITICAL):  # lost workers are retried and reported by us
        if scheduler:
            try:
                client = Client(scheduler, timeout="20s", set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise NowcastError(
                    f"cannot connect to the dask scheduler at {scheduler} ({one_line(exc)})"
                ) from None
            with client:
                yield client
            return
        with children_ignore_interrupts():  # Ctrl-C is the client's: it stops the workers itself
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.CRITICAL,
            )
        with cluster, Client(cluster, set_as_default=False) as client:
            yield client


@contextlib.contextmanager
def _quiet(name: str, level: int) -> Iterator[None]:
    """Raise logger ``name``'s level for a while (the cluster's INFO chatter), then restore it."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(max(level, old))
    try:
        yield
    finally:
        logger.setLevel(old)


def _max_t_in(cfg: BatchConfig, catalog: Catalog | None = None) -> int:
    """The most input frames a method of ``cfg`` needs; with ``catalog``, also checks that
    probabilistic products have a probabilistic method and thresholds the data can take."""
    forecasters = [
        make_forecaster(
            model=cfg.model if m == "convlstm" else None,
            method=m,
            tile=cfg.tile if m == "convlstm" else None,
        )
        for m in cfg.methods
    ]
    for forecaster in forecasters:  # a tile smaller than the network's halo
        check = getattr(forecaster, "check_tile", None)
        if check is not None:
            check()
    if cfg.region is not None and catalog is not None:  # the region must meet the grid
        first = open_archive(list(catalog.sources[:1]), variable=cfg.variable, kind=cfg.kind)
        check_region(first, parse_region(cfg.region))
    products = cfg.products()
    if products is not None and catalog is not None:
        if not any(getattr(f, "probabilistic", False) for f in forecasters):
            raise ConfigError(
                "members, seed, probabilities, quantiles and deterministic need a probabilistic "
                f"method in methods ({', '.join(probabilistic_methods())}); "
                f"{', '.join(cfg.methods)}: deterministic"
            )
        if products.probabilities:
            first = open_archive(list(catalog.sources[:1]), variable=cfg.variable, kind=cfg.kind)
            products.check_units(first.attrs.get("units"))
    return max(int(f.t_in) for f in forecasters)


def _absolute(path: str | None) -> str | None:
    """``path`` made absolute when it exists here (a shipped model's name stays as it is)."""
    return os.path.abspath(path) if path is not None and os.path.exists(path) else path


def plan(
    cfg: BatchConfig, catalog: Catalog, t_in: int
) -> tuple[list[pd.Timestamp], list[IssueTask], list[pd.Timestamp], dict]:
    """(all issue times, tasks to run, issue times already complete, failures known up front)."""
    times = list(issue_times(catalog, start=cfg.start, end=cfg.end, every=cfg.every, t_in=t_in))
    sig = signature(cfg)
    r = cfg.render
    # absolute paths: a worker of a remote cluster need not share the client's working directory
    render = (
        RenderSpec(
            RenderOptions(
                leads=r.leads or None,
                map_data=_absolute(r.map_data),
                download_map_data=r.download_map_data,
            ),
            truth=r.truth,
        )
        if r.enabled
        else None
    )
    sources = tuple(os.path.abspath(p) for p in catalog.sources)
    output, model = os.path.abspath(cfg.output), _absolute(cfg.model)
    tasks, skipped, failed = [], [], {}
    for t in times:
        if is_complete(cfg.output, t, sig):
            skipped.append(t)
            continue
        needed = [t - k * catalog.step for k in range(t_in - 1, -1, -1)]
        error = catalog.missing_frame_error(t, needed)
        if error:
            failed[t] = error
            continue
        tasks.append(
            IssueTask(
                issue_time=t,
                sources=sources,
                stamps=catalog.stamps,
                variable=cfg.variable,
                kind=cfg.kind,
                methods=tuple(cfg.methods),
                model=model,
                n_leads=cfg.n_leads,
                output=output,
                signature=sig,
                render=render,
                products=cfg.products(),
                tile=cfg.tile if "convlstm" in cfg.methods else None,
                region=parse_region(cfg.region) if cfg.region is not None else None,
            )
        )
    return times, tasks, skipped, failed


def _progress(n: int, enabled: bool):
    if not enabled or not sys.stderr.isatty():  # piped: no bar (click would print its label)
        return contextlib.nullcontext(None)
    return click.progressbar(
        length=n, label="issue times", file=sys.stderr, show_pos=True, show_eta=True
    )


def run_tasks(
    client,
    tasks: list[IssueTask],
    *,
    progress: bool = True,
    on_result: Callable[[IssueResult], None] | None = None,
) -> tuple[dict, float]:
    """Submit one task per issue time; ``({issue: IssueResult}, seconds)`` as they finish."""
    # dask.distributed costs start-up time: imported when a batch runs
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    start = time.perf_counter()
    futures = {
        client.submit(
            run_issue_time,
            task,
            key=f"nowcast-batch-{run}-{task.issue_time:%Y%m%dT%H%M%S}",
            pure=False,
        ): task
        for task in tasks
    }
    results: dict[pd.Timestamp, IssueResult] = {}
    try:
        with _progress(len(tasks), progress) as bar:
            for fut in as_completed(futures, loop=client.loop):
                task = futures[fut]
                try:
                    res = fut.result()
                except Exception as exc:  # a task lost with its worker too often, or cancelled
                    res = IssueResult(
                        task.issue_time,
                        "failed",
                        error=f"task failed on the cluster: {one_line(exc)}",
                    )
                results[task.issue_time] = res
                if on_result is not None:
                    on_result(res)
                if bar is not None:
                    bar.update(1)
    except BaseException:
        client.cancel(list(futures))
        raise
    return results, time.perf_counter() - start


def run_batch(
    cfg: BatchConfig,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    client=None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    page: dict | None = None,
) -> BatchSummary:
    """Forecast (and render) every issue time of ``cfg`` on a dask cluster; see the module doc.

    ``client``: an existing ``distributed.Client`` to use (then ``scheduler`` and
    ``workers`` are ignored). The output folder's page (``index.html``, see
    :mod:`pipelines.page`) is rewritten as issue times complete; ``page``: what it says
    besides the config (the command line). Backfill configs are verified afterwards by
    :func:`pipelines.backfill.run_backfill`, which calls this.
    """
    echo = echo or (lambda _m: None)
    t0 = time.perf_counter()
    output = Path(cfg.output)
    catalog = build_catalog(cfg.inputs, variable=cfg.variable, kind=cfg.kind)
    # the batch's folder never goes into (or over) an input's folder
    check_output(output, [*cfg.inputs, *catalog.sources], replaces=False, option="output")
    for bad in catalog.bad_files:
        echo(f"warning: unreadable input file, its issue times will fail: {bad.error}")
    times, tasks, skipped, failed = plan(cfg, catalog, _max_t_in(cfg, catalog))
    summary = BatchSummary(
        cfg.mode, output, times, skipped=skipped, failed=dict(failed), sources=catalog.sources
    )
    echo(
        f"{cfg.mode}: {len(times)} issue times {times[0]:%Y-%m-%d %H:%M} .. "
        f"{times[-1]:%Y-%m-%d %H:%M}; "
        f"{len(skipped)} already complete, {len(tasks)} to run"
    )
    summary.page = BatchPage(cfg, catalog.sources, page)
    summary.page.running(summary, force=True)
    finished: dict = {}

    def on_result(res: IssueResult) -> None:
        finished[res.issue_time] = res
        summary.page.running(summary, finished)

    if tasks:
        try:
            if client is not None:
                results, summary.task_seconds = run_tasks(
                    client, tasks, progress=progress, on_result=on_result
                )
                summary.workers = len(client.scheduler_info(n_workers=-1)["workers"])
            else:
                n = workers or cfg.workers
                with batch_client(scheduler=scheduler, workers=n) as own:
                    summary.workers = len(own.scheduler_info(n_workers=-1)["workers"])
                    results, summary.task_seconds = run_tasks(
                        own, tasks, progress=progress, on_result=on_result
                    )
        except BaseException:
            # interrupted (Ctrl-C): the tasks are cancelled and a local cluster's workers are
            # stopped by now; remove what their unfinished issue times left half-written
            for task in tasks:
                remove_temporaries_of(task.output, task.issue_time, task.methods)
            raise
        summary.busy_seconds = sum(r.seconds for r in results.values())
        masked = {key: n for r in results.values() for key, n in r.masked.items()}
        line = qc.report(sum(masked.values()))
        if line:  # implausible input values (radar clutter), each frame counted once
            echo(f"warning: {line}")
        for t in sorted(results):
            res = results[t]
            if res.status == "done":
                summary.done.append(t)
            else:
                summary.failed[t] = res.error or "failed"
    summary.seconds = time.perf_counter() - t0
    return summary


def finish(summary: BatchSummary) -> BatchSummary:
    """Write ``batch-summary.json`` into the output folder, then its page (atomically)."""
    write_json(summary.to_dict(), summary.output / "batch-summary.json")
    if summary.page is not None:
        summary.page.finished(summary)
    return summary
