"""Maps per second of ``nowcast.render.render_many`` with 1 vs N worker processes.

Builds persistence forecasts (``--issues`` issue times x ``--leads`` leads) from a shared
radar event, writes them as CF NetCDF in a temporary folder, and renders every map with each
worker count in turn (same inputs, fresh output folder). Times include starting the worker
pool (``spawn``: each worker imports Cartopy/Matplotlib and reads the coastlines once); the
single-worker run is in-process after one warm-up map. Prints a Markdown table.

    python benchmarks/bench_render.py                       # MCH, 2 x 12 maps, workers 1,2
    python benchmarks/bench_render.py --truth --workers 1,2 --dpi 100
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from harness import SHARED as DATA
from harness import command, parser, table

EVENTS = {
    "mch": "radar/mch-2016-07-11.nc",
    "knmi": "radar/knmi-2010-08-26.nc",
    "fmi": "radar/fmi-2016-09-28.nc",
    "rmi": "radar/rmi-2021-07-04.nc",
}


def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--dataset", choices=sorted(EVENTS), default="mch")
    ap.add_argument("--issues", type=int, default=2, help="issue times (one forecast file each)")
    ap.add_argument("--leads", type=int, default=12)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--dpi", type=int, default=100)
    ap.add_argument("--truth", action="store_true", help="observed | forecast | difference panels")
    ap.add_argument("--map-data", default=str(DATA / "maps"))
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")

    from nowcast import products
    from nowcast.archive.reader import open_archive
    from nowcast.render import RenderOptions, render_many
    from nowcast.render.maps import render_forecast

    archive = open_archive(str(DATA / EVENTS[args.dataset]))
    options = RenderOptions(map_data=args.map_data, dpi=args.dpi)
    step = archive["time"].values[1] - archive["time"].values[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench_render_"))
    files = []
    for k in range(args.issues):
        i = 10 + 5 * k
        frame = archive.isel(time=i).values
        fc = products.forecast_array(
            np.repeat(frame[None, None], args.leads, axis=1),
            issue_times=[archive["time"].values[i]],
            step=step,
            template=archive,
        )
        files.append(products.write_forecast(fc, tmp / f"fc{k}.nc", method="persistence"))
        if k == 0:  # warm-up: imports, coastline reading (so 1 worker is timed warm)
            render_forecast(fc, outdir=tmp / "warm", options=options.replace(leads=(1,)))
    truth = archive if args.truth else None
    n_maps = args.issues * args.leads
    rows = []
    for workers in (int(w) for w in args.workers.split(",")):
        out = tmp / f"out{workers}"
        t0 = time.perf_counter()
        paths = render_many(files, outdir=out, workers=workers, truth=truth, options=options)
        dt = time.perf_counter() - t0
        assert len(paths) == n_maps
        rows.append((workers, n_maps, dt, n_maps / dt))
    cmd = command("bench_render.py", argv)
    panels = "3 panels (truth)" if args.truth else "1 panel"
    print(
        f"\n`{cmd}`  \n{args.dataset} grid {archive.sizes['y']}x{archive.sizes['x']}, {panels}, "
        f"dpi {args.dpi}, {os.cpu_count()} CPUs\n"
    )
    header = ["workers", "maps", "seconds", "maps/s", "speed-up"]
    lines = [
        [workers, n, f"{dt:.1f}", f"{rate:.2f}", f"{rate / rows[0][3]:.2f}x"]
        for workers, n, dt, rate in rows
    ]
    print(table(header, lines, "rrrrr"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
