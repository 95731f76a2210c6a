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

import os
import platform
import statistics
import sys

from harness import RADAR_GRIDS as GRIDS
from harness import WorkerFailed, parser, run_fresh, table, time_calls


def one(grid: str, method: str, model: str, repeat: int) -> dict:
    """Time ``method`` on ``grid`` (run in its own process by :func:`harness.run_fresh`)."""
    import numpy as np

    from nowcast.archive import open_archive
    from nowcast.methods import ConvLSTMForecaster, forecast_many, get_method

    path, issue = GRIDS[grid]
    archive = open_archive(path)
    fc = ConvLSTMForecaster(model) if method == "convlstm" else get_method(method)
    if issue is None:  # the middle of the event
        issue = str(archive.time.values[len(archive.time) // 2])
    out = {}

    def run():
        out["fc"] = forecast_many(fc, archive, [issue], 12)

    times = time_calls(run, repeat, warmup=1)  # untimed first: imports, load, warm-up
    values = out["fc"].values
    return {
        "grid": f"{archive.sizes['y']} x {archive.sizes['x']}",
        "seconds": statistics.median(times),
        "inf": int(np.isinf(values).sum()),
        "finite": float(np.isfinite(values).mean()),
        "max": float(np.nanmax(values)) if np.isfinite(values).any() else None,
    }


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    ap = parser(__doc__, full=True)
    ap.add_argument("--grids", default="bom,mch,fmi,opera")
    ap.add_argument("--methods", default="persistence,extrapolation,sprog,convlstm")
    ap.add_argument("--model", default="radar-5min")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from nowcast.backend import device_description

    rows = []
    for grid in args.grids.split(","):
        for method in args.methods.split(","):
            try:
                rows.append((grid, method, run_fresh(one, grid, method, args.model, args.repeat)))
            except WorkerFailed as exc:
                print(f"{grid} {method}: failed: {exc.last_line()}", file=sys.stderr)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {device_description()}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(
        f"command: python benchmarks/bench_predict.py --grids {args.grids} "
        f"--methods {args.methods} --model {args.model} --repeat {args.repeat}\n"
    )
    header = [
        "grid", "method", "seconds (median)", "ratio to extrapolation", "peak RSS (MB)",
        "finite", "inf",
    ]  # fmt: skip
    base = {g: r["seconds"] for g, m, r in rows if m == "extrapolation"}
    lines = []
    for grid, method, r in rows:
        ratio = f"{r['seconds'] / base[grid]:.2f}" if grid in base else "-"
        lines.append(
            [
                f"{grid} {r['grid']}",
                method,
                f"{r['seconds']:.2f}",
                ratio,
                f"{r['peak_rss_mb']:.0f}",
                f"{r['finite']:.3f}",
                r["inf"],
            ]
        )
    print(table(header, lines, "llrrrrr"))


if __name__ == "__main__":
    main()
