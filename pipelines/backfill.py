"""Backfill evaluation: forecast many issue times with every method, then verify them together.

The forecasts are made by the batch runner (one task per issue time, all methods in the
task, resumable); afterwards every issue time that is complete for all methods is read
back, the methods are verified on the same issue times against the archive with
:func:`nowcast.verify.evaluate`, and :func:`nowcast.verify.write_report` writes the
report under ``{output}/report``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import xarray as xr

from nowcast.archive import open_archive
from nowcast.config import BatchConfig
from nowcast.products import read_forecast
from nowcast.verify import evaluate
from nowcast.verify.report import write_report
from pipelines.outputs import forecast_path
from pipelines.runner import BatchSummary, finish, run_batch


def read_forecasts(
    output: str | Path, methods: Sequence[str], issue_times: Sequence[pd.Timestamp]
) -> dict:
    """``{method: (issue_time, lead_time, y, x)}`` from the batch's per-issue-time files (lazy)."""
    out = {}
    for m in methods:
        parts = [
            read_forecast(forecast_path(output, m, t)).chunk({"issue_time": 1}) for t in issue_times
        ]
        out[m] = xr.concat(
            parts, dim="issue_time", coords="minimal", compat="override", join="exact"
        )
    return out


def evaluate_outputs(
    cfg: BatchConfig, summary: BatchSummary, *, echo: Callable[[str], None] | None = None
) -> list[Path]:
    """Verify every complete issue time of a finished batch; the report's paths."""
    times = sorted(set(summary.done) | set(summary.skipped))
    if not times:
        if echo:
            echo("no complete issue time to verify; no report written")
        return []
    forecasts = read_forecasts(cfg.output, cfg.methods, times)
    truth = open_archive(list(summary.sources), variable=cfg.variable, kind=cfg.kind)
    scores = evaluate(forecasts, truth, thresholds=cfg.thresholds, scales=tuple(cfg.scales))
    summary.report_issue_times = len(times)
    return [
        Path(p) for p in write_report(scores, Path(cfg.output) / "report", plots=cfg.report_plots)
    ]


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
