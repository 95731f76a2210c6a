"""``nowcast evaluate`` end to end on small synthetic forecast and truth files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from nowcast.cli import main
from nowcast.products import forecast_array, read_forecast, write_forecast

STEP = pd.Timedelta("5min")
NT, NY, NX = 8, 16, 20


def _truth_dataset(seed=0, start="2021-06-01T12:00", x0=0.0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    rain = (rng.gamma(0.6, 2.0, (NT, NY, NX)) * (rng.random((NT, NY, NX)) < 0.5)).astype("float32")
    rain[:, :3, :4] = np.nan  # outside coverage
    return xr.Dataset(
        {
            "precipitation_rate": (
                ("time", "y", "x"),
                rain,
                {"units": "mm h-1", "grid_mapping": "crs"},
            ),
            "crs": ((), 0, {"grid_mapping_name": "transverse_mercator"}),
        },
        coords={
            "time": pd.date_range(start, periods=NT, freq=STEP),
            "y": (
                "y",
                np.arange(NY) * 1000.0,
                {"units": "m", "standard_name": "projection_y_coordinate"},
            ),
            "x": (
                "x",
                x0 + np.arange(NX) * 1000.0,
                {"units": "m", "standard_name": "projection_x_coordinate"},
            ),
        },
    )


@pytest.fixture()
def files(tmp_path):
    truth_path = tmp_path / "truth.nc"
    ds = _truth_dataset()
    ds.to_netcdf(truth_path)
    arc = ds["precipitation_rate"].assign_coords(crs=ds["crs"])
    issues = arc.time.values[[1, 3]]
    # "persistence": the frame at the issue time; "noisy": the truth plus noise
    pers = np.stack([np.repeat(arc.values[[i]], 3, axis=0) for i in (1, 3)])
    noisy = np.stack([arc.values[i + 1 : i + 4] for i in (1, 3)]) + np.random.default_rng(1).normal(
        0, 0.5, (2, 3, NY, NX)
    )
    paths = {}
    for name, values in (("persistence", pers), ("noisy", noisy)):
        fc = forecast_array(values, issue_times=issues, step=STEP, template=arc)
        paths[name] = write_forecast(fc, tmp_path / f"{name}.nc", method=name)
    return truth_path, paths


def _run(args):
    return CliRunner().invoke(main, ["evaluate", *map(str, args)])


def test_evaluate_end_to_end(files, tmp_path):
    from nowcast.archive import open_archive
    from nowcast.verify import evaluate

    truth, paths = files
    out = tmp_path / "report"
    result = _run(
        [
            "-f",
            paths["persistence"],
            "-f",
            paths["noisy"],
            "--truth",
            truth,
            "--thresholds",
            "2",
            "--scales",
            "1,3",
            "--output",
            out,
        ]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == ["MAE (mm h-1)", "    lead     n  persistence   noisy"]
    assert lines[2].split()[:3] == ["5", "min", "2"]  # two issue times pooled at lead 5 min
    assert "FSS for events >= 2 mm h-1, neighbourhood 3 px (3 km)" in lines
    assert "CSI for events >= 2 mm h-1" in lines and max(len(line) for line in lines) <= 100
    names = sorted(p.name for p in out.iterdir())
    pngs = [n for n in names if n.endswith(".png")]
    assert "scores.csv" in names and "scores.md" in names
    # 4 continuous + 4 categorical x 1 threshold + FSS x 1 threshold x 2 scales
    assert len(pngs) == 10 and "fss_t2_s3.png" in pngs and "csi_t2.png" in pngs
    assert (out / "mae.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "scores.md").read_text()
    assert "## Categorical scores, threshold 2 mm h-1" in md and "| 15 |" in md

    csv = pd.read_csv(out / "scores.csv")
    fcs = {n: read_forecast(p) for n, p in paths.items()}
    expected = evaluate(
        {"persistence": fcs["persistence"], "noisy": fcs["noisy"]},
        open_archive(truth),
        thresholds=(2,),
        scales=(1, 3),
    )
    assert list(csv.columns) == list(expected.columns) and len(csv) == len(expected) == 2 * 3 * (
        4 + 4 + 2
    )
    assert (csv.method == expected.method).all() and (csv.metric == expected.metric).all()
    np.testing.assert_allclose(csv.value, expected.value, rtol=1e-12)
    np.testing.assert_array_equal(csv.lead_time, expected.lead_time)
    # the noisy truth beats persistence on MAE at every lead
    mae = expected[expected.metric == "MAE"].pivot(
        index="lead_time", columns="method", values="value"
    )
    assert (mae["noisy"] < mae["persistence"]).all()
    assert not [
        p for p in tmp_path.iterdir() if p.name.startswith(".")
    ]  # no temporary folders left


def test_same_method_twice_uses_file_names(files, tmp_path):
    truth, paths = files
    copy = tmp_path / "other.nc"
    copy.write_bytes(paths["persistence"].read_bytes())
    out = tmp_path / "r"
    result = _run(
        [
            "-f",
            paths["persistence"],
            "-f",
            copy,
            "--truth",
            truth,
            "--thresholds",
            "1",
            "--scales",
            "1",
            "--no-plots",
            "-o",
            out,
        ]
    )
    assert result.exit_code == 0, result.output
    methods = set(pd.read_csv(out / "scores.csv").method)
    assert methods == {"persistence (persistence)", "persistence (other)"}
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "scores.csv", "scores.md"]


@pytest.mark.parametrize(
    "case, message",
    [
        ("no_overlap", "do not overlap"),
        ("other_grid", "grid"),
        ("unreadable", "cannot read forecast"),
        ("bad_scales", "odd"),
    ],
)
def test_bad_input_one_line_error(files, tmp_path, case, message):
    truth, paths = files
    forecast = paths["persistence"]
    extra = []
    if case == "no_overlap":
        truth = tmp_path / "late.nc"
        _truth_dataset(start="2021-06-02T12:00").to_netcdf(truth)
    elif case == "other_grid":
        truth = tmp_path / "shifted.nc"
        _truth_dataset(x0=500.0).to_netcdf(truth)
    elif case == "unreadable":
        forecast = tmp_path / "broken.nc"
        forecast.write_bytes(b"this is not a NetCDF file")
    elif case == "bad_scales":
        extra = ["--scales", "1,4"]
    out = tmp_path / "report"
    result = _run(["-f", forecast, "--truth", truth, "-o", out, *extra])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_issue_time_range_and_pooled_counts(files, tmp_path):
    truth, paths = files
    out = tmp_path / "r"
    args = ["-f", paths["persistence"], "--truth", truth, "--no-plots", "-o", out]
    result = _run([*args, "--start", "2021-06-01T12:15"])  # the issue times are 12:05, 12:15
    assert result.exit_code == 0, result.output
    csv = pd.read_csv(out / "scores.csv")
    assert set(csv.n_issues) == {1}
    result = _run([*args, "--issue-time", "2021-06-01T12:10"])
    assert result.exit_code == 1 and "Error: issue time 2021-06-01 12:10:00 is in none" in (
        result.output
    )
    # a truth that ends at 12:25: the 12:15 issue time's leads 15 min (12:30) and later are
    # unobserved, so those leads pool one issue time, and the table says so
    short = tmp_path / "short.nc"
    _truth_dataset().isel(time=slice(0, 6)).to_netcdf(short)
    result = _run(["-f", paths["persistence"], "--truth", short, "--no-plots", "-o", out])
    assert result.exit_code == 0, result.output
    csv = pd.read_csv(out / "scores.csv")
    assert dict(csv.groupby("lead_time").n_issues.max()) == {5: 2, 10: 2, 15: 1}
    assert "lead 15 min pooled fewer than 2" in result.output
    assert "past the truth's end, 2021-06-01 12:25" in result.output
