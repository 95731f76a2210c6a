"""Time series at a point: series models against the baselines and the gridded ConvLSTM.

    python benchmarks/compare_series.py --model lstm=runs/series/lstm-direct \\
        --model gru=runs/series/gru-direct --model lstm-recursive=runs/series/lstm-recursive \\
        [--gridded era5-t2m] [--every 1] [--output eval-output/series]

ERA5 2 m temperature over the UK, the held-out last week of March 2019: every ``--every``
hours from 2019-03-25 00:00 to the last issue time with 6 h of observations after it, leads
+1 to +6 h. Scored on two sets of points: every grid point (1,617 series) and the shipped
places inside the grid (``nowcast/resources/places.csv``: the nearest pixel). Methods: the
series models given (run directories or shipped names), persistence, diurnal persistence
(the value 24 h earlier, plain and plus the last day's change), Holt-Winters exponential
smoothing with a daily season (statsmodels; fitted per series on everything before the
held-out week, i.e. the models' training and validation period) and the gridded ConvLSTM
read at the same points; every method scored on the same values (common mask). Prints
Markdown tables of RMSE and MAE per lead, whether each series model beats persistence and
diurnal persistence at every lead, and the forecast times; writes the scores as CSV.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from harness import SHARED, command, machine, parser, table

HELD_OUT = ("2019-03-25T00:00", "2019-03-31T23:00")
FIT_END = "2019-03-24T23:00"
N_LEADS = 6


def _places(archive):
    from nowcast.render.point import load_places
    from nowcast.series.data import grid_index

    out = []
    for name, (lat, lon) in load_places().items():
        try:
            grid_index(archive, lat, lon, name)
        except Exception:  # outside the ERA5 grid
            continue
        out.append((name.title(), lat, lon))
    return sorted(out)


def _gridded_series(forecast, series):
    """A gridded forecast at every grid point, as a series forecast of ``series`` (named
    ``y{iy}x{ix}``)."""
    from nowcast.series.forecast import series_forecast

    values = np.asarray(forecast.transpose("y", "x", "issue_time", "lead_time").values)
    values = values.reshape(-1, *values.shape[2:])
    step = pd.Timedelta(forecast["lead_time"].values[0])
    return series_forecast(
        values, series, forecast["issue_time"].values, step, method="era5-t2m (gridded)"
    )


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    ap = parser(__doc__, full=True)
    ap.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=RUN",
        help="a series model: name and run directory (repeatable)",
    )
    ap.add_argument("--gridded", default="era5-t2m", help="the gridded model ('' for none)")
    ap.add_argument("--every", type=int, default=1, help="issue-time spacing in hours")
    ap.add_argument("--output", type=Path, default=Path("eval-output") / "series")
    args = ap.parse_args()

    from nowcast.archive import open_archive
    from nowcast.methods import ConvLSTMForecaster, forecast_many
    from nowcast.series.data import all_points, series_at_points
    from nowcast.series.forecast import SeriesModel, forecast_series
    from nowcast.series.methods import get_series_method
    from nowcast.series.scores import at_stations, evaluate_series

    print(f"machine: {machine()}\ncommand: {command(__file__)}\n")
    archive = open_archive(
        SHARED / "era5" / "era5-t2m-2019-03-uk.nc",
        variable="t2m",
        kind="temperature",
        chunks="auto",
    )
    grid = all_points(archive)
    places = series_at_points(archive, _places(archive))
    times = grid.times
    last = times[-1] - N_LEADS * pd.Timedelta("1h")
    issues = pd.date_range(HELD_OUT[0], last, freq=f"{args.every}h")
    methods = {
        "persistence": get_series_method("persistence"),
        "diurnal": get_series_method("diurnal"),
        "diurnal-tendency": get_series_method("diurnal-tendency"),
        "ets": get_series_method("ets", fit_end=FIT_END),
    }
    for spec in args.model:
        name, _, run = spec.partition("=")
        methods[name] = SeriesModel(run or name, name=name)
    results, seconds = {}, {}
    for label, series in (("all grid points", grid), ("places", places)):
        fcs = {}
        for name, method in methods.items():
            t0 = time.perf_counter()
            fcs[name] = forecast_series(method, series, issues, N_LEADS, strict=False)
            seconds[name, label] = time.perf_counter() - t0
        if args.gridded:
            t0 = time.perf_counter()
            if "gridded" not in results:
                results["gridded"] = forecast_many(
                    ConvLSTMForecaster(args.gridded), archive, list(issues), N_LEADS
                )
            fc = results["gridded"]
            name = f"{args.gridded} (gridded)"
            fcs[name] = (
                _gridded_series(fc, grid) if series is grid else at_stations(fc, fcs["persistence"])
            )
            seconds[name, label] = time.perf_counter() - t0
        results[label] = evaluate_series(fcs, series)
    results.pop("gridded", None)

    args.output.mkdir(parents=True, exist_ok=True)
    print(
        f"held out: {len(issues)} issue times {issues[0]:%Y-%m-%d %H:%M} to "
        f"{issues[-1]:%Y-%m-%d %H:%M} every {args.every} h, leads +1..+{N_LEADS} h; "
        f"places: {', '.join(places.names)}\n"
    )
    for label, scores in results.items():
        scores.to_csv(args.output / f"scores-{label.replace(' ', '-')}.csv", index=False)
        print(f"### {label} ({scores.attrs['stations']} series)\n")
        for metric in ("RMSE", "MAE"):
            sub = scores[scores.metric == metric]
            wide = sub.pivot(index="lead_time", columns="method", values="value")
            cols = list(dict.fromkeys(sub["method"]))
            rows = [
                [f"+{int(lead // 60)} h", *(f"{wide.loc[lead, c]:.3f}" for c in cols)]
                for lead in wide.index
            ]
            print(f"{metric} (K)\n")
            print(table(["lead", *cols], rows, "l" + "r" * len(cols)) + "\n")
        rmse = scores[scores.metric == "RMSE"].pivot(
            index="lead_time", columns="method", values="value"
        )
        for spec in args.model:
            name = spec.partition("=")[0]
            for ref in ("persistence", "diurnal", "diurnal-tendency", "ets"):
                diff = rmse[name] - rmse[ref]
                print(
                    f"- {name} RMSE below {ref} at every lead: {bool((diff < 0).all())} "
                    f"(difference {diff.min():+.3f} .. {diff.max():+.3f} K)"
                )
        print()
    print(
        "forecast seconds (all issue times): "
        + ", ".join(f"{name} {label}: {s:.1f}" for (name, label), s in seconds.items())
    )


if __name__ == "__main__":
    main()
