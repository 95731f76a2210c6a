"""Series (nowcast.series) on synthetic series: windows and gaps, station files and their bad
inputs, the baselines against analytic values, Holt-Winters against statsmodels, the
network's shapes, forecast files and scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nowcast.errors import NowcastError
from nowcast.series.data import make_series, valid_windows, window_starts
from nowcast.series.forecast import forecast_series
from nowcast.series.methods import get_series_method, lagged_values
from nowcast.series.products import read_series_forecast, write_series_forecast
from nowcast.series.readers import convert_units, read_csv, read_netcdf
from nowcast.series.scores import evaluate_series

HOUR = pd.Timedelta("1h")


def _series(values, start="2019-03-01T00:00", names=None, times=None, units="K"):
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if times is None:
        times = pd.date_range(start, periods=values.shape[1], freq="1h")
    names = names or [f"s{i}" for i in range(len(values))]
    return make_series(
        values,
        times,
        names=names,
        variable="t2m",
        units=units,
        latitude=np.arange(len(names)) + 50.0,
        longitude=np.zeros(len(names)),
    )


# --------------------------------------------------------------------------- windows and gaps


def test_windows_never_cross_a_gap_or_a_split():
    times = pd.date_range("2019-03-01", periods=10, freq="1h").append(
        pd.date_range("2019-03-01T12:00", periods=6, freq="1h")
    )  # a 3-hour gap after index 9
    starts = window_starts(times, 4)
    assert list(starts) == [0, 1, 2, 3, 4, 5, 6, 10, 11, 12]
    for s in starts:  # every window is evenly spaced
        assert (np.diff(times[s : s + 4]) == np.timedelta64(1, "h")).all()
    labels = np.array([0] * 8 + [1] * 8)
    starts = window_starts(times, 4, labels=labels)
    assert all(len(set(labels[s : s + 4])) == 1 for s in starts)
    assert list(starts) == [0, 1, 2, 3, 4, 10, 11, 12]
    assert window_starts(times[:3], 4).size == 0  # shorter than a window


def test_an_odd_shorter_step_breaks_a_run():
    times = pd.DatetimeIndex(
        [
            "2019-03-01T00:00",
            "2019-03-01T01:00",
            "2019-03-01T01:30",
            "2019-03-01T02:30",
            "2019-03-01T03:30",
            "2019-03-01T04:30",
        ]
    )
    assert list(window_starts(times, 2)) == [0, 2, 3, 4]


def test_valid_windows_skip_missing_values():
    values = np.arange(20, dtype=np.float32).reshape(2, 10)
    values[1, 4] = np.nan
    rows = valid_windows(values, window_starts(pd.date_range("2019", periods=10, freq="h"), 3), 3)
    assert len(rows) == 8 + 5
    assert not any(st == 1 and s <= 4 < s + 3 for st, s in rows)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("times", "message"),
    [
        (["2019-03-01T00:00", "2019-03-01T01:00", "2019-03-01T01:00"], "given twice"),
        (["2019-03-01T00:00", "2019-03-01T02:00", "2019-03-01T01:00"], "not in order"),
    ],
)
def test_series_times_must_increase(times, message):
    with pytest.raises(NowcastError, match=message):
        make_series([[1, 2, 3]], pd.DatetimeIndex(times), names=["a"], variable="v", units="K")


def test_series_needs_units_and_numbers():
    times = pd.date_range("2019", periods=3, freq="h")
    with pytest.raises(NowcastError, match="units .* are missing"):
        make_series([[1, 2, 3]], times, names=["a"], variable="v", units=None)
    with pytest.raises(NowcastError, match="not numbers"):
        make_series([["1", "x", "3"]], times, names=["a"], variable="v", units="K")


def _write(tmp_path, text, name="obs.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_units_in_header_or_given(tmp_path):
    path = _write(
        tmp_path,
        "# a station\ntime,t2m (K)\n2019-03-01T00:00,280\n"
        "2019-03-01T01:00Z,281.5\n2019-03-01T03:00+01:00,\n",
    )
    s = read_csv(path)
    assert s.units == "K" and s.variable == "t2m" and s.names == ("obs",)
    assert s.values.shape == (1, 3)  # 03:00+01:00 is 02:00 UTC, its value missing
    assert np.isnan(s.values[0, 2]) and s.times[2] == pd.Timestamp("2019-03-01T02:00")
    plain = _write(tmp_path, "time,value\n2019-03-01T00:00,7\n2019-03-01T01:00,8\n", "p.csv")
    assert read_csv(plain, units="degC").units == "degC"
    with pytest.raises(NowcastError, match=r"p.csv: the units of 'value' are missing"):
        read_csv(plain)
    assert convert_units(read_csv(plain, units="degC"), "K").values[0, 0] == pytest.approx(280.15)


def test_csv_named_column_and_stations(tmp_path):
    path = _write(
        tmp_path,
        "station,latitude,longitude,time,t2m [K],rh [%]\n"
        "A,51.5,-0.1,2019-03-01T00:00,280,80\nA,51.5,-0.1,2019-03-01T01:00,281,81\n"
        "B,55.9,-3.2,2019-03-01T00:00,275,90\nB,55.9,-3.2,2019-03-01T01:00,276,91\n",
    )
    s = read_csv(path, column="t2m")
    assert s.names == ("A", "B") and s.latitude.tolist() == [51.5, 55.9]
    assert s.values.tolist() == [[280, 281], [275, 276]]
    assert read_csv(path, column="RH").units == "%"
    with pytest.raises(NowcastError, match=r"no column 'wind' \(value columns: t2m, rh\)"):
        read_csv(path, column="wind")
    with pytest.raises(NowcastError, match="choose the value column with --column"):
        read_csv(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("2019-03-01T00:00,280\n2019-03-01T01:00,warm\n", r"line 3: t2m 'warm' is not a number"),
        (
            "2019-03-01T00:00,280\n2019-03-01T00:00,281\n",
            r"line 3: time 2019-03-01T00:00 is given twice",
        ),
        ("2019-03-01T01:00,280\n2019-03-01T00:00,281\n", r"line 3: times are not in order"),
        ("2019-03-01T00:00,280\nyesterday,281\n", r"line 3: 'yesterday' is not a time"),
    ],
)
def test_csv_bad_rows_are_named(tmp_path, body, message):
    path = _write(tmp_path, "time,t2m (K)\n" + body)
    with pytest.raises(NowcastError, match=message):
        read_csv(path)


def test_timeseries_netcdf_roundtrip(tmp_path):
    times = pd.date_range("2019-03-01", periods=5, freq="h")
    ds = xr.Dataset(
        {
            "t2m": (("station", "time"), np.arange(10.0).reshape(2, 5), {"units": "K"}),
            "station_name": ("station", ["A", "B"], {"cf_role": "timeseries_id"}),
            "latitude": ("station", [51.0, 52.0]),
            "longitude": ("station", [0.0, 1.0]),
        },
        coords={"time": times},
        attrs={"featureType": "timeSeries"},
    )
    ds.to_netcdf(tmp_path / "st.nc")
    s = read_netcdf(tmp_path / "st.nc")
    assert s.names == ("A", "B") and s.units == "K" and s.values[1, 4] == 9
    ds.drop_attrs().to_netcdf(tmp_path / "grid.nc")
    with pytest.raises(NowcastError, match="not a CF featureType timeSeries"):
        read_netcdf(tmp_path / "grid.nc")


# --------------------------------------------------------------------------- baselines


def _daily(n=24 * 6, slope=0.0):
    t = np.arange(n)
    return 280 + 5 * np.sin(2 * np.pi * t / 24) + slope * t


def test_persistence_and_diurnal_analytic():
    s = _series([_daily(), _daily(slope=0.1)])
    idx = np.array([48, 60, 100])
    pers = get_series_method("persistence").forecast(s, idx, 6)
    assert np.allclose(pers, s.values[:, idx][:, :, None])
    truth = np.stack([s.values[:, idx + j] for j in range(1, 7)], axis=-1)
    diurnal = get_series_method("diurnal").forecast(s, idx, 6)
    assert np.allclose(diurnal[0], truth[0], atol=1e-4)  # a pure daily cycle: exact
    assert np.allclose(diurnal[1] - truth[1], -2.4, atol=1e-3)  # misses a day of trend
    tend = get_series_method("diurnal-tendency").forecast(s, idx, 6)
    assert np.allclose(tend, truth, atol=1e-3)  # daily cycle + linear trend: exact
    assert np.allclose(
        pers[1] - truth[1],
        -(
            5 * np.sin(2 * np.pi * (idx[:, None] + np.arange(1, 7)) / 24)
            - 5 * np.sin(2 * np.pi * idx[:, None] / 24)
        )
        - 0.1 * np.arange(1, 7),
        atol=1e-3,
    )


def test_leads_past_a_day_use_the_last_day_observed():
    s = _series([_daily()])
    out = get_series_method("diurnal").forecast(s, np.array([60]), 30)
    want = s.values[0, 60 + np.arange(1, 31) - 24 * np.where(np.arange(1, 31) > 24, 2, 1)]
    assert np.allclose(out[0, 0], want)


@pytest.mark.parametrize("name", ["persistence", "diurnal", "diurnal-tendency", "ets"])
def test_methods_read_nothing_after_the_issue_time(name):
    rng = np.random.default_rng(0)
    base = _daily(24 * 8) + rng.normal(0, 0.3, 24 * 8)
    changed = base.copy()
    changed[150:] += 10
    idx = np.array([100, 149])
    a = get_series_method(name, **({"fit_end": "2019-03-05"} if name == "ets" else {}))
    b = get_series_method(name, **({"fit_end": "2019-03-05"} if name == "ets" else {}))
    fa = a.forecast(_series([base]), idx, 6)
    fb = b.forecast(_series([changed]), idx, 6)
    assert np.isfinite(fa).all() and np.allclose(fa, fb)


def test_lagged_values_across_a_gap_are_missing():
    times = pd.date_range("2019-03-01", periods=30, freq="h").delete([20])
    s = _series([np.arange(29.0)], times=times)
    out = lagged_values(s, np.array([25]), [pd.Timedelta(0), -5 * HOUR, -6 * HOUR])
    # index 25 is 26:00 (20:00 is missing): 21:00 is index 20, 20:00 is not there
    assert out[0, 0, 0] == 25 and out[0, 0, 1] == 20 and np.isnan(out[0, 0, 2])


def test_ets_states_match_statsmodels():
    pytest.importorskip("statsmodels")
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    from nowcast.series.ets import fit_station, run_states

    rng = np.random.default_rng(1)
    y = _daily(24 * 10, slope=0.02) + rng.normal(0, 0.4, 24 * 10)
    params = fit_station(y, 24)
    res = ExponentialSmoothing(
        y,
        trend="add",
        damped_trend=True,
        seasonal="add",
        seasonal_periods=24,
        initialization_method="heuristic",
    ).fit()
    level, trend, season = run_states(params[None], y[None], 24)
    assert np.allclose(level[0], res.level, atol=1e-6)
    method = get_series_method("ets", fit_end="2019-03-10T23:00")
    out = method.forecast(_series([y]), np.array([len(y) - 1]), 30)[0, 0]
    # the same forecast (the series is stored as float32), except at lead m = 24, where
    # statsmodels takes the season term of a day before the last update (its out-of-sample
    # seasons are copied from s[n - 1 + j % m]); ours takes the updated one, as the textbook
    # formula s_{t + h - m} (Hyndman & Athanasopoulos, 8.3)
    lead = np.arange(1, 31)
    assert np.allclose(out[lead != 24], res.forecast(30)[lead != 24], atol=1e-4)
    l_t, b_t, phi = level[0, -1], trend[0, -1], params[3]
    assert out[23] == pytest.approx(l_t + sum(phi**k for k in range(1, 25)) * b_t + season[0, -1])


# --------------------------------------------------------------------------- network


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_network_shapes(cell, strategy, torch_single_thread):
    from nowcast.config import SeriesConfig
    from nowcast.series.network import build_series_model, encode_windows, time_features

    cfg = SeriesConfig(cell=cell, hidden=(8, 4), dropout=0.2, head=(5,), strategy=strategy)
    model = build_series_model(cfg, t_in=12, t_out=6, n_features=6)
    times = pd.date_range("2019-03-01", periods=12, freq="h")
    feats = np.broadcast_to(time_features(times), (3, 12, 4))
    x = encode_windows(np.full((3, 12), 280.0), feats, 280.0, 5.0)
    assert x.shape == (3, 12, 6)
    out = np.asarray(model.predict(x, verbose=0))
    assert out.shape == (3, 6 if strategy == "direct" else 1)
    assert np.allclose(out, 0)  # the head starts at zero: persistence
    assert {layer.name for layer in model.layers} >= {f"{cell}_1", f"{cell}_2", "head"}
    hour = time_features(pd.DatetimeIndex(["2019-03-01T06:00"]))[0]
    assert hour[0] == pytest.approx(1.0) and hour[1] == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------- files and scores


def test_forecast_file_roundtrip(tmp_path):
    s = _series([_daily(), _daily(slope=0.1)], names=["London", "Edinburgh"])
    fc = forecast_series(get_series_method("diurnal-tendency"), s, s.times[[30, 40]], 6)
    paths = write_series_forecast(fc, tmp_path / "fc.nc")
    assert [p.name for p in paths] == ["fc.nc", "fc.csv"]
    back = read_series_forecast(tmp_path / "fc.nc")
    assert (
        np.allclose(back.values, fc.values) and back.attrs["nowcast_method"] == "diurnal-tendency"
    )
    assert list(back["station"].values) == ["London", "Edinburgh"]
    ds = xr.open_dataset(tmp_path / "fc.nc")
    assert ds.attrs["featureType"] == "timeSeries"
    assert ds["station_name"].attrs["cf_role"] == "timeseries_id"
    assert ds["issue_time"].attrs["standard_name"] == "forecast_reference_time"
    assert ds["lead_time"].attrs["standard_name"] == "forecast_period"
    assert ds["t2m"].dims == ("station", "issue_time", "lead_time")
    table = pd.read_csv(tmp_path / "fc.csv")
    assert len(table) == 2 * 2 * 6 and table["lead_minutes"].max() == 360
    assert table.loc[0, "station"] == "London" and table.loc[0, "issue_time"].endswith("Z")


def test_scores_pooled_analytic():
    s = _series([_daily(), _daily(slope=0.1)])
    fc = forecast_series(get_series_method("persistence"), s, s.times[[30, 40, 50]], 3)
    plus = fc.copy(
        data=np.stack([s.values[:, [30 + j, 40 + j, 50 + j]] for j in (1, 2, 3)], -1) + 1.0
    )
    plus.attrs["nowcast_method"] = "plus-one"
    scores = evaluate_series({"persistence": fc, "plus-one": plus}, s)
    one = scores[scores.method == "plus-one"].set_index(["metric", "lead_time"])["value"]
    assert np.allclose([one["MAE", 60], one["RMSE", 120], one["bias", 180]], 1.0, atol=1e-5)
    assert (scores["n_issues"] == 3).all()
    err = np.stack(
        [s.values[:, [30, 40, 50]] - s.values[:, [30 + j, 40 + j, 50 + j]] for j in (1, 2, 3)], -1
    )
    rmse = scores[(scores.method == "persistence") & (scores.metric == "RMSE")]["value"].to_numpy()
    assert np.allclose(rmse, np.sqrt((err**2).mean(axis=(0, 1))), atol=1e-4)


def test_strict_forecast_refuses_issue_times_without_history():
    s = _series([_daily(30)])
    with pytest.raises(
        NowcastError,
        match=r"holds 11 times; diurnal needs 25 \(its input window: the issue time and 24 h",
    ):
        forecast_series(get_series_method("diurnal"), s.until(s.times[10]), s.times[[5]], 6)
    with pytest.raises(
        NowcastError,
        match="issue time 2019-03-01T05:00: no station has the 25 values up to it without a gap",
    ):
        forecast_series(get_series_method("diurnal"), s, s.times[[5]], 6)
    with pytest.raises(NowcastError, match="is not a time of the series"):
        forecast_series(get_series_method("persistence"), s, ["2019-04-01T00:00"], 6)
