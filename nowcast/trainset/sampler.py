"""Training windows: splits in time, sliding windows inside gap-free runs, crops and batches.

Each event (one archive) is split along time into contiguous blocks
``[train | validation | test]`` by frame count (``split.test_period`` makes the frames in
that period the test block instead; ``split.holdout_events`` are test only). Windows of
``t_in + t_out`` frames are slid with ``stride`` inside runs of frames that have no time
gap *and* one split label, so no window crosses a gap or straddles two splits.

Crops: ``patch_size`` square crops at random positions (``None``: the full grid, which
needs all events on one grid). Train draws new crops and order every epoch from
``(seed, epoch)``; validation and test crops are fixed by the seed.

``min_wet_fraction`` (train and validation only; the test set stays unbiased): the wet
fraction of a crop is the share of its pixels, over the window's ``t_in`` input frames,
with rate >= ``wet_threshold`` (NaN counts as dry). It is computed from a small table of
wet-pixel counts per block of ``b x b`` pixels and frame (one streaming pass over the
data when the datasets are built), so crops are then placed on a ``b``-pixel lattice
(``b`` the smallest divisor of ``patch_size`` >= 8, larger when the table would exceed
64 MiB per event). Windows where no lattice crop reaches the fraction are dropped at
build time (counted in the summary); for the others the crop is drawn uniformly among
the crops that do, so every sample honours it exactly.

Several crops per window read (``crops``, for prepared stores): the first crop of a window
is drawn as above; the others are drawn (uniformly, or among the wet crops) inside the
block of ``tile``-pixel tiles that holds the first one and one more tile each way it can
reach, so the union of the window's crops lies in as many store tiles as one crop at a
random place (four for a crop of one tile). A batch is then ``batch_size / crops`` windows
with ``crops`` samples each (the loader's shuffle buffer mixes them across batches).

This module does no I/O per sample and imports no Keras: :mod:`nowcast.trainset.dataset`
reads the frames, :mod:`nowcast.trainset.batches` makes a batch of them and
:mod:`nowcast.trainset.build` builds the datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.archive.timeaxis import contiguous_segments
from nowcast.conventions import SPLITS, X, Y
from nowcast.trainset.prepared import TILE

_WET_TABLE_BYTES = 64 * 2**20


@dataclass
class EventData:
    """One prepared event: lazy data (crop + coarsen applied, physical units) and its labels.

    ``labels[i]`` is the split code of frame ``i`` (index into :data:`SPLITS`).
    ``wet`` / ``wet_block`` hold the per-block wet-pixel counts when ``min_wet_fraction`` > 0.
    """

    name: str
    data: xr.DataArray
    labels: np.ndarray
    wet: np.ndarray | None = None
    wet_block: tuple[int, int] = (1, 1)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.data.sizes[Y]), int(self.data.sizes[X])


@dataclass(frozen=True)
class Sample:
    """One sample: frames ``start .. start + t_in + t_out`` of ``event``, crop at (oy, ox),
    then ``rot`` quarter turns and an optional left-right ``flip``."""

    event: int
    start: int
    oy: int
    ox: int
    rot: int = 0
    flip: bool = False


def label_frames(
    times,
    *,
    validation: float,
    test: float,
    test_period=None,
    holdout: bool = False,
    validation_event: bool = False,
) -> np.ndarray:
    """Split code per frame (0 train, 1 validation, 2 test) for one event, in time order.

    Without ``test_period``: ``[train | validation | test]`` with the test block starting at
    frame ``int(n * (1 - test))`` and the validation block at ``int(n * (1 - test - validation))``.
    With ``test_period`` (start, end; inclusive): frames inside it are test, and the others
    are split ``[train | validation]`` in time order by the validation fraction of the whole.
    """
    times = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]"))
    n = len(times)
    labels = np.zeros(n, dtype=np.int8)
    if holdout:
        labels[:] = 2
        return labels
    if validation_event:
        labels[:] = 1
        return labels
    if test_period is not None:
        start, end = (pd.Timestamp(t) for t in test_period)
        if times.tz is None and start.tz is not None:
            start, end = start.tz_convert(None), end.tz_convert(None)
        in_test = np.asarray((times >= start) & (times <= end))
        labels[in_test] = 2
        rest = np.flatnonzero(~in_test)
        n_val = int(len(rest) * validation) if validation > 0 else 0
        if n_val:
            labels[rest[len(rest) - n_val :]] = 1
        return labels
    test_start = int(n * (1 - test)) if test > 0 else n
    val_start = int(n * (1 - test - validation)) if validation > 0 else test_start
    labels[val_start:test_start] = 1
    labels[test_start:] = 2
    return labels


def window_starts(times, labels: np.ndarray, *, length: int, stride: int) -> dict[str, np.ndarray]:
    """Start indices of windows per split: inside gap-free runs with one label only.

    The stride counts from the start of each run.
    """
    out: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for seg in contiguous_segments(times):
        lab = labels[seg]
        cuts = [0, *(np.flatnonzero(np.diff(lab)) + 1).tolist(), len(lab)]
        for a, b in zip(cuts[:-1], cuts[1:]):
            if b - a >= length:
                out[SPLITS[int(lab[a])]].append(
                    np.arange(seg.start + a, seg.start + b - length + 1, stride)
                )
    return {s: np.concatenate(v) if v else np.zeros(0, dtype=np.int64) for s, v in out.items()}


def longest_run(times, labels: np.ndarray | None = None, code: int | None = None) -> int:
    """Longest gap-free run of frames (with label ``code`` when given)."""
    best = 0
    for seg in contiguous_segments(times):
        if code is None:
            best = max(best, seg.stop - seg.start)
            continue
        run = 0
        for v in labels[seg]:
            run = run + 1 if v == code else 0
            best = max(best, run)
    return best


# --------------------------------------------------------------------------- wet fraction


def wet_block_size(patch: tuple[int, int], grid: tuple[int, int], n_frames: int) -> tuple[int, int]:
    """Lattice step for crops when ``min_wet_fraction`` > 0 (see module doc)."""
    py, px = patch
    if (py, px) == grid or py != px:
        return py, px
    divisors = [d for d in range(1, py + 1) if py % d == 0 and d >= min(8, py)]
    for d in divisors:
        if n_frames * (grid[0] // d) * (grid[1] // d) * 4 <= _WET_TABLE_BYTES:
            return d, d
    return py, px


def wet_table(data: xr.DataArray, *, threshold: float, block: tuple[int, int]) -> xr.DataArray:
    """Lazy ``(time, by, bx)`` counts of pixels >= ``threshold`` per ``block`` (NaN is dry)."""
    wet = (data >= threshold).astype("uint32")
    counts = wet.coarsen({Y: block[0], X: block[1]}, boundary="trim").sum()
    return counts.astype("uint16" if block[0] * block[1] < 2**16 else "uint32")


def wet_positions(
    event: EventData, start: int, *, t_in: int, patch: tuple[int, int], fraction: float
) -> np.ndarray:
    """``(k, 2)`` crop offsets (pixels, on the event's lattice) whose inputs reach ``fraction``."""
    by, bx = event.wet_block
    counts = event.wet[start : start + t_in].sum(axis=0, dtype=np.int64)
    ky, kx = patch[0] // by, patch[1] // bx
    integral = np.zeros((counts.shape[0] + 1, counts.shape[1] + 1), dtype=np.int64)
    integral[1:, 1:] = counts.cumsum(0).cumsum(1)
    sums = integral[ky:, kx:] - integral[:-ky, kx:] - integral[ky:, :-kx] + integral[:-ky, :-kx]
    need = fraction * t_in * patch[0] * patch[1]
    iy, ix = np.nonzero(sums >= need - 1e-9)
    return np.stack([iy * by, ix * bx], axis=1)


# --------------------------------------------------------------------------- sampler


@dataclass
class WindowSampler:
    """The windows of one split and how they become batches (pure NumPy, deterministic).

    ``windows``: ``(n, 2)`` rows ``(event index, start frame)``. ``batch(index, epoch)``
    gives the batch's :class:`Sample` list; with ``shuffle`` the order and the crops change
    with ``epoch``, otherwise they are fixed by ``seed``. ``crops``: samples per window
    (a divisor of ``batch_size``), drawn within a block of ``tile``-pixel tiles.
    """

    events: list[EventData]
    windows: np.ndarray
    t_in: int
    t_out: int
    patch: tuple[int, int]
    batch_size: int
    seed: int = 0
    split: str = "train"
    shuffle: bool = True
    augment: bool = False
    min_wet_fraction: float = 0.0
    drop_remainder: bool = False  # only full batches (data-parallel sharding needs them)
    crops: int = 1
    tile: int = TILE
    _orders: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.crops < 1 or self.batch_size % self.crops:
            raise ValueError(
                f"crops per window ({self.crops}) must divide the batch size ({self.batch_size})"
            )

    @property
    def length(self) -> int:
        return self.t_in + self.t_out

    @property
    def num_samples(self) -> int:
        return len(self.windows) * self.crops

    @property
    def num_batches(self) -> int:
        if self.drop_remainder:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def __len__(self) -> int:
        return self.num_batches

    def _order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.windows))
        if epoch not in self._orders:
            rng = np.random.default_rng([self.seed, SPLITS.index(self.split), epoch])
            self._orders = {epoch: rng.permutation(len(self.windows))}  # keep one epoch only
        return self._orders[epoch]

    def batch(self, index: int, epoch: int = 0) -> list[Sample]:
        """The samples of batch ``index`` (0 <= index < num_batches) in ``epoch``."""
        if not 0 <= index < self.num_batches:
            raise IndexError(f"batch {index} out of range (0 .. {self.num_batches - 1})")
        epoch = epoch if self.shuffle else 0
        per = self.batch_size // self.crops
        rows = self._order(epoch)[index * per : (index + 1) * per]
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), epoch, index])
        return [smp for row in rows for smp in self.window_samples(int(row), rng)]

    def random_samples(self, n_windows: int, epoch: int, key: int) -> list[Sample]:
        """``crops`` samples from each of ``n_windows`` windows drawn at random (with
        replacement), reproducibly from ``(seed, epoch, key)``: extra samples, e.g. to fill a
        shuffle buffer."""
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), epoch, key, 1])
        rows = rng.integers(len(self.windows), size=n_windows)
        return [smp for row in rows for smp in self.window_samples(int(row), rng)]

    def window_samples(self, row: int, rng: np.random.Generator) -> list[Sample]:
        """The ``crops`` samples of window ``row`` (see the module doc)."""
        e, start = (int(v) for v in self.windows[row])
        event = self.events[e]
        wet = None
        if self.min_wet_fraction > 0 and event.wet is not None:
            wet = wet_positions(
                event, start, t_in=self.t_in, patch=self.patch, fraction=self.min_wet_fraction
            )
        ny, nx = event.shape
        py, px = self.patch
        if wet is not None:
            oy, ox = (int(v) for v in wet[rng.integers(len(wet))])
        else:
            oy, ox = int(rng.integers(ny - py + 1)), int(rng.integers(nx - px + 1))
        out = [Sample(e, start, oy, ox, *self._augmentation(rng))]
        if self.crops == 1:
            return out
        (y0, y1), (x0, x1) = (
            _tile_range(o, p, n, self.tile) for o, p, n in ((oy, py, ny), (ox, px, nx))
        )
        if wet is not None:
            inside = wet[
                (wet[:, 0] >= y0) & (wet[:, 0] <= y1) & (wet[:, 1] >= x0) & (wet[:, 1] <= x1)
            ]
        for _ in range(self.crops - 1):
            if wet is not None:
                oy, ox = (int(v) for v in inside[rng.integers(len(inside))])
            else:
                oy, ox = int(rng.integers(y0, y1 + 1)), int(rng.integers(x0, x1 + 1))
            out.append(Sample(e, start, oy, ox, *self._augmentation(rng)))
        return out

    def _augmentation(self, rng: np.random.Generator) -> tuple[int, bool]:
        if not self.augment:
            return 0, False
        square = self.patch[0] == self.patch[1]
        rot = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
        return rot, bool(rng.integers(2))


def _tile_range(offset: int, size: int, extent: int, tile: int) -> tuple[int, int]:
    """Smallest and largest crop offset inside the tile block around a crop at ``offset``:
    the block starts at the crop's first tile and spans ``ceil(size / tile) + 1`` tiles."""
    lo = offset // tile * tile
    hi = min(lo + (-(-size // tile) + 1) * tile, extent) - size
    return lo, hi
