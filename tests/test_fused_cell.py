"""FusedConvLSTM2D computes exactly what keras.layers.ConvLSTM2D computes, given equal weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from nowcast.model import FusedConvLSTM2D
from nowcast.model.layers import DynamicConvLSTM2D

pytestmark = pytest.mark.usefixtures("torch_single_thread")


B, T, H, W, C, F = 2, 4, 7, 9, 3, 4


def _np(x):
    return ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, H, W, C)).astype("float32")
    h0 = rng.normal(size=(B, H, W, F)).astype("float32")
    c0 = rng.normal(size=(B, H, W, F)).astype("float32")
    return x, h0, c0


def _stock(return_sequences=True, return_state=True, seed=1):
    layer = keras.layers.ConvLSTM2D(
        F, 3, padding="same", return_sequences=return_sequences, return_state=return_state
    )
    layer.build((None, T, H, W, C))
    kernel, recurrent, bias = layer.get_weights()
    # A random bias too, so every gate's bias is exercised (default is 0 / 1).
    bias = np.random.default_rng(seed).normal(size=bias.shape).astype("float32")
    layer.set_weights([kernel, recurrent, bias])
    return layer


def _fused_like(stock, **kwargs):
    kernel, recurrent, bias = stock.get_weights()
    layer = FusedConvLSTM2D(
        F, 3, return_sequences=stock.return_sequences, return_state=stock.return_state, **kwargs
    )
    layer.build((None, T, H, W, C))
    layer.set_weights([np.concatenate([kernel, recurrent], axis=2), bias])
    return layer


VARIANTS = [
    {"strategy": "split"},
    {"strategy": "concat"},
    {"strategy": "split", "layout": "channels_first"},
    {"strategy": "concat", "loop": "fori"},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(v.values()))
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "initial_state"])
def test_fused_equals_stock_convlstm2d(data, variant, with_state):
    x, h0, c0 = data
    stock = _stock()
    fused = _fused_like(stock, **variant)
    kwargs = {"initial_state": [h0, c0]} if with_state else {}
    expected = [_np(v) for v in stock(x, **kwargs)]
    got = [_np(v) for v in fused(x, **kwargs)]
    assert [g.shape for g in got] == [(B, T, H, W, F), (B, H, W, F), (B, H, W, F)]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=2e-6)
    # The last output of the sequence is the returned h state.
    np.testing.assert_array_equal(got[0][:, -1], got[1])


def test_fused_return_modes_match_stock(data):
    x, h0, c0 = data
    stock = _stock(return_sequences=False, return_state=False)
    fused = _fused_like(stock)
    got, expected = _np(fused(x, initial_state=[h0, c0])), _np(stock(x, initial_state=[h0, c0]))
    assert got.shape == (B, H, W, F)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-6)


def test_initial_state_matters(data):
    """Guards the equality tests against a layer that ignores initial_state."""
    x, h0, c0 = data
    fused = _fused_like(_stock())
    a = _np(fused(x, initial_state=[h0, c0])[0])
    b = _np(fused(x)[0])
    assert np.abs(a - b).max() > 1e-2


def test_dynamic_convlstm_is_stock_on_unknown_sizes(data):
    x, _, _ = data
    stock = _stock(return_state=False)
    dynamic = DynamicConvLSTM2D(F, 3, padding="same", return_sequences=True)
    inputs = keras.Input((T, None, None, C))
    model = keras.Model(inputs, dynamic(inputs))
    dynamic.set_weights(stock.get_weights())
    np.testing.assert_array_equal(_np(model(x)), _np(stock(x)))
    assert model(x[:, :, :5, :6]).shape == (B, T, 5, 6, F)


def test_fused_initialisation_matches_stock_conventions():
    layer = FusedConvLSTM2D(F, 3)
    layer.build((None, T, H, W, C))
    kernel, bias = (_np(w) for w in layer.weights)
    assert kernel.shape == (3, 3, C + F, 4 * F)
    # unit_forget_bias: 1 on the forget gate (second block), 0 elsewhere.
    np.testing.assert_array_equal(bias, np.r_[np.zeros(F), np.ones(F), np.zeros(2 * F)])
    # Recurrent rows use the orthogonal initializer: columns of the (9F, 4F) matrix are orthonormal.
    rec = kernel[:, :, C:, :].reshape(-1, 4 * F)
    np.testing.assert_allclose(rec.T @ rec, np.eye(4 * F), atol=1e-5)


def test_fused_config_round_trip(data):
    x, h0, c0 = data
    layer = _fused_like(_stock(), strategy="concat", layout="channels_first")
    clone = FusedConvLSTM2D.from_config(layer.get_config())
    clone.build((None, T, H, W, C))
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_array_equal(
        _np(clone(x, initial_state=[h0, c0])[0]), _np(layer(x, initial_state=[h0, c0])[0])
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"padding": "valid"}, "supports padding='same' only"),
        ({"kernel_size": 2}, "kernel_size must be two odd integers"),
        ({"strategy": "magic"}, "strategy must be one of"),
    ],
)
def test_fused_rejects_unsupported_options(bad, message):
    kwargs = {"filters": F, "kernel_size": 3, **bad}
    with pytest.raises(ValueError, match=message):
        FusedConvLSTM2D(**kwargs)
