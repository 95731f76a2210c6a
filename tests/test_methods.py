"""Forecast-method registry, persistence, extrapolation and forecast_many."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nowcast import methods
from nowcast.errors import NowcastError
from nowcast.methods import available_methods, base, forecast_many, get_method, register_method

STEP = pd.Timedelta("5min")


def _blobs(ny, nx, shift_x=0.0, shift_y=0.0, *, seed=0, n=12):
    """Gaussian rain cells (mm h-1) translated by (shift_x, shift_y) pixels; < 0.1 set to 0.

    Cells are defined analytically everywhere, so a shifted field is the exact translation
    (including what moves in across the edges).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    out = np.zeros((ny, nx))
    for _ in range(n):
        cx, cy = rng.uniform(-10, nx + 10), rng.uniform(-10, ny + 10)
        sigma, amp = rng.uniform(2, 5), rng.uniform(2, 20)
        out += amp * np.exp(-((xx - shift_x - cx) ** 2 + (yy - shift_y - cy) ** 2) / (2 * sigma**2))
    out[out < 0.1] = 0.0
    return out


def _archive(
    frames, *, units="mm h-1", name="precipitation_rate", start="2021-06-01T12:00", times=None
):
    frames = np.asarray(frames, dtype=np.float32)
    nt, ny, nx = frames.shape
    times = pd.date_range(start, periods=nt, freq=STEP) if times is None else times
    return xr.DataArray(
        frames,
        dims=("time", "y", "x"),
        coords={
            "time": times,
            "y": np.arange(ny) * 1000.0,
            "x": np.arange(nx) * 1000.0,
            "crs": ((), 0, {"grid_mapping_name": "transverse_mercator"}),
        },
        name=name,
        attrs={"units": units, "grid_mapping": "crs", "long_name": "test field"},
    )


def _moving(nt=4, ny=72, nx=88, dx=2.0, dy=1.0):
    return _archive([_blobs(ny, nx, k * dx, k * dy) for k in range(nt)])


# --------------------------------------------------------------------------- registry


def test_registry_lists_and_builds_baselines():
    names = available_methods()
    assert {"persistence", "extrapolation"} <= set(names) and names == sorted(names)
    fc = get_method("extrapolation", t_in=4)
    assert fc.name == "extrapolation" and fc.t_in == 4
    assert isinstance(fc, methods.Forecaster)


def test_unknown_method_and_options():
    with pytest.raises(
        NowcastError,
        match=r"unknown forecast method 'nope' \(available: .*extrapolation.*persistence",
    ):
        get_method("nope")
    with pytest.raises(NowcastError, match="persistence.*takes options step; got t_in"):
        get_method("persistence", t_in=3)
    with pytest.raises(NowcastError, match="t_in >= 2"):
        get_method("extrapolation", t_in=1)


def test_register_method(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))

    @register_method("zeros")
    class Zeros:
        name = "zeros"
        t_in = 2

        def predict(self, past, n_leads):
            step = methods.infer_step(past.time.values)
            return methods.lead_array(np.zeros((n_leads,) + past.shape[1:]), past, step)

    assert "zeros" in available_methods()
    arc = _moving(nt=5, ny=8, nx=9)
    out = forecast_many(get_method("zeros"), arc, [arc.time.values[2]], 3)
    assert out.shape == (1, 3, 8, 9) and not out.values.any()
    with pytest.raises(ValueError, match="already registered"):
        register_method("persistence")(Zeros)


# --------------------------------------------------------------------------- persistence


def test_persistence_exact():
    arc = _moving(nt=3, ny=6, nx=7)
    arc[-1, 0, :2] = np.nan
    out = get_method("persistence").predict(arc, 3)
    assert out.dims == ("lead_time", "y", "x") and out.dtype == np.float32
    assert list(out.lead_time.values) == [np.timedelta64(m, "m") for m in (5, 10, 15)]
    for k in range(3):
        np.testing.assert_array_equal(out.values[k], arc.values[-1])  # NaN included
    assert out.name == arc.name and out.attrs == arc.attrs and "crs" in out.coords
    np.testing.assert_array_equal(out.x, arc.x)
    # one frame: the step must be given
    with pytest.raises(NowcastError, match="single input frame"):
        get_method("persistence").predict(arc.isel(time=[-1]), 2)
    one = get_method("persistence", step="10min").predict(arc.isel(time=[-1]), 2)
    assert list(one.lead_time.values) == [np.timedelta64(10, "m"), np.timedelta64(20, "m")]


# --------------------------------------------------------------------------- extrapolation


def test_extrapolation_follows_translation():
    # Cells move (dx, dy) = (2, 1) pixels per step; the lead-1 extrapolation from frames
    # 0..2 must be much closer to frame 3 than persistence (frame 2) is.
    arc = _moving(nt=4)
    truth = arc.values[3]
    ex = get_method("extrapolation").predict(arc.isel(time=slice(0, 3)), 2)
    assert ex.dims == ("lead_time", "y", "x") and ex.dtype == np.float32
    assert list(ex.lead_time.values) == [np.timedelta64(5, "m"), np.timedelta64(10, "m")]
    mae_ex = np.nanmean(np.abs(ex.values[0] - truth))
    mae_pers = np.mean(np.abs(arc.values[2] - truth))
    assert mae_ex < 0.1 * mae_pers, (mae_ex, mae_pers)
    # only the inflow strip (2 columns, 1 row, + interpolation edge) is unknown
    assert np.isnan(ex.values[0]).mean() < 0.08
    assert ex.attrs == arc.attrs and ex.name == arc.name and "crs" in ex.coords


def test_extrapolation_motion_recovers_velocity():
    arc = _moving(nt=3)
    velocity = get_method("extrapolation").flow.velocity(arc.values.astype(float), "mm h-1")
    assert np.median(velocity[0]) == pytest.approx(2.0, abs=0.1)  # x component, pixels/step
    assert np.median(velocity[1]) == pytest.approx(1.0, abs=0.1)


def test_extrapolation_dry_input_gives_zeros():
    arc = _archive(np.zeros((3, 40, 50)))
    out = get_method("extrapolation").predict(arc, 4)
    assert out.shape == (4, 40, 50) and np.array_equal(out.values, np.zeros((4, 40, 50)))
    # pySTEPS' LK itself gives zero motion when there is nothing to track: on the dBR of a
    # dry field, and when the only echo is one isolated pixel (removed by its opening)
    from nowcast.motion import DBR_ZERO, import_pysteps

    motion, _ = import_pysteps()
    dry = np.full((3, 40, 50), DBR_ZERO)
    assert not motion.get_method("LK")(dry).any()
    speck = dry.copy()
    speck[:, 20, 25] = 10.0
    assert not motion.get_method("LK")(speck).any()
    frames = np.zeros((3, 40, 50))
    frames[:, 20, 25] = 10.0
    out = get_method("extrapolation").predict(_archive(frames), 2)
    np.testing.assert_array_equal(out.values, frames[1:])


def test_extrapolation_keeps_nan_region():
    frames = _moving(nt=3).values.copy()
    frames[:, 30:40, 40:60] = np.nan  # outside radar coverage in every frame
    out = get_method("extrapolation").predict(_archive(frames), 3)
    assert np.isnan(out.values[:, 30:40, 40:60]).all()
    assert np.isfinite(out.values[:, 5:25, 10:80]).all()  # away from the hole and the inflow edge
    all_nan = get_method("extrapolation").predict(_archive(np.full((3, 8, 9), np.nan)), 2)
    assert np.isnan(all_nan.values).all()


def test_extrapolation_temperature_uses_zscore():
    # Temperature in K: the flow runs on the z-scored field and follows the translation too.
    frames = [280.0 + _blobs(72, 88, 2.0 * k, 1.0 * k) / 5 for k in range(4)]
    arc = _archive(frames, units="K", name="t2m")
    fc = get_method("extrapolation")
    assert fc.flow.transform_for(arc.attrs["units"]) == "zscore"
    ex = fc.predict(arc.isel(time=slice(0, 3)), 1)
    mae_ex = np.nanmean(np.abs(ex.values[0] - arc.values[3]))
    mae_pers = np.mean(np.abs(arc.values[2] - arc.values[3]))
    assert mae_ex < 0.1 * mae_pers


def test_extrapolation_too_few_frames():
    arc = _moving(nt=3, ny=10, nx=10)
    with pytest.raises(NowcastError, match="needs 3 input frames, got 2"):
        get_method("extrapolation").predict(arc.isel(time=slice(0, 2)), 2)
    with pytest.raises(NowcastError, match="n_leads"):
        get_method("extrapolation").predict(arc, 0)


def test_pysteps_import_prints_nothing():
    code = "from nowcast.motion import import_pysteps; import_pysteps()"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout == ""


# --------------------------------------------------------------------------- forecast_many


def test_forecast_many_persistence_and_errors():
    arc = _moving(nt=6, ny=6, nx=7)
    issues = arc.time.values[[0, 3]]  # issue at the first frame: t_in 1 still works
    out = forecast_many(get_method("persistence"), arc, issues, 2)
    assert out.dims == ("issue_time", "lead_time", "y", "x") and out.shape == (2, 2, 6, 7)
    np.testing.assert_array_equal(out.values[1, 1], arc.values[3])
    np.testing.assert_array_equal(out.values[0, 0], arc.values[0])
    assert out.valid_time.values[1, 1] == arc.time.values[5]
    assert out.attrs["units"] == "mm h-1" and "crs" in out.coords

    with pytest.raises(NowcastError, match="issue time 2021-06-01 13:00:00 is outside the archive"):
        forecast_many(get_method("persistence"), arc, ["2021-06-01T13:00"], 2)
    with pytest.raises(NowcastError, match=r"input frame 2021-06-01 11:55:00 .* is missing"):
        forecast_many(get_method("extrapolation"), arc, [arc.time.values[1]], 2)
    gappy = arc.drop_isel(time=2)
    with pytest.raises(
        NowcastError,
        match=r"input frame 2021-06-01 12:10:00 \(for issue time 2021-06-01 12:20:00\) is missing",
    ):
        forecast_many(get_method("extrapolation"), gappy, [arc.time.values[4]], 2)


def test_forecast_many_matches_predict():
    arc = _moving(nt=5, ny=40, nx=48)
    fc = get_method("extrapolation")
    many = forecast_many(fc, arc, arc.time.values[[2, 4]], 2)
    direct = fc.predict(arc.isel(time=slice(2, 5)), 2)
    np.testing.assert_array_equal(many.values[1], direct.values)
    np.testing.assert_array_equal(many.lead_time.values, direct.lead_time.values)


def test_forecaster_defaults_and_forecast_and_write(tmp_path):
    from nowcast.methods import Forecaster, forecast_and_write
    from nowcast.products import read_forecast

    class Twice(Forecaster):
        name = "twice"
        t_in = 1

        def predict(self, past, n_leads):
            step = methods.infer_step(past.time.values[-2:])
            return methods.lead_array(np.repeat(2 * past.values[-1:], n_leads, 0), past, step)

    fc = Twice()
    assert fc.describe() is None and fc.step is None and fc.t_out is None
    assert dict(fc.metadata) == {} and fc.check_compatible(_moving(nt=2)) is None
    assert isinstance(fc, methods.Forecaster)
    arc = _moving(nt=4, ny=6, nx=7)
    out, path = forecast_and_write(fc, arc, arc.time.values[[2, 3]], 2, tmp_path / "f.nc")
    np.testing.assert_array_equal(out.values[1, 0], 2 * arc.values[3])
    back = read_forecast(path)
    assert back.attrs["nowcast_method"] == "twice" and back.shape == (2, 2, 6, 7)
    pers = get_method("persistence")
    _, path = forecast_and_write(pers, arc, arc.time.values[[3]], 1, tmp_path / "p.nc")
    with xr.open_dataset(path) as ds:
        assert "t_in" in ds.attrs["nowcast_method_options"]  # describe() is the file metadata


def test_empty_leads_are_found_per_issue_time_and_warned_once():
    from nowcast.methods.missing import EmptyLeadsWarning, empty_fields, warn_empty_leads

    values = np.ones((3, 4, 5, 6), dtype=np.float32)
    values[1, 2:] = np.nan  # issue 1: leads 3 and 4 empty
    values[2, 3] = np.nan  # issue 2: lead 4 empty
    values[0, 1, :, :-1] = np.nan  # one value left: not empty
    empty = empty_fields(values)
    assert empty.tolist() == [
        [False, False, False, False],
        [False, False, True, True],
        [False, False, False, True],
    ]
    issues = pd.date_range("2020-10-31T06:00", periods=3, freq="10min")
    forecast = xr.DataArray(
        values,
        dims=("issue_time", "lead_time", "y", "x"),
        coords={"issue_time": issues, "lead_time": pd.to_timedelta([10, 20, 30, 40], "min")},
        attrs={"units": "mm h-1"},
    )
    with pytest.warns(EmptyLeadsWarning) as record:
        warn_empty_leads(forecast)
    assert len(record) == 1
    assert str(record[0].message).startswith(
        "issue time 2020-10-31 06:10 (and 1 more issue time(s)): no value at lead(s) 30, 40 min"
        ", every pixel NaN: the rain there would come"
    )
    with pytest.warns(EmptyLeadsWarning, match="NaN: the values there would come from beyond"):
        warn_empty_leads(forecast.assign_attrs(units="K"))  # not rain: a temperature
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_empty_leads(forecast.isel(issue_time=[0]))
        warn_empty_leads(forecast.transpose("x", "lead_time", "y", "issue_time").isel(
            issue_time=[0]))  # fmt: skip
