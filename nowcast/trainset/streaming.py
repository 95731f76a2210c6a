"""Keras ``PyDataset`` streaming ``(x, y, mask)`` batches from prepared stores, memory bounded.

:class:`PreparedDataset` reads each sample's crop of its window from the event's prepared
store (:class:`nowcast.trainset.prepared.WindowReader`: the Eulerian frames or the Lagrangian
windows). The samples of one window in a batch (``sampler.crops_per_read``, drawn within
one block of store tiles by the sampler) are one read: the bounding box of their crops.
Nothing is kept between batches: memory is the batches in flight plus the shuffle buffer
(and as many reusable sample buffers), whatever the data's size.

Shuffle buffer (train only, ``shuffle_buffer`` samples > 0): each batch's freshly read
samples go into a buffer and the batch is drawn from it at random, so the crops of one
window spread over later batches instead of sitting together in one. The first batch a
buffer serves also reads extra random windows to fill it. Each worker (thread pool: one
shared buffer; process pool: one per process) keeps its own stream, so with several
workers the mix depends on their timing; with one worker it is fixed by the seed. Without a
buffer (validation, test) the batches are fixed by the seed, as for
:class:`~nowcast.trainset.dataset.SequenceDataset`.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from nowcast.trainset.batches import augment_window, gather_batch, mark_window
from nowcast.trainset.dataset import SequenceDataset
from nowcast.trainset.sampler import SPLITS, Sample, WindowSampler


class _Slot:
    """One sample's marked window (:func:`~nowcast.trainset.batches.mark_window`), reused."""

    __slots__ = ("values", "valid")

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.values = np.empty(shape, dtype=np.float32)
        self.valid = np.empty(shape, dtype=bool)


class PreparedDataset(SequenceDataset):
    """Batches ``(x, y, mask)`` of one split read from prepared stores (one per event).

    ``stores[e]`` serves event ``e`` of the sampler (``None`` for events without windows in
    this split). ``shuffle_buffer``: samples held to mix batches (train only; 0: none).
    Other keyword arguments go to :class:`~nowcast.trainset.dataset.SequenceDataset`.

    Each sample is normalised and marked straight into a :class:`_Slot`: a window-sized
    buffer that goes back to a free list once its batch is made, so in the steady state
    no sample allocates memory (fresh arrays cost page faults, about as much as the copies).
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
        self._pool: list[_Slot] = []
        self._free: list[_Slot] = []
        self._lock = threading.Lock()
        self._scratch = threading.local()  # each thread's buffer for its store reads
        self._primed = False
        self._pid = os.getpid()

    def __getstate__(self):  # a copy in another process starts with an empty buffer
        state = dict(self.__dict__)
        for key in ("_pool", "_free", "_lock", "_scratch", "_primed", "_pid"):
            state.pop(key)
        return state

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        self._reset()

    def __getitem__(self, index: int):
        samples = self.samples(index)
        slots = self.read(samples)
        if self.shuffle_buffer > 0:
            slots = self._mix(slots, index, len(samples))
        return self._gather(slots)

    def assemble(self, samples: list[Sample]):
        """Read and encode ``samples`` into ``(x, y, mask)`` (no shuffle buffer)."""
        return self._gather(self.read(samples))

    def _gather(self, slots: list[_Slot]):
        batch = gather_batch(
            [s.values for s in slots],
            [s.valid for s in slots],
            self.sampler.t_in,
            all_frames_valid=self.all_frames_valid,
        )
        with self._lock:
            self._free.extend(slots)
        return batch

    def _own(self) -> None:
        """(Under the lock.) A forked worker process starts with its own, empty buffers."""
        if self._pid != os.getpid():
            self._pool, self._free, self._primed = [], [], False
            self._pid = os.getpid()

    def _slot(self) -> _Slot:
        with self._lock:
            self._own()
            if self._free:
                return self._free.pop()
        py, px = self.sampler.patch
        return _Slot((self.sampler.length, py, px))

    def _buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        """This thread's read buffer as a float32 array of ``shape`` (grown when too small):
        a block is cut into samples before the thread's next read."""
        size = int(np.prod(shape))
        buf = getattr(self._scratch, "buf", None)
        if buf is None or buf.size < size:
            buf = self._scratch.buf = np.empty(size, dtype=np.float32)
        return buf[:size].reshape(shape)

    def read(self, samples: list[Sample]) -> list[_Slot]:
        """Normalised, augmented and marked ``(t_in + t_out, P, P)`` windows of ``samples``;
        one store read per window: the bounding box of its samples' crops."""
        py, px = self.sampler.patch
        fill = self.preprocessor.fill_value
        groups: dict[tuple[int, int], list[int]] = {}
        for i, smp in enumerate(samples):
            groups.setdefault((smp.event, smp.start), []).append(i)
        out: list[_Slot | None] = [None] * len(samples)
        for (event, start), members in groups.items():
            y0 = min(samples[i].oy for i in members)
            x0 = min(samples[i].ox for i in members)
            y1 = max(samples[i].oy for i in members) + py
            x1 = max(samples[i].ox for i in members) + px
            shape = (self.sampler.length, y1 - y0, x1 - x0)
            block = self.stores[event].read(start, y0, x0, *shape[1:], out=self._buffer(shape))
            for i in members:
                smp = samples[i]
                crop = block[:, smp.oy - y0 : smp.oy - y0 + py, smp.ox - x0 : smp.ox - x0 + px]
                slot = self._slot()
                self.preprocessor.normalise_values(
                    augment_window(crop, smp.rot, smp.flip), out=slot.values
                )
                mark_window(slot.values, fill, valid=slot.valid)
                out[i] = slot
        return out

    def _mix(self, slots: list[_Slot], index: int, n: int) -> list[_Slot]:
        """Put ``slots`` into the buffer and draw ``n`` from it at random."""
        passes, within = divmod(index, self.sampler.num_batches)
        epoch = self.epoch + passes
        with self._lock:
            self._own()
            prime = not self._primed
            self._primed = True
        if prime:
            s = self.sampler
            extra = -(-max(self.shuffle_buffer - len(self._pool), 0) // s.crops)
            slots = slots + self.read(s.random_samples(extra, epoch, within))
        rng = np.random.default_rng(
            [self.sampler.seed, SPLITS.index(self.sampler.split), epoch, within, 2]
        )
        with self._lock:
            pool = self._pool
            pool.extend(slots)
            out = []
            for j in rng.choice(len(pool), size=n, replace=False).tolist():
                out.append(pool[j])
                pool[j] = None
            self._pool = [r for r in pool if r is not None]
        return out
