"""A trained model's ``metadata.json``: what training writes and what forecasting reads.

:func:`build_metadata` is what ``nowcast train`` writes (with :func:`training_summary`,
the training data's summary, under ``training``); :func:`check_metadata` is what a forecaster
needs from it, :func:`model_frame` the frame the model works in and
:func:`network_spacing_m` the pixel size its network was trained at. The run directory's
files are :class:`nowcast.trained.rundir.RunDir`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nowcast import __version__
from nowcast.archive.reader import source_path
from nowcast.config import Config
from nowcast.conventions import SPLITS, TIME, Frame, X, Y
from nowcast.errors import NowcastError
from nowcast.geo import coord_spacing, grid_spacing_m
from nowcast.motion import FlowOptions
from nowcast.trained.rundir import METADATA_FILE

#: What a forecaster reads from a model's metadata, and its JSON types.
REQUIRED_METADATA = {
    "t_in": int,
    "t_out": int,
    "time_step_seconds": (int, float),
    "preprocessor": dict,
}


def build_metadata(
    cfg: Config, summary: dict[str, Any], preprocessor, *, backend: str
) -> dict[str, Any]:
    """Everything forecasting needs to use a trained model on new data: from the config,
    the training data's ``summary`` (:func:`training_summary`) and the fitted
    ``preprocessor`` (:class:`nowcast.trainset.preprocess.Preprocessor`)."""
    summary = dict(summary)
    return {
        "nowcast_version": __version__,
        "name": cfg.name,
        "kind": cfg.data.kind,
        "variable": summary.get("variable"),
        "units": summary.get("units"),
        "time_step_seconds": summary.get("time_step_seconds"),
        "t_in": cfg.sampler.t_in,
        "t_out": cfg.sampler.t_out,
        "channels": cfg.model.channels,
        "downsample": cfg.model.downsample,
        "coarsen": cfg.preprocess.coarsen,
        "frame": cfg.model.frame,
        "quantiles": list(cfg.model.quantiles),
        "flow": FlowOptions.from_config(cfg.model.flow).to_dict(),
        "grid_spacing": summary.get("grid_spacing")
        or [e.get("grid_spacing") for e in summary.get("events", [])],
        "grid_spacing_m": _mean_or_none(
            [e.get("grid_spacing_m") for e in summary.get("events", [])]
        ),
        "preprocessor": preprocessor.to_dict(),
        "training": summary,
        "backend": backend,
    }


def check_metadata(metadata: dict[str, Any], path: Path) -> dict[str, Any]:
    """``metadata`` if it holds what forecasting needs, else a one-line error naming ``path``."""
    for key, kind in REQUIRED_METADATA.items():
        value = metadata.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise NowcastError(
                f"{path} has no valid {key!r} ({value!r}); it should be the {METADATA_FILE} that "
                "nowcast train writes beside the model"
            )
    return metadata


def model_frame(metadata: dict[str, Any]) -> Frame:
    """The frame a model works in (``frame``; Eulerian when not recorded)."""
    value = metadata.get("frame") or Frame.EULERIAN
    try:
        return Frame(value)
    except ValueError:
        known = ", ".join(f.value for f in Frame)
        raise NowcastError(
            f"unknown model frame {value!r} in its {METADATA_FILE} ({known})"
        ) from None


#: Legacy metadata (no ``grid_spacing_m``): coordinate spacings in this range are taken as
#: metres (a radar pixel of 50 m to 50 km); outside it (km or degrees) the spacing is unknown.
_LEGACY_METRES = (50.0, 50_000.0)


def network_spacing_m(metadata: dict[str, Any]) -> float | None:
    """The pixel size in metres of the grid the network was trained on (after the training
    coarsening): ``grid_spacing_m``, or for models trained before it was recorded the
    training events' coordinate spacings (``grid_spacing``, else each event's under
    ``training``) when all are plausible metres; ``None`` when
    unknown (a longitude/latitude or unitless training grid)."""
    if "grid_spacing_m" in metadata:
        value = metadata["grid_spacing_m"]
        return float(value) if value else None
    events = (metadata.get("training") or {}).get("events") or []
    recorded = metadata.get("grid_spacing") or [e.get("grid_spacing") for e in events]
    values = np.asarray(
        [v for v in np.ravel(np.asarray(recorded or [], dtype=object)) if v], dtype=float
    )
    lo, hi = _LEGACY_METRES
    if values.size == 0 or not np.all((values >= lo) & (values <= hi)):
        return None
    return float(values.mean())


def _mean_or_none(values) -> float | None:
    """The mean of ``values``; None when there are none or one is None."""
    if not values or any(v is None for v in values):
        return None
    return float(np.mean(values))


def _iso(t) -> str:
    return pd.Timestamp(t).isoformat()


def training_summary(events, archives, windows, dropped, step, patch, preprocessor) -> dict:
    """The summary of a model's training data (``metadata.json``'s ``training``): per event
    its source, grid, frames, split periods and windows; the step, patch and normalisation.

    ``events``: the prepared events (:class:`nowcast.trainset.sampler.EventData`: ``name``,
    ``data``, ``labels`` as split codes into :data:`~nowcast.conventions.SPLITS`, ``shape``);
    ``archives``: the archives they came from; ``windows``: split -> ``(n, 2)`` rows (event,
    start); ``dropped``: dry windows dropped per split.
    """
    per_event = []
    for e, (ev, da) in enumerate(zip(events, archives)):
        times = ev.data[TIME].values
        period = {}
        for code, sname in enumerate(SPLITS):
            idx = np.flatnonzero(ev.labels == code)
            period[sname] = [_iso(times[idx[0]]), _iso(times[idx[-1]])] if idx.size else None
        per_event.append(
            {
                "name": ev.name,
                "source": source_path(da, f"event{e}"),
                "grid": list(ev.shape),
                "grid_spacing": [
                    coord_spacing(ev.data[Y].values),
                    coord_spacing(ev.data[X].values),
                ],
                "grid_spacing_m": grid_spacing_m(ev.data),
                "frames": int(len(times)),
                "periods": period,
                "train_period": period["train"],
                "windows": {sname: int((windows[sname][:, 0] == e).sum()) for sname in SPLITS},
            }
        )
    spacings = {tuple(ev["grid_spacing"]) for ev in per_event}
    first = archives[0]
    return {
        "variable": str(first.name) if first.name is not None else None,
        "units": first.attrs.get("units"),
        "time_step_seconds": float(pd.Timedelta(step).total_seconds()),
        "grid_spacing": list(next(iter(spacings))) if len(spacings) == 1 else None,
        "patch": list(patch),
        "windows": {sname: int(len(windows[sname])) for sname in SPLITS},
        "dropped_dry_windows": dict(dropped),
        "events": per_event,
        "normalisation": {"mean": float(preprocessor.mean), "std": float(preprocessor.std)},
    }
