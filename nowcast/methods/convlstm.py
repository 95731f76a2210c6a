"""The trained ConvLSTM as a forecast method (same interface as the baselines).

``ConvLSTMForecaster(model)`` takes a run directory, a ``.keras`` file (with its
``metadata.json`` beside it) or the name of a model shipped with the package
(``nowcast/pretrained/<name>/``); :func:`nowcast.trained.catalogue.resolve_model_file` finds
it. ``predict`` applies the training preprocessing and normalisation to the last ``t_in``
frames, runs the network (rolling forward when more leads than ``t_out`` are asked for),
inverts the transform and returns the forecast on the input grid (coarsening undone), NaN
where the last input frame is NaN.

The network runs on pixels of the size it was trained on, as it runs at its own time step
whatever the input's (:mod:`nowcast.methods.network_grid`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.archive.timeaxis import time_step
from nowcast.backend import few_threads
from nowcast.conventions import TIME, Frame, X, Y
from nowcast.errors import NowcastError
from nowcast.geo import grid_spacing_m
from nowcast.methods.base import (
    Forecaster,
    check_n_leads,
    check_past,
    deterministic_error,
    infer_step,
    lead_array,
    register_method,
)
from nowcast.methods.lagrangian import lagrangian_inputs, network_leads
from nowcast.methods.network_grid import block_factor, local_maximum, smooth_cap, upsample
from nowcast.methods.quantile import QuantileDistribution
from nowcast.methods.tiling import (
    ReceptiveField,
    TilingUnsupported,
    check_tile_size,
    choose_core,
    parse_tile,
    receptive_field,
    run_tiled,
    tile_plan,
)
from nowcast.motion import MIN_FLOW_GRID, FlowOptions
from nowcast.trained.cadence import STEP_RATIOS, check_ratio, input_frames
from nowcast.trained.calibration import read_calibration
from nowcast.trained.catalogue import resolve_model_file
from nowcast.trained.metadata import check_metadata, model_frame, network_spacing_m
from nowcast.trained.rundir import RunDir
from nowcast.trainset.preprocess import Preprocessor, coarsen


@register_method("convlstm")
class ConvLSTMForecaster(Forecaster):
    """A trained encoder-forecaster behind the common forecast-method interface."""

    name = "convlstm"

    def __init__(
        self,
        model: str | Path = "radar-5min",
        *,
        model_object: Any = None,
        tile: Any = "auto",
        calibrated: bool = True,
        layout: str | None = None,
    ):
        #: ``auto``, ``none`` or a tile core in pixels (:mod:`nowcast.methods.tiling`)
        self.tile = parse_tile(tile)
        #: the recurrent layers' working layout (None: the model's own; ``channels_first``
        #: measured no faster for whole forecasts on the CPU: docs/benchmarks.md)
        self.layout = layout
        #: tiles of the last network pass (1: untiled)
        self.tiles_used = 0
        self._field: ReceptiveField | None = None
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
        #: a quantile model's calibration (``calibration.json``; none when ``calibrated``
        #: is false or the run directory has none): :mod:`nowcast.trained.calibration`
        self.calibration = (
            read_calibration(self.model_dir, self.levels) if calibrated and self.levels else None
        )

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
            from nowcast.model.recurrent import set_layout

            with few_threads():
                self._model = load_model(self.model_file)
            if self.layout:
                set_layout(self._model, self.layout)
        return self._model

    def _network(self, x: np.ndarray, channels: slice = slice(None)) -> np.ndarray:
        """The network's output for a ``(1, time, y, x, 1)`` input, its ``channels`` only
        (all by default); in tiles when ``tile`` says so (:mod:`nowcast.methods.tiling`:
        the same values, bounded memory)."""
        model = self.model

        def run(part: np.ndarray) -> np.ndarray:
            return np.asarray(model.predict(part, verbose=0))[..., channels]

        plan = self._tile_plan(x.shape[-3:-1])
        self.tiles_used = len(plan) if plan else 1
        if plan is None:
            with few_threads(int(x.shape[-3] * x.shape[-2])):
                return run(x)
        largest = max(
            (t.read[0].stop - t.read[0].start) * (t.read[1].stop - t.read[1].start) for t in plan
        )
        with few_threads(largest):
            return run_tiled(run, x, plan)

    @property
    def receptive_field(self) -> ReceptiveField:
        """The network's receptive field and halo (:func:`~nowcast.methods.tiling.
        receptive_field`), read off the model once."""
        if self._field is None:
            self._field = receptive_field(self.model)
        return self._field

    def context_pixels(self, archive: xr.DataArray) -> int:
        """Pixels of ``archive``'s grid a region's forecast reads beyond its motion margin:
        the network's receptive field (:mod:`nowcast.region`); 0 when it cannot be derived."""
        try:
            field = self.receptive_field
        except TilingUnsupported:
            return 0
        return field.halo * self.network_factor(archive)

    def network_factor(self, archive: xr.DataArray) -> int:
        """The block size by which ``archive``'s grid is averaged for the network: the one
        that brings its pixels to the size the network was trained on (module doc), else
        the training coarsening; for a Lagrangian model at most the one that leaves the
        optical flow its :data:`~nowcast.motion.MIN_FLOW_GRID` pixels a side."""
        trained = network_spacing_m(self.metadata)
        have = grid_spacing_m(archive)
        own = int(Preprocessor.from_dict(self.metadata["preprocessor"]).coarsen)
        if not trained or not have:
            return own
        factor = block_factor(trained, have)
        if self.frame == Frame.LAGRANGIAN:
            side = min(archive.sizes[Y], archive.sizes[X])
            while factor > own and side // factor < MIN_FLOW_GRID:
                factor -= 1  # a small domain: finer blocks rather than no flow at all
        return factor

    def check_tile(self) -> None:
        """A one-line error for a tile size smaller than the network's halo (loads the model)."""
        if isinstance(self.tile, int):
            check_tile_size(self.tile, self.receptive_field, self.model_dir.name)

    def _tile_plan(self, shape: tuple[int, int]):
        """The tiles of a network pass over a ``shape`` grid; None for one pass."""
        if self.tile == "none":
            return None
        try:
            field = self.receptive_field
        except TilingUnsupported:
            if self.tile == "auto":
                return None
            raise
        if self.tile == "auto":
            core = choose_core(shape, field)
            if core is None:
                return None
        else:
            check_tile_size(self.tile, field, self.model_dir.name)
            core = self.tile
        plan = tile_plan(shape, core, field)
        return plan if len(plan) > 1 else None

    @property
    def label(self) -> str:
        return f"convlstm ({self.model_dir.name})"

    def check_compatible(self, archive: xr.DataArray) -> None:
        """Clear errors for a model trained on another variable or time step (and a tile
        smaller than the network's halo)."""
        self.check_tile()
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

    @property
    def levels(self) -> tuple[float, ...]:
        """The quantile levels the network predicts (empty for a deterministic model)."""
        return tuple(float(q) for q in self.metadata.get("quantiles") or ())

    @property
    def probabilistic(self) -> bool:  # type: ignore[override]
        return bool(self.levels)

    def predict(self, past: xr.DataArray, n_leads: int) -> xr.DataArray:
        """The deterministic forecast: the network's value, or a quantile model's median
        (that of its calibrated distribution when its calibration moves the median; else
        the median level's channel alone is kept: a 13th of the memory on a large grid)."""
        cal = self.calibration
        if cal is not None and cal.anchor != "median":
            return self.predict_distribution(past, n_leads).median()
        run = self._run(past, n_leads, median_only=bool(self.levels))
        return run.template.copy(data=run.finish(run.decode(run.values[..., 0])))

    def predict_distribution(
        self, past: xr.DataArray, n_leads: int, *, members: int = 0, seed: int | None = None
    ) -> QuantileDistribution:
        """A quantile model's distribution (:class:`~nowcast.methods.quantile.
        QuantileDistribution`): one network pass and one flow for all its products."""
        if not self.levels:
            raise deterministic_error(self.label)
        run, cal = self._run(past, n_leads), self.calibration
        return QuantileDistribution(
            run.values,
            self.levels,
            decode=run.decode,
            finish=run.finish,
            finish_members=run.finish_members,
            template=run.template,
            pattern=run.pattern,
            rho=run.rho,
            members=members,
            seed=seed,
            ceiling=run.ceiling,
            coverage=None if cal is None else cal.at_leads(run.ratio, n_leads),
            observed=run.observed,
        )

    def _run(self, past: xr.DataArray, n_leads: int, *, median_only: bool = False) -> _NetworkRun:
        """The one forecast route: check the inputs once, encode, move into the Lagrangian
        frame (a Lagrangian model), run the network, and say how to decode and move back.
        ``median_only``: a quantile model's median level alone (``values`` of 1 channel)."""
        n_leads = check_n_leads(n_leads)
        first = min(self.t_in, 2) if self.frame == Frame.LAGRANGIAN else self.t_in
        past = check_past(past, first, self.label)
        step = infer_step(past[TIME].values[-2:], None) if past.sizes[TIME] > 1 else self.step
        needed = self.input_frames(step)
        past = check_past(past, needed, self.label).isel({TIME: slice(-needed, None)})
        self.check_compatible(past)
        pre = Preprocessor.from_dict(self.metadata["preprocessor"])
        factor = self.network_factor(past)
        fine = np.asarray(past.values, dtype=np.float32)
        coarse = np.asarray((coarsen(past, factor) if factor > 1 else past).values)
        feedback = self.levels.index(0.5) if self.levels else 0
        keep = slice(feedback, feedback + 1) if median_only else slice(None)
        feedback, channels = (0, 1) if median_only else (feedback, max(1, len(self.levels)))
        move, move_members = _unmoved, _unmoved
        if self.frame == Frame.LAGRANGIAN:
            ratio = self._ratio(step)
            prepared = lagrangian_inputs(
                coarse,
                encode=pre.normalise_values,
                fill_value=pre.fill_value,
                flow=self.flow,
                units=past.attrs.get("units"),
                t_in=self.t_in,
                ratio=ratio,
                n_leads=n_leads,
            )
            if prepared is None:  # nothing valid at the issue time
                values = np.full((n_leads,) + coarse.shape[1:] + (channels,), np.nan, np.float32)
                x, aligned = None, coarse[-2:] * np.nan
            else:
                x, aligned, frame = prepared
                move = frame.advect
                move_members = partial(frame.advect_members, in_place=True)
        else:
            ratio = 1.0
            x, _ = pre.encode(np.asarray(coarse, dtype=np.float32))
            aligned = np.where(np.isfinite(coarse), x, np.nan)[-2:]
            x = x[None, ..., None]  # (1, t_in, y, x, 1)
        ceiling = None
        if x is not None:
            values = network_leads(
                lambda inputs: self._network(inputs, keep),
                x,
                t_in=self.t_in,
                ratio=ratio,
                n_leads=n_leads,
                feedback=feedback,
            )
            ceiling = local_maximum(x[0, ..., 0], smooth=smooth_cap(pre.kind))
            values = np.minimum(values, ceiling[None, ..., None])

        def finish(fields: np.ndarray) -> np.ndarray:
            """``(n_leads, y, x)`` in the network's frame -> on the input grid."""
            out = upsample(np.asarray(move(fields), dtype=np.float32), factor, fine.shape[-2:])
            out[..., np.isnan(fine[-1])] = np.nan
            return out

        def finish_members(fields: np.ndarray) -> np.ndarray:
            """:func:`finish` for ``(members, n_leads, y, x)``, the members moved together."""
            moved = move_members(fields)
            out = upsample(np.asarray(moved, dtype=np.float32), factor, fine.shape[-2:])
            out[..., np.isnan(fine[-1])] = np.nan
            return out

        template = lead_array(np.zeros((n_leads,) + fine.shape[1:], np.float32), past, step)
        return _NetworkRun(
            values=values,
            decode=lambda v: np.asarray(pre.decode(v), dtype=np.float32),
            finish=finish,
            finish_members=finish_members,
            template=template,
            pattern=np.nan_to_num(aligned[-1], nan=pre.fill_value),
            observed=aligned[-1],
            rho=lag_correlation(aligned),
            ceiling=ceiling,
            ratio=ratio,
        )

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


@dataclass(frozen=True)
class _NetworkRun:
    """The network's forecast of one issue time: ``values`` ``(n_leads, y, x, K)`` in the
    network's frame and units, ``decode`` to physical units, ``finish`` physical fields back
    to the input grid (moved along the flow, coarsening undone, NaN outside the valid
    area; ``finish_members`` the same for a stack of members), the forecast's
    ``template``, and the noise ``pattern`` and lead-to-lead correlation ``rho`` of the last
    inputs (for members), the last ``observed`` frame (network values, NaN where missing;
    the sharp product's values), and the ``ceiling`` ``(y, x)`` no value may pass (network values,
    :func:`local_maximum`; the quantile model's upper tail reaches up to it), and the
    model steps per lead ``ratio``."""

    values: np.ndarray
    decode: Callable[[np.ndarray], np.ndarray]
    finish: Callable[[np.ndarray], np.ndarray]
    finish_members: Callable[[np.ndarray], np.ndarray]
    template: xr.DataArray
    pattern: np.ndarray
    observed: np.ndarray
    rho: float
    ceiling: np.ndarray | None = None
    ratio: float = 1.0


def _unmoved(fields: np.ndarray) -> np.ndarray:
    return fields


#: The lead-to-lead noise correlation when the inputs cannot tell it.
DEFAULT_RHO = 0.9


def lag_correlation(frames: np.ndarray) -> float:
    """Correlation of the last two frames (network values, in the frame the network works)
    over the pixels finite in both, clipped to [0.5, 0.99]; :data:`DEFAULT_RHO` when it
    cannot be computed."""
    if len(frames) < 2:
        return DEFAULT_RHO
    a, b = np.asarray(frames[-2], float), np.asarray(frames[-1], float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10 or a[ok].std() == 0 or b[ok].std() == 0:
        return DEFAULT_RHO
    return float(np.clip(np.corrcoef(a[ok], b[ok])[0, 1], 0.5, 0.99))


def _fmt(step: pd.Timedelta) -> str:
    minutes = step.total_seconds() / 60
    return f"{minutes:g} min" if minutes < 120 else f"{minutes / 60:g} h"
