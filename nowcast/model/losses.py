"""Masked and intensity-weighted ("balanced", HKO-7) regression losses.

The mask of valid pixels comes as Keras ``sample_weight`` (same shape as ``y``, 1 =
valid). Every loss here returns per-element values and uses Keras's
``reduction="mean_with_sample_weight"``: ``sum(loss * mask) / sum(mask)``, the mean
over valid pixels only (0, not NaN, when nothing is valid). Without a mask it is the
plain mean over all elements.

``lead_discount`` (every loss): lead ``j`` (1-based) is weighted by ``j ** -lead_discount``,
the weights scaled to mean 1 (L-CNN's discounting, Ritvanen et al. 2023): early leads,
whose errors are small, then count as much as late ones.

``pinball`` (:class:`PinballLoss`): the same, averaged over the levels of a quantile model
(``model.quantiles``, see :mod:`nowcast.model.quantiles`): a CRPS in mm h-1. With
``encoded_weight`` ``w > 0`` it adds ``w`` times the same pinball loss on the network's own
(encoded, e.g. normalised log) values. Quantiles do not change under a monotonic encoding, so
both terms have the same minimiser; they weigh pixels differently: in mm h-1 a pixel's
gradient scales with its rain rate (and is 0 where a level decodes to no rain), in the
encoded values light rain counts as much as heavy rain and a level forecast below "no rain"
is still pulled towards it.

``quantile``: the pinball loss on *physical* values (the preprocessor's decoding inside the
loss, rain rates in mm h-1 clipped at 0): ``max(q e, (q - 1) e)``, ``e = truth - forecast``;
``q = 0.5`` is half the absolute error (the median forecast), ``q > 0.5`` forecasts a higher
quantile (more rain area, better CSI, slightly worse MAE). ``q`` may rise with lead time.

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
from nowcast.model.quantiles import check_quantile_levels

_register = keras.saving.register_keras_serializable(package="nowcast")

#: HKO-7 rain-rate thresholds (mm h-1) and the weights below, between and above them.
HKO7_THRESHOLDS_MMH = (2.0, 5.0, 10.0, 30.0)
HKO7_WEIGHTS = (1.0, 2.0, 5.0, 10.0, 30.0)

LOSS_NAMES = ("mse", "mae", "balanced_mse", "balanced_mae", "quantile", "pinball")


def _error(kind: str, y_true, y_pred):
    diff = y_pred - y_true
    return ops.square(diff) if kind == "mse" else ops.abs(diff)


def _lead_axis(values, y):
    """A per-lead vector ``(T,)`` shaped to broadcast against ``y`` ``(B, T, H, W, C)``."""
    return ops.reshape(ops.cast(values, y.dtype), (1, -1, 1, 1, 1))


def lead_weights(n_leads, discount: float):
    """``j ** -discount`` for leads ``j = 1 .. n_leads``, scaled to mean 1."""
    j = ops.cast(ops.arange(1, n_leads + 1), "float32")
    w = ops.power(j, -float(discount))
    return w / ops.mean(w)


def _discounted(loss, y_true, discount: float):
    if not discount:
        return loss
    return loss * _lead_axis(lead_weights(ops.shape(y_true)[1], discount), loss)


@_register
class MaskedError(keras.losses.Loss):
    """Per-pixel squared (``kind="mse"``) or absolute (``"mae"``) error, mean over valid pixels."""

    def __init__(
        self,
        kind: str = "mse",
        lead_discount: float = 0.0,
        name: str | None = None,
        reduction="mean_with_sample_weight",
        dtype=None,
    ):
        if kind not in ("mse", "mae"):
            raise ConfigError(f"loss kind must be 'mse' or 'mae', got {kind!r}")
        super().__init__(name=name or f"masked_{kind}", reduction=reduction, dtype=dtype)
        self.kind = kind
        self.lead_discount = float(lead_discount)

    def call(self, y_true, y_pred):
        return _discounted(_error(self.kind, y_true, y_pred), y_true, self.lead_discount)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "lead_discount": self.lead_discount}


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
        lead_discount: float = 0.0,
        name: str | None = None,
        reduction="mean_with_sample_weight",
        dtype=None,
    ):
        if kind not in ("mse", "mae"):
            raise ConfigError(f"loss kind must be 'mse' or 'mae', got {kind!r}")
        self.lead_discount = float(lead_discount)
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
        loss = balanced_weights(y_true, self.thresholds, self.weights) * _error(
            self.kind, y_true, y_pred
        )
        return _discounted(loss, y_true, self.lead_discount)

    def get_config(self):
        return {
            **super().get_config(),
            "thresholds": list(self.thresholds),
            "weights": list(self.weights),
            "kind": self.kind,
            "lead_discount": self.lead_discount,
        }


def decode(values, encoding: dict):
    """Normalised model values -> physical values, in ``keras.ops`` (differentiable).

    ``encoding``: the preprocessor's ``transform``, ``log_offset``, ``dbr_floor``,
    ``normalise``, ``mean``, ``std`` (:meth:`Preprocessor.to_dict`). Rain rates (``log``,
    ``dbr``) are clipped at 0 like :meth:`Preprocessor.decode`.
    """
    z = values
    if encoding.get("normalise", True):
        z = z * float(encoding.get("std", 1.0)) + float(encoding.get("mean", 0.0))
    transform = encoding.get("transform", "none")
    if transform == "log":
        return ops.relu(ops.exp(ops.minimum(z, 12.0)) - float(encoding.get("log_offset", 0.01)))
    if transform == "dbr":
        floor_db = 10.0 * float(np.log10(encoding.get("dbr_floor", 0.1)))
        rate = ops.power(10.0, ops.minimum(z, 60.0) / 10.0)
        return ops.where(z <= floor_db, 0.0, rate)
    if transform in ("zscore", "none"):
        return z
    raise ConfigError(f"unknown transform {transform!r}")


@_register
class QuantileError(keras.losses.Loss):
    """Pinball loss on decoded (physical) values, quantile from ``quantile[0]`` at the first
    lead to ``quantile[1]`` at the last, mean over valid pixels (see the module doc)."""

    def __init__(
        self,
        encoding: dict,
        quantile=(0.5, 0.5),
        lead_discount: float = 0.0,
        name: str | None = None,
        reduction="mean_with_sample_weight",
        dtype=None,
    ):
        quantile = tuple(float(q) for q in quantile)
        if len(quantile) != 2 or not all(0 < q < 1 for q in quantile):
            raise ConfigError(f"quantile loss: need two quantiles in (0, 1), got {quantile}")
        super().__init__(name=name or "quantile", reduction=reduction, dtype=dtype)
        keep = ("transform", "log_offset", "dbr_floor", "normalise", "mean", "std")
        self.encoding = {k: encoding[k] for k in keep if k in encoding}
        self.quantile = quantile
        self.lead_discount = float(lead_discount)

    def call(self, y_true, y_pred):
        error = decode(y_true, self.encoding) - decode(y_pred, self.encoding)
        n = ops.shape(y_true)[1]
        steps = ops.cast(ops.arange(n), "float32") / ops.cast(ops.maximum(n - 1, 1), "float32")
        q = _lead_axis(self.quantile[0] + (self.quantile[1] - self.quantile[0]) * steps, error)
        loss = ops.maximum(q * error, (q - 1.0) * error)
        return _discounted(loss, y_true, self.lead_discount)

    def get_config(self):
        return {
            **super().get_config(),
            "encoding": dict(self.encoding),
            "quantile": list(self.quantile),
            "lead_discount": self.lead_discount,
        }


@_register
class PinballLoss(keras.losses.Loss):
    """Pinball loss on decoded values averaged over ``levels`` (see the module doc).

    ``y_true`` ``(B, T, H, W, 1)``, ``y_pred`` ``(B, T, H, W, K)``; per-element output
    ``(B, T, H, W, 1)``, so the valid-pixel mask (``sample_weight``) applies as for the
    other losses. ``encoding``: the preprocessor's (:meth:`Preprocessor.to_dict`).
    """

    def __init__(
        self,
        encoding: dict,
        levels: Sequence[float] = (0.1, 0.5, 0.9),
        lead_discount: float = 0.0,
        encoded_weight: float = 0.0,
        name: str | None = None,
        reduction="mean_with_sample_weight",
        dtype=None,
    ):
        super().__init__(name=name or "pinball", reduction=reduction, dtype=dtype)
        keep = ("transform", "log_offset", "dbr_floor", "normalise", "mean", "std")
        self.encoding = {k: encoding[k] for k in keep if k in encoding}
        self.levels = check_quantile_levels(levels)
        self.lead_discount = float(lead_discount)
        if not encoded_weight >= 0:
            raise ConfigError(f"pinball loss: encoded_weight must be >= 0, got {encoded_weight}")
        self.encoded_weight = float(encoded_weight)

    def _pinball(self, error):
        q = ops.reshape(ops.convert_to_tensor(self.levels, dtype=error.dtype), (1, 1, 1, 1, -1))
        return ops.mean(ops.maximum(q * error, (q - 1.0) * error), axis=-1, keepdims=True)

    def call(self, y_true, y_pred):
        loss = self._pinball(decode(y_true, self.encoding) - decode(y_pred, self.encoding))
        if self.encoded_weight:
            loss = loss + self.encoded_weight * self._pinball(y_true - y_pred)
        return _discounted(loss, y_true, self.lead_discount)

    def get_config(self):
        return {
            **super().get_config(),
            "encoding": dict(self.encoding),
            "levels": list(self.levels),
            "lead_discount": self.lead_discount,
            "encoded_weight": self.encoded_weight,
        }


def make_loss(
    name: str,
    *,
    thresholds_normalised: Sequence[float] | None = None,
    encoding: dict | None = None,
    quantile=(0.5, 0.5),
    levels=(),
    lead_discount: float = 0.0,
    encoded_weight: float = 0.0,
) -> keras.losses.Loss:
    """The training loss named in ``TrainConfig.loss``.

    ``"mse"``/``"mae"``: masked mean over valid pixels. ``"balanced_mse"``/``"balanced_mae"``
    need ``thresholds_normalised``: :data:`HKO7_THRESHOLDS_MMH` passed through the data's
    preprocessor (the same encoding the model's targets have). ``"quantile"`` needs the
    preprocessor's ``encoding`` (:meth:`Preprocessor.to_dict`); ``"pinball"`` the encoding
    and the quantile ``levels`` the model predicts (``model.quantiles``), and takes
    ``encoded_weight`` (:class:`PinballLoss`).
    """
    if name not in LOSS_NAMES:
        raise ConfigError(f"train.loss: {name!r} is not one of {', '.join(LOSS_NAMES)}")
    if name == "pinball":
        if encoding is None or not levels:
            raise ConfigError("train.loss='pinball' needs the encoding and model.quantiles")
        return PinballLoss(encoding, levels, lead_discount, encoded_weight)
    if name == "quantile":
        if encoding is None:
            raise ConfigError("train.loss='quantile' needs the preprocessor's encoding")
        return QuantileError(encoding, quantile, lead_discount)
    kind = name.rsplit("_", 1)[-1]
    if not name.startswith("balanced_"):
        return MaskedError(kind, lead_discount)
    if thresholds_normalised is None:
        raise ConfigError(f"train.loss={name!r} needs the HKO-7 thresholds in normalised units")
    thresholds = [float(t) for t in np.asarray(thresholds_normalised, dtype=float).reshape(-1)]
    if len(thresholds) != len(HKO7_THRESHOLDS_MMH):
        raise ConfigError(
            f"train.loss={name!r}: expected {len(HKO7_THRESHOLDS_MMH)} thresholds, got "
            f"{len(thresholds)}"
        )
    return BalancedError(thresholds, HKO7_WEIGHTS, kind=kind, lead_discount=lead_discount)
