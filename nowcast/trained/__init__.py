"""Trained models: their run directories, the shipped catalogue, their metadata, cadence.

Below both :mod:`nowcast.training` (which writes a run directory) and
:mod:`nowcast.methods` (which forecasts with one), and below :mod:`nowcast.trainset` (whose
summary goes into the metadata); nothing here imports Keras.

Modules: :mod:`~nowcast.trained.rundir` (:class:`RunDir`: a run directory's file names and
its JSON files), :mod:`~nowcast.trained.catalogue` (finding a model: ``--model``
specs, the models shipped in ``nowcast/pretrained/``, ``nowcast models``),
:mod:`~nowcast.trained.metadata` (``metadata.json``: written, checked, its training
summary, the model's :class:`~nowcast.conventions.Frame`) and
:mod:`~nowcast.trained.cadence` (which archive steps a model takes, the input frames it
needs). Names are imported on first use.
"""

from __future__ import annotations

from nowcast.lazy import lazy_exports

_EXPORTS = {
    "RunDir": "nowcast.trained.rundir",
    "PRETRAINED_DIR": "nowcast.trained.catalogue",
    "describe_model": "nowcast.trained.catalogue",
    "packaged_models": "nowcast.trained.catalogue",
    "resolve_model": "nowcast.trained.catalogue",
    "resolve_model_file": "nowcast.trained.catalogue",
    "check_metadata": "nowcast.trained.metadata",
    "model_frame": "nowcast.trained.metadata",
    "STEP_RATIOS": "nowcast.trained.cadence",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
