"""Verification scores: hand-worked examples, pooling over issue times, pySTEPS on real data."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nowcast.errors import NowcastError
from nowcast.products import forecast_array
from nowcast.verify import COLUMNS, evaluate
from nowcast.verify.metrics import CSI, ETS, FAR, FSS, POD, ContingencyTable, FSSSums

STEP = pd.Timedelta("5min")
nan = np.nan

# ---------------------------------------------------------------------------------- hand example
# Issue 1 (3 x 3), one lead time. The NaNs remove (1,1) (forecast NaN; obs 7 would be a miss
# at threshold 1) and (1,2) (obs NaN; forecast 6 would be a false alarm).
F1 = np.array([[0, 2, 4], [1, nan, 6], [0, 3, 0]])
O1 = np.array([[0, 1, 5], [2, 7, nan], [0, 0, 1]])
# 7 valid pairs (f, o): (0,0) (2,1) (4,5) (1,2) (0,0) (3,0) (0,1)
# errors f - o:          0     1    -1    -1     0     3    -1
#   sum = 1 -> bias = 1/7;  sum |e| = 7 -> MAE = 1;  sum e^2 = 13 -> RMSE = sqrt(13/7)
#   sum f = 10, sum o = 9, sum f^2 = 30, sum o^2 = 31, sum fo = 24, n = 7
#   r = (24 - 10*9/7) / sqrt((30 - 100/7)(31 - 81/7)) = (78/7) / sqrt(110/7 * 136/7)
#     = 78/sqrt(14960)
# Events at threshold 1 (value >= 1; obs 1 at (0,1) is an event):
#   f: n y y y n y n     o: n y y y n n y
#   -> H = 3 ((0,1) (0,2) (1,0)), M = 1 ((2,2)), F = 1 ((2,1)), CN = 2, N = 7
#   CSI = 3/5, POD = 3/4, FAR = 1/4, Hr = 4*4/7 = 16/7, ETS = (3 - 16/7)/(5 - 16/7) = 5/19
# Threshold 5: no forecast event among valid pairs, obs 5 at (0,2) -> H=0 M=1 F=0 CN=6:
#   CSI = 0, POD = 0, FAR = 0/0 -> NaN, Hr = 1*0/7 = 0, ETS = 0/1 = 0
# Threshold 10: no events at all -> CSI, POD, FAR, ETS all NaN.
#
# Issue 2: forecast all 0 (NaN at (2,2)), obs all 0 except 2 at (0,0); 8 valid pairs.
F2 = np.array([[0, 0, 0], [0, 0, 0], [0, 0, nan]])
O2 = np.array([[2, 0, 0], [0, 0, 0], [0, 0, 0]])
#   errors: -2 once -> n = 8, sum e = -2, sum |e| = 2, sum e^2 = 4
#   threshold 1: H=0 M=1 F=0 CN=7 (CSI 0, POD 0 alone)
# Pooled over both issue times (n = 15):
#   bias = (1 - 2)/15 = -1/15, MAE = (7 + 2)/15 = 0.6 (mean of per-time MAEs would be 0.625),
#   RMSE = sqrt(17/15); sum f = 10, sum o = 11, sum f^2 = 30, sum o^2 = 35, sum fo = 24:
#   r = (24 - 110/15) / sqrt((30 - 100/15)(35 - 121/15)) = (50/3) / sqrt(70/3 * 404/15)
#   threshold 1: H=3 M=2 F=1 CN=9 N=15 -> CSI = 3/6 = 0.5 (per-time mean: 0.3),
#   POD = 3/5 (per-time mean 0.375), FAR = 1/4, Hr = 5*4/15 = 4/3, ETS = (3-4/3)/(6-4/3) = 5/14


def _archive(frames: np.ndarray, start="2021-06-01T12:00") -> xr.DataArray:
    nt, ny, nx = frames.shape
    return xr.DataArray(
        frames.astype(np.float32),
        dims=("time", "y", "x"),
        coords={
            "time": pd.date_range(start, periods=nt, freq=STEP),
            "y": np.arange(ny) * 1000.0,
            "x": np.arange(nx) * 1000.0,
            "crs": ((), 0, {"grid_mapping_name": "transverse_mercator"}),
        },
        name="precipitation_rate",
        attrs={"units": "mm h-1", "grid_mapping": "crs"},
    )


def _hand_case(issues=(0, 1)):
    """Truth archive t0..t2 (t1 = O1, t2 = O2); forecast issued at t0 and t1, one lead."""
    truth = _archive(np.stack([np.zeros((3, 3)), O1, O2]))
    values = np.stack([F1, F2])[list(issues)][:, None]
    fc = forecast_array(
        values, issue_times=truth.time.values[list(issues)], step=STEP, template=truth
    )
    return fc, truth


def _value(df, metric, threshold=None, scale=None, method="m", lead=5):
    sel = (df.method == method) & (df.metric == metric) & (df.lead_time == lead)
    sel &= df.threshold.isna() if threshold is None else df.threshold == threshold
    sel &= df.scale.isna() if scale is None else df.scale == scale
    assert sel.sum() == 1, (metric, threshold, scale)
    return float(df[sel].value.iloc[0])


def test_hand_example_one_issue_time():
    fc, truth = _hand_case(issues=(0,))
    df = evaluate({"m": fc}, truth, thresholds=(1, 5, 10), scales=(1,))
    assert tuple(df.columns) == COLUMNS
    assert _value(df, "bias") == pytest.approx(1 / 7)
    assert _value(df, "MAE") == pytest.approx(1.0)
    assert _value(df, "RMSE") == pytest.approx(math.sqrt(13 / 7))
    assert _value(df, "corr") == pytest.approx(78 / math.sqrt(14960))
    assert _value(df, "CSI", 1) == pytest.approx(3 / 5)
    assert _value(df, "POD", 1) == pytest.approx(3 / 4)
    assert _value(df, "FAR", 1) == pytest.approx(1 / 4)
    assert _value(df, "ETS", 1) == pytest.approx(5 / 19)
    # FSS at scale 1 is 2H / (2H + M + F) for binary fields
    assert _value(df, "FSS", 1, 1) == pytest.approx(6 / 8)
    assert _value(df, "CSI", 5) == 0 and _value(df, "POD", 5) == 0 and _value(df, "ETS", 5) == 0
    assert math.isnan(_value(df, "FAR", 5))
    for metric in ("CSI", "POD", "FAR", "ETS"):
        assert math.isnan(_value(df, metric, 10))
    assert math.isnan(_value(df, "FSS", 10, 1))


def test_pooled_over_issue_times_not_averaged():
    fc, truth = _hand_case()
    df = evaluate({"m": fc}, truth, thresholds=(1,), scales=(1,))
    assert _value(df, "bias") == pytest.approx(-1 / 15)
    assert _value(df, "MAE") == pytest.approx(0.6)  # the mean of per-time MAEs is 0.625
    assert _value(df, "RMSE") == pytest.approx(math.sqrt(17 / 15))
    assert _value(df, "corr") == pytest.approx((50 / 3) / math.sqrt(70 / 3 * 404 / 15))
    assert _value(df, "CSI", 1) == pytest.approx(0.5)  # mean of per-time CSIs: 0.3
    assert _value(df, "POD", 1) == pytest.approx(0.6)
    assert _value(df, "FAR", 1) == pytest.approx(0.25)
    assert _value(df, "ETS", 1) == pytest.approx(5 / 14)


def test_metric_classes_on_tables():
    # H=3 M=2 F=1 CN=9 as above, and a table with no events at all
    t = ContingencyTable(np.array([3, 0]), np.array([2, 0]), np.array([1, 0]), np.array([9, 10]))
    np.testing.assert_allclose(CSI().compute(t), [0.5, nan])
    np.testing.assert_allclose(POD().compute(t), [0.6, nan])
    np.testing.assert_allclose(FAR().compute(t), [0.25, nan])
    np.testing.assert_allclose(ETS().compute(t), [5 / 14, nan])
    # FSS from sums: 1 - (ff - 2fo + oo)/(ff + oo); no events -> NaN
    s = FSSSums(np.array([0.04, 0.0]), np.array([0.024, 0.0]), np.array([0.04, 0.0]))
    np.testing.assert_allclose(FSS().compute(s), [0.6, nan])


def _point_fields(ny=7, nx=9, f_at=(3, 2), o_at=(3, 4)):
    f = np.zeros((ny, nx))
    o = np.zeros((ny, nx))
    if f_at:
        f[f_at] = 1.0
    if o_at:
        o[o_at] = 1.0
    return f, o


def test_fss_displaced_point():
    # One event pixel, observed 2 columns east of the forecast, far from the edges. With a
    # s x s window each field's fractions are 1/s^2 on an s x s square: sum Ff^2 = sum Fo^2 =
    # 1/s^2 and the squares overlap on s(s-2) pixels, so sum Ff Fo = s(s-2)/s^4 and
    # FSS = 2 sum FfFo / (sum Ff^2 + sum Fo^2) = (s - 2)/s: 0, 1/3, 3/5 for s = 1, 3, 5.
    f, o = _point_fields()
    sums = FSSSums.zeros(1, 3, 1)
    valid = np.ones((1,) + f.shape, bool)
    sums.add(f[None], o[None], valid, (0.5,), (1, 3, 5))
    np.testing.assert_allclose(FSS().compute(sums)[0, :, 0], [0.0, 1 / 3, 3 / 5], atol=1e-12)
    # An invalid pixel between them, (3,3), lies in both windows (s = 3, 5): it is not
    # scored, so each sum loses its 1/s^4 term: FSS = (s^2 - 2s - 1)/(s^2 - 1) = 1/4, 7/12.
    o_nan = o.copy()
    o_nan[3, 3] = nan
    sums = FSSSums.zeros(1, 2, 1)
    sums.add(f[None], o_nan[None], np.isfinite(o_nan)[None], (0.5,), (3, 5))
    np.testing.assert_allclose(FSS().compute(sums)[0, :, 0], [1 / 4, 7 / 12], atol=1e-12)


def test_fss_pooled_over_issue_times():
    # Issue 1: displaced point, s = 5: ff = oo = 1/25, fo = 15/625 (FSS 3/5).
    # Issue 2: no forecast event, one observed: ff = 0, oo = 1/25, fo = 0 (FSS 0).
    # Pooled: 2 (15/625) / (3/25) = 0.4, not the mean 0.3.
    f1, o1 = _point_fields()
    f2, o2 = _point_fields(f_at=None)
    truth = _archive(np.stack([np.zeros_like(o1), o1, o2]))
    fc = forecast_array(
        np.stack([f1, f2])[:, None], issue_times=truth.time.values[:2], step=STEP, template=truth
    )
    df = evaluate({"m": fc}, truth, thresholds=(0.5,), scales=(5,))
    assert _value(df, "FSS", 0.5, 5) == pytest.approx(0.4)


def test_common_mask_scores_methods_on_same_pixels():
    fc, truth = _hand_case(issues=(0,))
    other = fc.copy(data=np.where(np.arange(9).reshape(3, 3) == 0, nan, fc.values))  # NaN at (0,0)
    alone = evaluate({"m": fc}, truth, thresholds=(1,), scales=(1,))
    both = evaluate({"m": fc, "o": other}, truth, thresholds=(1,), scales=(1,))
    indep = evaluate({"m": fc, "o": other}, truth, thresholds=(1,), scales=(1,), common_mask=False)
    # (0,0) had error 0: without it n = 6, MAE = 7/6
    assert _value(both, "MAE") == pytest.approx(7 / 6) and _value(
        both, "MAE", method="o"
    ) == pytest.approx(7 / 6)
    assert _value(indep, "MAE") == pytest.approx(_value(alone, "MAE")) == pytest.approx(1.0)


def test_evaluate_errors():
    fc, truth = _hand_case()
    with pytest.raises(NowcastError, match="do not overlap"):
        evaluate({"m": fc}, truth.assign_coords(time=truth.time + np.timedelta64(1, "D")))
    with pytest.raises(NowcastError, match="grid"):
        evaluate({"m": fc}, truth.assign_coords(x=truth.x + 500.0))
    with pytest.raises(NowcastError, match="odd"):
        evaluate({"m": fc}, truth, scales=(2,))
    with pytest.raises(NowcastError, match="is in K but the truth is in mm h-1"):
        evaluate({"m": fc.assign_attrs(units="K")}, truth)


def test_forecast_on_subgrid_of_truth():
    fc, truth = _hand_case()
    big = xr.concat(
        [truth, truth.isel(x=[0]).assign_coords(x=[3000.0])], dim="x"
    )  # one more column
    df_big = evaluate({"m": fc}, big, thresholds=(1,), scales=(1, 3))
    df = evaluate({"m": fc}, truth, thresholds=(1,), scales=(1, 3))
    pd.testing.assert_frame_equal(df, df_big)


# ----------------------------------------------------------------------------- real data vs pySTEPS


@pytest.fixture(scope="module")
def mch(shared_data):
    from nowcast.archive import open_archive

    return open_archive(shared_data / "radar" / "mch-2016-07-11.nc")


def _pysteps_verification():
    with contextlib.redirect_stdout(io.StringIO()):
        from pysteps.verification import det_cat_fct, det_cont_fct, fss
    return det_cat_fct, det_cont_fct, fss


def test_against_pysteps_on_real_field(mch):
    det_cat_fct, det_cont_fct, pysteps_fss = _pysteps_verification()
    t = 10
    frame_f = mch.isel(time=t).values  # forecast = frame t (persistence), truth = frame t + 3
    frame_o = mch.isel(time=t + 3).values
    # one lead of 15 min: valid time = frame t + 3
    fc = forecast_array(
        frame_f[None, None], issue_times=mch.time.values[[t]], step=3 * STEP, template=mch
    )
    thresholds = (0.5, 1, 5, 10)
    df = evaluate({"m": fc}, mch.isel(time=slice(t, t + 4)), thresholds=thresholds, scales=(1,))
    # Give pySTEPS only the jointly valid pairs: its det_cat_fct counts NaN pairs as correct
    # negatives (changing ETS), and det_cont_fct's means for the correlation use each
    # field's own finite pixels.
    both = np.isfinite(frame_f) & np.isfinite(frame_o)
    pf, po = frame_f[both], frame_o[both]
    cont = det_cont_fct(pf, po, scores=["MAE", "RMSE", "ME", "corr_p"])
    for ours, theirs in (("MAE", "MAE"), ("RMSE", "RMSE"), ("bias", "ME"), ("corr", "corr_p")):
        assert _value(df, ours, lead=15) == pytest.approx(
            float(cont[theirs]), rel=1e-6, abs=1e-9
        ), ours
    for thr in thresholds:
        # pySTEPS counts value > thr; ours value >= thr: compare at the next float32 below thr
        below = np.nextafter(np.float32(thr), np.float32(-np.inf))
        cat = det_cat_fct(pf, po, below, scores=["CSI", "POD", "FAR", "ETS"])
        for metric in ("CSI", "POD", "FAR", "ETS"):
            assert _value(df, metric, thr, lead=15) == pytest.approx(
                float(cat[metric]), rel=1e-9
            ), (metric, thr)
    assert (frame_o == 0.5).any()  # the >= / > difference matters on this field

    # FSS on a NaN-free crop with rain in it
    crop = {"y": slice(180, 436), "x": slice(250, 506)}
    sub = mch.isel(crop)
    cf, co = sub.isel(time=t).values, sub.isel(time=t + 3).values
    assert np.isfinite(cf).all() and np.isfinite(co).all() and (co >= 5).sum() > 50
    fc_sub = forecast_array(
        cf[None, None], issue_times=sub.time.values[[t]], step=3 * STEP, template=sub
    )
    scales = (1, 5, 21)
    df = evaluate({"m": fc_sub}, sub.isel(time=slice(t, t + 4)), thresholds=(1, 5), scales=scales)
    for thr in (1, 5):
        for scale in scales:
            expected = pysteps_fss(cf, co, thr, scale)
            assert _value(df, "FSS", thr, scale, lead=15) == pytest.approx(
                expected, rel=1e-9, abs=1e-12
            ), (thr, scale)


def test_write_report_replaces_files_atomically(tmp_path):
    from nowcast.verify.report import write_report

    fc, truth = _hand_case()
    scores = evaluate({"m": fc}, truth, thresholds=(1,), scales=(1,))
    scores = scores[scores.metric.isin(["MAE", "CSI"])]  # two plots keep this quick
    out = tmp_path / "report"
    first = write_report(scores, out)
    assert (
        sorted(p.name for p in first)
        == sorted(p.name for p in out.iterdir())
        == ["csi_t1.png", "mae.png", "scores.csv", "scores.md"]
    )
    (out / "csi_t5.png").write_bytes(b"stale plot of an earlier report")
    (out / "notes.txt").write_text("mine")
    second = write_report(scores, out)
    names = {p.name for p in out.iterdir()}
    assert names == {p.name for p in second} | {"notes.txt"}  # the stale plot is gone
    assert (out / "notes.txt").read_text() == "mine"
    assert "threshold 1 mm h-1" in (out / "scores.md").read_text(encoding="utf-8")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_lead_tables_fit_100_columns_with_many_methods():
    from nowcast.verify.tables import lead_tables

    methods = [f"method-number-{k}" for k in range(7)]
    rows = [
        (m, lead, metric, np.nan, pd.NA, 0.5 + k, 4 if lead < 15 else 3)
        for k, m in enumerate(methods)
        for lead in (5, 10, 15)
        for metric in ("MAE", "RMSE", "bias", "corr")
    ]
    scores = pd.DataFrame(rows, columns=list(COLUMNS))
    scores.attrs["units"] = "K"
    text = lead_tables(scores, truth_end=pd.Timestamp("2020-01-01T00:10"))
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100
    assert sum(line.startswith("MAE (K)") for line in lines) == 1
    heads = [line for line in lines if line.lstrip().startswith("lead")]
    assert len(heads) == 4 * 2  # each score's methods continue in a second table
    assert all(m in text for m in methods) and "lead 15 min pooled fewer than 4" in text
    assert "MAE" not in lead_tables(scores, metrics=("RMSE",))
