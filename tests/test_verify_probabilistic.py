"""Probabilistic verification: analytic cases, pySTEPS cross-checks, pooling, the CLI report."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from scipy.stats import norm

from nowcast.errors import NowcastError
from nowcast.products import forecast_array, to_dataset
from nowcast.verify import ProbabilisticForecast, evaluate, verification
from nowcast.verify.probabilistic import (
    BrierScore,
    BrierSkillScore,
    CRPSSums,
    ProbabilityCounts,
    RankCounts,
    ROCArea,
    crps_ensemble,
    crps_quantiles,
    ensemble_levels,
    exceedance_from_members,
    exceedance_from_quantiles,
    reliability,
    roc_curve,
)
from nowcast.verify.probtables import reliability_gaps

STEP = pd.Timedelta("5min")
DIMS5 = ("issue_time", "realization", "lead_time", "y", "x")


def _pysteps():
    with contextlib.redirect_stdout(io.StringIO()):
        from pysteps.verification import ensscores, probscores
        from pysteps.verification.detcontscores import det_cont_fct
    return probscores, ensscores, det_cont_fct


def _archive(frames: np.ndarray) -> xr.DataArray:
    nt, ny, nx = frames.shape
    return xr.DataArray(
        frames.astype(np.float32),
        dims=("time", "y", "x"),
        coords={
            "time": pd.date_range("2021-06-01T12:00", periods=nt, freq=STEP),
            "y": np.arange(ny) * 1000.0,
            "x": np.arange(nx) * 1000.0,
            "crs": ((), 0, {"grid_mapping_name": "transverse_mercator"}),
        },
        name="precipitation_rate",
        attrs={"units": "mm h-1", "grid_mapping": "crs"},
    )


def _ensemble_case(members: np.ndarray, obs: np.ndarray):
    """Truth = ``obs`` (lead, y, x) after a dry first frame; one issue at t0 with ``members``
    ``(M, lead, y, x)``; the deterministic forecast is their mean."""
    truth = _archive(np.concatenate([np.zeros((1,) + obs.shape[1:]), obs]))
    fc = forecast_array(
        members.mean(axis=0)[None], issue_times=truth.time.values[:1], step=STEP, template=truth
    )
    da = xr.DataArray(
        members[None].astype(np.float32),
        dims=DIMS5,
        coords={k: fc[k] for k in ("issue_time", "lead_time", "y", "x")},
    )
    return fc, truth, ProbabilisticForecast(members=da)


def _value(df, metric, threshold=None, method="ens", lead=5):
    sel = (df.method == method) & (df.metric == metric) & (df.lead_time == lead)
    sel &= df.threshold.isna() if threshold is None else df.threshold == threshold
    assert sel.sum() == 1, (metric, threshold)
    return float(df[sel].value.iloc[0])


# ------------------------------------------------------------------------------------ CRPS


def test_crps_ensemble_matches_pysteps_and_the_energy_form():
    probscores, _, _ = _pysteps()
    rng = np.random.default_rng(3)
    members = rng.gamma(0.5, 2.0, (20, 40, 30)) * (rng.random((20, 40, 30)) < 0.6)  # ties at 0
    obs = rng.gamma(0.5, 2.0, (40, 30)) * (rng.random((40, 30)) < 0.5)
    ours = crps_ensemble(members, obs)
    # pySTEPS leaves out the interval next to a member equal to the observation (its masks
    # are strict inequalities), so it is low where rain is 0 in both: compare without ties
    tied = (members == obs).any(axis=0)
    assert tied.mean() > 0.2 and ours.mean() > probscores.CRPS(members, obs)
    assert ours[~tied].mean() == pytest.approx(
        probscores.CRPS(members[:, ~tied], obs[~tied]), rel=1e-10
    )
    # the energy form, O(M²): E|X - y| - E|X - X'| / 2 (standard), / (2 M (M-1)) sums (fair)
    m = members.shape[0]
    spread = np.abs(members[:, None] - members[None]).sum(axis=(0, 1))
    mae = np.abs(members - obs).mean(axis=0)
    np.testing.assert_allclose(ours, mae - spread / (2 * m * m), rtol=1e-10, atol=1e-12)
    fair = crps_ensemble(members, obs, fair=True)
    np.testing.assert_allclose(fair, mae - spread / (2 * m * (m - 1)), rtol=1e-10, atol=1e-12)
    # one member: the absolute error
    np.testing.assert_allclose(crps_ensemble(members[:1], obs), np.abs(members[0] - obs))


def test_crps_from_quantiles_is_exact_at_ensemble_levels_and_approximates_a_gaussian():
    rng = np.random.default_rng(4)
    members = rng.normal(size=(12, 500))
    obs = rng.normal(size=500)
    q = np.sort(members, axis=0)
    np.testing.assert_allclose(
        crps_quantiles(q, ensemble_levels(12), obs), crps_ensemble(members, obs), rtol=1e-12
    )
    # N(mu, sigma): CRPS = sigma (z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi)), z = (y - mu)/sigma
    mu, sigma, y = 1.0, 2.0, np.array([-3.0, 0.0, 1.0, 2.5, 7.0])
    z = (y - mu) / sigma
    exact = sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))
    levels = (np.arange(999) + 0.5) / 999
    quantiles = (mu + sigma * norm.ppf(levels))[:, None] * np.ones((1, y.size))
    np.testing.assert_allclose(crps_quantiles(quantiles, levels, y), exact, rtol=2e-3)
    # a few levels: an approximation, still close for the centre
    coarse = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    qc = (mu + sigma * norm.ppf(coarse))[:, None] * np.ones((1, y.size))
    assert np.all(np.abs(crps_quantiles(qc, coarse, y) - exact) < 0.15 * exact + 0.05)


def test_one_member_ensemble_crps_is_the_mae_and_deterministic_methods_get_their_mae():
    rng = np.random.default_rng(5)
    obs = rng.gamma(0.7, 2.0, (2, 9, 11))
    member = obs + rng.normal(0, 1, obs.shape)
    fc, truth, prob = _ensemble_case(member[None], obs)
    other = fc + 0.5
    df = evaluate(
        {"ens": fc, "det": other},
        truth,
        thresholds=(1.0,),
        scales=(1,),
        probabilistic={"ens": prob},
    )
    for method in ("ens", "det"):
        for lead in (5, 10):
            assert _value(df, "CRPS", method=method, lead=lead) == pytest.approx(
                _value(df, "MAE", method=method, lead=lead), rel=1e-12
            )
    assert df.attrs["probabilistic"]["det"] == {
        "crps": "deterministic",
        "probability": "deterministic",
    }
    assert df.attrs["probabilistic"]["ens"]["crps"] == "members"


# ------------------------------------------------------------------------- Brier, ROC, reliability


def test_brier_perfect_and_climatological_forecasts_and_pysteps_mse():
    _, _, det_cont_fct = _pysteps()
    rng = np.random.default_rng(6)
    obs = rng.gamma(0.5, 3.0, 5000)
    event = (obs >= 1.0).astype(float)
    c = ProbabilityCounts.zeros(1, 1)
    c.add(event[None], obs, (1.0,), lead=0)
    assert BrierScore().compute(c)[0, 0] == 0 and BrierSkillScore().compute(c)[0, 0] == 1
    assert ROCArea().compute(c)[0, 0] == pytest.approx(1.0)
    obar = event.mean()
    c = ProbabilityCounts.zeros(1, 1)
    c.add(np.full((1, obs.size), obar), obs, (1.0,), lead=0)
    assert BrierScore().compute(c)[0, 0] == pytest.approx(obar * (1 - obar))
    assert BrierSkillScore().compute(c)[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert ROCArea().compute(c)[0, 0] == pytest.approx(0.5)  # no discrimination
    p = np.clip(event * 0.6 + rng.random(obs.size) * 0.4, 0, 1)
    c = ProbabilityCounts.zeros(1, 1)
    c.add(p[None], obs, (1.0,), lead=0)
    mse = det_cont_fct(p, event, scores=["MSE"])["MSE"]
    assert BrierScore().compute(c)[0, 0] == pytest.approx(mse, rel=1e-12)


def _away_from_edges(p, n_bins=10, gap=1e-5):
    return p[np.abs(p * n_bins - np.round(p * n_bins)) > gap * n_bins]


def test_reliability_and_roc_match_pysteps():
    probscores, _, _ = _pysteps()
    rng = np.random.default_rng(7)
    p = _away_from_edges(rng.random(20000))
    obs = np.where(rng.random(p.size) < p**1.5, 2.0, 0.0)  # over-confident forecast
    c = ProbabilityCounts.zeros(1, 1)
    c.add(p[None], obs, (1.0,), lead=0)
    mean_p, freq, counts = reliability(c)
    r, f = probscores.reldiag(p, obs, 1.0, n_bins=10, min_count=1)
    np.testing.assert_allclose(mean_p[0, :10, 0], r, rtol=1e-12)
    np.testing.assert_allclose(freq[0, :10, 0], f, rtol=1e-12)
    assert counts[0, 10, 0] == 0 and counts.sum() == p.size
    pofd, pod, area = probscores.ROC_curve(p, obs, 1.0, n_prob_thrs=11, compute_area=True)
    ours_pofd, ours_pod = roc_curve(c)
    np.testing.assert_allclose(ours_pofd[0, :, 0], pofd, rtol=1e-12)
    np.testing.assert_allclose(ours_pod[0, :, 0], pod, rtol=1e-12)
    assert ROCArea().compute(c)[0, 0] == pytest.approx(area, rel=1e-12)


def test_counts_merge_to_the_pooled_counts():
    rng = np.random.default_rng(8)
    members = rng.gamma(0.6, 2.0, (10, 2, 3000))
    obs = rng.gamma(0.6, 2.0, (2, 3000))
    whole = ProbabilityCounts.zeros(2, 1), RankCounts.zeros(10, 1), CRPSSums.zeros(1)
    halves = [
        (ProbabilityCounts.zeros(2, 1), RankCounts.zeros(10, 1), CRPSSums.zeros(1)) for _ in "ab"
    ]
    for i in range(2):
        x = np.sort(members[:, i], axis=0)
        for target in (whole, halves[i]):
            target[0].add(exceedance_from_members(x, (1, 5)), obs[i], (1, 5), lead=0)
            target[1].add(x, obs[i], np.random.default_rng(i), lead=0)
            target[2].add_values(x, obs[i], ensemble_levels(10), lead=0)
    for k in range(3):
        halves[0][k].merge(halves[1][k])
        for name, value in vars(whole[k]).items():
            np.testing.assert_allclose(getattr(halves[0][k], name), value, rtol=1e-12)


# ------------------------------------------------------------------------------ rank histogram


def test_rank_histogram_matches_pysteps():
    _, ensscores, _ = _pysteps()
    rng = np.random.default_rng(9)
    members = rng.normal(size=(8, 50, 40))
    obs = rng.normal(0.3, 1.2, (50, 40))
    r = RankCounts.zeros(8, 1)
    r.add(np.sort(members.reshape(8, -1), axis=0), obs.ravel(), rng, lead=0)
    expected = ensscores.rankhist(members, obs, normalize=False)
    np.testing.assert_array_equal(r.counts[:, 0], expected)
    # dry ties (X_min): pairs dry everywhere are skipped, ties broken at random
    wet = members * (rng.random(members.shape) < 0.5)
    wet_obs = obs * (rng.random(obs.shape) < 0.5)
    r = RankCounts.zeros(8, 1)
    r.add(np.sort(wet.reshape(8, -1), axis=0), wet_obs.ravel(), rng, lead=0, min_value=0.1)
    theirs = ensscores.rankhist(wet, wet_obs, X_min=0.1, normalize=False)
    assert r.counts.sum() == theirs.sum()
    assert np.all(np.abs(r.counts[:, 0] - theirs) < 6 * np.sqrt(theirs) + 5)


def test_calibrated_forecasts_are_reliable_and_rank_flat():
    """Members and observation drawn from the same per-pixel distribution: a flat rank
    histogram; the true exceedance probability as the forecast: the diagonal."""
    rng = np.random.default_rng(10)
    m, leads, ny, nx = 20, 2, 100, 120
    scale = rng.gamma(1.0, 3.0, (leads, ny, nx))
    wet = rng.random((leads, ny, nx)) * 0.8 + 0.1  # per-pixel chance of rain

    def draw(*shape):
        return rng.exponential(scale, shape + scale.shape) * (rng.random(shape + scale.shape) < wet)

    obs = draw(1)[0]
    fc, truth, prob = _ensemble_case(draw(m), obs)
    thresholds = (1.0, 5.0)
    true_p = np.stack([wet * np.exp(-t / scale) for t in thresholds])  # P(value >= t)
    probability = xr.DataArray(
        true_p[None].astype(np.float32),
        dims=("issue_time", "threshold", "lead_time", "y", "x"),
        coords={**{k: fc[k] for k in ("issue_time", "lead_time", "y", "x")}, "threshold": [1, 5.0]},
    )
    result = verification(
        {"ens": fc, "prob": fc},
        truth,
        thresholds=thresholds,
        scales=(1,),
        probabilistic={"ens": prob, "prob": ProbabilisticForecast(probability=probability)},
    )
    d = result.diagrams
    ranks = d[d.diagram == "rank"]
    assert set(ranks.method) == {"ens"} and len(ranks) == 2 * (m + 1)
    assert np.all(np.abs(ranks.y - 1 / (m + 1)) < 0.25 / (m + 1))
    rel = d[(d.diagram == "reliability") & (d.method == "prob") & (d["count"] >= 0.01 * ny * nx)]
    sigma = np.sqrt(rel.x * (1 - rel.x) / rel["count"])  # sampling noise of each frequency
    assert len(rel) > 20 and np.all(np.abs(rel.x - rel.y) < 3 * sigma + 0.005)
    gaps = reliability_gaps(d).set_index(["method", "threshold", "lead_time"])
    assert (gaps.loc["prob", "gap"] < 0.1).all() and (gaps.loc["prob", "classes"] >= 5).all()
    for thr in thresholds:
        assert 0 < _value(result.scores, "BSS", thr, method="prob") < 1
        assert _value(result.scores, "ROC_area", thr, method="prob") > 0.7
        # 20 members estimate the probability with noise: a worse Brier score than the truth
        assert _value(result.scores, "BS", thr, method="prob") < _value(result.scores, "BS", thr)


# ------------------------------------------------------------ probability and quantile inputs


def test_probabilities_from_quantiles_interpolate_the_cdf():
    q = np.array([[0.0, 1.0], [0.0, 3.0], [2.0, 5.0]])  # levels 0.1 0.5 0.9 at two pixels
    p = exceedance_from_quantiles(q, [0.1, 0.5, 0.9], [1.0, 4.0, 9.0])
    # pixel 0: F(1) = 0.5 + 0.4 * (1 - 0)/(2 - 0) = 0.7; F(4), F(9) above q_K: 0.9
    # pixel 1: F(1) = 0.1 (at q_1); F(4) = 0.5 + 0.4 * 1/2 = 0.7; F(9) = 0.9
    np.testing.assert_allclose(p, 1 - np.array([[0.7, 0.1], [0.9, 0.7], [0.9, 0.9]]))


def test_quantile_and_probability_variables_through_evaluate():
    rng = np.random.default_rng(11)
    obs = rng.gamma(0.6, 2.0, (1, 8, 10))
    levels = np.array([0.1, 0.5, 0.9])
    qv = np.sort(rng.gamma(0.6, 2.0, (3, 1, 8, 10)), axis=0)
    fc, truth, _ = _ensemble_case(qv, obs)
    coords = {k: fc[k] for k in ("issue_time", "lead_time", "y", "x")}
    quant = xr.DataArray(
        qv[None],
        dims=("issue_time", "quantile", "lead_time", "y", "x"),
        coords={**coords, "quantile": levels},
    )
    pv = rng.random((1, 1, 1, 8, 10))
    probs = xr.DataArray(
        pv,
        dims=("issue_time", "threshold", "lead_time", "y", "x"),
        coords={**coords, "threshold": [1.0]},
    )
    df = evaluate(
        {"q": fc, "p": fc},
        truth,
        thresholds=(1.0, 5.0),
        scales=(1,),
        probabilistic={
            "q": ProbabilisticForecast(quantiles=quant),
            "p": ProbabilisticForecast(probability=probs),
        },
    )
    crps = crps_quantiles(qv[:, 0], levels, obs[0]).mean()
    assert _value(df, "CRPS", method="q") == pytest.approx(crps, rel=1e-6)
    pq = exceedance_from_quantiles(qv[:, 0], levels, [5.0])[0]
    bs = np.mean((pq - (obs[0] >= 5.0)) ** 2)
    assert _value(df, "BS", 5.0, method="q") == pytest.approx(bs, rel=1e-6)
    bs = np.mean((pv[0, 0, 0] - (obs[0] >= 1.0)) ** 2)
    assert _value(df, "BS", 1.0, method="p") == pytest.approx(bs, rel=1e-6)
    # no probability at 5 and nothing to derive it from: NaN, not a 0/1 forecast
    assert math.isnan(_value(df, "BS", 5.0, method="p"))
    assert math.isnan(_value(df, "ROC_area", 5.0, method="p"))
    # the CRPS of a probability-only method is its deterministic forecast's (MAE)
    assert _value(df, "CRPS", method="p") == pytest.approx(_value(df, "MAE", method="p"))


def test_member_nan_enters_the_common_mask_and_errors():
    rng = np.random.default_rng(12)
    obs = rng.gamma(0.6, 2.0, (1, 6, 6))
    members = rng.gamma(0.6, 2.0, (4, 1, 6, 6))
    members[2, 0, 0, 0] = np.nan  # one member missing at one pixel
    fc, truth, prob = _ensemble_case(members, obs)
    fc = fc.fillna(0.0)
    df = evaluate(
        {"ens": fc, "det": fc}, truth, thresholds=(1.0,), scales=(1,), probabilistic={"ens": prob}
    )
    mae = np.abs(fc.values[0, 0] - obs[0]).ravel()[1:].mean()
    assert _value(df, "MAE", method="det") == pytest.approx(mae, rel=1e-6)
    with pytest.raises(NowcastError, match="no forecast"):
        evaluate({"ens": fc}, truth, probabilistic={"other": prob})
    late = ProbabilisticForecast(
        members=prob.members.assign_coords(
            issue_time=prob.members.issue_time + np.timedelta64(5, "m")
        )
    )
    with pytest.raises(NowcastError, match="issue times"):
        evaluate({"ens": fc}, truth, probabilistic={"ens": late})


# ------------------------------------------------------------------------------------ real data


def test_against_pysteps_on_a_real_crop(shared_data):
    """A 9-member ensemble of shifted persistence fields on MeteoSwiss radar."""
    from nowcast.archive import open_archive

    probscores, _, det_cont_fct = _pysteps()
    mch = open_archive(shared_data / "radar" / "mch-2016-07-11.nc")
    t = 10
    big = mch.isel(time=t, y=slice(176, 304), x=slice(246, 374)).values
    shifts = [(dy, dx) for dy in (-4, 0, 4) for dx in (-4, 0, 4)]
    members = np.stack([big[4 + dy : 124 + dy, 4 + dx : 124 + dx] for dy, dx in shifts])
    sub = mch.isel(y=slice(180, 300), x=slice(250, 370))
    obs = sub.isel(time=t + 3).values
    assert (obs >= 5).sum() > 50
    fc = forecast_array(
        members.mean(0)[None, None], issue_times=sub.time.values[[t]], step=3 * STEP, template=sub
    )
    da = xr.DataArray(
        members[None, :, None],
        dims=DIMS5,
        coords={k: fc[k] for k in ("issue_time", "lead_time", "y", "x")},
    )
    df = evaluate(
        {"ens": fc},
        sub.isel(time=slice(t, t + 4)),
        thresholds=(1.0, 5.0),
        scales=(1,),
        probabilistic={"ens": ProbabilisticForecast(members=da)},
    )
    ok = np.isfinite(members).all(axis=0) & np.isfinite(obs)
    x, y = members[:, ok].astype(np.float64), obs[ok].astype(np.float64)
    energy = np.abs(x - y).mean(0) - np.abs(x[:, None] - x[None]).sum((0, 1)) / (2 * 9 * 9)
    assert _value(df, "CRPS", lead=15) == pytest.approx(energy.mean(), rel=1e-6)
    untied = ~(x == y).any(axis=0)  # pySTEPS is exact where no member equals the observation
    assert crps_ensemble(x[:, untied], y[untied]).mean() == pytest.approx(
        probscores.CRPS(x[:, untied], y[untied]), rel=1e-9
    )
    for thr in (1.0, 5.0):
        p = (members[:, ok] >= thr).mean(axis=0)
        o = obs[ok]
        mse = det_cont_fct(p, (o >= thr).astype(float), scores=["MSE"])["MSE"]
        assert _value(df, "BS", thr, lead=15) == pytest.approx(mse, rel=1e-6)
        _, _, area = probscores.ROC_curve(p, o, thr, n_prob_thrs=11, compute_area=True)
        assert _value(df, "ROC_area", thr, lead=15) == pytest.approx(area, rel=1e-9)


# ------------------------------------------------------------------------------------ CLI report


def test_evaluate_cli_with_a_member_file(tmp_path):
    from nowcast.cli import main

    rng = np.random.default_rng(13)
    m, leads, ny, nx = 6, 3, 14, 16
    obs = rng.gamma(0.6, 2.0, (leads, ny, nx))
    members = obs[None] * rng.lognormal(0, 0.5, (m, leads, ny, nx))
    fc, truth, prob = _ensemble_case(members, obs)
    ds = to_dataset(fc, method="ens")
    ds["precipitation_rate_members"] = prob.members.astype("float32")
    ds.to_netcdf(tmp_path / "ens.nc")
    det = to_dataset(fc * 1.5, method="persistence")
    det.to_netcdf(tmp_path / "det.nc")
    truth.to_dataset().to_netcdf(tmp_path / "truth.nc")
    out = tmp_path / "report"
    args = [
        "evaluate",
        "-f",
        tmp_path / "ens.nc",
        "-f",
        tmp_path / "det.nc",
        "--truth",
        tmp_path / "truth.nc",
        "--thresholds",
        "1,5",
        "--scales",
        "1",
        "-o",
        out,
    ]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "CRPS (mm h-1)" in result.output and "ROC_area for events >= 1 mm h-1" in result.output
    names = {p.name for p in out.iterdir()}
    for name in (
        "diagrams.csv",
        "crps.png",
        "bss_t5.png",
        "roc_area_t1.png",
        "reliability_t1.png",
        "roc_t5.png",
        "rank_histogram.png",
    ):
        assert name in names, name
    scores = pd.read_csv(out / "scores.csv")
    crps = scores[scores.metric == "CRPS"].set_index(["method", "lead_time"]).value
    mae = scores[scores.metric == "MAE"].set_index(["method", "lead_time"]).value
    np.testing.assert_allclose(crps["persistence"], mae["persistence"], rtol=1e-12)
    assert (crps["ens"] < mae["ens"]).all()  # the spread pays off against its mean
    md = (out / "scores.md").read_text(encoding="utf-8")
    assert "## Probabilistic scores" in md and "ens: members / members" in md
    diagrams = pd.read_csv(out / "diagrams.csv")
    assert set(diagrams.diagram) == {"reliability", "roc", "rank"}
    ranks = diagrams[diagrams.diagram == "rank"]
    assert (
        set(ranks.method) == {"ens"} and ranks.groupby("lead_time")["y"].sum().round(9).eq(1).all()
    )
    # the same report without members drops the probabilistic files
    args = ["evaluate", "-f", tmp_path / "det.nc", "--truth", tmp_path / "truth.nc", "-o", out]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert "diagrams.csv" not in names and "crps.png" not in names
    assert "rank_histogram.png" not in names and "reliability_t1.png" not in names


def test_batch_files_give_the_in_memory_scores(tmp_path):
    """The backfill report reads per-issue-time files (members included) and pools the same
    sums as one in-memory evaluation."""
    from pipelines.backfill import read_forecast_parts
    from pipelines.outputs import forecast_path

    rng = np.random.default_rng(14)
    obs = rng.gamma(0.6, 2.0, (4, 10, 12))
    truth = _archive(np.concatenate([np.zeros((1, 10, 12)), obs]))
    issues = pd.DatetimeIndex(truth.time.values[:2])
    members = obs[None, None] * rng.lognormal(0, 0.5, (2, 5, 4, 10, 12))
    values = members[:, :, :2]  # two leads from each issue time
    for i in range(2):
        values[i] = members[i, :, i : i + 2]
    fc = forecast_array(values.mean(1), issue_times=issues, step=STEP, template=truth)
    da = xr.DataArray(
        values.astype(np.float32),
        dims=DIMS5,
        coords={k: fc[k] for k in ("issue_time", "lead_time", "y", "x")},
    )
    for i, issue in enumerate(issues):
        ds = to_dataset(fc.isel(issue_time=[i]), method="ens")
        ds["precipitation_rate_members"] = da.isel(issue_time=[i])
        path = forecast_path(tmp_path, "ens", issue)
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.to_netcdf(path)
    forecasts, prob = read_forecast_parts(tmp_path, ["ens"], list(issues))
    assert set(prob) == {"ens"} and prob["ens"].n_members == 5
    assert prob["ens"].members.chunks is not None  # lazy: read lead block by lead block
    batch = verification(forecasts, truth, thresholds=(1.0,), scales=(1,), probabilistic=prob)
    memory = verification(
        {"ens": fc},
        truth,
        thresholds=(1.0,),
        scales=(1,),
        probabilistic={"ens": ProbabilisticForecast(members=da)},
    )
    pd.testing.assert_frame_equal(batch.scores, memory.scores)
    pd.testing.assert_frame_equal(batch.diagrams, memory.diagrams)


@pytest.mark.slow
def test_evaluate_cli_steps_against_sprog_on_a_real_crop(shared_data, tmp_path):
    """pySTEPS' STEPS (4 members) and S-PROG on a MeteoSwiss crop, through the CLI."""
    from nowcast.archive import open_archive
    from nowcast.cli import main
    from nowcast.methods import forecast_many, get_method
    from nowcast.products import write_forecast

    mch = open_archive(shared_data / "radar" / "mch-2016-07-11.nc")
    crop = mch.isel(y=slice(320, 416), x=slice(368, 464)).load()  # rain at 1 and 5 mm h-1
    crop.to_dataset().to_netcdf(tmp_path / "truth.nc")
    issue, leads = pd.Timestamp("2016-07-11T21:30"), 3
    steps = get_method("steps", members=4, seed=1)
    past = crop.sel(time=slice(None, issue)).isel(time=slice(-steps.input_frames(STEP), None))
    dist = steps.predict_distribution(past, leads, members=4, seed=1)
    fc = forecast_array(dist.median().values[None], issue_times=[issue], step=STEP, template=crop)
    ds = to_dataset(fc, method="steps")
    ds["precipitation_rate_members"] = (DIMS5, dist.members().values[None])
    ds.to_netcdf(tmp_path / "steps.nc")
    sprog = forecast_many(get_method("sprog"), crop, [issue], leads)
    write_forecast(sprog, tmp_path / "sprog.nc", method="sprog")
    out = tmp_path / "report"
    args = ["evaluate", "-f", tmp_path / "steps.nc", "-f", tmp_path / "sprog.nc", "--truth",
            tmp_path / "truth.nc", "--thresholds", "1,5", "-o", out]  # fmt: skip
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out / "scores.csv")
    crps = scores[scores.metric == "CRPS"].pivot(
        index="lead_time", columns="method", values="value"
    )
    mae = scores[scores.metric == "MAE"].pivot(index="lead_time", columns="method", values="value")
    assert crps.notna().all().all() and len(crps) == leads
    np.testing.assert_allclose(crps["sprog"], mae["sprog"], rtol=1e-12)
    steps_scores = scores[scores.method == "steps"]
    roc = steps_scores[steps_scores.metric == "ROC_area"].value
    assert len(roc) == 2 * leads and ((roc > 0.5) & (roc <= 1)).all()
    assert steps_scores[steps_scores.metric.isin(["BS", "BSS"])].value.notna().all()
    for name in ("reliability_t1.png", "roc_t5.png", "rank_histogram.png", "diagrams.csv"):
        assert (out / name).stat().st_size > 0, name
    ranks = pd.read_csv(out / "diagrams.csv").query("diagram == 'rank'")
    assert set(ranks.method) == {"steps"} and len(ranks) == leads * 5
