"""The ConvLSTM encoder-forecaster (Shi et al. 2015; the HKO-7 layout) and model I/O.

::

    past (B, t_in, H, W, C)
      -> PadToMultiple(b)                    zeros up to a multiple of b (cropped at the end)
      -> SpaceToDepth(b) | Conv3D 1xbxb /b   to (B, t_in, H/b, W/b, .)
      -> encoder: ConvLSTM filters[0] .. filters[-1]     each returns its final states
      -> forecaster: ConvLSTM filters[-1] .. filters[0]  each starts from the matching
         encoder state and unrolls t_out steps; the first one's input is zeros
         (B, t_out, h, w, 1), so it runs on the encoder state alone (as in HKO-7), the
         others take the sequence of the layer above
      -> Dense(b*b*U) + DepthToSpace(b) | Conv3DTranspose 1xbxb *b, leaky ReLU
      -> crop to (H, W) -> Dense(C) head, linear, float32
    forecast (B, t_out, H, W, C)
      or, with ``model.quantiles`` (K levels, C = 1), the non-crossing quantiles
      (B, t_out, H, W, K) of :mod:`nowcast.model.quantiles`

``b = cfg.downsample``, ``U = max(8, C)`` full-resolution feature channels. The
recurrent layer is one of :data:`CELLS` by ``cfg.cell``:
:class:`~nowcast.model.layers.DynamicConvLSTM2D` (stock ``keras.layers.ConvLSTM2D``),
:class:`~nowcast.model.fused.FusedConvLSTM2D` (optionally with peepholes) or
:class:`~nowcast.model.gru.ConvGRU2D`. A ConvLSTM's states are ``(h, c)``, a ConvGRU's
``(h,)``: each encoder layer hands all of its states to its forecaster layer, whatever
their number. The model is fully convolutional: any ``H, W`` works.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import keras

from nowcast.config import ModelConfig, check_cell
from nowcast.errors import ConfigError, NowcastError, one_line
from nowcast.fileio import atomic_output
from nowcast.model.fused import FusedConvLSTM2D
from nowcast.model.gru import ConvGRU2D
from nowcast.model.layers import (
    AddLastFrame,
    CropLike,
    DepthToSpace,
    DynamicConvLSTM2D,
    ForecasterInput,
    FramesAsChannels,
    PadToMultiple,
    SpaceToDepth,
)
from nowcast.model.quantiles import check_quantile_levels, quantile_head

#: Feature channels at full resolution before the output head (at least ``channels``).
UPSAMPLE_CHANNELS = 8


#: ``model.cell`` -> the recurrent layer class.
CELLS = {"stock": DynamicConvLSTM2D, "fused": FusedConvLSTM2D, "gru": ConvGRU2D}


def _recurrent(
    cfg: ModelConfig, filters: int, *, name: str, return_sequences: bool, return_state: bool
):
    layer = CELLS.get(cfg.cell)
    if layer is None:
        names = ", ".join(repr(c) for c in CELLS)
        raise ConfigError(f"model.cell: {cfg.cell!r} is not one of {names}")
    check_cell(cfg.cell, peephole=cfg.peephole)
    kwargs = {"peephole": True} if cfg.peephole else {}
    return layer(
        filters,
        cfg.kernel_size,
        padding="same",
        return_sequences=return_sequences,
        return_state=return_state,
        name=name,
        **kwargs,
    )


def build_model(
    cfg: ModelConfig,
    *,
    t_in: int,
    t_out: int,
    channels: int | None = None,
    name: str = "convlstm_nowcast",
) -> keras.Model:
    """Build (not compile) the encoder-forecaster.

    Input ``(None, t_in, None, None, channels)``, output ``(None, t_out, None, None,
    channels)`` float32 (also under a mixed-precision policy). ``channels`` defaults to
    ``cfg.channels``.
    """
    channels = cfg.channels if channels is None else int(channels)
    if t_in < 1 or t_out < 1:
        raise ConfigError(f"t_in and t_out must be >= 1, got t_in={t_in}, t_out={t_out}")
    if channels < 1:
        raise ConfigError(f"model.channels must be >= 1, got {channels}")
    if not cfg.filters or any(f < 1 for f in cfg.filters):
        raise ConfigError(f"model.filters must be positive integers, got {cfg.filters}")
    if cfg.downsample < 1:
        raise ConfigError(f"model.downsample must be >= 1, got {cfg.downsample}")
    if cfg.downsample_mode not in ("space_to_depth", "conv"):
        raise ConfigError(
            f"model.downsample_mode: {cfg.downsample_mode!r} is not one of 'space_to_depth', 'conv'"
        )
    b = int(cfg.downsample)
    filters = tuple(int(f) for f in cfg.filters)
    s2d = cfg.downsample_mode == "space_to_depth"

    past = keras.Input((t_in, None, None, channels), name="past")
    x = PadToMultiple(b, name="pad")(past)
    if b > 1:
        if s2d:
            x = SpaceToDepth(b, name="space_to_depth")(x)
        else:
            x = keras.layers.Conv3D(
                filters[0], (1, b, b), strides=(1, b, b), activation="leaky_relu", name="downsample"
            )(x)

    states = []
    for i, f in enumerate(filters):
        last = i == len(filters) - 1
        layer = _recurrent(
            cfg, f, name=f"encoder_{i + 1}", return_sequences=not last, return_state=True
        )
        x, *state = layer(x)  # (h, c) for a ConvLSTM, (h,) for a ConvGRU
        states.append(state)

    y = ForecasterInput(t_out, 1, name="forecaster_input")(states[-1][0])
    for i in reversed(range(len(filters))):
        layer = _recurrent(
            cfg, filters[i], name=f"forecaster_{i + 1}", return_sequences=True, return_state=False
        )
        y = layer(y, initial_state=states[i])

    up = max(UPSAMPLE_CHANNELS, channels)
    if b > 1:
        if s2d:
            y = keras.layers.Dense(b * b * up, activation="leaky_relu", name="upsample_project")(y)
            y = DepthToSpace(b, name="depth_to_space")(y)
        else:
            y = keras.layers.Conv3DTranspose(
                up, (1, b, b), strides=(1, b, b), activation="leaky_relu", name="upsample"
            )(y)
        y = CropLike(b, name="crop")([y, past])
    return keras.Model(past, _head(cfg, y, past, t_out=t_out, channels=channels), name=name)


def _head(cfg: ModelConfig, features, past, *, t_out: int, channels: int):
    """Full-resolution features -> the output: ``dense`` per pixel, or ``skip`` (a 3 x 3
    convolution over the features and all input frames); with ``residual`` the last layer
    starts at zero and its output is added to the last input frame."""
    if cfg.head == "skip":
        frames = FramesAsChannels(t_out, name="input_frames")(past)
        features = keras.layers.Concatenate(name="skip")([features, frames])
        features = keras.layers.Conv3D(
            max(UPSAMPLE_CHANNELS, channels),
            (1, 3, 3),
            padding="same",
            activation="leaky_relu",
            name="skip_conv",
        )(features)
    elif cfg.head != "dense":
        raise ConfigError(f"model.head: {cfg.head!r} is not one of 'dense', 'skip'")
    init = "zeros" if cfg.residual else "glorot_uniform"
    out = keras.layers.Dense(channels, dtype="float32", kernel_initializer=init, name="head")(
        features
    )
    if cfg.quantiles:
        if not cfg.residual or channels != 1:
            raise ConfigError("model.quantiles needs model.residual: true and one channel")
        return quantile_head(features, past, out, levels=check_quantile_levels(cfg.quantiles))
    if cfg.residual:
        out = AddLastFrame(dtype="float32", name="add_last_frame")([out, past])
    return out


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Save ``model`` as a ``.keras`` file atomically (temporary file beside it, then rename)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise NowcastError(f"model files end in .keras, got {path.name}")
    with atomic_output(path) as tmp:
        model.save(tmp)
    return path


def load_model(path: str | os.PathLike, *, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` model saved by :func:`save_model` (on any backend).

    The custom layers and losses are registered by importing :mod:`nowcast.model`.
    """
    path = Path(path)
    if not path.is_file():
        raise NowcastError(f"model file not found: {path}")
    what = "a Keras model saved by nowcast train (a .keras zip archive)"
    if not zipfile.is_zipfile(path):
        size = path.stat().st_size
        state = "is empty" if size == 0 else f"is not a zip archive ({size} bytes)"
        raise NowcastError(f"model file {path} {state}; it should be {what}")
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as exc:  # Keras raises many types for a damaged or foreign archive
        raise NowcastError(
            f"cannot load model file {path} ({one_line(exc, typed=False)}); it should be {what}"
        ) from None
