"""Skill of the trained models against the baselines on held-out data (run on demand).

    python benchmarks/eval_models.py radar [--model radar-5min --model radar-5min-eulerian]
                                           [--every 1] [--event PATH --end TIME --first N]
    python benchmarks/eval_models.py era5  [--model runs/era5-t2m] [--every 6]

radar: every issue time of the held-out MeteoSwiss event mch-2016-07-11 (never seen in
training or validation) at which every method has its inputs, 12 leads: the models (by
default the shipped Lagrangian radar-5min and the earlier Eulerian radar-5min-eulerian)
against persistence, extrapolation and S-PROG, scored on the same pixels; MAE, CSI at 1 and
5 mm/h and FSS per lead, and whether each model beats extrapolation and S-PROG. ``--event``
scores another archive instead (e.g. the 10-minute BOM archive, ``--end`` its rainy part).
era5: the held-out last week of March 2019, 6 leads, ConvLSTM vs
persistence, RMSE per lead hour. Prints Markdown tables and writes the full report.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from harness import SHARED, parser, table
from heldout import forecast_all, issue_times


def radar(args) -> None:
    from nowcast.archive import open_archive
    from nowcast.archive.timeaxis import time_step
    from nowcast.methods import ConvLSTMForecaster, get_method
    from nowcast.verify import evaluate
    from nowcast.verify.report import write_report

    event = Path(args.event) if args.event else SHARED / "radar" / "mch-2016-07-11.nc"
    archive = open_archive(event)
    if args.end:
        archive = archive.sel(time=slice(None, args.end))
    n_leads = 12
    methods = {
        "persistence": get_method("persistence"),
        "extrapolation": get_method("extrapolation"),
        "sprog": get_method("sprog"),
    }
    for spec in args.model:
        methods[Path(spec).name] = ConvLSTMForecaster(spec)
    step = time_step(archive)
    first = max(m.input_frames(step) for m in methods.values()) - 1
    first = max(first, args.first)
    times = pd.DatetimeIndex(archive.time.values)
    issues = [times[i] for i in range(first, len(times) - n_leads, args.every)]
    forecasts, seconds = forecast_all(methods, archive, issues, n_leads)
    scores = evaluate(forecasts, archive, thresholds=(0.5, 1.0, 5.0, 10.0), scales=(1, 5, 21))
    write_report(scores, args.output / "radar")
    print(
        f"event {event.name}: {len(issues)} issue times ({issues[0]} .. {issues[-1]}, every "
        f"{args.every} x {step}), {n_leads} leads, all methods on the same pixels"
    )
    print(
        "forecast seconds (all issue times): "
        + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
    )
    tables = {
        "MAE (mm/h)": ("MAE", None, None),
        "CSI >= 1 mm/h": ("CSI", 1.0, None),
        "CSI >= 5 mm/h": ("CSI", 5.0, None),
        "FSS >= 1 mm/h, 5 px": ("FSS", 1.0, 5),
    }
    for title, (metric, thr, scale) in tables.items():
        print(f"\n{title}\n\n" + _lead_table(scores, list(methods), metric, thr, scale))
    for spec in args.model:
        _verdict(scores, Path(spec).name)


def _series(scores, method, metric, threshold=None, scale=None):
    sel = (scores["method"] == method) & (scores["metric"] == metric)
    if threshold is not None:
        sel &= scores["threshold"] == threshold
    if scale is not None:
        sel &= scores["scale"] == scale
    return scores.loc[sel].set_index("lead_time")["value"]


def _lead_table(scores, names, metric, threshold, scale) -> str:
    cols = {m: _series(scores, m, metric, threshold, scale) for m in names}
    leads = sorted(next(iter(cols.values())).index)
    rows = [[f"{lead:g}", *(f"{cols[m][lead]:.3f}" for m in names)] for lead in leads]
    return table(["lead (min)", *names], rows, "r" * (len(names) + 1))


def _verdict(scores, model: str) -> None:
    mae = {m: _series(scores, m, "MAE") for m in (model, "extrapolation", "sprog")}
    csi = {m: _series(scores, m, "CSI", 1.0) for m in (model, "extrapolation", "sprog")}
    from15 = csi[model].index >= 15
    print(f"\n{model}:")
    for ref in ("extrapolation", "sprog"):
        gain = 100 * (1 - mae[model] / mae[ref])
        print(
            f"  MAE < {ref} at every lead: {bool((mae[model] < mae[ref]).all())} "
            f"(gain {gain.min():+.1f} % .. {gain.max():+.1f} %)"
        )
        diff = csi[model] - csi[ref]
        print(
            f"  CSI(1 mm/h) > {ref} at every lead from 15 min: "
            f"{bool((diff[from15] > 0).all())} (difference {diff.min():+.3f} .. {diff.max():+.3f})"
        )


def era5(args) -> None:
    from nowcast.archive import open_archive
    from nowcast.methods import ConvLSTMForecaster, get_method
    from nowcast.verify import evaluate
    from nowcast.verify.report import key_table, write_report

    path = SHARED / "era5" / "era5-t2m-2019-03-uk.nc"
    archive = open_archive(path, variable="t2m", kind="temperature")
    model = ConvLSTMForecaster(args.model)
    n_leads = model.t_out
    issues = issue_times(archive, model.t_in, n_leads, args.every, start="2019-03-25T00:00")
    methods = {"convlstm": model, "persistence": get_method("persistence")}
    forecasts, seconds = forecast_all(methods, archive, issues, n_leads)
    scores = evaluate(forecasts, archive, thresholds=(273.15,), scales=(1,))
    write_report(scores, args.output / "era5")
    print(
        f"held-out last week: {len(issues)} issue times ({issues[0]} .. {issues[-1]}), {n_leads} "
        "leads"
    )
    print("\n" + key_table(scores, metrics=("RMSE", "MAE")))
    rmse = {
        m: scores[(scores.method == m) & (scores.metric == "RMSE")].set_index("lead_time")["value"]
        for m in methods
    }
    print(
        "\nconvlstm RMSE < persistence at every lead: "
        f"{bool((rmse['convlstm'] < rmse['persistence']).all())}"
    )


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    ap = parser(__doc__, full=True)
    ap.add_argument("which", choices=["radar", "era5"])
    ap.add_argument(
        "--model", action="append", default=None, help="run dir or shipped model (repeatable)"
    )
    ap.add_argument("--event", default=None, help="radar: another archive to score on")
    ap.add_argument("--end", default=None, help="radar: use the archive up to this time")
    ap.add_argument("--first", type=int, default=0, help="radar: first issue-time index")
    ap.add_argument("--every", type=int, default=None, help="issue-time stride in frames")
    ap.add_argument("--output", type=Path, default=Path("eval-output"))
    args = ap.parse_args()
    if args.which == "radar":
        args.model = args.model or ["radar-5min", "radar-5min-eulerian"]
        args.every = args.every or 1
        radar(args)
    else:
        args.model = (args.model or ["era5-t2m"])[0]
        args.every = args.every or 6
        era5(args)


if __name__ == "__main__":
    main()
