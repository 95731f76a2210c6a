"""Batch throughput: issue times per second of the operational batch on 1 and 2 workers.

For each worker count a fresh ``LocalCluster`` (processes, one thread each, made by
``pipelines.runner.batch_client``) runs the whole pipeline (``pipelines.runner.run_batch``:
one task per issue time: read the frames it needs, forecast, write one NetCDF file,
optionally render maps) over every issue time of a shared real archive, into a fresh
output folder. Before timing, each worker's caches are warmed (imports, the opened
archive, the forecaster) with ``client.run``, so the rate is the steady state; cluster
start-up and warm-up are reported separately. "rate" = issue times / seconds from the
first submit to the last result; "ratio" = rate / rate with the first worker count; "s per
task" = the mean time a task ran on its worker (it grows when the workers compete for CPUs).

Run from the repository root::

    python benchmarks/bench_batch.py            # extrapolation, 12 leads, 1 and 2 workers
    python benchmarks/bench_batch.py --method persistence --render --workers 1 2 4
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from harness import SHARED, command, parser, table

DEFAULT_INPUT = SHARED / "radar" / "mch-2016-07-11.nc"


def _warm(sources, stamps, method, n_leads):
    """Run on every worker: import, open the archive and make the forecaster once."""
    from pipelines.tasks import cached_archive, cached_forecaster

    stamps = tuple(tuple(int(v) for v in s) for s in stamps)  # the task's cache key, exactly
    archive, _ = cached_archive(tuple(str(p) for p in sources), stamps, None, "precipitation")
    forecaster = cached_forecaster(method, None)
    if method == "extrapolation":
        from nowcast.motion import import_pysteps

        import_pysteps()
    return archive.sizes["time"], forecaster.t_in


def run_one(n_workers: int, args, outdir: Path) -> dict:
    from nowcast.config import BatchConfig, BatchRenderConfig
    from pipelines.catalog import build_catalog
    from pipelines.runner import batch_client, run_batch

    render = BatchRenderConfig(
        enabled=args.render, leads=(1, args.leads), truth=True, map_data=str(args.map_data)
    )
    cfg = BatchConfig(
        inputs=(str(args.input),),
        methods=(args.method,),
        n_leads=args.leads,
        output=str(outdir),
        render=render,
        workers=n_workers,
    ).validate()
    catalog = build_catalog(cfg.inputs, variable=None, kind=cfg.kind)
    t0 = time.perf_counter()
    with batch_client(workers=n_workers) as client:
        started = time.perf_counter() - t0
        t1 = time.perf_counter()
        client.run(_warm, list(catalog.sources), list(catalog.stamps), args.method, args.leads)
        warm = time.perf_counter() - t1
        summary = run_batch(cfg, client=client, progress=False)
    if summary.failed:
        raise SystemExit(
            f"{len(summary.failed)} issue times failed, e.g. {next(iter(summary.failed.values()))}"
        )
    n = len(summary.done)
    return {
        "workers": n_workers,
        "issue_times": n,
        "seconds": summary.task_seconds,
        "rate": n / summary.task_seconds,
        "task": summary.busy_seconds / n,
        "start": started,
        "warm": warm,
    }


def main(argv=None) -> None:
    ap = parser(__doc__)
    ap.add_argument(
        "--input", type=Path, default=DEFAULT_INPUT, help="archive (file, folder or glob)"
    )
    ap.add_argument("--method", default="extrapolation", choices=("extrapolation", "persistence"))
    ap.add_argument("--leads", type=int, default=12)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--render", action="store_true", help="also render maps of leads 1 and the last"
    )
    ap.add_argument("--map-data", type=Path, default=SHARED / "maps")
    args = ap.parse_args(argv)
    if not Path(args.input).exists():
        raise SystemExit(f"input not found: {args.input}")
    os.environ.setdefault("MPLBACKEND", "Agg")
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        for n in args.workers:
            rows.append(run_one(n, args, Path(tmp) / f"w{n}"))
            r = rows[-1]
            print(
                f"  {n} worker(s): {r['issue_times']} issue times in {r['seconds']:.1f} s",
                file=sys.stderr,
            )
    base = rows[0]["rate"]
    what = f"{args.method}, {args.leads} leads, predict + write" + (
        " + render 2 maps" if args.render else ""
    )
    print(
        f"\nBatch throughput on {Path(args.input).name} ({what}); {os.cpu_count()} CPUs, load "
        f"average {load[0]:.1f} at start\n"
    )
    header = [
        "workers", "issue times", "seconds", "issue times / s", "ratio",
        "s per task (on its worker)", "cluster start s", "warm-up s",
    ]  # fmt: skip
    lines = [
        [
            r["workers"],
            r["issue_times"],
            f"{r['seconds']:.1f}",
            f"{r['rate']:.2f}",
            f"{r['rate'] / base:.2f}",
            f"{r['task']:.2f}",
            f"{r['start']:.1f}",
            f"{r['warm']:.1f}",
        ]
        for r in rows
    ]
    print(table(header, lines, "rrrrrrrr"))
    print(f"\nCommand: {command('bench_batch.py', argv)}")


if __name__ == "__main__":
    main()
