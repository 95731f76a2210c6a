"""Masked and HKO-7 balanced losses: values worked out by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from nowcast.errors import ConfigError
from nowcast.model import HKO7_WEIGHTS, BalancedError, MaskedError, balanced_weights, make_loss

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _val(x) -> float:
    return float(ops.convert_to_numpy(x))


@pytest.fixture
def batch():
    """y_pred - y_true = 1..8 on a (1, 2, 2, 2, 1) batch; the first four pixels valid."""
    y_true = np.zeros((1, 2, 2, 2, 1), "float32")
    y_pred = np.arange(1, 9, dtype="float32").reshape(y_true.shape)
    mask = np.zeros_like(y_true)
    mask.reshape(-1)[:4] = 1.0
    return y_true, y_pred, mask


def test_masked_mse_is_mean_over_valid_pixels(batch):
    y_true, y_pred, mask = batch
    loss = make_loss("mse")
    assert _val(loss(y_true, y_pred, sample_weight=mask)) == pytest.approx(
        (1 + 4 + 9 + 16) / 4
    )  # 7.5
    assert _val(loss(y_true, y_pred)) == pytest.approx(204 / 8)  # sum of squares 1..8 / 8


def test_masked_mae_is_mean_over_valid_pixels(batch):
    y_true, y_pred, mask = batch
    loss = make_loss("mae")
    assert _val(loss(y_true, y_pred, sample_weight=mask)) == pytest.approx((1 + 2 + 3 + 4) / 4)
    assert _val(loss(y_true, y_pred, sample_weight=1 - mask)) == pytest.approx((5 + 6 + 7 + 8) / 4)


def test_fully_masked_batch_gives_zero_not_nan(batch):
    y_true, y_pred, mask = batch
    assert _val(make_loss("mse")(y_true, y_pred, sample_weight=np.zeros_like(mask))) == 0.0


def test_mask_per_channel():
    """Two channels, mask differs per channel: no squeezing of the channel axis."""
    y_true = np.zeros((1, 1, 1, 2, 2), "float32")
    y_pred = np.array([1, 2, 3, 4], "float32").reshape(y_true.shape)
    mask = np.array([1, 0, 0, 1], "float32").reshape(y_true.shape)
    assert _val(make_loss("mse")(y_true, y_pred, sample_weight=mask)) == pytest.approx((1 + 16) / 2)


def test_keras_fit_path_uses_the_mask(batch):
    """Through compile/evaluate (CompileLoss), sample_weight still means 'mean over valid'."""
    y_true, y_pred, mask = batch
    inputs = keras.Input(y_pred.shape[1:])
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    model.compile(loss=make_loss("mse"))
    assert model.evaluate(y_pred, y_true, sample_weight=mask, verbose=0) == pytest.approx(7.5)


def test_balanced_weights_by_hand():
    thresholds = [0.0, 1.0, 2.0, 3.0]  # stand-ins for encode(2, 5, 10, 30 mm/h)
    y = np.array([-1.0, -0.001, 0.0, 0.5, 1.0, 2.5, 3.0, 10.0], "float32")
    w = ops.convert_to_numpy(balanced_weights(y, thresholds))
    np.testing.assert_array_equal(w, [1, 1, 2, 2, 5, 10, 30, 30])
    assert HKO7_WEIGHTS == (1.0, 2.0, 5.0, 10.0, 30.0)


@pytest.mark.parametrize("kind", ["mse", "mae"])
def test_balanced_loss_by_hand(kind):
    thresholds = [0.0, 1.0, 2.0, 3.0]
    y_true = np.array([-1.0, 0.5, 1.5, 2.5, 5.0, 5.0], "float32").reshape(1, 1, 1, 6, 1)
    y_pred = y_true + np.array([1, 1, 1, 2, 1, 3], "float32").reshape(y_true.shape)  # errors
    mask = np.array([1, 1, 1, 1, 1, 0], "float32").reshape(y_true.shape)  # last pixel invalid
    loss = make_loss(f"balanced_{kind}", thresholds_normalised=np.array(thresholds))
    # weights 1, 2, 5, 10, 30 (, 30 masked); errors 1, 1, 1, 2, 1
    err = [1, 1, 1, 4, 1] if kind == "mse" else [1, 1, 1, 2, 1]
    expected = (1 * err[0] + 2 * err[1] + 5 * err[2] + 10 * err[3] + 30 * err[4]) / 5
    assert _val(loss(y_true, y_pred, sample_weight=mask)) == pytest.approx(expected)


def test_losses_serialise():
    for loss in (
        make_loss("mae"),
        make_loss("balanced_mse", thresholds_normalised=[-1.0, 0.0, 0.5, 2.0]),
    ):
        clone = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(clone) is type(loss) and clone.get_config() == loss.get_config()
    assert isinstance(make_loss("mse"), MaskedError)
    assert make_loss("balanced_mae", thresholds_normalised=[1, 2, 3, 4]).thresholds == (
        1.0,
        2.0,
        3.0,
        4.0,
    )


def test_make_loss_errors():
    with pytest.raises(ConfigError, match="not one of"):
        make_loss("huber")
    with pytest.raises(ConfigError, match="normalised"):
        make_loss("balanced_mse")
    with pytest.raises(ConfigError, match="ascending"):
        make_loss("balanced_mse", thresholds_normalised=[0.0, 2.0, 1.0, 3.0])
    with pytest.raises(ConfigError, match="expected 4"):
        make_loss("balanced_mse", thresholds_normalised=[0.0, 1.0])
    with pytest.raises(ConfigError, match="need 3 weights for 2 thresholds, got 2"):
        BalancedError([0.0, 1.0], weights=[1.0, 2.0])
