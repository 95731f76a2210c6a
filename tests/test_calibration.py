"""A quantile model's calibration: the randomised PIT coverage checked against distributions
whose coverage is known, the stored calibration, and the recalibrated, tailed distribution."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from quantile_helpers import identity_distribution
from scipy.special import ndtr, ndtri

from nowcast.errors import NowcastError
from nowcast.methods.quantile import exceedance_scores, quantile_function
from nowcast.trained.calibration import (
    CALIBRATION_FILE,
    Calibration,
    increasing,
    read_calibration,
    write_calibration,
)
from nowcast.verify.calibration import pick_issue_times, pit_sums

LEVELS = (0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98)


def _coverage(levels, quantiles, truth):
    sums, counts = pit_sums(levels, quantiles, truth)
    return sums / counts[:, None]


def test_a_calibrated_forecast_with_dry_pixels_covers_its_levels():
    """Truth: 0 with probability 0.3, else lognormal; the forecast: that distribution's own
    quantiles. The coverage is the level at every knot, the dry atom included."""
    rng = np.random.default_rng(0)
    n = 200_000
    wet = rng.random(n) >= 0.3
    truth = np.where(wet, np.exp(rng.standard_normal(n)), 0.0)[None, None, :]
    tau = np.asarray(LEVELS)
    q = np.where(tau <= 0.3, 0.0, np.exp(ndtri(np.clip((tau - 0.3) / 0.7, 1e-9, 1))))
    quantiles = np.broadcast_to(q[:, None, None, None], (len(tau), 1, 1, n))
    np.testing.assert_allclose(_coverage(LEVELS, quantiles, truth)[0], tau, atol=0.006)


def test_a_too_narrow_forecast_covers_too_little_in_its_tails():
    """Truth ``exp(N(0, 1))``, forecast quantiles ``exp(0.5 z)``: coverage ``Phi(0.5 z)``."""
    z = np.random.default_rng(1).standard_normal(200_000)
    tau = np.asarray(LEVELS)
    quantiles = np.exp(0.5 * ndtri(tau))[:, None, None, None] * np.ones((1, 1, 1, z.size))
    got = _coverage(LEVELS, quantiles, np.exp(z)[None, None, :])[0]
    np.testing.assert_allclose(got, ndtr(0.5 * ndtri(tau)), atol=0.005)
    assert got[-1] < 0.9 and got[0] > 0.1


def test_pit_sums_skip_missing_values_and_count_per_lead():
    quantiles = np.ones((len(LEVELS), 2, 2, 2))
    truth = np.array([[[0.5, np.nan], [2.0, 1.5]], [[np.nan] * 2, [0.0, 3.0]]])
    sums, counts = pit_sums(LEVELS, quantiles, truth)
    assert counts.tolist() == [3, 2]
    # lead 1: 0.5 below every value (covered at every level), 2.0 and 1.5 above all
    np.testing.assert_allclose(sums[0], np.ones(len(LEVELS)))
    np.testing.assert_allclose(sums[1], np.ones(len(LEVELS)))  # 0.0 below all: covered


def test_the_calibration_interpolates_between_model_steps_and_stays_increasing(tmp_path):
    cov = np.array([[0.1, 0.6, 0.9], [0.2, 0.6, 0.8], [0.3, 0.5, 0.7]])
    cal = Calibration(levels=(0.1, 0.5, 0.9), step_seconds=300.0, coverage=cov, anchor="none")
    np.testing.assert_allclose(cal.at_leads(1.0, 3), cov)
    np.testing.assert_allclose(cal.at_leads(2.0, 2), cov[[1, 2]])
    np.testing.assert_allclose(cal.at_leads(0.5, 2), cov[[0, 0]])  # before step 1: step 1's
    np.testing.assert_allclose(cal.at_leads(1.5, 1), [(cov[0] + cov[1]) / 2])
    np.testing.assert_allclose(cal.at_leads(1.0, 5)[-1], cov[-1])  # beyond: the last step's
    anchored = Calibration(levels=(0.1, 0.5, 0.9), step_seconds=300.0, coverage=cov)
    shifted = anchored.at_leads(1.0, 3)
    np.testing.assert_allclose(shifted[:, 1], 0.5)  # the median's level stays 0.5
    # the spread in scores is the measured one
    np.testing.assert_allclose(np.diff(ndtri(shifted)), np.diff(ndtri(cov)), atol=1e-9)
    with pytest.raises(NowcastError, match="unknown anchor 'mean'; valid: median, none"):
        Calibration(levels=(0.1, 0.5, 0.9), step_seconds=300.0, coverage=cov, anchor="mean")
    flat = increasing(np.array([[0.5, 0.5, 0.4, 1.0]]))
    assert np.all(np.diff(flat) > 0) and flat.min() > 0 and flat.max() < 1
    write_calibration(tmp_path, cal)
    back = read_calibration(tmp_path, (0.1, 0.5, 0.9))
    np.testing.assert_allclose(back.coverage, cal.coverage)
    assert read_calibration(tmp_path / "elsewhere", (0.1, 0.5, 0.9)) is None
    with pytest.raises(NowcastError, match="levels .* are not the model's"):
        read_calibration(tmp_path, (0.1, 0.9))
    folder = tmp_path / "with-folder"
    (folder / CALIBRATION_FILE).mkdir(parents=True)
    with pytest.raises(NowcastError, match="exists and is not a calibration file"):
        write_calibration(folder, cal)
    assert (folder / CALIBRATION_FILE).is_dir()
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"levels": [0.1]}))
    with pytest.raises(NowcastError, match="not a calibration file"):
        read_calibration(tmp_path, (0.1,))


def _distribution(values, levels, *, coverage=None, ceiling=None, members=0):
    return identity_distribution(
        values, levels, units="mm h-1", members=members, seed=0, ceiling=ceiling, coverage=coverage
    )


def test_a_recalibrated_distribution_gives_each_value_its_measured_probability():
    levels = (0.1, 0.5, 0.9)
    values = np.broadcast_to(np.array([1.0, 2.0, 3.0], "float32"), (2, 4, 4, 3))
    coverage = np.array([[0.1, 0.5, 0.9], [0.2, 0.6, 0.8]])
    dist = _distribution(values, levels, coverage=coverage)
    q = dist.quantiles([0.2, 0.6, 0.8]).values  # lead 2's measured levels
    np.testing.assert_allclose(q[:, 1, 0, 0], [1.0, 2.0, 3.0], atol=1e-5)
    p = dist.exceedance([2.0]).values[0]
    np.testing.assert_allclose(p[:, 0, 0], [0.5, 0.4], atol=1e-6)
    assert dist.median().values[1, 0, 0] < 2.0 < dist.median().values[0, 0, 0] + 1e-6


def test_the_upper_tail_continues_the_last_segment_up_to_the_ceiling():
    knots = ndtri(np.array([0.5, 0.9]))
    values = np.array([[1.0, 2.0], [1.0, 2.0]])  # two pixels
    ceiling = np.array([10.0, 2.5])
    slope = 1.0 / (knots[1] - knots[0])
    z = np.full(2, knots[1] + 1.0)
    got = quantile_function(knots, values, z, ceiling)
    np.testing.assert_allclose(got, [2.0 + slope, 2.5])
    assert np.all(quantile_function(knots, values, z) == 2.0)  # no ceiling: no tail
    back = exceedance_scores(knots, values, np.array([2.0 + slope, 3.0]), ceiling)
    np.testing.assert_allclose(back[0], knots[1] + 1.0)
    assert back[1] == np.inf  # above the ceiling: never reached
    # as a distribution: P(>= 3) > 0 below the ceiling, 0 above it; members never pass it
    vals = np.broadcast_to(np.array([1.0, 2.0], "float32"), (1, 2, 64, 2))  # 2 rows of 64
    dist = _distribution(vals, (0.5, 0.9), ceiling=ceiling[:, None], members=50)
    p = dist.exceedance([2.4, 2.6]).values[:, 0, :, 0]  # (threshold, row)
    np.testing.assert_allclose(p[0], 1 - ndtr(knots[1] + 0.4 / slope), rtol=1e-4)
    assert p[1, 0] > 0.01 and p[1, 1] == 0.0
    members = dist.members().values[:, 0]  # (member, row, x)
    assert members[:, 1].max() <= 2.5 + 1e-6 and members[:, 0].max() > 2.6


def test_issue_times_are_picked_where_it_rains_with_room_for_the_leads():
    values = np.zeros((30, 10, 10), "float32")
    values[[5, 12, 20, 28], :2, :2] = 4.0  # 4 % of the frame at 4 mm/h
    archive = xr.DataArray(values, dims=("time", "y", "x"))
    assert pick_issue_times(archive, 5, before=4, after=6) == [5, 12, 20]
    assert pick_issue_times(archive, 2, before=4, after=6) == [5, 20]
    assert pick_issue_times(archive * 0, 3, before=4, after=6) == []


# ------------------------------------------------------------------ nowcast calibrate


def _cli(*args):
    from click.testing import CliRunner

    from nowcast.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory):
    """The shipped quantile model, copied (calibrate writes into its run directory)."""
    import shutil

    from nowcast.trained.catalogue import resolve_model

    dst = tmp_path_factory.mktemp("model") / "radar-5min"
    shutil.copytree(resolve_model("radar-5min"), dst)
    (dst / CALIBRATION_FILE).unlink(missing_ok=True)
    return dst


@pytest.mark.usefixtures("torch_single_thread")
def test_calibrate_measures_a_real_event_and_forecasts_use_it(shared_data, model_copy, tmp_path):
    """On a 256 x 256 crop of a training event (KNMI, heavy rain): calibration.json with the
    model's levels, coverage increasing in (0, 1) at every lead, the median moved."""
    from nowcast.archive import open_archive
    from nowcast.methods.convlstm import ConvLSTMForecaster

    da = open_archive(shared_data / "radar" / "knmi-2010-08-26.nc")
    wet = da.isel(time=slice(0, 24), y=slice(200, 456), x=slice(250, 506)).load()
    event = tmp_path / "knmi-crop.nc"
    wet.to_dataset(name="precipitation").to_netcdf(event)
    res = _cli("calibrate", model_copy, "--event", event, "--issue-times", "1", "--anchor", "none")
    assert res.exit_code == 0, res.output
    assert "1 issue times" in res.output and "coverage" in res.output
    cal = read_calibration(model_copy, ConvLSTMForecaster(model_copy).levels)
    assert cal.coverage.shape == (12, 13) and cal.source["issue_times"] == 1
    assert np.all(np.diff(cal.coverage, axis=1) > 0)
    raw = ConvLSTMForecaster(model_copy, calibrated=False)
    tuned = ConvLSTMForecaster(model_copy)
    assert raw.calibration is None and tuned.calibration is not None
    past = wet.isel(time=slice(0, 6))
    a, b = raw.predict(past, 3).values, tuned.predict(past, 3).values
    assert np.isfinite(b).any() and not np.allclose(np.nan_to_num(a), np.nan_to_num(b))


def test_calibrate_refuses_bad_input_in_one_line(shared_data, model_copy, tmp_path):
    from safety_helpers import one_line_error

    bom = shared_data / "radar" / "bom-66-2020-10-31"
    mch = shared_data / "radar" / "mch-2016-07-11.nc"
    res = _cli("calibrate", tmp_path, "--event", mch)
    one_line_error(res, "is not a model's run directory")
    res = _cli("calibrate", model_copy, "--event", bom)
    one_line_error(res, "is not the model's", "calibrate on archives of the model's step")
    from nowcast.trained.catalogue import resolve_model

    res = _cli("calibrate", resolve_model("radar-5min-deterministic"), "--event", mch)
    one_line_error(res, "a deterministic model has no quantile levels")
