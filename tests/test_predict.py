"""`nowcast predict`: CF output on the input grid, shipped model, clear errors, no partial files."""

from __future__ import annotations

import shutil

import netCDF4
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from nowcast.cli import main
from nowcast.config import load_config

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny model trained for a few steps on a synthetic 5-minute archive, coarsened by 2."""
    from nowcast.archive.synthetic import write_synthetic_archive
    from nowcast.training import train

    root = tmp_path_factory.mktemp("predict")
    archive = write_synthetic_archive(root / "a.nc", n_times=30, ny=30, nx=26, seed=2)[0]
    cfg = load_config(
        None,
        [
            f"data.events=[{archive}]",
            "preprocess.coarsen=2",
            "sampler.t_in=3",
            "sampler.t_out=2",
            "sampler.patch_size=8",
            "sampler.batch_size=4",
            "sampler.split.validation=0.3",
            "model.filters=[4]",
            "model.downsample=2",
            "train.epochs=1",
            "train.steps_per_epoch=2",
            "train.validation_steps=1",
        ],
    )
    train(cfg, run_dir=root / "run", verbose=0, echo=lambda m: None)
    return root / "run", archive


def _predict(args):
    return CliRunner().invoke(main, ["predict", *args])


def test_predict_writes_cf_forecast_on_the_input_grid(tiny_run, tmp_path):
    from nowcast.archive import open_archive
    from nowcast.products import read_forecast

    run, archive = tiny_run
    times = pd.DatetimeIndex(open_archive(archive).time.values)
    out = tmp_path / "fc.nc"
    res = _predict(
        [
            "--model",
            str(run),
            "-i",
            str(archive),
            "--issue-time",
            str(times[10]),
            "--issue-time",
            str(times[12]),
            "--leads",
            "5",
            "-o",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.output
    fc = read_forecast(out)
    assert fc.shape == (2, 5, 30, 26)  # coarsening undone: the input grid, odd sizes included
    assert fc.attrs["units"] == "mm h-1" and fc.attrs["nowcast_method"] == "convlstm"
    assert np.isfinite(fc.values).all() and (fc.values >= 0).all()
    assert fc.valid_time.values[1, 0] == times[13]
    with netCDF4.Dataset(out) as nc:
        assert nc.nowcast_model == "run" and "time_step_seconds" in nc.nowcast_model_training
        assert nc.nowcast_network_block == "2 x 2 input pixels"  # its training coarsening
    info = CliRunner().invoke(main, ["info", str(out)])
    assert "network:" in info.output and "on blocks of 2 x 2 input pixels" in info.output


def test_predict_keeps_nan_outside_coverage(tiny_run, tmp_path):
    from nowcast.archive.synthetic import write_synthetic_archive
    from nowcast.products import read_forecast

    run, _ = tiny_run
    archive = write_synthetic_archive(
        tmp_path / "nan.nc", n_times=12, ny=30, nx=26, seed=4, nan_fraction=0.3
    )[0]
    out = tmp_path / "fc.nc"
    res = _predict(
        [
            "--model",
            str(run),
            "-i",
            str(archive),
            "--issue-time",
            "2021-06-01T12:40",
            "-o",
            str(out),
        ]
    )
    if res.exit_code != 0 and "outside the archive" in res.output:
        pytest.fail(res.output)
    assert res.exit_code == 0, res.output
    from nowcast.archive import open_archive

    last = open_archive(archive).sel(time="2021-06-01T12:40").values
    fc = read_forecast(out).values[0]
    assert np.isnan(last).any()
    assert (np.isnan(fc) == np.isnan(last)[None]).all()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--issue-time", "2030-01-01T00:00"], "outside the archive"),
        (["--issue-time", "2021-06-01T12:05"], "missing from the archive"),
    ],
)
def test_predict_errors_leave_no_file(tiny_run, tmp_path, extra, message):
    run, archive = tiny_run
    out = tmp_path / "fc.nc"
    res = _predict(["--model", str(run), "-i", str(archive), *extra, "-o", str(out)])
    assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output
    assert not out.exists() and not list(tmp_path.iterdir())


def test_predict_refuses_other_time_step_and_variable(tiny_run, tmp_path, shared_data):
    run, _ = tiny_run
    out = tmp_path / "fc.nc"
    res = _predict(
        [
            "--model",
            str(run),
            "-i",
            str(shared_data / "radar" / "bom-66-2020-10-31"),
            "--issue-time",
            "2020-10-31T02:00",
            "-o",
            str(out),
        ]
    )
    assert res.exit_code == 1 and "5 min time step" in res.output and "10 min" in res.output
    res = _predict(
        [
            "--model",
            str(run),
            "-i",
            str(shared_data / "era5" / "era5-t2m-2019-03-uk.nc"),
            "--issue-time",
            "2019-03-10T12:00",
            "-o",
            str(out),
        ]
    )
    assert res.exit_code == 1 and "Error:" in res.output and "Traceback" not in res.output
    assert not out.exists()


@pytest.mark.slow
def test_predict_whole_fmi_grid(tiny_run, tmp_path, shared_data):
    """The full 1226 x 760 FMI domain in one piece (fully convolutional, padded, cropped back)."""
    from nowcast.products import read_forecast

    run, _ = tiny_run
    out = tmp_path / "fmi.nc"
    res = _predict(
        [
            "--model",
            str(run),
            "-i",
            str(shared_data / "radar" / "fmi-2016-09-28.nc"),
            "--issue-time",
            "2016-09-28T16:00",
            "--leads",
            "2",
            "-o",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.output
    fc = read_forecast(out)
    assert fc.shape == (1, 2, 1226, 760)
    assert (
        fc.attrs["grid_mapping"] == "crs"
        and fc.crs.attrs["grid_mapping_name"] == "polar_stereographic"
    )


def test_baseline_methods_share_the_interface(tmp_path, shared_data):
    from nowcast.products import read_forecast

    src = shared_data / "radar" / "mch-2016-07-11.nc"
    outs = {}
    for method in ("persistence", "extrapolation"):
        outs[method] = tmp_path / f"{method}.nc"
        res = _predict(
            [
                "--method",
                method,
                "-i",
                str(src),
                "--issue-time",
                "2016-07-11T21:30",
                "--leads",
                "3",
                "-o",
                str(outs[method]),
            ]
        )
        assert res.exit_code == 0, res.output
    p, e = (read_forecast(outs[m]) for m in ("persistence", "extrapolation"))
    assert p.shape == e.shape == (1, 3, 640, 710)
    assert (
        p.attrs["nowcast_method"] == "persistence" and e.attrs["nowcast_method"] == "extrapolation"
    )
    res = _predict(
        [
            "--method",
            "persistence",
            "--model",
            "x",
            "-i",
            str(src),
            "--issue-time",
            "2016-07-11T21:30",
            "-o",
            str(tmp_path / "z.nc"),
        ]
    )
    assert res.exit_code == 1 and "--model is for the convlstm method" in res.output


@pytest.mark.slow
def test_shipped_radar_model(tmp_path, shared_data):
    """`--model radar-5min` works after install, on a held-out event, on its 640 x 710 grid."""
    from nowcast.products import read_forecast
    from nowcast.trained.catalogue import packaged_models

    assert "radar-5min" in packaged_models()
    src = tmp_path / "mch.nc"
    shutil.copy(shared_data / "radar" / "mch-2016-07-11.nc", src)
    before = src.read_bytes()
    out = tmp_path / "fc.nc"
    res = _predict(
        [
            "--model",
            "radar-5min",
            "-i",
            str(src),
            "--issue-time",
            "2016-07-11T21:30",
            "-o",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.output
    fc = read_forecast(out)
    assert fc.shape == (1, 12, 640, 710)
    valid = np.isfinite(fc.values)
    assert valid.any() and (fc.values[valid] >= 0).all()
    assert src.read_bytes() == before  # inputs are never modified


def test_the_network_runs_on_pixels_of_its_training_size(tiny_run):
    """tiny_run's network saw 2 km pixels (1 km synthetic data coarsened by 2): a 500 m
    input is averaged in 4 x 4 blocks, a 1 km one in 2 x 2 (as before), a 2 km one not at
    all; the forecast is on the input grid in every case."""
    from nowcast.archive.synthetic import synthetic_rain
    from nowcast.methods.convlstm import ConvLSTMForecaster
    from nowcast.trained.metadata import network_spacing_m

    run, _ = tiny_run
    fc = ConvLSTMForecaster(run)
    assert network_spacing_m(fc.metadata) == pytest.approx(2000.0)
    seen = []
    network = fc._network

    def spy(x, *args, **kwargs):
        seen.append(x.shape[-3:-1])
        return network(x, *args, **kwargs)

    fc._network = spy
    for spacing, factor in ((500.0, 4), (1000.0, 2), (2000.0, 1), (1400.0, 1)):
        past = synthetic_rain(n_times=4, ny=40, nx=36, seed=3, spacing=spacing)
        assert fc.network_factor(past) == factor
        seen.clear()
        out = fc.predict(past, 2)
        assert seen[0] == (40 // factor, 36 // factor)
        assert out.shape == (2, 40, 36) and np.isfinite(out.values).all()
        assert (out.values >= 0).all()


def test_network_factor_and_grid_spacing():
    import xarray as xr

    from nowcast.geo import grid_spacing_m
    from nowcast.methods.network_grid import block_factor
    from nowcast.trained.metadata import network_spacing_m

    spacings = (1000.0, 700.0, 500.0, 450.0, 400.0, 250.0, 2000.0)
    assert [block_factor(1000.0, s) for s in spacings] == [1, 1, 2, 2, 3, 4, 1]
    km = xr.DataArray(
        np.zeros((3, 4)),
        dims=("y", "x"),
        coords={"y": ("y", [0.0, 0.5, 1.0], {"units": "km"}), "x": ("x", [0, 1, 2, 3.0], {})},
    )
    assert grid_spacing_m(km) == pytest.approx((500.0 + 1.0) / 2)
    degrees = km.assign_coords(y=("y", [0.0, 0.5, 1.0], {"units": "degrees_north"}))
    assert grid_spacing_m(degrees) is None
    # recorded, or read off a legacy model's coordinate spacings when they are metres
    assert network_spacing_m({"grid_spacing_m": 1500.0}) == 1500.0
    assert network_spacing_m({"grid_spacing": [[1000.0, 1000.0], [999.0, 1001.0]]}) == 1000.0
    assert network_spacing_m({"grid_spacing": [0.01, 0.01]}) is None  # degrees: unknown
    # a Lagrangian model on a small 500 m domain: finer blocks so the flow keeps 16 pixels
    from nowcast.archive.synthetic import synthetic_rain
    from nowcast.methods.convlstm import ConvLSTMForecaster

    lagrangian = ConvLSTMForecaster("radar-5min")
    for side, factor in ((40, 2), (32, 2), (31, 1), (25, 1)):
        grid = synthetic_rain(n_times=2, ny=side, nx=side + 3, seed=1, spacing=500.0)
        assert lagrangian.network_factor(grid) == factor
    assert network_spacing_m({}) is None
    per_event = {"grid_spacing": None, "training": {"events": [{"grid_spacing": [2000.0] * 2}]}}
    assert network_spacing_m(per_event) == 2000.0


def test_upsampling_keeps_unknown_blocks_unknown():
    """A NaN block of the network's grid (rain moved in from beyond the grid) is NaN over
    its pixels of the input grid, not dry; the rest is the bilinear zoom, edge-padded."""
    from nowcast.methods.network_grid import upsample

    coarse = np.ones((2, 3, 4), dtype=np.float32)
    coarse[:, 0, 0] = np.nan
    coarse[1, 2, 3] = np.nan
    out = upsample(coarse, 2, (7, 9))  # odd sizes: the trimmed edge repeats the last pixel
    assert out.shape == (2, 7, 9)
    expected = np.zeros((2, 7, 9), dtype=bool)
    expected[:, :2, :2] = True
    expected[1, 4:, 6:] = True  # the last block and the trimmed row/column beside it
    assert (np.isnan(out) == expected).all()
    assert np.allclose(out[0, 4:, 4:], 1.0)  # away from the NaN blocks: unchanged


def test_the_cap_on_rain_is_smoothed_and_never_below_an_input_at_its_pixel():
    """The flat cap (temperature) is the largest input within a square; a rain model's is
    that maximum smoothed (no square plateaus in upper quantiles and members), never below
    an input at its own pixel."""
    from scipy import ndimage

    from nowcast.methods.network_grid import CAP_RADIUS, local_maximum, smooth_cap

    rng = np.random.default_rng(0)
    inputs = rng.gamma(0.3, 1.0, size=(3, 48, 40)).astype("float32")
    flat = local_maximum(inputs)
    expected = ndimage.maximum_filter(inputs.max(axis=0), size=2 * CAP_RADIUS + 1, mode="nearest")
    np.testing.assert_array_equal(flat, expected)
    assert (local_maximum(inputs, smooth=True) >= inputs.max(axis=0)).all()
    one = np.zeros((1, 41, 41), "float32")
    one[0, 20, 20] = 2.0
    square, hill = local_maximum(one), local_maximum(one, smooth=True)
    assert (square[12:29, 12:29] == 2.0).all() and square[11, 20] == 0.0  # a flat square
    assert hill[20, 20] == 2.0 and np.all(np.diff(hill[20, 20:]) <= 0)  # falls off ...
    assert hill[20, 28] < hill[20, 24] < 2.0 and hill[20, 30] > 0  # ... smoothly, no edge
    assert hill[12, 12] < hill[20, 12]  # rounded: a corner lower than a side
    assert smooth_cap("precipitation") and not smooth_cap("temperature")
