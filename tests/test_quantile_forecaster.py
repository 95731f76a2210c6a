"""A Lagrangian quantile model as a forecast method, on a real MeteoSwiss crop.

The model here is the shipped deterministic radar model with a quantile head added (warm
start: every layer but the spread head copied), so its median must equal the deterministic
model's forecast; the spread head is untrained (equal gaps), which is enough to check the
products' shapes, masks, order and plausibility, the members' reproducibility, and that all
of them come from one network pass.
"""

from __future__ import annotations

import numpy as np
import pytest

from nowcast.archive import open_archive
from nowcast.config import ModelConfig
from nowcast.errors import NowcastError
from nowcast.methods import ConvLSTMForecaster
from nowcast.trained.catalogue import resolve_model
from nowcast.trained.rundir import RunDir

pytestmark = pytest.mark.usefixtures("torch_single_thread")

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


@pytest.fixture(scope="module")
def mch(shared_data):
    """A 128 x 128 crop of the held-out MeteoSwiss event with heavy rain in it."""
    da = open_archive(shared_data / "radar" / "mch-2016-07-11.nc")
    return da.isel(time=slice(20, 24), y=slice(200, 328), x=slice(250, 378)).load()


@pytest.fixture(scope="module")
def quantile_run(tmp_path_factory):
    from nowcast.model import build_model
    from nowcast.training.loop import warm_start

    donor = RunDir(resolve_model("radar-5min-deterministic"))
    meta = donor.read_metadata()
    cfg = ModelConfig(
        filters=(16, 32),
        downsample=4,
        cell="fused",
        residual=True,
        frame="lagrangian",
        head="skip",
        quantiles=LEVELS,
    )
    model = build_model(cfg, t_in=meta["t_in"], t_out=meta["t_out"])
    warm_start(model, donor.model, echo=lambda _: None)
    run = RunDir(tmp_path_factory.mktemp("quantile"))
    model.save(run.model)
    run.write_metadata({**meta, "quantiles": list(LEVELS)})
    return run.path


def test_median_is_the_deterministic_forecast(mch, quantile_run):
    q = ConvLSTMForecaster(quantile_run)
    assert q.probabilistic and not ConvLSTMForecaster("radar-5min-deterministic").probabilistic
    median = q.predict(mch, 6).values
    det = ConvLSTMForecaster("radar-5min-deterministic").predict(mch, 6).values
    np.testing.assert_array_equal(np.isnan(median), np.isnan(det))
    np.testing.assert_allclose(median, det, atol=1e-3, equal_nan=True)


def test_distribution_products(mch, quantile_run, monkeypatch):
    method = ConvLSTMForecaster(quantile_run)
    calls = []
    network = method._network
    monkeypatch.setattr(method, "_network", lambda x, *a: calls.append(1) or network(x, *a))
    dist = method.predict_distribution(mch, 6, members=4, seed=3)
    median = dist.median()
    members = dist.members()
    quantiles = dist.quantiles([0.1, 0.5, 0.9])
    probability = dist.exceedance([1.0, 5.0])
    sharp = dist.sharp()
    assert len(calls) == 1  # one network pass for every product and member
    nan = np.isnan(median.values)
    assert nan.any() and (~nan).any()
    for field in (sharp, quantiles[0], probability[0], members[0]):
        np.testing.assert_array_equal(np.isnan(field.values), nan)
    q = quantiles.values
    assert np.all(q[0][~nan] <= q[1][~nan]) and np.all(q[1][~nan] <= q[2][~nan])
    np.testing.assert_allclose(q[1], median.values, atol=1e-4, equal_nan=True)
    p = probability.values
    assert np.nanmin(p) >= 0 and np.nanmax(p) <= 1
    assert np.all(p[1][~nan] <= p[0][~nan] + 1e-6)  # P(>= 5) <= P(>= 1)
    # plausible: nothing far above the inputs' largest value
    top = float(np.nanmax(mch.values))
    for field in (members, sharp, quantiles):
        assert float(np.nanmax(field.values)) < 2.0 * top
    assert members.attrs["nowcast_members"] == "equidistant quantiles"
    assert members.attrs["comment"].startswith("each pixel's N members are its predictive")
    again = method.predict_distribution(mch, 6, members=4, seed=3).members()
    np.testing.assert_array_equal(again.values, members.values)
    other = method.predict_distribution(mch, 6, members=4, seed=4).members()
    assert not np.array_equal(np.nan_to_num(other.values), np.nan_to_num(members.values))


@pytest.mark.parametrize("tile", ["none", 80])
def test_predict_keeps_the_median_level_alone_and_gives_the_distributions_median(
    mch, quantile_run, tmp_path, tile
):
    """``predict`` runs the network keeping the median channel only (a 13th of the memory on
    a large grid), also in tiles and with a calibration that keeps the median; the result
    is the distribution's median. A calibration that moves the median is followed."""
    import json
    import shutil

    from nowcast.trained.calibration import CALIBRATION_FILE

    run = tmp_path / "run"
    shutil.copytree(quantile_run, run)
    coverage = [[0.1, 0.3, 0.6, 0.8, 0.9]] * 3
    calibration = {"levels": list(LEVELS), "step_seconds": 300.0, "coverage": coverage}
    for anchor in ("median", "none"):
        (run / CALIBRATION_FILE).write_text(json.dumps({**calibration, "anchor": anchor}))
        method = ConvLSTMForecaster(run, tile=tile)
        shapes = []
        network = method._network
        method._network = lambda x, *a, net=network, seen=shapes: (
            seen.append(net(x, *a).shape[-1]) or net(x, *a)
        )
        median = method.predict(mch, 6).values
        expected = method.predict_distribution(mch, 6).median().values
        np.testing.assert_allclose(median, expected, atol=1e-5, equal_nan=True)
        assert shapes[0] == (1 if anchor == "median" else len(LEVELS))
        assert (method.tiles_used > 1) == (tile != "none")
    raw = ConvLSTMForecaster(quantile_run).predict(mch, 6).values
    assert not np.allclose(np.nan_to_num(median), np.nan_to_num(raw))  # "none" moved it


def test_a_deterministic_model_has_no_distribution(mch):
    method = ConvLSTMForecaster("radar-5min-deterministic")
    with pytest.raises(NowcastError, match="deterministic"):
        method.predict_distribution(mch, 3, members=2)
