"""The quantile head and its loss: a predictive distribution per pixel and lead.

With ``model.quantiles`` (levels ``q_1 < ... < q_K`` in (0, 1), 0.5 among them) the network
ends in :class:`QuantileStack`: the median is the residual head of a deterministic model
(``head`` + ``add_last_frame``: an untrained model's median is persistence in its frame,
extrapolation in the Lagrangian frame), and the other levels are the median minus / plus
cumulative sums of ``softplus`` gaps, so the quantiles never cross::

    features (B, T, H, W, U) -> head (B, T, H, W, 1) + last frame = median
                             -> head_spread (B, T, H, W, K - 1) -> softplus -> gaps
    output (B, T, H, W, K): [median - sum(gaps below) ..., median, ..., median + sum(gaps above)]

Values are the network's (normalised) values; the decoding is monotonic, so decoded
channels are the quantiles of the physical value (rain rates clipped at 0: low levels of a
dry pixel decode to 0, a zero-inflated distribution).

:class:`nowcast.model.losses.PinballLoss` is the pinball loss on decoded (physical) values
averaged over the levels: ``mean_k max(q_k e_k, (q_k - 1) e_k)``, ``e_k = truth - forecast_k``.
Twice it is the quantile form of the CRPS (Gneiting & Raftery 2007; exact as the levels
fill (0, 1)),
so training minimises (an approximation of) the CRPS in mm h-1.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from nowcast.errors import ConfigError
from nowcast.model.layers import AddLastFrame

_register = keras.saving.register_keras_serializable(package="nowcast")

#: Initial gap between neighbouring levels, in the network's (normalised) units.
INITIAL_GAP = 0.15


def check_quantile_levels(levels: Sequence[float]) -> tuple[float, ...]:
    """``levels`` as a tuple: strictly increasing, inside (0, 1), 0.5 among them."""
    out = tuple(float(q) for q in levels)
    if len(out) < 2:
        raise ConfigError(f"model.quantiles: need at least two levels, got {list(out)}")
    if not all(0 < q < 1 for q in out) or any(b <= a for a, b in zip(out, out[1:])):
        raise ConfigError(
            f"model.quantiles: levels must be strictly increasing inside (0, 1), got {list(out)}"
        )
    if 0.5 not in out:
        raise ConfigError(f"model.quantiles: 0.5 (the median) must be one of the levels: {out}")
    return out


def spread_bias() -> float:
    """The ``head_spread`` bias whose softplus is :data:`INITIAL_GAP`."""
    return float(np.log(np.expm1(INITIAL_GAP)))


@_register
class QuantileStack(keras.layers.Layer):
    """``[median (B, T, H, W, 1), raw gaps (B, T, H, W, K - 1)]`` -> ``(B, T, H, W, K)``
    quantiles in ascending level order (see the module doc)."""

    def __init__(self, levels: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.levels = check_quantile_levels(levels)
        self.median_index = self.levels.index(0.5)

    def call(self, inputs):
        median, raw = inputs
        gaps = ops.softplus(ops.cast(raw, median.dtype))
        k = self.median_index
        parts = []
        if k > 0:
            below = gaps[..., :k]
            down = ops.flip(ops.cumsum(ops.flip(below, axis=-1), axis=-1), axis=-1)
            parts.append(median - down)
        parts.append(median)
        if k < len(self.levels) - 1:
            parts.append(median + ops.cumsum(gaps[..., k:], axis=-1))
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0][:-1]) + (len(self.levels),)

    def get_config(self):
        return {**super().get_config(), "levels": list(self.levels)}


def quantile_head(features, past, median_delta, *, levels: Sequence[float], dtype="float32"):
    """The quantile output from full-resolution ``features``: ``median_delta`` (the residual
    head's output, zero-initialised) added to the last input frame, and the gaps."""
    levels = check_quantile_levels(levels)
    median = AddLastFrame(dtype=dtype, name="add_last_frame")([median_delta, past])
    raw = keras.layers.Dense(
        len(levels) - 1,
        dtype=dtype,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(spread_bias()),
        name="head_spread",
    )(features)
    return QuantileStack(levels, dtype=dtype, name="quantiles")([median, raw])
