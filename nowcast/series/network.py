"""The recurrent series network (Keras 3, backend-agnostic) and what it sees.

Inputs, per step of the ``t_in`` input window (:func:`encode_windows`): the value z-scored
by the training period's mean and standard deviation, its difference from the window's
last value (divided by the same standard deviation), and with ``time_features`` the sine
and cosine of the time of day and of the day of the year (:func:`time_features`). The
network (:func:`build_series_model`): stacked ``LSTM`` or ``GRU`` layers, each followed by
dropout, optional hidden dense layers, and a dense output layer that starts at zero. It
predicts the change from the last input value in standard deviations: ``t_out`` values
(``direct``) or the next step only (``recursive``, fed back step by step), so an untrained
network is persistence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nowcast.backend import select_backend
from nowcast.config.series import SeriesConfig

select_backend()
import keras  # noqa: E402

__all__ = [
    "FEATURES",
    "build_series_model",
    "encode_windows",
    "feature_names",
    "time_features",
]

#: The input channels without and with time features.
FEATURES = ("value", "change")
TIME_FEATURES = ("hour_sin", "hour_cos", "doy_sin", "doy_cos")


def feature_names(time_features: bool) -> tuple[str, ...]:
    return FEATURES + (TIME_FEATURES if time_features else ())


def time_features(times) -> np.ndarray:
    """``(time, 4)`` float32: sine and cosine of the time of day and of the day of the year."""
    t = pd.DatetimeIndex(times)
    hours = t.hour + t.minute / 60 + t.second / 3600
    day = 2 * np.pi * np.asarray(hours) / 24
    year = 2 * np.pi * (np.asarray(t.day_of_year) - 1 + np.asarray(hours) / 24) / 365.25
    return np.stack([np.sin(day), np.cos(day), np.sin(year), np.cos(year)], axis=1).astype(
        np.float32
    )


def encode_windows(
    windows: np.ndarray, feats: np.ndarray | None, mean: float, std: float
) -> np.ndarray:
    """``(n, t_in, channels)`` float32 network inputs of ``windows (n, t_in)`` physical values
    with their times' features ``feats (n, t_in, 4)`` (None: no time features)."""
    z = (windows - mean) / std
    change = (windows - windows[:, -1:]) / std
    parts = [z[..., None], change[..., None]]
    if feats is not None:
        parts.append(feats)
    return np.concatenate(parts, axis=-1).astype(np.float32)


def build_series_model(cfg: SeriesConfig, *, t_in: int, t_out: int, n_features: int) -> keras.Model:
    """Stacked LSTM/GRU layers with dropout and a dense head: ``(None, t_in, n_features)``
    -> ``(None, t_out)`` (``direct``) or ``(None, 1)`` (``recursive``)."""
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cfg.cell]
    inputs = keras.Input((t_in, n_features), name="window")
    h = inputs
    for i, units in enumerate(cfg.hidden):
        last = i == len(cfg.hidden) - 1
        h = layer(units, return_sequences=not last, name=f"{cfg.cell}_{i + 1}")(h)
        if cfg.dropout:
            h = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i + 1}")(h)
    for i, units in enumerate(cfg.head):
        h = keras.layers.Dense(units, activation="relu", name=f"dense_{i + 1}")(h)
    n_out = t_out if cfg.strategy == "direct" else 1
    outputs = keras.layers.Dense(n_out, kernel_initializer="zeros", name="head")(h)
    return keras.Model(inputs, outputs, name=f"series_{cfg.cell}_{cfg.strategy}")
