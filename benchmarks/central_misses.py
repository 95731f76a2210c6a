"""Where a quantile model's spread parts from the observations, per event and issue time.

    python benchmarks/central_misses.py mch-2016-07-11.nc bom-66-2020-10-31 [--model radar-5min]
                                        [--issue-times 3]

Events are names under ``../shared/data/radar`` (or paths). For each, the issue times
``nowcast calibrate`` would pick (wet frames, :func:`nowcast.verify.calibration.
pick_issue_times`), 60 minutes of leads; prints per issue time the lag-1 correlation of
the last two inputs in the Lagrangian frame (the one the members' noise uses) and, at 10,
30 and 60 min, the share of the observations below the calibrated 10 % value ("lo") and
above the 90 % value ("hi") at wet pixels (observed or forecast at least 0.1 mm/h). A
calibrated forecast gives about 0.1 each (more where pixels are wet in one only).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

RADAR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "radar"


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("events", nargs="+")
    ap.add_argument("--model", default="radar-5min")
    ap.add_argument("--issue-times", type=int, default=3)
    args = ap.parse_args()

    from nowcast.archive import open_archive
    from nowcast.conventions import TIME
    from nowcast.methods.convlstm import ConvLSTMForecaster
    from nowcast.verify.calibration import pick_issue_times

    model = ConvLSTMForecaster(args.model)
    for event in args.events:
        path = Path(event) if Path(event).exists() else RADAR / event
        archive = open_archive(str(path))
        step = pd.Timedelta(archive[TIME].values[1] - archive[TIME].values[0])
        n_leads = int(pd.Timedelta("60min") / step)
        need = model.input_frames(step)
        for i in pick_issue_times(archive, args.issue_times, before=need, after=n_leads):
            past = archive.isel({TIME: slice(i - need + 1, i + 1)}).load()
            dist = model.predict_distribution(past, n_leads)
            q = dist.quantiles([0.1, 0.9]).values
            truth = archive.isel({TIME: slice(i + 1, i + 1 + n_leads)}).values
            cells = []
            for minutes in (10, 30, 60):
                j = max(0, int(pd.Timedelta(minutes=minutes) / step) - 1)
                y, lo, hi = truth[j], q[0, j], q[1, j]
                ok = np.isfinite(y) & np.isfinite(hi) & ((y > 0.1) | (hi > 0.1))
                below, above = (y[ok] < lo[ok]).mean(), (y[ok] > hi[ok]).mean()
                cells.append(f"{minutes} min: lo {below:.2f} hi {above:.2f}")
            issue = pd.Timestamp(archive[TIME].values[i])
            print(f"{path.stem} {issue:%Y-%m-%d %H:%M} rho {dist.rho:.3f}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
