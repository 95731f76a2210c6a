"""Series end to end on the real ERA5 archive: ``nowcast train`` (model.kind: series, and
--resume), ``predict --point`` (a series model, a baseline, a station CSV), ``evaluate`` (a
series model beside a gridded forecast read at its points), ``render --point``, ``models``,
and the bad inputs: one-line errors, nothing written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from nowcast.cli import main

ISSUES = ["--start", "2019-03-25T00:00", "--end", "2019-03-25T18:00", "--every", "6h"]


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _ok(*args):
    res = _run(*args)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def era5(shared_data):
    return shared_data / "era5" / "era5-t2m-2019-03-uk.nc"


@pytest.fixture(scope="module")
def run(tmp_path_factory, era5, torch_single_thread):
    """A tiny LSTM trained at two places for one epoch of two steps (real data)."""
    root = tmp_path_factory.mktemp("series-run")
    config = root / "t2m.yaml"
    config.write_text(
        f"name: tiny\ndata: {{events: [{era5}], variable: t2m, kind: temperature}}\n"
        "model: {kind: series}\nseries: {points: [London, Edinburgh], hidden: [8]}\n"
        "sampler: {t_in: 24, t_out: 6, batch_size: 16, split: {validation: 0.15, "
        "test_period: ['2019-03-25T00:00', '2019-03-31T23:00']}}\n"
        "train: {epochs: 1, steps_per_epoch: 2, validation_steps: 1}\n"
    )
    out = _ok("train", config, "--output", root / "run")
    assert "2 series" in out and "1 epochs" in out
    return root / "run"


def test_run_directory_and_resume(run, tmp_path):
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["model_kind"] == "series" and meta["t_in"] == 24 and meta["units"] == "K"
    assert meta["training"]["events"][0]["periods"]["test"][0].startswith("2019-03-25T00:00")
    assert {p.name for p in run.iterdir()} >= {
        "model.keras",
        "checkpoint.keras",
        "state.json",
        "config.yaml",
        "history.csv",
    }
    out = _run("train", run.parent / "t2m.yaml", "--output", run)
    assert out.exit_code != 0 and "already holds a training run" in out.output
    again = _ok(
        "train", run / "config.yaml", "--set", "train.epochs=2", "--output", run, "--resume"
    )
    assert "resuming at epoch 2" in again and len(pd.read_csv(run / "history.csv")) == 2


def test_predict_evaluate_render(run, era5, tmp_path):
    model_nc, base_nc, grid_nc = tmp_path / "lstm.nc", tmp_path / "dt.nc", tmp_path / "grid.nc"
    points = ("--point", "London", "--point", "55.95,-3.19")
    _ok("predict", "--model", run, "-i", era5, *points, *ISSUES, "-o", model_nc)
    ds = xr.open_dataset(model_nc)
    assert ds.attrs["featureType"] == "timeSeries" and ds["t2m"].shape == (2, 4, 6)
    assert np.isfinite(ds["t2m"].values).all() and ds["t2m"].attrs["units"] == "K"
    assert ds["latitude"].values[0] == pytest.approx(51.5074)
    table = pd.read_csv(tmp_path / "lstm.csv")
    assert len(table) == 2 * 4 * 6 and set(table["station"]) == {"London", "55.95°N 3.19°W"}
    _ok("predict", "--method", "diurnal-tendency", "-i", era5, *points, *ISSUES, "-o", base_nc)
    _ok("predict", "--method", "persistence", "-i", era5, *ISSUES, "--leads", "6", "-o", grid_nc)
    files = ("-f", model_nc, "-f", base_nc, "-f", grid_nc)
    out = _ok("evaluate", *files, "--truth", era5, "-o", tmp_path / "report")
    assert "2 stations" in out and "RMSE (K)" in out
    scores = pd.read_csv(tmp_path / "report" / "scores.csv")
    assert set(scores["method"]) == {"run", "diurnal-tendency", "persistence"}  # run: the model dir
    rmse = scores[scores.metric == "RMSE"].pivot(
        index="lead_time", columns="method", values="value"
    )
    assert list(rmse.index) == [60, 120, 180, 240, 300, 360] and (rmse > 0).all().all()
    assert (scores["n_issues"] == 4).all()
    # the gridded persistence at the stations equals a series persistence there
    pers_nc = tmp_path / "pers.nc"
    _ok(
        "predict",
        "--method",
        "persistence",
        "-i",
        era5,
        "--point",
        "London",
        "--point",
        "55.95,-3.19",
        *ISSUES,
        "-o",
        pers_nc,
    )
    both = pd.read_csv(_ok_report(tmp_path, pers_nc, grid_nc, era5) / "scores.csv")
    piv = both.pivot_table(index=["metric", "lead_time"], columns="method", values="value")
    assert np.allclose(piv.iloc[:, 0], piv.iloc[:, 1])
    written = _ok(
        "render", model_nc, grid_nc, "--point", "London", "--truth", era5, "-o", tmp_path / "maps"
    )
    assert "point_London.png" in written
    rows = pd.read_csv(tmp_path / "maps" / "point_London.csv")
    assert {"run", "persistence", "observed"} <= set(rows["method"])
    res = _run("render", model_nc, "-o", tmp_path / "nomaps")
    assert res.exit_code != 0 and "draw it with --point" in res.output


def _ok_report(tmp_path, a, b, truth):
    out = tmp_path / "report2"
    _ok("evaluate", "-f", a, "-f", b, "--truth", truth, "-o", out)
    return out


def test_predict_from_a_station_csv(run, tmp_path):
    times = pd.date_range("2019-03-23T00:00", periods=60, freq="h")
    values = 8 + 4 * np.sin(2 * np.pi * (times.hour - 9) / 24)
    csv = tmp_path / "station.csv"
    pd.DataFrame({"time": times.strftime("%Y-%m-%dT%H:%M"), "t2m (degC)": values}).to_csv(
        csv, index=False
    )
    _ok(
        "predict",
        "--model",
        run,
        "-i",
        csv,
        "--issue-time",
        "2019-03-25T06:00",
        "-o",
        tmp_path / "fc.nc",
    )
    fc = xr.open_dataset(tmp_path / "fc.nc")["t2m"]
    assert fc.attrs["units"] == "K" and 270 < float(fc.mean()) < 295  # converted from degC


def _csv(tmp_path, text):
    path = tmp_path / "obs.csv"
    path.write_text(text)
    return path


def _rows(n, start="2019-03-20T00:00", freq="h"):
    return "".join(
        f"{t:%Y-%m-%dT%H:%M},{280 + i % 5}\n"
        for i, t in enumerate(pd.date_range(start, periods=n, freq=freq))
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("outside", r"point 40.00°N 3.00°W is outside the grid of t2m"),  # not twice
        ("column", r"obs.csv: no column 'wind' \(value columns: t2m\)"),
        ("units", r"obs.csv: the units of 'value' are missing"),
        ("short", r"the series holds 10 times; run needs 24"),
        ("text", r"obs.csv, line 4: t2m 'warm' is not a number"),
        ("twice", r"obs.csv, line 4: time 2019-03-20T01:00 is given twice"),
        ("unsorted", r"obs.csv, line 3: times are not in order"),
        ("no point", r"give --point LAT,LON\|NAME \(repeatable\) or --point all"),
    ],
)
def test_bad_series_input_is_one_line_and_writes_nothing(run, era5, tmp_path, case, message):
    out = tmp_path / "fc.nc"
    head = "time,t2m (K)\n"
    args = {
        "outside": lambda: ["-i", era5, "--point", "40,-3"],
        "column": lambda: ["-i", _csv(tmp_path, head + _rows(30)), "--column", "wind"],
        "units": lambda: ["-i", _csv(tmp_path, "time,value\n" + _rows(30))],
        "short": lambda: ["-i", _csv(tmp_path, head + _rows(10))],
        "text": lambda: ["-i", _csv(tmp_path, head + _rows(2) + "2019-03-20T02:00,warm\n")],
        "twice": lambda: ["-i", _csv(tmp_path, head + _rows(2) + "2019-03-20T01:00,281\n")],
        "unsorted": lambda: [
            "-i",
            _csv(tmp_path, head + "2019-03-20T02:00,1\n2019-03-20T01:00,2\n"),
        ],
        "no point": lambda: ["-i", era5],
    }[case]()
    res = _run("predict", "--model", run, *args, "--issue-time", "2019-03-20T09:00", "-o", out)
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert __import__("re").search(message, lines[0]), lines[0]
    assert not out.exists() and not out.with_suffix(".csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["obs.csv"])


def test_models_lists_the_series_model():
    out = _ok("models")
    block = out.split("t2m-series: ", 1)[1].split("\n\n", 1)[0]
    assert "series model (LSTM" in block and "held-out scores" in block
