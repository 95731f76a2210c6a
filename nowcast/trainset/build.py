"""The training datasets of a config: planned windows -> preprocessor -> Keras datasets.

:func:`build_datasets` plans the windows (:func:`nowcast.trainset.plan.plan_windows`),
fits the :class:`~nowcast.trainset.preprocess.Preprocessor` on the train blocks and builds one
dataset per split: :class:`~nowcast.trainset.dataset.SequenceDataset` (reads the archives
through the in-memory frame cache) or :class:`~nowcast.trainset.streaming.PreparedDataset`
(streams from prepared stores, :mod:`nowcast.trainset.stores`), plus the summary stored in
a trained model's metadata (:func:`nowcast.trained.metadata.training_summary`). How one
batch is made: :mod:`nowcast.trainset.batches`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from nowcast.config import Config
from nowcast.conventions import TIME, Frame
from nowcast.errors import ConfigError
from nowcast.trained.metadata import training_summary
from nowcast.trainset.dataset import FrameCache, SequenceDataset
from nowcast.trainset.plan import plan_windows
from nowcast.trainset.prepared import PreparedStore
from nowcast.trainset.preprocess import Preprocessor
from nowcast.trainset.sampler import SPLITS, WindowSampler
from nowcast.trainset.stores import PREPARED_SPLITS, event_stores, uses_stores
from nowcast.trainset.streaming import PreparedDataset


@dataclass
class Datasets:
    """What :func:`build_datasets` returns; a split without windows is ``None``."""

    train: SequenceDataset | None
    validation: SequenceDataset | None
    test: SequenceDataset | None
    preprocessor: Preprocessor
    summary: dict[str, Any]
    stores: list[PreparedStore | None] | None = None  # prepared stores, per event


def build_datasets(
    cfg: Config,
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
    :func:`nowcast.archive.reader.open_archive`, ``chunks="auto"``). ``preprocessor``: a fitted
    :class:`~nowcast.trainset.preprocess.Preprocessor` to reuse instead of fitting one.
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
    (:class:`~nowcast.trainset.streaming.PreparedDataset`; :mod:`nowcast.trainset.stores`), built
    first where missing (``echo`` reports the progress); the test dataset then reads the
    archives (Eulerian) or is ``None`` (Lagrangian: score it by forecasting, e.g.
    ``nowcast evaluate``).
    """
    s = cfg.sampler
    plan = plan_windows(cfg, archives)
    events, archives, windows = plan.events, plan.archives, plan.windows
    if preprocessor is None:
        blocks = [
            da.isel({TIME: seg})
            for ev, da in zip(events, archives)
            for seg in _true_runs(ev.labels == 0)
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
        if (
            stores is not None
            and name not in PREPARED_SPLITS
            and cfg.model.frame == Frame.LAGRANGIAN
        ):
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
    summary = training_summary(
        events, archives, windows, plan.dropped, plan.step, plan.patch, preprocessor
    )
    if stores is not None:
        # metadata keys (a file format): "cache" here names the prepared stores
        key = "lagrangian_cache" if cfg.model.frame == Frame.LAGRANGIAN else "prepared_cache"
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


def _true_runs(mask: np.ndarray) -> list[slice]:
    """Index slices of the True runs of a boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
