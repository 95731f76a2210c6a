"""Keras ``PyDataset`` of ``(x, y, mask)`` batches read lazily from archives.

Each sample is a window planned by :class:`nowcast.trainset.sampler.WindowSampler`. Its frames
are read from the lazy (Dask-backed) prepared archive with ``isel``, one compute of just
those frames, then normalised. Normalised frames (float32, NaN where missing) are kept in
a :class:`FrameCache` bounded in bytes (least recently used out first), so memory does not
grow with the archive's length; overlapping windows then read each frame once. Frames are
read a whole Dask chunk at a time (Dask reads whole chunks anyway) and the chunk's other
frames are cached too. With ``workers > 1`` (threads) the cache is shared; with
``use_multiprocessing`` each worker process has its own cache of the same bound, and it
lasts one epoch (Keras starts new worker processes every epoch).

Batches: ``x`` ``(batch, t_in, P, P, 1)``, ``y`` ``(batch, t_out, P, P, 1)`` and ``mask``
``(batch, t_out, P, P, 1)``, all float32; ``mask`` is 1 where the truth pixel is valid
and is meant as Keras' ``sample_weight``. Missing values in ``x``/``y`` are set to the
preprocessor's ``fill_value``: NaN never reaches the model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import dask
import numpy as np

from nowcast.backend import select_backend
from nowcast.conventions import TIME
from nowcast.trainset.batches import augment_window, gather_batch, mark_window
from nowcast.trainset.sampler import Sample, WindowSampler

select_backend()
import keras  # noqa: E402


class FrameCache:
    """Thread-safe LRU of arrays keyed by ``(event, frame)``, bounded by ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._init()

    def _init(self) -> None:
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key):
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key, value: np.ndarray) -> None:
        if value.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            self._data[key] = value
            self.nbytes += value.nbytes
            while self.nbytes > self.max_bytes:
                _, dropped = self._data.popitem(last=False)
                self.nbytes -= dropped.nbytes

    def __len__(self) -> int:
        return len(self._data)

    def __getstate__(self):  # a copy in another process starts empty
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state) -> None:
        self.max_bytes = state["max_bytes"]
        self._init()


def _compute_all(arrays) -> list[np.ndarray]:
    """Values of lazy DataArrays, computed together on the calling thread."""
    data = [a.data for a in arrays]
    if any(hasattr(d, "dask") for d in data):
        data = dask.compute(*data, scheduler="synchronous")
    return [np.asarray(d) for d in data]


class SequenceDataset(keras.utils.PyDataset):
    """Batches ``(x, y, mask)`` of one split; ``len()`` is the number of batches per epoch.

    ``sampler`` plans the windows and crops, ``preprocessor`` encodes. ``cache`` (shared
    between datasets) or ``cache_bytes`` bound the frame cache (0: no cache). ``steps``:
    batches per (Keras) epoch when set (``train.steps_per_epoch``), running on through
    further shuffled passes over the windows instead of stopping at the end of one.
    ``workers``, ``use_multiprocessing`` and ``max_queue_size`` go to ``PyDataset``.
    """

    def __init__(
        self,
        sampler: WindowSampler,
        preprocessor,
        *,
        cache: FrameCache | None = None,
        cache_bytes: int = 0,
        epoch: int = 0,
        steps: int | None = None,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ) -> None:
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        self.sampler = sampler
        self.preprocessor = preprocessor
        self.cache = cache if cache is not None else FrameCache(cache_bytes)
        self.epoch = int(epoch)
        self.steps = int(steps) if steps else None

    def __len__(self) -> int:
        return self.steps or self.sampler.num_batches

    def on_epoch_end(self) -> None:
        """Next epoch: a new order and new crops for a shuffled (train) dataset."""
        if self.sampler.shuffle:
            self.epoch += -(-len(self) // self.sampler.num_batches)  # passes used by this epoch

    def samples(self, index: int) -> list[Sample]:
        """The samples batch ``index`` is made of in the current epoch."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (0 .. {len(self) - 1})")
        passes, index = divmod(index, self.sampler.num_batches)
        return self.sampler.batch(index, self.epoch + passes)

    def __getitem__(self, index: int):
        return self.assemble(self.samples(index))

    def assemble(self, samples: list[Sample]):
        """Read, crop, augment and encode ``samples`` into ``(x, y, mask)``."""
        s = self.sampler
        py, px = s.patch
        records = []
        for smp in samples:
            frames = self._frames(smp.event, smp.start, s.length)
            window = np.stack([f[smp.oy : smp.oy + py, smp.ox : smp.ox + px] for f in frames])
            records.append(augment_window(window, smp.rot, smp.flip))  # a fresh array
        valids = [mark_window(r, self.preprocessor.fill_value) for r in records]
        return gather_batch(records, valids, s.t_in)

    def _frames(self, event: int, start: int, count: int) -> list[np.ndarray]:
        """Normalised frames ``start .. start + count`` of ``event`` (cached, read if missing).

        Missing frames are read a whole Dask chunk at a time (what Dask reads anyway), all
        in one synchronous compute; with a cache, the chunk's other frames are kept too.
        """
        frames = [self.cache.get((event, t)) for t in range(start, start + count)]
        missing = [start + k for k, f in enumerate(frames) if f is None]
        if not missing:
            return frames
        data = self.sampler.events[event].data
        keep = self.cache.max_bytes > 0
        runs = _merge_spans(_chunk_spans(data, missing) if keep else [(t, t + 1) for t in missing])
        blocks = _compute_all([data.isel({TIME: slice(a, b)}) for a, b in runs])
        for (a, _), block in zip(runs, blocks):
            for j, frame in enumerate(self.preprocessor.normalise_values(block)):
                frame = (
                    frame.copy() if keep else frame
                )  # detach from the block, so eviction frees it
                if start <= a + j < start + count:
                    frames[a + j - start] = frame
                self.cache.put((event, a + j), frame)
        return frames


def _chunk_spans(data, frames: list[int]) -> list[tuple[int, int]]:
    """``(start, stop)`` of the time chunks of ``data`` holding ``frames`` (not Dask: per frame)."""
    if data.chunks is None:
        return [(t, t + 1) for t in frames]
    edges = np.concatenate([[0], np.cumsum(data.chunks[0])])
    index = np.unique(np.searchsorted(edges, frames, side="right") - 1)
    return [(int(edges[k]), int(edges[k + 1])) for k in index]


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge sorted, adjacent ``(start, stop)`` spans."""
    out: list[list[int]] = []
    for a, b in spans:
        if out and out[-1][1] == a:
            out[-1][1] = b
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]
