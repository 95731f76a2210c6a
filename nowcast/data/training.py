"""Training data assembly: archives -> prepared events -> split windows -> Keras datasets.

:func:`build_datasets` opens (or takes) the events of a config, labels their frames
(:func:`nowcast.data.sampler.label_frames`), slides the windows, drops mostly dry ones, fits
the :class:`~nowcast.data.preprocess.Preprocessor` on the train blocks and builds one
:class:`~nowcast.data.dataset.SequenceDataset` per split, plus the summary stored in a
trained model's metadata. The planning itself (labels, windows, crops) is
:mod:`nowcast.data.sampler`; reading frames is :mod:`nowcast.data.dataset`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import TIME, X, Y
from nowcast.data.archive import open_archive
from nowcast.data.cache import PREPARED_SPLITS, event_stores, uses_stores
from nowcast.data.dataset import FrameCache, SequenceDataset
from nowcast.data.prepared import PreparedStore
from nowcast.data.preprocess import Preprocessor
from nowcast.data.sampler import (
    SPLITS,
    EventData,
    WindowSampler,
    label_frames,
    longest_run,
    wet_block_size,
    wet_positions,
    wet_table,
    window_starts,
)
from nowcast.data.streaming import PreparedDataset
from nowcast.data.timeaxis import time_step
from nowcast.errors import ConfigError, DataError


@dataclass
class Datasets:
    """What :func:`build_datasets` returns; a split without windows is ``None``."""

    train: SequenceDataset | None
    validation: SequenceDataset | None
    test: SequenceDataset | None
    preprocessor: Preprocessor
    summary: dict[str, Any]
    stores: list[PreparedStore | None] | None = None  # prepared stores, per event


def event_name(entry, index: int = 0) -> str:
    """A short name for an event entry: the file or folder name without a NetCDF suffix."""
    text = str(entry).rstrip("/")
    if any(ch in text for ch in "*?["):
        return text
    name = Path(text).name
    for suffix in (".nc", ".nc4", ".netcdf", ".zarr"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name or f"event{index}"


def _is_holdout(entry: str, name: str, holdout: tuple[str, ...]) -> bool:
    norm = os.path.normpath(str(entry))
    return any(
        h in (entry, name) or os.path.normpath(h) == norm or event_name(h) == name for h in holdout
    )


@dataclass
class Plan:
    """The planned windows of a config: prepared events, their archives and windows per split."""

    events: list[EventData]
    archives: list[xr.DataArray]
    step: Any
    windows: dict[str, np.ndarray]  # split -> (n, 2) rows (event index, start frame)
    dropped: dict[str, int]
    patch: tuple[int, int]


def plan_windows(cfg, archives: list[xr.DataArray] | None = None) -> Plan:
    """Open (or take) the events, label and split them, slide the windows, drop dry ones."""
    cfg = cfg.validate()
    s = cfg.sampler
    events, archives, step = _events(cfg, archives)
    starts = [
        window_starts(ev.data[TIME].values, ev.labels, length=s.t_in + s.t_out, stride=s.stride)
        for ev in events
    ]
    patch = _patch(s.patch_size, events)
    dropped = (
        _drop_dry(events, starts, s, patch) if s.min_wet_fraction > 0 else {n: 0 for n in SPLITS}
    )
    windows = {
        n: np.array(
            [(e, t) for e, st in enumerate(starts) for t in st[n].tolist()], dtype=np.int64
        ).reshape(-1, 2)
        for n in SPLITS
    }
    if len(windows["train"]) == 0:
        detail = "; ".join(
            f"{ev.name}: {len(ev.labels)} frames, longest gap-free run "
            f"{longest_run(ev.data[TIME].values)}, "
            f"longest train run {longest_run(ev.data[TIME].values, ev.labels, 0)}"
            for ev in events
        )
        extra = (
            f" ({sum(dropped.values())} dropped by min_wet_fraction)"
            if s.min_wet_fraction > 0
            else ""
        )
        raise DataError(
            f"no training window fits{extra}: a window needs t_in + t_out = {s.t_in + s.t_out} "
            f"consecutive frames; {detail}"
        )
    return Plan(events, archives, step, windows, dropped, patch)


def prepare_stores(cfg, *, archives=None, echo=None) -> list[PreparedStore | None]:
    """Build (where missing) the prepared stores a config's training reads: ``nowcast
    prepare``. A :class:`ConfigError` when the config reads the archives directly."""
    cfg = cfg.validate()
    if not uses_stores(cfg):
        raise ConfigError(
            "nothing to prepare: this config trains on the archives directly (model.frame is "
            "eulerian and sampler.prepared is false); set sampler.prepared: true to stream from "
            "a prepared store"
        )
    plan = plan_windows(cfg, archives)
    return event_stores(cfg, plan.events, plan.archives, plan.windows, echo=echo)


def build_datasets(
    cfg,
    *,
    archives: list[xr.DataArray] | None = None,
    preprocessor=None,
    cache_mb: int | None = None,
    steps_per_epoch: int | None = None,
    drop_remainder: bool = False,
    workers: int | None = None,
    use_multiprocessing: bool | None = None,
    max_queue_size: int = 10,
    echo=None,
) -> Datasets:
    """Open (or take) the events, split them, fit the preprocessor on train, build the datasets.

    ``archives``: already opened archives (else ``cfg.data.events`` are opened with
    :func:`nowcast.data.archive.open_archive`, ``chunks="auto"``). ``preprocessor``: a fitted
    :class:`~nowcast.data.preprocess.Preprocessor` to reuse instead of fitting one.
    ``cache_mb`` overrides ``sampler.cache_mb`` (one frame cache shared by the datasets that
    read the archives). ``workers`` and ``use_multiprocessing`` (default ``sampler.workers``
    and ``sampler.multiprocessing``) and ``max_queue_size`` go to ``PyDataset``.
    ``steps_per_epoch``: the train dataset then has exactly that many batches per epoch
    (several shuffled passes over the windows when it exceeds them; give it the value passed
    to ``fit``, else Keras stops an epoch early when the windows run out).
    ``drop_remainder``: every batch is full (a split with fewer windows than one batch
    is then empty); data-parallel training needs this to shard batches evenly.
    With ``model.frame: lagrangian`` or ``sampler.prepared`` the train and validation
    windows are streamed from prepared stores under ``data.cache_dir``
    (:class:`~nowcast.data.streaming.PreparedDataset`; :mod:`nowcast.data.cache`), built
    first where missing (``echo`` reports the progress); the test dataset then reads the
    archives (Eulerian) or is ``None`` (Lagrangian: score it by forecasting, e.g.
    ``nowcast evaluate``).
    """

    cfg = cfg.validate()
    s = cfg.sampler
    plan = plan_windows(cfg, archives)
    events, archives, windows = plan.events, plan.archives, plan.windows
    if preprocessor is None:
        blocks = [
            da.isel({TIME: seg})
            for ev, da in zip(events, archives)
            for seg in _runs(ev.labels == 0)
        ]
        preprocessor = Preprocessor.fit(blocks, cfg.preprocess, kind=cfg.data.kind)

    cache_mb = s.cache_mb if cache_mb is None else cache_mb
    if cache_mb < 0:
        raise ConfigError("sampler.cache_mb must be >= 0")
    cache = FrameCache(int(cache_mb) * 2**20)
    stores = None
    if uses_stores(cfg):
        stores = event_stores(cfg, events, archives, windows, echo=echo)
    elif echo is not None:
        _hint_prepared(events, cache.max_bytes, echo)
    kwargs = {
        "workers": s.workers if workers is None else workers,
        "use_multiprocessing": s.multiprocessing
        if use_multiprocessing is None
        else use_multiprocessing,
        "max_queue_size": max_queue_size,
    }
    out = dict.fromkeys(SPLITS)
    for name in SPLITS:
        if len(windows[name]) < (s.batch_size if drop_remainder else 1):
            continue
        train = name == "train"
        if stores is not None and name not in PREPARED_SPLITS and cfg.model.frame == "lagrangian":
            continue
        prepared = stores is not None and name in PREPARED_SPLITS
        sampler = WindowSampler(
            events,
            windows[name],
            s.t_in,
            s.t_out,
            plan.patch,
            s.batch_size,
            seed=s.seed,
            split=name,
            shuffle=train,
            augment=s.augment and train,
            min_wet_fraction=s.min_wet_fraction if name != "test" else 0.0,
            drop_remainder=drop_remainder,
            crops=s.crops_per_read if prepared else 1,
        )
        steps = steps_per_epoch if train else None
        if prepared:
            out[name] = PreparedDataset(
                sampler,
                preprocessor,
                stores,
                shuffle_buffer=s.shuffle_buffer,
                steps=steps,
                **kwargs,
            )
        else:
            out[name] = SequenceDataset(sampler, preprocessor, cache=cache, steps=steps, **kwargs)
    summary = _summary(events, archives, windows, plan.dropped, plan.step, plan.patch, preprocessor)
    if stores is not None:
        key = "lagrangian_cache" if cfg.model.frame == "lagrangian" else "prepared_cache"
        summary[key] = [str(st.path) for st in stores if st is not None]
    return Datasets(out["train"], out["validation"], out["test"], preprocessor, summary, stores)


def _hint_prepared(events, cache_bytes: int, echo) -> None:
    """Say when the frame cache cannot hold the data (each sample then reads whole frames)."""
    nbytes = sum(ev.data.sizes[TIME] * ev.shape[0] * ev.shape[1] * 4 for ev in events)
    if nbytes > cache_bytes:
        echo(
            f"the frame cache ({cache_bytes / 2**20:.0f} MiB, sampler.cache_mb) holds "
            f"{cache_bytes / nbytes:.0%} of the {nbytes / 2**30:.1f} GiB of frames: reads will "
            "dominate; sampler.prepared: true streams crops from a prepared store instead"
        )


def _events(cfg, archives):
    """Open the archives if needed; check units and time step; label and prepare each event."""

    entries = list(cfg.data.events)
    if archives is None:
        if not entries:
            raise ConfigError("data.events is empty: give at least one archive")
        # chunks of several frames (up to ~64 MiB): far fewer file opens; the loader caches whole
        # chunks
        archives = [
            open_archive(e, variable=cfg.data.variable, kind=cfg.data.kind, chunks="auto")
            for e in entries
        ]
    archives = list(archives)
    if not archives:
        raise DataError("no archives given")
    if len(entries) != len(archives):
        entries = [_source(da, i) for i, da in enumerate(archives)]
    names = [event_name(e, i) for i, e in enumerate(entries)]
    units = {str(da.attrs.get("units")) for da in archives}
    if len(units) > 1:
        raise DataError(
            f"events have different units ({', '.join(sorted(units))}); one variable per training "
            "set"
        )
    steps = {}
    for name, da in zip(names, archives):
        if da.sizes[TIME] < 2:
            raise DataError(
                f"event {name!r} has {da.sizes[TIME]} frame(s); a window needs "
                f"t_in + t_out = {cfg.sampler.t_in + cfg.sampler.t_out}"
            )
        steps[name] = time_step(da)
    if len(set(steps.values())) > 1:
        listed = ", ".join(f"{n}: {pd.Timedelta(v)}" for n, v in steps.items())
        raise ConfigError(f"events have different time steps ({listed}); train on one time step")

    sp = cfg.sampler.split
    settings = Preprocessor.from_config(cfg.preprocess, kind=cfg.data.kind)
    events = []
    for entry, name, da in zip(entries, names, archives):
        labels = label_frames(
            da[TIME].values,
            validation=sp.validation,
            test=sp.test,
            test_period=sp.test_period,
            holdout=_is_holdout(str(entry), name, sp.holdout_events),
            validation_event=_is_holdout(str(entry), name, sp.validation_events),
        )
        try:
            prepared = settings.prepare(da)
        except DataError as exc:
            raise DataError(f"event {name!r}: {exc}") from None
        events.append(EventData(name, prepared, labels))
    return events, archives, next(iter(steps.values()))


def _patch(patch_size: int | None, events: list[EventData]) -> tuple[int, int]:
    grids = {ev.name: ev.shape for ev in events}
    if patch_size is None:
        if len(set(grids.values())) > 1:
            listed = ", ".join(f"{n}: {g[0]} x {g[1]}" for n, g in grids.items())
            raise ConfigError(
                f"sampler.patch_size=None (full grid) needs all events on one grid; got {listed}"
            )
        return next(iter(grids.values()))
    for n, g in grids.items():
        if g[0] < patch_size or g[1] < patch_size:
            raise ConfigError(
                f"sampler.patch_size={patch_size} is larger than event {n!r} grid "
                f"{g[0]} x {g[1]} (after crop/coarsen)"
            )
    return patch_size, patch_size


def _drop_dry(events, starts, s, patch) -> dict[str, int]:
    """Fill the events' wet tables (one pass) and drop train/validation windows that never
    reach ``min_wet_fraction``; returns the number dropped per split."""
    for ev in events:
        ev.wet_block = wet_block_size(patch, ev.shape, ev.data.sizes[TIME])
    tables = dask.compute(
        *[wet_table(ev.data, threshold=s.wet_threshold, block=ev.wet_block) for ev in events]
    )
    dropped = dict.fromkeys(SPLITS, 0)
    for ev, st, table in zip(events, starts, tables):
        ev.wet = np.asarray(getattr(table, "values", table))
        for name in ("train", "validation"):
            keep = np.array(
                [
                    len(
                        wet_positions(
                            ev, int(t), t_in=s.t_in, patch=patch, fraction=s.min_wet_fraction
                        )
                    )
                    > 0
                    for t in st[name]
                ],
                dtype=bool,
            )
            dropped[name] += int((~keep).sum())
            st[name] = st[name][keep]
    return dropped


def _source(da: xr.DataArray, index: int) -> str:
    """The file an archive came from, or the common folder of its files."""
    files = da.encoding.get("source_files") or (
        [da.encoding["source"]] if "source" in da.encoding else []
    )
    if len(files) > 1:
        return os.path.commonpath([str(f) for f in files])
    return str(files[0]) if files else f"event{index}"


def _runs(mask: np.ndarray) -> list[slice]:
    """Index slices of the True runs of a boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def _spacing(coord) -> float | None:
    values = np.asarray(coord, dtype="float64")
    return float(np.median(np.abs(np.diff(values)))) if values.size > 1 else None


def _iso(t) -> str:
    return pd.Timestamp(t).isoformat()


def _summary(events, archives, windows, dropped, step, patch, preprocessor) -> dict:
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
                "source": _source(da, e),
                "grid": list(ev.shape),
                "grid_spacing": [_spacing(ev.data[Y].values), _spacing(ev.data[X].values)],
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
