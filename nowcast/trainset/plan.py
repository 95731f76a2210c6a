"""Which windows a config trains on: archives -> prepared events -> split, sliding windows.

:func:`plan_windows` opens (or takes) the events of a config, labels their frames
(:func:`nowcast.trainset.sampler.label_frames`), slides the windows and drops mostly dry
ones; :class:`Plan` is what both :func:`nowcast.trainset.build.build_datasets` and
:func:`nowcast.trainset.stores.prepare_stores` (``nowcast prepare``) start from. The
planning rules themselves (labels, windows, wet tables, crops) are
:mod:`nowcast.trainset.sampler`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from nowcast.archive.reader import open_archive, source_path
from nowcast.archive.timeaxis import time_step
from nowcast.config import Config
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


def event_names(entries) -> list[str]:
    """:func:`event_name` of each entry, told apart where two share a file name.

    An event's identity is its path: two events ``a/ev.nc`` and ``b/ev.nc`` are named by
    their distinguishing parent folders (``a-ev``, ``b-ev``; a short hash of the path when
    even those agree), so that their prepared stores, messages and splits stay apart. A
    name used once is kept as it is (so are the stores made under it).
    """
    names = [event_name(e, i) for i, e in enumerate(entries)]
    counts = Counter(names)
    out = list(names)
    for name, count in counts.items():
        if count < 2:
            continue
        same = [i for i, n in enumerate(names) if n == name]
        parts = {i: Path(os.path.abspath(str(entries[i]).rstrip("/"))).parent.parts for i in same}
        for depth in range(1, 1 + max(len(v) for v in parts.values())):
            tried = {i: "-".join((*parts[i][-depth:], name)).lstrip("/-") for i in same}
            if len(set(tried.values())) == len(same):
                break
        else:  # pragma: no cover - the same path given twice
            tried = {i: f"{name}-{i}" for i in same}
        for i in same:
            out[i] = _SAFE.sub("_", tried[i])
    taken = Counter(out)
    for i, name in enumerate(out):  # still taken (an event literally named "a-ev"): a hash
        if taken[name] > 1:
            digest = hashlib.sha1(os.path.realpath(str(entries[i])).encode()).hexdigest()[:8]
            out[i] = f"{name}-{digest}"
    return out


#: Characters kept in a derived event name (it names files: prepared stores).
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _same_path(a: str, b: str) -> bool:
    if a == b:
        return True
    if "://" in a or "://" in b:
        return False
    return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(os.path.expanduser(b))


def _matching_events(spec: str, entries: list[str], names: list[str]) -> list[int]:
    """The events a ``split.holdout_events``/``validation_events`` entry means: the event
    at that path (resolved: links, ``..``), else those of that event or file name."""
    by_path = [i for i, e in enumerate(entries) if _same_path(spec, e)]
    if by_path:
        return by_path
    return [
        i
        for i, (e, n) in enumerate(zip(entries, names))
        if spec in (n, event_name(e)) or event_name(spec) in (n, event_name(e))
    ]


def _split_events(option: str, specs: tuple[str, ...], entries, names) -> set[int]:
    """The events named in ``option``; a bare name two events share is an error."""
    chosen: set[int] = set()
    for spec in specs:
        found = _matching_events(spec, entries, names)
        if len(found) > 1:
            listed = ", ".join(str(entries[i]) for i in found)
            raise ConfigError(
                f"{option}: {spec!r} names {len(found)} events ({listed}): give the event's path"
            )
        chosen.update(found)
    return chosen


@dataclass
class Plan:
    """The planned windows of a config: prepared events, their archives and windows per split."""

    events: list[EventData]
    archives: list[xr.DataArray]
    step: Any
    windows: dict[str, np.ndarray]  # split -> (n, 2) rows (event index, start frame)
    dropped: dict[str, int]
    patch: tuple[int, int]


def plan_windows(cfg: Config, archives: list[xr.DataArray] | None = None) -> Plan:
    """Open (or take) the events, label and split them, slide the windows, drop dry ones.

    ``cfg`` is a validated config (:func:`nowcast.config.load_config` validates; a
    :class:`~nowcast.config.Config` built in code: call its ``validate()``)."""
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


def _events(cfg: Config, archives):
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
    names = event_names(entries)
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
    texts = [str(e) for e in entries]
    holdout = _split_events("sampler.split.holdout_events", sp.holdout_events, texts, names)
    validation = _split_events(
        "sampler.split.validation_events", sp.validation_events, texts, names
    )
    settings = Preprocessor.from_config(cfg.preprocess, kind=cfg.data.kind)
    events = []
    for i, (name, da) in enumerate(zip(names, archives)):
        labels = label_frames(
            da[TIME].values,
            validation=sp.validation,
            test=sp.test,
            test_period=sp.test_period,
            holdout=i in holdout,
            validation_event=i in validation,
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
