"""Time and peak memory of one nowcast (12 leads) per method and grid size (run on demand).

    python benchmarks/bench_predict.py [--grids bom,mch,fmi,opera] [--methods ...]
                                       [--model radar-5min[,...]] [--repeat 3] [--warmup 1]
    python benchmarks/bench_predict.py --grids mch,opera \
        --methods extrapolation,convlstm:auto,convlstm:none --model radar-5min-deterministic
    python benchmarks/bench_predict.py --grids mch --methods none --batch 8 --batch-workers 1,2

Grids (real archives from ../shared/data/radar): BOM 512 x 512 (10 min), MeteoSwiss
640 x 710, FMI 1226 x 760 (5 min), OPERA 2200 x 1900 (15 min, raw: clutter included).
Methods: persistence, extrapolation, sprog and the trained model (``convlstm``, tiled as
``tile=auto``; ``convlstm:none`` untiled, ``convlstm:N`` in tiles of N pixels, "tiles" says
how many a network pass used: :mod:`nowcast.methods.tiling`; ``convlstm:auto:channels_last``
with the recurrent layers in that working layout instead of the backend's default). Each
(grid, method) runs in its own process, so the peak RSS is that method's alone; one
untimed run first (``--warmup``; the model is loaded before the timed runs in any case),
then the median of ``--repeat`` timed ``forecast_many`` calls at one issue time. Several
``--model`` (comma-separated): each ``convlstm`` method once per model, the other methods
once. Also checks that every forecast is finite
wherever extrapolation is (no NaN/inf from clutter). Prints a Markdown table with the ratio
of each method's time to extrapolation's on the same grid.

``--batch N``: also N issue times of the first grid (its issue time and the N - 1 after
it) through ``nowcast batch`` (:func:`pipelines.runner.run_batch`: a ``LocalCluster`` of 1,
then 2 worker processes of one thread, forecast + write, no maps) with the (first) trained
model: issue times per minute from the first submit to the last result (every worker
warmed first: imports, the archive, the model and one untimed forecast of the first issue
time), each worker's peak RSS and torch's threads there.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from harness import RADAR_GRIDS as GRIDS
from harness import (
    WorkerFailed,
    command,
    machine,
    parser,
    range_text,
    run_fresh,
    table,
    time_calls,
)


def one(grid: str, method: str, model: str, repeat: int, warmup: int = 1) -> dict:
    """Time ``method`` on ``grid`` (run in its own process by :func:`harness.run_fresh`)."""
    import numpy as np

    from nowcast.archive import open_archive
    from nowcast.methods import ConvLSTMForecaster, forecast_many, get_method

    path, issue = GRIDS[grid]
    archive = open_archive(path)
    name, _, rest = method.partition(":")
    tile, _, layout = rest.partition(":")
    if name == "convlstm":
        fc = ConvLSTMForecaster(model, tile=tile or "auto", layout=layout or None)
    else:
        fc = get_method(name)
    if issue is None:  # the middle of the event
        issue = str(archive.time.values[len(archive.time) // 2])
    out = {}

    def run():
        out["fc"] = forecast_many(fc, archive, [issue], 12)

    if name == "convlstm":
        fc.model  # noqa: B018  (loaded before any timed run, whatever --warmup says)
    times = time_calls(run, repeat, warmup=warmup)  # untimed first: imports, warm-up
    values = out["fc"].values
    return {
        "grid": f"{archive.sizes['y']} x {archive.sizes['x']}",
        "seconds": statistics.median(times),
        "times": times,
        "inf": int(np.isinf(values).sum()),
        "finite": float(np.isfinite(values).mean()),
        "max": float(np.nanmax(values)) if np.isfinite(values).any() else None,
        "tiles": getattr(fc, "tiles_used", None),
    }


def _warm(task, issue: str) -> None:
    """On every batch worker, before the timed issue times: the imports, the task's own
    cached archive and forecaster (the same cache keys as :func:`pipelines.tasks.
    run_issue_time`), the model and one untimed forecast at ``issue`` (torch's kernels)."""
    from nowcast.methods import forecast_many
    from pipelines.tasks import cached_archive, cached_forecaster

    archive, _ = cached_archive(task.sources, task.stamps, task.variable, task.kind)
    fc = cached_forecaster("convlstm", task.model, task.tile)
    forecast_many(fc, archive, [issue], task.n_leads)


def _worker_state() -> dict:
    """A batch worker's peak RSS (MB) and torch's thread count."""
    import resource

    import torch

    return {
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "threads": torch.get_num_threads(),
    }


def batch(grid: str, model: str, n: int, workers: int, tmp: str) -> dict:
    """``n`` issue times of ``grid`` through the batch pipeline on ``workers`` processes."""
    import pandas as pd

    from nowcast.archive import open_archive
    from nowcast.config import BatchConfig, BatchRenderConfig
    from pipelines.catalog import build_catalog
    from pipelines.runner import _max_t_in, batch_client, plan, run_batch

    path, issue = GRIDS[grid]
    times = open_archive(path).time.values
    first = pd.Timestamp(issue) if issue else pd.Timestamp(times[len(times) // 2])
    step = pd.Timestamp(times[1]) - pd.Timestamp(times[0])
    cfg = BatchConfig(
        inputs=(str(path),),
        methods=("convlstm",),
        model=model,
        start=str(first),  # the grid's issue time and the n - 1 after it
        end=str(first + (n - 1) * step),
        output=str(Path(tmp) / f"batch-{workers}"),
        render=BatchRenderConfig(enabled=False),
        workers=workers,
    ).validate()
    catalog = build_catalog(cfg.inputs, variable=cfg.variable, kind=cfg.kind)
    _, tasks, _, _ = plan(cfg, catalog, _max_t_in(cfg, catalog))
    if len(tasks) != n:
        raise RuntimeError(f"{len(tasks)} issue times to run, not {n}")
    with batch_client(workers=workers) as client:
        client.run(_warm, tasks[0], str(tasks[0].issue_time))  # untimed: the first one
        summary = run_batch(cfg, client=client, progress=False)
        state = sorted(client.run(_worker_state).values(), key=lambda s: s["rss_mb"])
    if summary.failed:
        raise RuntimeError(f"failed: {next(iter(summary.failed.values()))}")
    done = len(summary.done)
    return {
        "workers": summary.workers,
        "issue_times": done,
        "seconds": summary.task_seconds,
        "per_minute": 60.0 * done / summary.task_seconds,
        "task_seconds": summary.busy_seconds / done,
        "worker_rss_mb": [s["rss_mb"] for s in state],
        "torch_threads": sorted({s["threads"] for s in state}),
    }


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    ap = parser(__doc__, full=True)
    ap.add_argument("--grids", default="bom,mch,fmi,opera")
    ap.add_argument("--methods", default="persistence,extrapolation,sprog,convlstm")
    ap.add_argument("--model", default="radar-5min")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs before the timed ones")
    ap.add_argument("--batch", type=int, default=0, help="issue times through batch (0: none)")
    ap.add_argument("--batch-workers", default="1,2")
    args = ap.parse_args()

    from nowcast.backend import device_description

    print(f"machine: {machine()}; {device_description()}", flush=True)
    print(f"command: {command(__file__)}\n", flush=True)
    models = args.model.split(",")
    rows = []
    for grid in args.grids.split(","):
        for method in [m for m in args.methods.split(",") if m != "none"]:
            convlstm = method.partition(":")[0] == "convlstm"
            for model in models if convlstm else models[:1]:
                label = f"{method} ({model})" if convlstm and len(models) > 1 else method
                try:
                    r = run_fresh(one, grid, method, model, args.repeat, args.warmup)
                except WorkerFailed as exc:
                    print(f"{grid} {label}: failed: {exc.last_line()}", file=sys.stderr)
                    continue
                rows.append((grid, label, r | {"model": model, "method": method}))
                print(
                    f"{grid} {label}: {r['seconds']:.2f} s, {r['peak_rss_mb']:.0f} MB", flush=True
                )
    header = [
        "grid", "method", "tiles", "seconds (median)", "ratio to extrapolation",
        "ratio to untiled", "peak RSS (MB)", "finite", "inf",
    ]  # fmt: skip
    base = {g: r["seconds"] for g, m, r in rows if m == "extrapolation"}
    untiled = {(g, r["model"]): r["seconds"] for g, m, r in rows if r["method"] == "convlstm:none"}
    lines = []
    for grid, method, r in rows:
        convlstm, key = r["method"].partition(":")[0] == "convlstm", (grid, r["model"])
        lines.append(
            [
                f"{grid} {r['grid']}",
                method,
                r.get("tiles") or "-",
                f"{r['seconds']:.2f}" + range_text(r["times"], "{:.2f}"),
                f"{r['seconds'] / base[grid]:.2f}" if grid in base else "-",
                f"{r['seconds'] / untiled[key]:.2f}" if convlstm and key in untiled else "-",
                f"{r['peak_rss_mb']:.0f}",
                f"{r['finite']:.3f}",
                r["inf"],
            ]
        )
    if lines:
        print(f"load average at the end: {os.getloadavg()[0]:.1f}\n")
        print(table(header, lines, "llrrrrrrr"), flush=True)
    if args.batch:
        _batch_table(args)


def _batch_table(args) -> None:
    grid, models = args.grids.split(",")[0], args.model.split(",")
    rows = []
    # the workers unpickle this script's functions by reference: they import it from here
    paths = [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")]
    env = {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    with tempfile.TemporaryDirectory(prefix="bench-predict-batch-") as tmp:
        for n in (int(w) for w in args.batch_workers.split(",")):
            try:
                rows.append(run_fresh(batch, grid, models[0], args.batch, n, tmp, env=env))
            except WorkerFailed as exc:
                print(f"batch on {n} worker(s): failed: {exc.last_line()}", file=sys.stderr)
    header = ["workers", "issue times", "seconds", "issue times / min", "s per task",
              "peak RSS per worker (MB)", "torch threads"]  # fmt: skip
    lines = [
        [
            r["workers"],
            r["issue_times"],
            f"{r['seconds']:.1f}",
            f"{r['per_minute']:.2f}",
            f"{r['task_seconds']:.1f}",
            ", ".join(f"{v:.0f}" for v in r["worker_rss_mb"]),
            ", ".join(str(t) for t in r["torch_threads"]),
        ]
        for r in rows
    ]
    print(
        f"\nBatch: {args.batch} issue times of {grid}, convlstm ({models[0]}, tile auto); "
        f"load average at the end: {os.getloadavg()[0]:.1f}\n"
    )
    print(table(header, lines, "rrrrrlr"))


if __name__ == "__main__":
    main()
