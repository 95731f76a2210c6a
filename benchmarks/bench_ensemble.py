"""Time and peak memory of probabilistic nowcasts (12 leads, N members) by grid (run on demand).

    python benchmarks/bench_ensemble.py [--grids mch] [--members 20] [--model radar-5min]
                                        [--repeat 1] [--forecasts model,members,steps]

For each grid (real archives from ../shared/data/radar, as bench_predict): the quantile
model's deterministic forecast (its median: one network pass), its distribution with N
Gaussian-copula members (the same pass, one flow, then noise, quantile mapping and one warp
per member and lead), and pySTEPS' STEPS with N members (``steps``), each in its own
process (peak RSS its own), one untimed run first, then the median of ``--repeat`` timed
runs at one issue time. Prints a Markdown table with each time's ratio to STEPS and to the
deterministic model on the same grid (the issue's targets: members at most half of STEPS'
time and at most 3x the deterministic model's).
"""

from __future__ import annotations

import os
import statistics
import sys

from harness import RADAR_GRIDS as GRIDS
from harness import WorkerFailed, command, machine, parser, run_fresh, table, time_calls


def one(grid: str, what: str, model: str, members: int, repeat: int) -> dict:
    """Time ``what`` (``model``, ``members``, ``steps``) on ``grid`` in this process."""
    import numpy as np

    from nowcast.archive import open_archive
    from nowcast.distribution import ProductRequest
    from nowcast.methods import ConvLSTMForecaster, get_method
    from nowcast.methods.run import forecast_products

    path, issue = GRIDS[grid]
    archive = open_archive(path)
    if issue is None:  # the middle of the event
        issue = str(archive.time.values[len(archive.time) // 2])
    if what == "steps":
        method, request = get_method("steps", members=members), ProductRequest(members=members)
    else:
        method = ConvLSTMForecaster(model)
        request = ProductRequest(members=members) if what == "members" else None
    out = {}

    def run():
        out["fc"] = forecast_products(method, archive, [issue], 12, request=request)

    times = time_calls(run, repeat, warmup=1)  # untimed first: imports, load, warm-up
    forecast, extra = out["fc"]
    values = next(iter(extra.values())).values if extra else forecast.values
    return {
        "grid": f"{archive.sizes['y']} x {archive.sizes['x']}",
        "seconds": statistics.median(times),
        "max": float(np.nanmax(values)) if np.isfinite(values).any() else None,
        "input_max": float(np.nanmax(archive.sel(time=slice(None, issue)).values[-4:])),
    }


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    ap = parser(__doc__, full=True)
    ap.add_argument("--grids", default="mch")
    ap.add_argument("--members", type=int, default=20)
    ap.add_argument("--model", default="radar-5min")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument(
        "--forecasts",
        default="model,members,steps",
        help="which of model, members, steps to run (STEPS on OPERA takes hours)",
    )
    args = ap.parse_args()
    forecasts = args.forecasts.split(",")
    if not forecasts or set(forecasts) - {"model", "members", "steps"}:
        ap.error(f"--forecasts: a list of model, members, steps, got {args.forecasts!r}")

    rows = []
    for grid in args.grids.split(","):
        for what in forecasts:
            try:
                result = run_fresh(one, grid, what, args.model, args.members, args.repeat)
                rows.append((grid, what, result))
            except WorkerFailed as exc:
                print(f"{grid} {what}: failed: {exc.last_line()}", file=sys.stderr)
    print(machine())
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"command: {command('bench_ensemble.py')}\n")
    labels = {
        "model": f"{args.model} (median, deterministic)",
        "members": f"{args.model} + {args.members} members",
        "steps": f"steps, {args.members} members",
    }
    secs = {(g, w): r["seconds"] for g, w, r in rows}
    lines = []
    for grid, what, r in rows:
        to_steps = secs.get((grid, "steps"))
        to_model = secs.get((grid, "model"))
        lines.append(
            [
                f"{grid} {r['grid']}",
                labels[what],
                f"{r['seconds']:.1f}",
                f"{r['seconds'] / to_steps:.2f}" if to_steps else "-",
                f"{r['seconds'] / to_model:.2f}" if to_model else "-",
                f"{r['peak_rss_mb']:.0f}",
                f"{r['max']:.0f} / {r['input_max']:.0f}" if r["max"] is not None else "-",
            ]
        )
    header = [
        "grid", "forecast", "seconds", "ratio to STEPS", "ratio to the model", "peak RSS (MB)",
        "max / inputs' max (mm/h)",
    ]  # fmt: skip
    print(table(header, lines, "llrrrrr"))


if __name__ == "__main__":
    main()
