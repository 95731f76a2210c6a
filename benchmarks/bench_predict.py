"""Time and peak memory of one nowcast (12 leads) per method and grid size (run on demand).

    python benchmarks/bench_predict.py [--grids bom,mch,fmi,opera] [--methods ...]
                                       [--model radar-5min] [--repeat 3]

Grids (real archives from ../shared/data/radar): BOM 512 x 512 (10 min), MeteoSwiss
640 x 710, FMI 1226 x 760 (5 min), OPERA 2200 x 1900 (15 min, raw: clutter included).
Methods: persistence, extrapolation, sprog and the trained model (``convlstm``). Each
(grid, method) runs in its own process, so the peak RSS is that method's alone; one
untimed run first (imports, model load, warm-up), then the median of ``--repeat`` timed
``forecast_many`` calls at one issue time. Also checks that every forecast is finite
wherever extrapolation is (no NaN/inf from clutter). Prints a Markdown table with the ratio
of each method's time to extrapolation's on the same grid.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "radar"
GRIDS = {
    "bom": (SHARED / "bom-66-2020-10-31", "2020-10-31T06:00"),
    "mch": (SHARED / "mch-2016-07-11.nc", "2016-07-11T21:30"),
    "fmi": (SHARED / "fmi-2016-09-28.nc", None),
    "opera": (SHARED / "opera-2018-08-24.nc", None),
}


def _one(grid: str, method: str, model: str, repeat: int) -> dict:
    """Run in a child process: time ``method`` on ``grid``; returns the measurements."""
    import numpy as np

    from nowcast.archive import open_archive
    from nowcast.methods import ConvLSTMForecaster, forecast_many, get_method

    path, issue = GRIDS[grid]
    archive = open_archive(path)
    fc = ConvLSTMForecaster(model) if method == "convlstm" else get_method(method)
    if issue is None:  # the middle of the event
        issue = str(archive.time.values[len(archive.time) // 2])
    out = forecast_many(fc, archive, [issue], 12)  # untimed: imports, load, warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = forecast_many(fc, archive, [issue], 12)
        times.append(time.perf_counter() - t0)
    values = out.values
    return {
        "grid": f"{archive.sizes['y']} x {archive.sizes['x']}",
        "seconds": statistics.median(times),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "inf": int(np.isinf(values).sum()),
        "finite": float(np.isfinite(values).mean()),
        "max": float(np.nanmax(values)) if np.isfinite(values).any() else None,
    }


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--grids", default="bom,mch,fmi,opera")
    parser.add_argument("--methods", default="persistence,extrapolation,sprog,convlstm")
    parser.add_argument("--model", default="radar-5min")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_one(*args.child, args.model, args.repeat)))
        return

    from nowcast.backend import device_description

    rows = []
    for grid in args.grids.split(","):
        for method in args.methods.split(","):
            cmd = [sys.executable, __file__, "--child", grid, method]
            cmd += ["--model", args.model, "--repeat", str(args.repeat)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                tail = (done.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{grid} {method}: failed: {tail}", file=sys.stderr)
                continue
            rows.append((grid, method, json.loads(done.stdout.strip().splitlines()[-1])))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {device_description()}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(
        f"command: python benchmarks/bench_predict.py --grids {args.grids} "
        f"--methods {args.methods} --model {args.model} --repeat {args.repeat}\n"
    )
    print(
        "| grid | method | seconds (median) | ratio to extrapolation | peak RSS (MB) "
        "| finite | inf |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    base = {g: r["seconds"] for g, m, r in rows if m == "extrapolation"}
    for grid, method, r in rows:
        ratio = f"{r['seconds'] / base[grid]:.2f}" if grid in base else "-"
        print(
            f"| {grid} {r['grid']} | {method} | {r['seconds']:.2f} | {ratio} | {r['rss_mb']:.0f} "
            f"| {r['finite']:.3f} | {r['inf']} |"
        )


if __name__ == "__main__":
    main()
