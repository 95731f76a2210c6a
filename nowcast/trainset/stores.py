"""The prepared stores of a training config: one per event under ``data.cache_dir``.

:func:`event_stores` makes the store of each event that has train or validation windows
(:data:`PREPARED_SPLITS`): the Lagrangian windows (:class:`~nowcast.trainset.
lagrangian_windows.LagrangianStore`) for ``model.frame: lagrangian``, else the prepared
frames (:class:`~nowcast.trainset.prepared.FrameStore`), and builds what is missing.
:func:`nowcast.trainset.build.build_datasets` calls it for the datasets, and
:func:`prepare_stores` for ``nowcast prepare``. (The config keys ``data.cache_dir`` and
``data.cache_workers`` keep their names; in the code "cache" is only the loader's in-memory
frame cache, :class:`nowcast.trainset.dataset.FrameCache`.)
"""

from __future__ import annotations

import os

from nowcast.config import Config, DataConfig
from nowcast.conventions import Frame
from nowcast.errors import ConfigError
from nowcast.motion import FlowOptions
from nowcast.trainset.lagrangian_windows import LagrangianStore
from nowcast.trainset.plan import plan_windows
from nowcast.trainset.prepared import FrameStore, PreparedStore
from nowcast.trainset.roots import StoreRoot, default_store_dir

#: Splits read from prepared stores (test windows are scored by forecasting, or read from
#: the archives by an Eulerian test dataset).
PREPARED_SPLITS = ("train", "validation")


def uses_stores(cfg: Config) -> bool:
    """Whether a config's training reads prepared stores."""
    return cfg.model.frame == Frame.LAGRANGIAN or cfg.sampler.prepared


def store_root(data: DataConfig) -> StoreRoot:
    """``data.cache_dir`` (a folder or an fsspec URL), else the user's cache folder."""
    return StoreRoot(data.cache_dir or default_store_dir())


def event_stores(
    cfg: Config, events, archives, windows, *, echo=None
) -> list[PreparedStore | None]:
    """One store per event holding its train and validation windows (``None`` for an event
    without any, e.g. a held-out one), built where missing (``echo`` reports it)."""
    root = store_root(cfg.data)
    s, p = cfg.sampler, cfg.preprocess
    prepare = {"crop_x": p.crop_x, "crop_y": p.crop_y, "coarsen": p.coarsen}
    workers = cfg.data.cache_workers or os.cpu_count() or 1
    lagrangian = cfg.model.frame == Frame.LAGRANGIAN
    flow = FlowOptions.from_config(cfg.model.flow) if lagrangian else None
    stores: list[PreparedStore | None] = []
    for e, (ev, da) in enumerate(zip(events, archives)):
        starts = [int(t) for name in PREPARED_SPLITS for ev_i, t in windows[name] if ev_i == e]
        if not starts:
            stores.append(None)
            continue
        common = {"source": da, "prepare": prepare, "dtype": s.store_dtype, "codec": s.store_codec}
        if lagrangian:
            store = LagrangianStore(
                root, ev.name, ev.data, starts, t_in=s.t_in, t_out=s.t_out, flow=flow, **common
            )
            what = "Lagrangian windows"
        else:
            store = FrameStore(root, ev.name, ev.data, length=s.t_in + s.t_out, **common)
            what = "prepared frames (time chunks)"
        todo = len(store.missing())
        if todo and echo is not None:
            echo(f"{what} of {ev.name}: computing {todo} of {store.units()}")
        store.build(workers=min(workers, max(todo, 1)))
        stores.append(store)
    return stores


def prepare_stores(cfg: Config, *, archives=None, echo=None) -> list[PreparedStore | None]:
    """Build (where missing) the prepared stores a (validated) config's training reads:
    ``nowcast prepare``. A :class:`ConfigError` when the config reads the archives directly."""
    if not uses_stores(cfg):
        raise ConfigError(
            "nothing to prepare: this config trains on the archives directly (model.frame is "
            "eulerian and sampler.prepared is false); set sampler.prepared: true to stream from "
            "a prepared store"
        )
    plan = plan_windows(cfg, archives)
    return event_stores(cfg, plan.events, plan.archives, plan.windows, echo=echo)
