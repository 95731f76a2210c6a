"""Temperature end to end on the real ERA5 archive: the kind comes from the units (K)."""

from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd
import pytest
from safety_helpers import cli

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def era5_forecasts(tmp_path_factory, shared_data):
    """The shipped era5-t2m model and persistence, two issue times each, no --kind given."""
    root = tmp_path_factory.mktemp("t2m")
    src = shared_data / "era5" / "era5-t2m-2019-03-uk.nc"
    paths = {}
    for name, how in (
        ("convlstm", ["--model", "era5-t2m"]),
        ("persistence", ["--method", "persistence"]),
    ):
        paths[name] = root / f"{name}.nc"
        res = cli(
            "predict", *how, "-i", src, "--start", "2019-03-30T18:00", "--every", "12h",
            "--leads", "6", "-o", paths[name],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
    return src, paths


def test_predict_infers_temperature_and_methods_share_the_encoding(era5_forecasts):
    from nowcast.products import read_forecast

    _, paths = era5_forecasts
    fcs = {m: read_forecast(p) for m, p in paths.items()}
    for fc in fcs.values():
        assert fc.attrs["units"] == "K" and fc.shape == (3, 6, 33, 49)
        assert list(pd.DatetimeIndex(fc.issue_time.values).strftime("%d %H")) == [
            "30 18", "31 06", "31 18",
        ]  # fmt: skip
        assert 260 < float(np.nanmean(fc.values)) < 290
    leads = []
    for path in paths.values():
        with netCDF4.Dataset(path) as nc:
            leads.append((nc["lead_time"].__dict__, list(nc["lead_time"][:])))
    assert leads[0] == leads[1] and leads[0][1] == [60, 120, 180, 240, 300, 360]


def test_evaluate_temperature_scores_continuous_by_default(era5_forecasts, tmp_path):
    src, paths = era5_forecasts
    fs = [a for p in paths.values() for a in ("-f", p)]
    res = cli("evaluate", *fs, "--truth", src, "--no-plots", "-o", tmp_path / "r")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == "MAE (K)" and lines[1].split() == ["lead", "n", "era5-t2m", "persistence"]
    assert "CSI" not in res.output and "FSS" not in res.output  # no rain thresholds on kelvin
    # 2019-03-31 18:00 + 6 h is past the archive's end (23:00): lead 6 h pools two issue times
    assert "lead 6 h pooled fewer than 3" in res.output
    scores = pd.read_csv(tmp_path / "r" / "scores.csv")
    assert set(scores.metric) == {"MAE", "RMSE", "bias", "corr"}
    res = cli(
        "evaluate", *fs, "--truth", src, "--thresholds", "273.15", "--no-plots",
        "-o", tmp_path / "frost",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "CSI for events >= 273.15 K" in res.output
    assert "neighbourhood 5 px (1.25°)" in res.output  # a lat/lon grid: scales in degrees
