"""Training data: archives -> planned windows -> batches ``(x, y, mask)`` for Keras.

Where things are::

    plan.py        plan_windows: events opened, labelled, split; windows slid, dry ones dropped
    sampler.py     the planning rules: labels, windows, wet tables, WindowSampler (no I/O)
    preprocess.py  Preprocessor: crop, coarsen, transform, normalise (stored with a model)
    batches.py     where a batch is made: augment_window, mark_window, gather_batch
    dataset.py     SequenceDataset (reads the archives through FrameCache, in memory)
    streaming.py   PreparedDataset (streams from prepared stores)
    build.py       build_datasets: the datasets of a config (and their summary)
    stores.py      the prepared stores of a config (event_stores, prepare_stores)
    prepared.py    PreparedStore, FrameStore, WindowStore: one event's store (Zarr)
    lagrangian_windows.py  LagrangianStore: the windows in the Lagrangian frame
    chunks.py      the chunk reader of prepared stores; roots.py: where stores live

Words: a *store* is a prepared training store (Zarr, on disk); the *cache* is the
loader's in-memory frame cache (``sampler.cache_mb``). The config keys ``data.cache_dir``
and ``data.cache_workers`` name where prepared stores go and how many processes build them.
Names are imported on first use (``dataset`` and ``streaming`` import Keras).
"""

from __future__ import annotations

from nowcast.lazy import lazy_exports

_EXPORTS = {
    "Datasets": "nowcast.trainset.build",
    "build_datasets": "nowcast.trainset.build",
    "Plan": "nowcast.trainset.plan",
    "plan_windows": "nowcast.trainset.plan",
    "prepare_stores": "nowcast.trainset.stores",
    "Preprocessor": "nowcast.trainset.preprocess",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
