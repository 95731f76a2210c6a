"""The quantile head (non-crossing levels around a residual median), its pinball loss
(worked out by hand), the config rules, and the warm start from a trained model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from keras import ops

from nowcast.config import ModelConfig, load_config
from nowcast.errors import ConfigError
from nowcast.model import build_model, load_model, make_loss, save_model
from nowcast.model.quantiles import QuantileStack, check_quantile_levels

pytestmark = pytest.mark.usefixtures("torch_single_thread")

LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)
IDENTITY = {"transform": "none", "normalise": False}


def _cfg(**kw) -> ModelConfig:
    base = ModelConfig(filters=(4,), downsample=2, residual=True, head="skip", quantiles=LEVELS)
    return dataclasses.replace(base, **kw)


def test_levels_are_checked():
    assert check_quantile_levels([0.1, 0.5, 0.9]) == (0.1, 0.5, 0.9)
    for bad in ([0.5], [0.1, 0.9], [0.5, 0.4], [0.0, 0.5], [0.5, 1.0]):
        with pytest.raises(ConfigError):
            check_quantile_levels(bad)


def test_stack_is_non_crossing_around_the_median():
    median = np.full((1, 2, 3, 3, 1), 2.0, "float32")
    raw = np.random.default_rng(0).normal(size=(1, 2, 3, 3, 4)).astype("float32") * 5
    out = ops.convert_to_numpy(QuantileStack(LEVELS)([median, raw]))
    assert out.shape == (1, 2, 3, 3, 5)
    np.testing.assert_allclose(out[..., 2], 2.0)
    assert np.all(np.diff(out, axis=-1) > 0)
    gaps = np.log1p(np.exp(raw))  # softplus
    np.testing.assert_allclose(out[..., 3] - out[..., 2], gaps[..., 2], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        out[..., 2] - out[..., 0], gaps[..., 0] + gaps[..., 1], rtol=1e-4, atol=1e-6
    )


def test_untrained_median_is_the_last_frame_and_levels_spread():
    model = build_model(_cfg(), t_in=3, t_out=2)
    assert model.output_shape[-1] == len(LEVELS)
    x = np.random.default_rng(1).normal(size=(2, 3, 8, 12, 1)).astype("float32")
    y = np.asarray(model.predict(x, verbose=0))
    np.testing.assert_allclose(y[..., 2], np.repeat(x[:, -1:, ..., 0], 2, axis=1), atol=1e-6)
    assert np.all(np.diff(y, axis=-1) > 0)


def test_pinball_loss_by_hand():
    """Truth 1, forecast quantiles 0, 1, 2 at levels 0.25, 0.5, 0.75: errors 1, 0, -1 ->
    pinball 0.25, 0, 0.25 -> mean 1/6; masked pixels do not count."""
    y_true = np.ones((1, 1, 1, 2, 1), "float32")
    y_pred = np.array([[0, 1, 2], [5, 6, 7]], "float32").reshape(1, 1, 1, 2, 3)
    mask = np.array([1, 0], "float32").reshape(y_true.shape)
    loss = make_loss("pinball", encoding=IDENTITY, levels=(0.25, 0.5, 0.75))
    assert float(ops.convert_to_numpy(loss(y_true, y_pred, sample_weight=mask))) == pytest.approx(
        1 / 6
    )
    # second pixel alone: errors -4, -5, -6 -> 0.75*4, 0.5*5, 0.25*6 -> mean 7/3
    value = float(ops.convert_to_numpy(loss(y_true, y_pred, sample_weight=1 - mask)))
    assert value == pytest.approx((3 + 2.5 + 1.5) / 3)


def test_pinball_loss_with_the_encoded_term_by_hand():
    """Log encoding (offset 0.01, no normalising): truth 0.99 mm/h is 0 encoded; quantiles
    encoded -1, 0, 1 at levels 0.25, 0.5, 0.75. In mm/h (values e^-1 - 0.01, 0.99, e - 0.01)
    the errors are 1 - e^-1, 0, 1 - e: pinball 0.25 (1 - e^-1), 0, 0.25 (e - 1); encoded the
    errors are 1, 0, -1: pinball 1/6. The loss is the first plus encoded_weight times the
    second; a level below "no rain" still gets a gradient from the encoded term only."""
    log = {"transform": "log", "log_offset": 0.01, "normalise": False}
    y_true = np.zeros((1, 1, 1, 1, 1), "float32")
    y_pred = np.array([-1, 0, 1], "float32").reshape(1, 1, 1, 1, 3)
    physical = (0.25 * (1 - np.exp(-1)) + 0.25 * (np.e - 1)) / 3
    for weight in (0.0, 0.5, 2.0):
        loss = make_loss("pinball", encoding=log, levels=(0.25, 0.5, 0.75), encoded_weight=weight)
        value = float(ops.convert_to_numpy(loss(y_true, y_pred)))
        assert value == pytest.approx(physical + weight / 6, rel=1e-5)
    with pytest.raises(ConfigError, match="encoded_weight"):
        make_loss("pinball", encoding=log, levels=(0.25, 0.5, 0.75), encoded_weight=-1)
    base = ["model.quantiles=[0.1, 0.5, 0.9]", "model.residual=true"]
    cfg = load_config(None, [*base, "train.loss=pinball", "train.pinball_encoded_weight=0.5"])
    assert cfg.train.pinball_encoded_weight == 0.5
    with pytest.raises(ConfigError, match="pinball_encoded_weight goes with"):
        load_config(None, ["train.loss=mae", "train.pinball_encoded_weight=0.5"])


def test_pinball_goes_with_quantiles_only():
    with pytest.raises(ConfigError, match="pinball"):
        load_config(None, ["train.loss=pinball"])
    with pytest.raises(ConfigError, match="pinball"):
        load_config(None, ["model.quantiles=[0.1, 0.5, 0.9]", "model.residual=true"])
    cfg = load_config(
        None, ["model.quantiles=[0.1, 0.5, 0.9]", "model.residual=true", "train.loss=pinball"]
    )
    assert cfg.model.quantiles == (0.1, 0.5, 0.9)


def test_warm_start_copies_all_but_the_new_head(tmp_path):
    """A deterministic model's weights go into the quantile model: its median equals the
    donor's output, and only the spread head starts anew; the model saves and loads."""
    from nowcast.training.loop import warm_start

    donor = build_model(_cfg(quantiles=()), t_in=3, t_out=2)
    rng = np.random.default_rng(2)
    for w in donor.weights:
        w.assign(rng.normal(scale=0.1, size=w.shape).astype("float32"))
    path = save_model(donor, tmp_path / "donor" / "model.keras")
    model = build_model(_cfg(), t_in=3, t_out=2)
    lines = []
    assert warm_start(model, path, echo=lines.append) == len(donor.layers) - sum(
        1 for layer in donor.layers if not layer.get_weights()
    )
    assert "head_spread" in lines[0]
    x = rng.normal(size=(1, 3, 8, 8, 1)).astype("float32")
    expected = np.asarray(donor.predict(x, verbose=0))[..., 0]
    y = np.asarray(model.predict(x, verbose=0))
    np.testing.assert_allclose(y[..., 2], expected, atol=1e-5)
    saved = save_model(model, tmp_path / "q" / "model.keras")
    np.testing.assert_allclose(np.asarray(load_model(saved).predict(x, verbose=0)), y, atol=1e-6)
