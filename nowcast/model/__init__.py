"""Keras 3 ConvLSTM encoder-forecaster, its losses and model I/O.

Importing this package selects the Keras backend first
(:func:`nowcast.backend.select_backend`) and registers the custom layers and losses,
so :func:`load_model` works in a fresh process on any backend.
"""

from nowcast.backend import select_backend

select_backend()

from nowcast.model.fused import FusedConvLSTM2D  # noqa: E402
from nowcast.model.gru import ConvGRU2D  # noqa: E402
from nowcast.model.losses import (  # noqa: E402
    HKO7_THRESHOLDS_MMH,
    HKO7_WEIGHTS,
    BalancedError,
    MaskedError,
    QuantileError,
    balanced_weights,
    make_loss,
)
from nowcast.model.network import build_model, load_model, save_model  # noqa: E402

__all__ = [
    "HKO7_THRESHOLDS_MMH",
    "HKO7_WEIGHTS",
    "BalancedError",
    "ConvGRU2D",
    "FusedConvLSTM2D",
    "MaskedError",
    "QuantileError",
    "balanced_weights",
    "build_model",
    "load_model",
    "make_loss",
    "save_model",
]
