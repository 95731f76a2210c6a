"""Backfill evaluation: forecast many issue times with every method, then verify them together.

The forecasts are made by the batch runner (one task per issue time, all methods in the
task, resumable); afterwards every issue time that is complete for all methods is read
back, the methods are verified on the same issue times against the archive with
:func:`nowcast.verify.verification` (the same pooled sums as ``nowcast evaluate``,
probabilistic scores and diagrams included when the files hold members, probabilities or
quantiles), and :func:`nowcast.verify.write_report` writes the report under
``{output}/report``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import xarray as xr

from nowcast.archive import open_archive
from nowcast.config import BatchConfig
from nowcast.conventions import method_name
from nowcast.verify import verification
from nowcast.verify.probinputs import concat_probabilistic, read_forecast_file
from nowcast.verify.report import write_report
from pipelines.outputs import forecast_path
from pipelines.runner import BatchSummary, finish, run_batch


def read_forecasts(
    output: str | Path, methods: Sequence[str], issue_times: Sequence[pd.Timestamp]
) -> dict:
    """``{method: (issue_time, lead_time, y, x)}`` from the batch's per-issue-time files (lazy)."""
    return read_forecast_parts(output, methods, issue_times)[0]


def read_forecast_parts(
    output: str | Path, methods: Sequence[str], issue_times: Sequence[pd.Timestamp]
) -> tuple[dict, dict]:
    """:func:`read_forecasts` and ``{method: ProbabilisticForecast}`` for the methods whose
    files hold members, probabilities or quantiles (lazy)."""
    out, prob = {}, {}
    for m in methods:
        read = [read_forecast_file(forecast_path(output, m, t)) for t in issue_times]
        out[m] = xr.concat(
            [fc.chunk({"issue_time": 1}) for fc, _ in read],
            dim="issue_time",
            coords="minimal",
            compat="override",
            join="exact",
        )
        if any(parts for _, parts in read):
            prob[m] = concat_probabilistic([parts for _, parts in read])
    return out, prob


def evaluate_outputs(
    cfg: BatchConfig, summary: BatchSummary, *, echo: Callable[[str], None] | None = None
) -> list[Path]:
    """Verify every complete issue time of a finished batch; the report's paths."""
    times = sorted(set(summary.done) | set(summary.skipped))
    if not times:
        if echo:
            echo("no complete issue time to verify; no report written")
        return []
    forecasts, prob = read_forecast_parts(cfg.output, cfg.methods, times)
    # the report names a trained model by its name (radar-5min), as `nowcast evaluate` does
    names = {m: method_name(fc) for m, fc in forecasts.items()}
    if len(set(names.values())) == len(names):
        forecasts = {names[m]: fc for m, fc in forecasts.items()}
        prob = {names[m]: parts for m, parts in prob.items()}
    truth = open_archive(list(summary.sources), variable=cfg.variable, kind=cfg.kind)
    result = verification(
        forecasts,
        truth,
        thresholds=cfg.thresholds,
        scales=tuple(cfg.scales),
        probabilistic=prob,
    )
    summary.report_issue_times = len(times)
    paths = write_report(
        result.scores,
        Path(cfg.output) / "report",
        plots=cfg.report_plots,
        diagrams=result.diagrams,
    )
    return [Path(p) for p in paths]


def run_backfill(
    cfg: BatchConfig, *, echo: Callable[[str], None] | None = None, **options
) -> BatchSummary:
    """Forecast every issue time with every method (resumable), then verify them together."""
    if cfg.mode != "backfill":
        cfg = dataclasses.replace(cfg, mode="backfill")
    summary = run_batch(cfg, echo=echo, **options)
    if echo:
        echo(
            f"verifying {len(summary.done) + len(summary.skipped)} issue times x "
            f"{len(cfg.methods)} methods"
        )
    summary.report = evaluate_outputs(cfg, summary, echo=echo)
    return finish(summary)
