"""Skill of the trained models against the baselines on held-out data (run on demand).

    python benchmarks/eval_models.py radar [--model radar-5min] [--every 1]
    python benchmarks/eval_models.py era5  [--model runs/era5-t2m] [--every 6]

radar: every valid issue time of the held-out MeteoSwiss event mch-2016-07-11 (never seen
in training or validation), 12 leads, ConvLSTM vs persistence vs extrapolation, scored on
the same pixels. era5: the held-out last week of March 2019, 6 leads, ConvLSTM vs
persistence, RMSE per lead hour. Prints Markdown tables and writes the full report.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _issue_times(archive, t_in: int, n_leads: int, every: int, start=None):
    times = pd.DatetimeIndex(archive.time.values)
    idx = np.arange(t_in - 1, len(times) - n_leads, every)
    out = [times[i] for i in idx]
    return [t for t in out if start is None or t >= pd.Timestamp(start)]


def _forecast_all(methods, archive, issues, n_leads):
    from nowcast.methods import forecast_many

    out, seconds = {}, {}
    for name, method in methods.items():
        t0 = time.perf_counter()
        out[name] = forecast_many(method, archive, issues, n_leads)
        seconds[name] = time.perf_counter() - t0
    return out, seconds


def radar(args) -> None:
    from nowcast.data import open_archive
    from nowcast.methods import ConvLSTMForecaster, get_method
    from nowcast.verify import evaluate
    from nowcast.verify.report import key_table, write_report

    event = SHARED / "radar" / "mch-2016-07-11.nc"
    archive = open_archive(event)
    model = ConvLSTMForecaster(args.model)
    n_leads = 12
    issues = _issue_times(archive, model.t_in, n_leads, args.every)
    methods = {
        "convlstm": model,
        "persistence": get_method("persistence"),
        "extrapolation": get_method("extrapolation"),
    }
    forecasts, seconds = _forecast_all(methods, archive, issues, n_leads)
    scores = evaluate(forecasts, archive, thresholds=(0.5, 1.0, 5.0, 10.0), scales=(1, 5, 21))
    write_report(scores, args.output / "radar")
    print(
        f"held-out event {event.name}: {len(issues)} issue times ({issues[0]} .. {issues[-1]}), "
        f"{n_leads} leads"
    )
    print(
        "forecast seconds (all issue times): "
        + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
    )
    names = list(methods)
    for metric in ("MAE", "CSI", "FSS"):
        print("\n" + key_table(scores, metrics=(metric,)))
    _verdict(scores, names)


def _verdict(scores, names) -> None:
    def get(method, metric, threshold=None):
        sel = (scores["method"] == method) & (scores["metric"] == metric)
        if threshold is not None:
            sel &= scores["threshold"] == threshold
        return scores.loc[sel].set_index("lead_time")["value"]

    mae = {m: get(m, "MAE") for m in names}
    csi = {m: get(m, "CSI", 1.0) for m in names}
    print(
        "\nconvlstm MAE < persistence at every lead: "
        f"{bool((mae['convlstm'] < mae['persistence']).all())}"
    )
    if "extrapolation" in names:
        print(
            "convlstm MAE < extrapolation at every lead: "
            f"{bool((mae['convlstm'] < mae['extrapolation']).all())}"
        )
        print(
            "convlstm CSI(1 mm/h) > extrapolation at every lead: "
            f"{bool((csi['convlstm'] > csi['extrapolation']).all())}"
        )


def era5(args) -> None:
    from nowcast.data import open_archive
    from nowcast.methods import ConvLSTMForecaster, get_method
    from nowcast.verify import evaluate
    from nowcast.verify.report import key_table, write_report

    path = SHARED / "era5" / "era5-t2m-2019-03-uk.nc"
    archive = open_archive(path, variable="t2m", kind="temperature")
    model = ConvLSTMForecaster(args.model)
    n_leads = model.t_out
    issues = _issue_times(archive, model.t_in, n_leads, args.every, start="2019-03-25T00:00")
    methods = {"convlstm": model, "persistence": get_method("persistence")}
    forecasts, seconds = _forecast_all(methods, archive, issues, n_leads)
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", choices=["radar", "era5"])
    parser.add_argument("--model", default=None, help="run dir or shipped model name")
    parser.add_argument("--every", type=int, default=None, help="issue-time stride in frames")
    parser.add_argument("--output", type=Path, default=Path("eval-output"))
    args = parser.parse_args()
    if args.which == "radar":
        args.model = args.model or "radar-5min"
        args.every = args.every or 1
        radar(args)
    else:
        args.model = args.model or "era5-t2m"
        args.every = args.every or 6
        era5(args)


if __name__ == "__main__":
    main()
