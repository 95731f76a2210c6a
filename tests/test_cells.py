"""Each recurrent cell against a NumPy reference of its equations (tests/cell_reference.py).

Cells: the stock ``keras.layers.ConvLSTM2D``, the fused ConvLSTM (every strategy, layout
and loop), the fused ConvLSTM with Shi et al.'s peepholes, and the ConvGRU; random
weights (biases and peepholes included), random inputs and states, float32 tolerance.
"""

from __future__ import annotations

import cell_reference as ref
import keras
import numpy as np
import pytest
from keras import ops

from nowcast.model import ConvGRU2D, FusedConvLSTM2D

pytestmark = pytest.mark.usefixtures("torch_single_thread")

B, T, H, W, C, F = 2, 4, 7, 9, 3, 4
RTOL, ATOL = 1e-5, 2e-5  # float32 layer vs float64 reference
WRONG = 1e-2  # a miswired gate moves the outputs by more than this (500x ATOL)


def _np(x):
    return ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)

    def normal(*shape, scale=1.0):
        return (scale * rng.normal(size=shape)).astype("float32")

    return {
        "x": normal(B, T, H, W, C),
        "h0": normal(B, H, W, F),
        "c0": normal(B, H, W, F),
        "lstm": (normal(3, 3, C, 4 * F, scale=0.3), normal(3, 3, F, 4 * F, scale=0.3)),
        "lstm_bias": normal(4 * F),
        "peepholes": tuple(normal(F) for _ in range(3)),
        "gru": (normal(3, 3, C, 3 * F, scale=0.3), normal(3, 3, F, 3 * F, scale=0.3)),
        "gru_bias": normal(3 * F),
    }


def _lstm_layer(data, kind, peephole=False, **options):
    """A built layer with the fixture's weights: ``kind`` is ``stock`` or ``fused``."""
    w_x, w_h = data["lstm"]
    common = dict(return_sequences=True, return_state=True)
    if kind == "stock":
        layer = keras.layers.ConvLSTM2D(F, 3, padding="same", **common)
        layer.build((None, T, H, W, C))
        layer.set_weights([w_x, w_h, data["lstm_bias"]])
        return layer
    layer = FusedConvLSTM2D(F, 3, peephole=peephole, **common, **options)
    layer.build((None, T, H, W, C))
    weights = [np.concatenate([w_x, w_h], axis=2), data["lstm_bias"]]
    layer.set_weights(weights + (list(data["peepholes"]) if peephole else []))
    return layer


def _gru_layer(data, **options):
    layer = ConvGRU2D(F, 3, return_sequences=True, return_state=True, **options)
    layer.build((None, T, H, W, C))
    layer.set_weights([*data["gru"], data["gru_bias"]])
    return layer


def _lstm_reference(data, with_state, peephole, mistake=None):
    zeros = np.zeros((B, H, W, F))
    h, c = (data["h0"], data["c0"]) if with_state else (zeros, zeros)
    x = data["x"].astype("float64")
    peepholes = data["peepholes"] if peephole else None
    return ref.convlstm(x, *data["lstm"], data["lstm_bias"], h, c, peepholes, mistake=mistake)


def _gru_reference(data, with_state, mistake=None):
    h = data["h0"] if with_state else np.zeros((B, H, W, F))
    x = data["x"].astype("float64")
    return ref.convgru(x, *data["gru"], data["gru_bias"], h, mistake=mistake)


def _run(layer, data, n_states, with_state):
    states = [data["h0"], data["c0"]][:n_states]
    out = layer(data["x"], initial_state=states) if with_state else layer(data["x"])
    return [_np(v) for v in out]


def _assert_close(got, expected):
    assert [g.shape for g in got] == [e.shape for e in expected]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)


FUSED_VARIANTS = [
    {},
    {"strategy": "concat"},
    {"layout": "channels_first"},
    {"strategy": "concat", "loop": "fori"},
    {"loop": "fori", "layout": "channels_first"},
]
LSTM_CELLS = [("stock", False, {})] + [
    ("fused", peephole, v) for peephole in (False, True) for v in FUSED_VARIANTS
]
GRU_VARIANTS = [{}, {"layout": "channels_first"}, {"loop": "fori"}]
STATES = pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "initial_state"])


def _lstm_id(cell):
    kind, peephole, options = cell
    return "-".join([kind + ("+peephole" if peephole else ""), *options.values()])


@STATES
@pytest.mark.parametrize("cell", LSTM_CELLS, ids=_lstm_id)
def test_convlstm_cells_match_the_numpy_equations(data, cell, with_state):
    kind, peephole, options = cell
    got = _run(_lstm_layer(data, kind, peephole, **options), data, 2, with_state)
    _assert_close(got, _lstm_reference(data, with_state, peephole))


@STATES
@pytest.mark.parametrize("options", GRU_VARIANTS, ids=lambda v: "-".join(v.values()) or "default")
def test_convgru_matches_the_numpy_equations(data, options, with_state):
    got = _run(_gru_layer(data, **options), data, 1, with_state)
    _assert_close(got, _gru_reference(data, with_state))


@pytest.mark.parametrize("mistake", ref.LSTM_MISTAKES)
def test_a_miswired_convlstm_gate_is_caught(data, mistake):
    """The reference comparison is not blind: each wiring error moves the outputs far
    beyond the tolerance (peepholes random and non-zero, so their wiring shows)."""
    got = _run(_lstm_layer(data, "fused", peephole=True), data, 2, True)
    wrong = _lstm_reference(data, True, True, mistake=mistake)
    assert max(np.abs(g - w).max() for g, w in zip(got, wrong)) > WRONG


@pytest.mark.parametrize("mistake", ref.GRU_MISTAKES)
def test_a_miswired_convgru_gate_is_caught(data, mistake):
    got = _run(_gru_layer(data), data, 1, True)
    wrong = _gru_reference(data, True, mistake=mistake)
    assert max(np.abs(g - w).max() for g, w in zip(got, wrong)) > WRONG


def test_peepholes_matter_and_start_at_zero(data):
    """Random peepholes change the outputs; fresh ones are zero, i.e. the plain cell."""
    plain = _run(_lstm_layer(data, "fused"), data, 2, True)
    peep = _run(_lstm_layer(data, "fused", peephole=True), data, 2, True)
    assert np.abs(plain[0] - peep[0]).max() > WRONG
    fresh = FusedConvLSTM2D(F, 3, peephole=True, return_sequences=True, return_state=True)
    fresh.build((None, T, H, W, C))
    assert [w.path.split("/")[-1] for w in fresh.weights] == [
        "kernel",
        "bias",
        "peephole_input",
        "peephole_forget",
        "peephole_output",
    ]
    fresh.set_weights(_lstm_layer(data, "fused").get_weights() + [np.zeros(F)] * 3)
    _assert_close(_run(fresh, data, 2, True), plain)
    np.testing.assert_array_equal(
        _np(FusedConvLSTM2D(F, 3, peephole=True).peephole_initializer((F,))), 0
    )


def test_gru_has_one_state_and_initial_state_matters(data):
    layer = _gru_layer(data)
    out, h = _run(layer, data, 1, True)
    assert out.shape == (B, T, H, W, F) and h.shape == (B, H, W, F)
    np.testing.assert_array_equal(out[:, -1], h)
    assert np.abs(_run(layer, data, 1, False)[0] - out).max() > WRONG
    with pytest.raises(ValueError, match=r"takes 1 initial state tensor\(s\) \(h\), got 2"):
        layer(data["x"], initial_state=[data["h0"], data["c0"]])


def test_gru_initialisation_and_weight_shapes():
    layer = ConvGRU2D(F, 3)
    layer.build((None, T, H, W, C))
    kernel, recurrent, bias = (_np(w) for w in layer.weights)
    assert kernel.shape == (3, 3, C, 3 * F) and recurrent.shape == (3, 3, F, 3 * F)
    np.testing.assert_array_equal(bias, np.zeros(3 * F))
    rec = recurrent.reshape(-1, 3 * F)  # orthogonal, as ConvLSTM2D's recurrent kernel
    np.testing.assert_allclose(rec.T @ rec, np.eye(3 * F), atol=1e-5)


@pytest.mark.parametrize("make", ["peephole", "gru"])
def test_config_round_trip(data, make):
    layer = (
        _lstm_layer(data, "fused", peephole=True, layout="channels_first")
        if make == "peephole"
        else _gru_layer(data, loop="fori")
    )
    clone = type(layer).from_config(layer.get_config())
    clone.build((None, T, H, W, C))
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    n = 2 if make == "peephole" else 1
    np.testing.assert_array_equal(_run(clone, data, n, True)[0], _run(layer, data, n, True)[0])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"padding": "valid"}, "ConvGRU2D supports padding='same' only"),
        ({"kernel_size": 2}, "kernel_size must be two odd integers"),
        ({"loop": "while"}, "loop must be one of"),
        ({"layout": "nhwc"}, "layout must be one of"),
    ],
)
def test_gru_rejects_unsupported_options(bad, message):
    with pytest.raises(ValueError, match=message):
        ConvGRU2D(**{"filters": F, "kernel_size": 3, **bad})
