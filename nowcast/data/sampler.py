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

This module does no I/O per sample and imports no Keras; :mod:`nowcast.data.dataset`
reads the frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import TIME, X, Y
from nowcast.data.timeaxis import contiguous_segments

SPLITS = ("train", "validation", "test")
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
    with ``epoch``, otherwise they are fixed by ``seed``.
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
    _orders: dict = field(default_factory=dict, repr=False)

    @property
    def length(self) -> int:
        return self.t_in + self.t_out

    @property
    def num_batches(self) -> int:
        if self.drop_remainder:
            return len(self.windows) // self.batch_size
        return -(-len(self.windows) // self.batch_size)

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
        rows = self._order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), epoch, index])
        square = self.patch[0] == self.patch[1]
        out = []
        for row in rows:
            e, start = (int(v) for v in self.windows[row])
            event = self.events[e]
            if self.min_wet_fraction > 0 and event.wet is not None:
                pos = wet_positions(
                    event, start, t_in=self.t_in, patch=self.patch, fraction=self.min_wet_fraction
                )
                oy, ox = (int(v) for v in pos[rng.integers(len(pos))])
            else:
                ny, nx = event.shape
                oy = int(rng.integers(ny - self.patch[0] + 1))
                ox = int(rng.integers(nx - self.patch[1] + 1))
            rot, flip = 0, False
            if self.augment:
                rot = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
                flip = bool(rng.integers(2))
            out.append(Sample(e, start, oy, ox, rot, flip))
        return out


def augment_window(window: np.ndarray, rot: int, flip: bool) -> np.ndarray:
    """Rotate ``rot`` quarter turns and optionally flip the last two axes (y, x) of ``window``."""
    if rot:
        window = np.rot90(window, k=rot, axes=(-2, -1))
    if flip:
        window = window[..., ::-1]
    return window


# --------------------------------------------------------------------------- datasets


@dataclass
class Datasets:
    """What :func:`build_datasets` returns; a split without windows is ``None``."""

    train: object
    validation: object | None
    test: object | None
    preprocessor: object
    summary: dict


def event_name(entry, index: int = 0) -> str:
    """A short name for an event entry: the file or folder name without a NetCDF suffix."""
    from pathlib import Path

    text = str(entry).rstrip("/")
    if any(ch in text for ch in "*?["):
        return text
    name = Path(text).name
    for suffix in (".nc", ".nc4", ".netcdf", ".zarr"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name or f"event{index}"


def _is_holdout(entry: str, name: str, holdout: tuple[str, ...]) -> bool:
    import os

    norm = os.path.normpath(str(entry))
    return any(
        h in (entry, name) or os.path.normpath(h) == norm or event_name(h) == name for h in holdout
    )


def build_datasets(
    cfg,
    *,
    archives: list[xr.DataArray] | None = None,
    preprocessor=None,
    cache_mb: int | None = None,
    steps_per_epoch: int | None = None,
    drop_remainder: bool = False,
    workers: int = 1,
    use_multiprocessing: bool = False,
    max_queue_size: int = 10,
) -> Datasets:
    """Open (or take) the events, split them, fit the preprocessor on train, build the datasets.

    ``archives``: already opened archives (else ``cfg.data.events`` are opened with
    :func:`nowcast.data.archive.open_archive`, ``chunks="auto"``). ``preprocessor``: a fitted
    :class:`~nowcast.data.preprocess.Preprocessor` to reuse instead of fitting one.
    ``cache_mb`` overrides ``sampler.cache_mb`` (one frame cache shared by the three
    datasets). ``workers``, ``use_multiprocessing``, ``max_queue_size`` go to ``PyDataset``.
    ``steps_per_epoch``: the train dataset then has exactly that many batches per epoch
    (several shuffled passes over the windows when it exceeds them; give it the value passed
    to ``fit``, else Keras stops an epoch early when the windows run out).
    ``drop_remainder``: every batch is full (a split with fewer windows than one batch
    is then empty); data-parallel training needs this to shard batches evenly.
    """
    from nowcast.data.dataset import FrameCache, SequenceDataset
    from nowcast.data.preprocess import Preprocessor
    from nowcast.errors import ConfigError, DataError

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
    out = dict.fromkeys(SPLITS)
    for name in SPLITS:
        if len(windows[name]) >= (s.batch_size if drop_remainder else 1):
            train = name == "train"
            sampler = WindowSampler(
                events,
                windows[name],
                s.t_in,
                s.t_out,
                patch,
                s.batch_size,
                seed=s.seed,
                split=name,
                shuffle=train,
                augment=s.augment and train,
                min_wet_fraction=s.min_wet_fraction if name != "test" else 0.0,
                drop_remainder=drop_remainder,
            )
            out[name] = SequenceDataset(
                sampler,
                preprocessor,
                cache=cache,
                workers=workers,
                steps=steps_per_epoch if train else None,
                use_multiprocessing=use_multiprocessing,
                max_queue_size=max_queue_size,
            )
    summary = _summary(events, archives, windows, dropped, step, patch, preprocessor)
    return Datasets(out["train"], out["validation"], out["test"], preprocessor, summary)


def _events(cfg, archives):
    """Open the archives if needed; check units and time step; label and prepare each event."""
    from nowcast.data.preprocess import Preprocessor
    from nowcast.data.timeaxis import time_step
    from nowcast.errors import ConfigError, DataError

    entries = list(cfg.data.events)
    if archives is None:
        if not entries:
            raise ConfigError("data.events is empty: give at least one archive")
        from nowcast.data.archive import open_archive

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
    from nowcast.errors import ConfigError

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
    import dask

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
    import os

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
