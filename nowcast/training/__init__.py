"""Training the ConvLSTM: :func:`train` (config -> datasets -> model -> run directory).

Modules: :mod:`~nowcast.training.loop` (:func:`train`, imports Keras),
:mod:`~nowcast.training.callbacks` (per-epoch checkpoints, TensorBoard scalars) and
:mod:`~nowcast.training.rundir` (:class:`RunDir`: the run directory's file names and its
JSON files, also read by forecasting). Names are imported on first use, so reading a run
directory does not import Keras.
"""

from __future__ import annotations

from nowcast.lazy import lazy_exports

_EXPORTS = {
    "train": "nowcast.training.loop",
    "TrainResult": "nowcast.training.loop",
    "RunDir": "nowcast.training.rundir",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
