"""Which windows a config trains on: archives -> prepared events -> split, sliding windows.

:func:`plan_windows` opens (or takes) the events of a config, labels their frames
(:func:`nowcast.trainset.sampler.label_frames`), slides the windows and drops mostly dry
ones; :class:`Plan` is what both :func:`nowcast.trainset.build.build_datasets` and
:func:`nowcast.trainset.stores.prepare_stores` (``nowcast prepare``) start from. The
planning rules themselves (labels, windows, wet tables, crops) are
:mod:`nowcast.trainset.sampler`.
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

from nowcast.archive.reader import open_archive, source_path
from nowcast.archive.timeaxis import time_step
from nowcast.conventions import TIME
from nowcast.errors import ConfigError, DataError
from nowcast.trainset.preprocess import Preprocessor
from nowcast.trainset.sampler import (
    SPLITS,
    EventData,
    label_frames,
    longest_run,
    wet_block_size,
    wet_positions,
    wet_table,
    window_starts,
)


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
        entries = [source_path(da, f"event{i}") for i, da in enumerate(archives)]
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
