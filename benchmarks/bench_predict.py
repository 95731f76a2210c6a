"""Time one nowcast on the 640 x 710 MeteoSwiss grid, 12 leads: ConvLSTM vs extrapolation.

    python benchmarks/bench_predict.py [--model radar-5min] [--repeat 3]

Both methods get the same input frames (``forecast_many`` on the same archive and issue
time); the model is loaded and warmed up before timing (model load excluded). Prints a
Markdown table with the median of ``--repeat`` runs and the ratio to extrapolation.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="radar-5min")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--issue-time", default="2016-07-11T21:30")
    args = parser.parse_args()

    from nowcast.backend import device_description
    from nowcast.data import open_archive
    from nowcast.methods import ConvLSTMForecaster, forecast_many, get_method

    archive = open_archive(SHARED / "radar" / "mch-2016-07-11.nc")
    model = ConvLSTMForecaster(args.model)
    methods = {"convlstm": model, "extrapolation": get_method("extrapolation")}
    forecast_many(model, archive, [args.issue_time], 12)  # load + warm up (excluded)
    rows = {}
    for name, method in methods.items():
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fc = forecast_many(method, archive, [args.issue_time], 12)
            times.append(time.perf_counter() - t0)
        rows[name] = (statistics.median(times), fc.shape)
    base = rows["extrapolation"][0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {device_description()}")
    print(
        f"command: python benchmarks/bench_predict.py --model {args.model} --repeat {args.repeat}\n"
    )
    print("| method | grid | leads | seconds (median) | ratio to extrapolation |")
    print("|---|---|---:|---:|---:|")
    for name, (sec, shape) in rows.items():
        print(f"| {name} | {shape[2]} x {shape[3]} | {shape[1]} | {sec:.2f} | {sec / base:.2f} |")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
