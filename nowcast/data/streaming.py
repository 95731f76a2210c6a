"""Keras ``PyDataset`` streaming ``(x, y, mask)`` batches from prepared stores, memory bounded.

:class:`PreparedDataset` reads each sample's crop of its window from the event's prepared
store (:class:`nowcast.data.prepared.WindowSource`: the Eulerian frames or the Lagrangian
windows). The samples of one window in a batch (``sampler.crops_per_read``, drawn within
one block of store tiles by the sampler) are one read: the bounding box of their crops.
Nothing is cached: memory is the batches in flight plus the shuffle buffer, whatever the
data's size.

Shuffle buffer (train only, ``shuffle_buffer`` samples > 0): each batch's freshly read
samples go into a buffer and the batch is drawn from it at random, so the crops of one
window spread over later batches instead of sitting together in one. The first batch a
buffer serves also reads extra random windows to fill it. Each worker (thread pool: one
shared buffer; process pool: one per process) keeps its own stream, so with several
workers the mix depends on their timing; with one worker it is fixed by the seed. Without a
buffer (validation, test) the batches are fixed by the seed, as for
:class:`~nowcast.data.dataset.SequenceDataset`.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from nowcast.data.dataset import SequenceDataset, encode_batch
from nowcast.data.sampler import SPLITS, Sample, WindowSampler, augment_window


class PreparedDataset(SequenceDataset):
    """Batches ``(x, y, mask)`` of one split read from prepared stores (one per event).

    ``stores[e]`` serves event ``e`` of the sampler (``None`` for events without windows in
    this split). ``shuffle_buffer``: samples held to mix batches (train only; 0: none).
    Other keyword arguments go to :class:`~nowcast.data.dataset.SequenceDataset`.
    """

    def __init__(
        self, sampler: WindowSampler, preprocessor, stores, *, shuffle_buffer: int = 0, **kwargs
    ) -> None:
        super().__init__(sampler, preprocessor, **kwargs)
        self.stores = list(stores)
        self.all_frames_valid = any(st.all_frames_valid for st in self.stores if st is not None)
        self.shuffle_buffer = int(shuffle_buffer) if sampler.shuffle else 0
        self._reset()

    def _reset(self) -> None:
        self._pool: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._primed = False
        self._pid = os.getpid()

    def __getstate__(self):  # a copy in another process starts with an empty buffer
        state = dict(self.__dict__)
        for key in ("_pool", "_lock", "_primed", "_pid"):
            state.pop(key)
        return state

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        self._reset()

    def __getitem__(self, index: int):
        samples = self.samples(index)
        records = self.read(samples)
        if self.shuffle_buffer > 0:
            records = self._mix(records, index, len(samples))
        return encode_batch(
            records,
            self.sampler.t_in,
            self.preprocessor.fill_value,
            all_frames_valid=self.all_frames_valid,
        )

    def assemble(self, samples: list[Sample]):
        """Read and encode ``samples`` into ``(x, y, mask)`` (no shuffle buffer)."""
        return encode_batch(
            self.read(samples),
            self.sampler.t_in,
            self.preprocessor.fill_value,
            all_frames_valid=self.all_frames_valid,
        )

    def read(self, samples: list[Sample]) -> list[np.ndarray]:
        """Normalised, augmented ``(t_in + t_out, P, P)`` windows of ``samples`` (NaN kept);
        one store read per window: the bounding box of its samples' crops."""
        py, px = self.sampler.patch
        groups: dict[tuple[int, int], list[int]] = {}
        for i, smp in enumerate(samples):
            groups.setdefault((smp.event, smp.start), []).append(i)
        out: list[np.ndarray] = [np.empty(0)] * len(samples)
        for (event, start), members in groups.items():
            y0 = min(samples[i].oy for i in members)
            x0 = min(samples[i].ox for i in members)
            y1 = max(samples[i].oy for i in members) + py
            x1 = max(samples[i].ox for i in members) + px
            block = self.stores[event].read(start, y0, x0, y1 - y0, x1 - x0)
            for i in members:
                smp = samples[i]
                crop = block[:, smp.oy - y0 : smp.oy - y0 + py, smp.ox - x0 : smp.ox - x0 + px]
                out[i] = self.preprocessor.normalise_values(augment_window(crop, smp.rot, smp.flip))
        return out

    def _mix(self, records: list[np.ndarray], index: int, n: int) -> list[np.ndarray]:
        """Put ``records`` into the buffer and draw ``n`` from it at random."""
        passes, within = divmod(index, self.sampler.num_batches)
        epoch = self.epoch + passes
        with self._lock:
            if self._pid != os.getpid():  # a forked worker: its own, empty buffer
                self._pool, self._primed, self._pid = [], False, os.getpid()
            prime = not self._primed
            self._primed = True
        if prime:
            s = self.sampler
            extra = -(-max(self.shuffle_buffer - len(self._pool), 0) // s.crops)
            records = records + self.read(s.random_samples(extra, epoch, within))
        rng = np.random.default_rng(
            [self.sampler.seed, SPLITS.index(self.sampler.split), epoch, within, 2]
        )
        with self._lock:
            pool = self._pool
            pool.extend(records)
            out = []
            for j in rng.choice(len(pool), size=n, replace=False).tolist():
                out.append(pool[j])
                pool[j] = None
            self._pool = [r for r in pool if r is not None]
        return out
