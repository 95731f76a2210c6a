"""The encoder-forecaster: shapes on any domain, stock == fused, training, mixed precision, I/O."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

from nowcast.config import ModelConfig
from nowcast.errors import ConfigError, NowcastError
from nowcast.model import build_model, load_model, make_loss, save_model
from nowcast.model.layers import CropLike, DepthToSpace, PadToMultiple, SpaceToDepth

pytestmark = pytest.mark.usefixtures("torch_single_thread")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _np(x):
    return ops.convert_to_numpy(x)


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


# ---------------------------------------------------------------- shape layers


def test_space_to_depth_by_hand_and_inverse():
    x = np.arange(16, dtype="float32").reshape(1, 1, 4, 4, 1)
    s = _np(SpaceToDepth(2)(x))
    assert s.shape == (1, 1, 2, 2, 4)
    np.testing.assert_array_equal(s[0, 0, 0, 0], [0, 1, 4, 5])  # top-left 2x2 patch, row-major
    np.testing.assert_array_equal(s[0, 0, 1, 0], [8, 9, 12, 13])
    y = _inputs((2, 3, 8, 12, 2))
    np.testing.assert_array_equal(_np(DepthToSpace(4)(SpaceToDepth(4)(y))), y)


def test_pad_to_multiple_and_crop_back():
    x = 1 + _inputs((1, 2, 5, 6, 1)) ** 2  # strictly positive, so zero padding is visible
    p = _np(PadToMultiple(4)(x))
    assert p.shape == (1, 2, 8, 8, 1)
    # pad 3 rows: 1 on top, 2 at the bottom; 2 columns: 1 left, 1 right.
    np.testing.assert_array_equal(p[:, :, 1:6, 1:7], x)
    assert (p[:, :, 0] == 0).all() and (p[:, :, 6:] == 0).all() and (p[:, :, :, 0] == 0).all()
    np.testing.assert_array_equal(_np(CropLike(4)([p, x])), x)
    r = _np(PadToMultiple(4, mode="reflect")(x))
    np.testing.assert_array_equal(r[:, :, 0, 1:7], x[:, :, 1])  # reflected row above the first


# ---------------------------------------------------------------- the network

CONFIGS = [
    dict(filters=(4,), downsample=1, cell="stock"),
    dict(filters=(4, 6, 8), downsample=2, downsample_mode="conv", channels=2, cell="stock"),
    dict(filters=(4, 8), downsample=4, channels=2, cell="fused"),
    dict(filters=(8,), downsample=4, downsample_mode="conv", cell="fused"),
    dict(filters=(4, 4, 4), downsample=4, cell="fused", downsample_mode="space_to_depth"),
    dict(filters=(4, 6), downsample=2, cell="fused", peephole=True),
    dict(filters=(4, 6), downsample=2, channels=2, cell="gru"),
    dict(filters=(8,), downsample=4, downsample_mode="conv", cell="gru"),
]

#: One small model config per cell (save/load, mixed precision, state wiring).
CELLS = {
    "stock": dict(cell="stock"),
    "fused": dict(cell="fused"),
    "peephole": dict(cell="fused", peephole=True),
    "gru": dict(cell="gru"),
}


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_output_shapes(cfg):
    cfg = ModelConfig(**cfg)
    model = build_model(cfg, t_in=3, t_out=2)
    assert model.input_shape == (None, 3, None, None, cfg.channels)
    assert model.output_shape == (None, 2, None, None, cfg.channels)
    for h, w in [(16, 16), (13, 9), (37, 53)]:
        y = model(_inputs((2, 3, h, w, cfg.channels)))
        assert tuple(y.shape) == (2, 2, h, w, cfg.channels)
        assert np.isfinite(_np(y)).all()


def test_build_model_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="t_in and t_out must be >= 1, got t_in=0"):
        build_model(ModelConfig(), t_in=0, t_out=2)
    with pytest.raises(
        ConfigError, match="model.cell: 'magic' is not one of 'stock', 'fused', 'gru'"
    ):
        build_model(dataclasses.replace(ModelConfig(), cell="magic"), t_in=2, t_out=2)
    with pytest.raises(
        ConfigError, match="model.peephole needs model.cell: fused, got model.cell: 'gru'"
    ):
        build_model(ModelConfig(cell="gru", peephole=True), t_in=2, t_out=2)


def _zero_recurrent_kernel(layer) -> None:
    """Zero the weights that act on ``h_{t-1}`` (ConvGRU and both ConvLSTM layouts)."""
    names = [w.path.split("/")[-1] for w in layer.weights]
    weights = layer.get_weights()
    if "recurrent_kernel" in names:
        weights[names.index("recurrent_kernel")][...] = 0
    else:  # fused: the kernel's recurrent rows follow the input rows
        weights[0][:, :, layer.input_dim :, :] = 0
    layer.set_weights(weights)


@pytest.mark.parametrize("cell", list(CELLS))
def test_the_forecaster_starts_from_every_encoder_state(cell):
    """The forecaster's input is zeros, so the past reaches the forecast only through the
    encoder's final states. With the forecaster's recurrent kernel at zero a ConvLSTM step
    ignores ``h_{t-1}`` and sees the past only through ``c_{t-1}``, so the forecast depends
    on the past only if ``c`` was handed over too (a ConvGRU carries ``h`` into ``h_t``)."""
    model = build_model(ModelConfig(filters=(4,), downsample=2, **CELLS[cell]), t_in=3, t_out=2)
    _zero_recurrent_kernel(model.get_layer("forecaster_1"))
    a = _np(model(_inputs((1, 3, 8, 10, 1))))
    b = _np(model(_inputs((1, 3, 8, 10, 1), seed=1)))
    assert np.abs(a - b).max() > 1e-4


def _copy_weights_stock_to_fused(stock: keras.Model, fused: keras.Model) -> None:
    for layer in stock.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        target = fused.get_layer(layer.name)
        if layer.name.startswith(("encoder_", "forecaster_")):
            kernel, recurrent, bias = weights
            weights = [np.concatenate([kernel, recurrent], axis=2), bias]
        target.set_weights(weights)


@pytest.mark.parametrize("mode", ["space_to_depth", "conv"])
def test_stock_and_fused_models_agree_and_train_alike(mode):
    """Same weights -> same forecast; one SGD step on each -> same forecast again."""
    cfg = ModelConfig(filters=(4, 6), downsample=2, downsample_mode=mode, cell="stock")
    stock = build_model(cfg, t_in=3, t_out=3)
    fused = build_model(dataclasses.replace(cfg, cell="fused"), t_in=3, t_out=3)
    _copy_weights_stock_to_fused(stock, fused)
    x, y = _inputs((2, 3, 10, 11, 1)), _inputs((2, 3, 10, 11, 1), seed=1)
    before = _np(stock(x))
    np.testing.assert_allclose(_np(fused(x)), before, rtol=1e-5, atol=1e-6)
    for m in (stock, fused):
        m.compile(optimizer=keras.optimizers.SGD(0.5), loss=make_loss("mse"))
        m.train_on_batch(x, y)
    after = _np(stock(x))
    assert np.abs(after - before).max() > 1e-3  # the step did change the forecast
    np.testing.assert_allclose(_np(fused(x)), after, rtol=1e-4, atol=1e-5)


def test_one_gradient_step_reduces_the_masked_loss():
    cfg = ModelConfig(filters=(4, 8), downsample=2)
    model = build_model(cfg, t_in=3, t_out=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss("mse"))
    x, y = _inputs((2, 3, 12, 12, 1)), _inputs((2, 2, 12, 12, 1), seed=1)
    mask = (np.random.default_rng(2).random(y.shape) > 0.25).astype("float32")
    before = model.evaluate(x, y, sample_weight=mask, verbose=0)
    model.train_on_batch(x, y, sample_weight=mask)
    after = model.evaluate(x, y, sample_weight=mask, verbose=0)
    assert after < before


@pytest.mark.parametrize("cell", list(CELLS))
def test_mixed_bfloat16_policy(cell):
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_model(ModelConfig(filters=(4,), downsample=2, **CELLS[cell]), t_in=2, t_out=2)
        assert model.get_layer("encoder_1").compute_dtype == "bfloat16"
        model.compile(optimizer="adam", loss=make_loss("mse"))
        x, y = _inputs((1, 2, 9, 10, 1)), _inputs((1, 2, 9, 10, 1), seed=1)
        loss = model.train_on_batch(x, y)
        out = model(x)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    assert np.isfinite(loss)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert tuple(out.shape) == (1, 2, 9, 10, 1)


# ---------------------------------------------------------------- save / load

_LOADER = textwrap.dedent(
    """
    import sys, numpy as np
    sys.path.insert(0, {root!r})
    from nowcast.model import load_model
    x = np.load({x!r})
    for name in {names!r}:
        model = load_model({tmp!r} + "/" + name + ".keras")
        y = np.asarray(model.predict(x, verbose=0))
        np.save({tmp!r} + "/" + name + "_" + {backend!r} + ".npy", y)
    """
)


def _load_elsewhere(tmp_path, backends) -> None:
    """Load and predict in one fresh process per backend (run side by side)."""
    procs = []
    for backend in backends:
        code = _LOADER.format(
            root=ROOT,
            x=str(tmp_path / "x.npy"),
            tmp=str(tmp_path),
            backend=backend,
            names=list(CELLS),
        )
        env = {**os.environ, "KERAS_BACKEND": backend, "OMP_NUM_THREADS": "1"}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]


@pytest.mark.slow
def test_save_and_load_in_fresh_processes_on_torch_and_jax(tmp_path):
    pytest.importorskip("jax")
    x = _inputs((1, 3, 13, 18, 1))
    np.save(tmp_path / "x.npy", x)
    expected = {}
    for cell, options in CELLS.items():
        model = build_model(ModelConfig(filters=(4,), downsample=4, **options), t_in=3, t_out=2)
        if options.get("peephole"):  # non-zero peepholes, so losing them on load would show
            for layer in model.layers:
                for w in getattr(layer, "peepholes", None) or ():
                    w.assign(_inputs(w.shape, seed=7))
        expected[cell] = np.asarray(model.predict(x, verbose=0))
        assert save_model(model, tmp_path / f"{cell}.keras") == tmp_path / f"{cell}.keras"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{cell}.keras" for cell in CELLS] + ["x.npy"]
    )  # no temp left
    for cell in ("fused", "gru"):
        reloaded = load_model(tmp_path / f"{cell}.keras")
        np.testing.assert_array_equal(reloaded.predict(x, verbose=0), expected[cell])
    _load_elsewhere(tmp_path, [keras.backend.backend(), "jax"])
    for cell in CELLS:
        same = np.load(tmp_path / f"{cell}_{keras.backend.backend()}.npy")
        assert np.abs(same - expected[cell]).max() <= 1e-6
        other = np.load(tmp_path / f"{cell}_jax.npy")
        np.testing.assert_allclose(other, expected[cell], rtol=0, atol=1e-5)


def test_load_model_errors(tmp_path):
    with pytest.raises(NowcastError, match="not found"):
        load_model(tmp_path / "missing.keras")
    with pytest.raises(NowcastError, match=".keras"):
        save_model(
            build_model(ModelConfig(filters=(4,), downsample=1), t_in=1, t_out=1), tmp_path / "m.h5"
        )


def test_residual_output_starts_at_persistence(tmp_path):
    """model.residual: with the head's weights at zero the forecast is the last input frame."""
    from nowcast.model import load_model, save_model

    model = build_model(ModelConfig(filters=(4,), downsample=2, residual=True), t_in=3, t_out=2)
    head = model.get_layer("head")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    x = np.random.default_rng(0).random((2, 3, 13, 9, 1)).astype("float32")
    y = model.predict(x, verbose=0)
    np.testing.assert_array_equal(y, np.repeat(x[:, -1:], 2, axis=1))
    reloaded = load_model(save_model(model, tmp_path / "m.keras"))
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), y)
