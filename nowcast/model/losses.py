"""Masked and intensity-weighted ("balanced", HKO-7) regression losses.

The mask of valid pixels comes as Keras ``sample_weight`` (same shape as ``y``, 1 =
valid). Every loss here returns per-element values and uses Keras's
``reduction="mean_with_sample_weight"``: ``sum(loss * mask) / sum(mask)``, the mean
over valid pixels only (0, not NaN, when nothing is valid). Without a mask it is the
plain mean over all elements.

The balanced losses (Shi et al. 2017, HKO-7) weight each pixel by the *observed*
rain rate: ``w = 1, 2, 5, 10, 30`` for ``R < 2, 2 <= R < 5, 5 <= R < 10,
10 <= R < 30, R >= 30`` mm/h. The loss sees normalised values, so the caller passes
the thresholds already encoded by the same preprocessor as the data
(``thresholds_normalised``); the encoding is monotonic, so ``R >= 2 mm/h`` becomes
``y >= encode(2)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from nowcast.errors import ConfigError

_register = keras.saving.register_keras_serializable(package="nowcast")

#: HKO-7 rain-rate thresholds (mm h-1) and the weights below, between and above them.
HKO7_THRESHOLDS_MMH = (2.0, 5.0, 10.0, 30.0)
HKO7_WEIGHTS = (1.0, 2.0, 5.0, 10.0, 30.0)

LOSS_NAMES = ("mse", "mae", "balanced_mse", "balanced_mae")


def _error(kind: str, y_true, y_pred):
    diff = y_pred - y_true
    return ops.square(diff) if kind == "mse" else ops.abs(diff)


@_register
class MaskedError(keras.losses.Loss):
    """Per-pixel squared (``kind="mse"``) or absolute (``"mae"``) error, mean over valid pixels."""

    def __init__(
        self,
        kind: str = "mse",
        name: str | None = None,
        reduction="mean_with_sample_weight",
        dtype=None,
    ):
        if kind not in ("mse", "mae"):
            raise ConfigError(f"loss kind must be 'mse' or 'mae', got {kind!r}")
        super().__init__(name=name or f"masked_{kind}", reduction=reduction, dtype=dtype)
        self.kind = kind

    def call(self, y_true, y_pred):
        return _error(self.kind, y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind}


def balanced_weights(y_true, thresholds: Sequence[float], weights: Sequence[float] = HKO7_WEIGHTS):
    """Weight per element: ``weights[k]`` where ``thresholds[k-1] <= y_true < thresholds[k]``."""
    w = ops.full_like(y_true, weights[0])
    for thr, lower, upper in zip(thresholds, weights[:-1], weights[1:]):
        w = w + ops.where(y_true >= thr, upper - lower, 0.0)
    return ops.cast(w, y_true.dtype)


@_register
class BalancedError(keras.losses.Loss):
    """HKO-7 balanced MSE/MAE: ``w(y_true) * error``, mean over valid pixels.

    ``thresholds`` are in the space the loss sees (normalised), ascending;
    ``weights`` has one more entry than ``thresholds``.
    """

    def __init__(
        self,
        thresholds: Sequence[float],
        weights: Sequence[float] = HKO7_WEIGHTS,
        kind: str = "mse",
        name: str | None = None,
        reduction="mean_with_sample_weight",
        dtype=None,
    ):
        if kind not in ("mse", "mae"):
            raise ConfigError(f"loss kind must be 'mse' or 'mae', got {kind!r}")
        thresholds = tuple(float(t) for t in thresholds)
        weights = tuple(float(w) for w in weights)
        if len(weights) != len(thresholds) + 1:
            raise ConfigError(
                f"balanced loss: need {len(thresholds) + 1} weights for {len(thresholds)} "
                f"thresholds, got {len(weights)}"
            )
        if any(b <= a for a, b in zip(thresholds, thresholds[1:])):
            raise ConfigError(
                f"balanced loss: thresholds must be strictly ascending, got {thresholds}"
            )
        super().__init__(name=name or f"balanced_{kind}", reduction=reduction, dtype=dtype)
        self.thresholds = thresholds
        self.weights = weights
        self.kind = kind

    def call(self, y_true, y_pred):
        return balanced_weights(y_true, self.thresholds, self.weights) * _error(
            self.kind, y_true, y_pred
        )

    def get_config(self):
        return {
            **super().get_config(),
            "thresholds": list(self.thresholds),
            "weights": list(self.weights),
            "kind": self.kind,
        }


def make_loss(
    name: str, *, thresholds_normalised: Sequence[float] | None = None
) -> keras.losses.Loss:
    """The training loss named in ``TrainConfig.loss``.

    ``"mse"``/``"mae"``: masked mean over valid pixels. ``"balanced_mse"``/``"balanced_mae"``
    need ``thresholds_normalised``: :data:`HKO7_THRESHOLDS_MMH` passed through the data's
    preprocessor (the same encoding the model's targets have).
    """
    if name not in LOSS_NAMES:
        raise ConfigError(f"train.loss: {name!r} is not one of {', '.join(LOSS_NAMES)}")
    kind = name.rsplit("_", 1)[-1]
    if not name.startswith("balanced_"):
        return MaskedError(kind)
    if thresholds_normalised is None:
        raise ConfigError(f"train.loss={name!r} needs the HKO-7 thresholds in normalised units")
    thresholds = [float(t) for t in np.asarray(thresholds_normalised, dtype=float).reshape(-1)]
    if len(thresholds) != len(HKO7_THRESHOLDS_MMH):
        raise ConfigError(
            f"train.loss={name!r}: expected {len(HKO7_THRESHOLDS_MMH)} thresholds, got "
            f"{len(thresholds)}"
        )
    return BalancedError(thresholds, HKO7_WEIGHTS, kind=kind)
