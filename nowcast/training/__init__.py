"""Training the ConvLSTM: :func:`train` (config -> datasets -> model -> run directory).

Modules: :mod:`~nowcast.training.loop` (:func:`train`, imports Keras) and
:mod:`~nowcast.training.callbacks` (per-epoch checkpoints, TensorBoard scalars). What a run
writes (the run directory, its metadata) is :mod:`nowcast.trained`, also read by
forecasting. Names are imported on first use.
"""

from __future__ import annotations

from nowcast.lazy import lazy_exports

_EXPORTS = {
    "train": "nowcast.training.loop",
    "TrainResult": "nowcast.training.loop",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
