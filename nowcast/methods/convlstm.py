"""The trained ConvLSTM as a forecast method (same interface as the baselines).

``ConvLSTMForecaster(model)`` takes a run directory, a ``.keras`` file (with its
``metadata.json`` beside it) or the name of a model shipped with the package
(``nowcast/pretrained/<name>/``); :func:`nowcast.trained.catalogue.resolve_model_file` finds
it. ``predict`` applies the training preprocessing and normalisation to the last ``t_in``
frames, runs the network (rolling forward when more leads than ``t_out`` are asked for),
inverts the transform and returns the forecast on the input grid (coarsening undone), NaN
where the last input frame is NaN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from nowcast.archive.timeaxis import time_step
from nowcast.backend import few_threads
from nowcast.conventions import TIME, Frame
from nowcast.errors import NowcastError
from nowcast.methods.base import (
    Forecaster,
    check_n_leads,
    check_past,
    infer_step,
    lead_array,
    register_method,
)
from nowcast.methods.lagrangian import lagrangian_forecast
from nowcast.motion import FlowOptions
from nowcast.trained.cadence import STEP_RATIOS, check_ratio, input_frames
from nowcast.trained.catalogue import resolve_model_file
from nowcast.trained.metadata import check_metadata, model_frame
from nowcast.trained.rundir import RunDir
from nowcast.trainset.preprocess import Preprocessor, coarsen


def _upsample(values: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Undo a ``boundary='trim'`` block-mean coarsening: bilinear zoom, edge-padded."""
    if factor == 1:
        return values
    ny, nx = values.shape[-2:]
    lead = values.shape[:-2]
    zoomed = ndimage.zoom(
        np.nan_to_num(values),
        (1,) * len(lead) + (factor, factor),
        order=1,
        mode="nearest",
        grid_mode=True,
    )
    pad_y, pad_x = shape[0] - zoomed.shape[-2], shape[1] - zoomed.shape[-1]
    pad = [(0, 0)] * len(lead) + [(0, max(pad_y, 0)), (0, max(pad_x, 0))]
    return np.pad(zoomed, pad, mode="edge")[..., : shape[0], : shape[1]]


@register_method("convlstm")
class ConvLSTMForecaster(Forecaster):
    """A trained encoder-forecaster behind the common forecast-method interface."""

    name = "convlstm"

    def __init__(self, model: str | Path = "radar-5min", *, model_object: Any = None):
        self.model_file = resolve_model_file(model)
        self.model_dir = self.model_file.parent
        self.run = RunDir(self.model_dir)
        self.metadata: dict[str, Any] = check_metadata(self.run.read_metadata(), self.run.metadata)
        self.t_in = int(self.metadata["t_in"])
        self.t_out = int(self.metadata["t_out"])
        self.step = pd.Timedelta(seconds=float(self.metadata["time_step_seconds"]))
        self.frame = model_frame(self.metadata)
        self.flow = FlowOptions.from_dict(self.metadata.get("flow") or {})
        self._model = model_object

    def _ratio(self, step: pd.Timedelta) -> float:
        return float(pd.Timedelta(step) / self.step)

    def input_frames(self, step: pd.Timedelta) -> int:
        if self.frame != Frame.LAGRANGIAN:
            return self.t_in
        return input_frames(self.t_in, self.flow.frames, self._ratio(step))

    @property
    def model(self):
        if self._model is None:
            # imported here, not at the top: Keras costs seconds of start-up time
            from nowcast.model import load_model

            with few_threads():
                self._model = load_model(self.model_file)
        return self._model

    def _network(self, x: np.ndarray) -> np.ndarray:
        """The network's output for a ``(batch, time, y, x, channels)`` input."""
        model = self.model
        with few_threads(int(x.shape[-3] * x.shape[-2])):
            return model.predict(x, verbose=0)

    @property
    def label(self) -> str:
        return f"convlstm ({self.model_dir.name})"

    def check_compatible(self, archive: xr.DataArray) -> None:
        """Clear errors for a model trained on another variable or time step."""
        meta = self.metadata
        units = archive.attrs.get("units")
        if meta.get("units") and units and meta["units"] != units:
            raise NowcastError(
                f"model {self.model_dir.name} was trained on {meta.get('variable')} in "
                f"{meta['units']}; "
                f"the input {archive.name} is in {units}"
            )
        if len(archive[TIME]) >= 2:
            step = time_step(archive)
            if self.frame == Frame.LAGRANGIAN:
                lo, hi = (f * self.step for f in STEP_RATIOS)
                check_ratio(
                    self._ratio(step),
                    lambda: (
                        f"model {self.model_dir.name} was trained at a {_fmt(self.step)} "
                        f"time step and takes inputs every {_fmt(lo)} to {_fmt(hi)}; the input's "
                        f"step is {_fmt(step)}"
                    ),
                )
            elif step != self.step:
                raise NowcastError(
                    f"model {self.model_dir.name} was trained at a {_fmt(self.step)} time step; "
                    f"the input's step is {_fmt(step)}"
                )

    def predict(self, past: xr.DataArray, n_leads: int) -> xr.DataArray:
        n_leads = check_n_leads(n_leads)
        past = check_past(
            past, min(self.t_in, 2) if self.frame == Frame.LAGRANGIAN else self.t_in, self.label
        )
        if self.frame == Frame.LAGRANGIAN:
            return self._predict_lagrangian(past, n_leads)
        past = past.isel({TIME: slice(-self.t_in, None)})
        self.check_compatible(past)
        pre = Preprocessor.from_dict(self.metadata["preprocessor"])
        factor = int(pre.coarsen)
        fine = np.asarray(past.values, dtype=np.float32)
        coarse = coarsen(past, factor) if factor > 1 else past
        x, _ = pre.encode(np.asarray(coarse.values, dtype=np.float32))
        frames = x[None, ..., None]  # (1, t_in, y, x, 1)
        outputs = []
        produced = 0
        while produced < n_leads:
            y = np.asarray(self._network(frames), dtype=np.float32)
            outputs.append(y)
            produced += y.shape[1]
            frames = np.concatenate([frames, y], axis=1)[:, -self.t_in :]
        pred = np.concatenate(outputs, axis=1)[0, :n_leads, ..., 0]
        values = pre.decode(pred).astype(np.float32)
        values = _upsample(values, factor, fine.shape[-2:])
        values[:, np.isnan(fine[-1])] = np.nan
        return lead_array(values, past, self.step)

    def _predict_lagrangian(self, past: xr.DataArray, n_leads: int) -> xr.DataArray:
        step = infer_step(past[TIME].values[-2:], None)
        needed = self.input_frames(step)
        past = check_past(past, needed, self.label).isel({TIME: slice(-needed, None)})
        self.check_compatible(past)
        pre = Preprocessor.from_dict(self.metadata["preprocessor"])
        factor = int(pre.coarsen)
        fine = np.asarray(past.values, dtype=np.float32)
        coarse = coarsen(past, factor) if factor > 1 else past
        values = lagrangian_forecast(
            self._network,
            np.asarray(coarse.values),
            encode=pre.normalise_values,
            decode=pre.decode,
            fill_value=pre.fill_value,
            flow=self.flow,
            units=past.attrs.get("units"),
            t_in=self.t_in,
            ratio=self._ratio(step),
            n_leads=n_leads,
        )
        values = _upsample(values, factor, fine.shape[-2:])
        values[:, np.isnan(fine[-1])] = np.nan
        return lead_array(values, past, step)

    def describe(self) -> dict[str, Any]:
        """Global attributes for forecast files made with this model."""
        meta = self.metadata
        return {
            "model": self.model_dir.name,
            "model_training": {
                k: meta.get(k)
                for k in (
                    "name",
                    "variable",
                    "units",
                    "t_in",
                    "t_out",
                    "time_step_seconds",
                    "coarsen",
                    "downsample",
                    "frame",
                    "flow",
                    "training",
                )
            },
        }


def _fmt(step: pd.Timedelta) -> str:
    minutes = step.total_seconds() / 60
    return f"{minutes:g} min" if minutes < 120 else f"{minutes / 60:g} h"
