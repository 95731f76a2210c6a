"""SequenceDataset: real data (KNMI coverage mask, BOM gap), laziness, cache bound, Keras fit."""

from __future__ import annotations

import dataclasses
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from dask_counting import TaskCounter

from nowcast.archive.reader import open_archive
from nowcast.config import Config, DataConfig, PreprocessConfig, SamplerConfig, SplitConfig
from nowcast.trainset.batches import gather_batch, mark_window
from nowcast.trainset.build import build_datasets
from nowcast.trainset.dataset import FrameCache, SequenceDataset
from nowcast.trainset.preprocess import Preprocessor
from nowcast.trainset.sampler import SPLITS


def config(events=("a",), **sampler) -> Config:
    split = sampler.pop("split", SplitConfig(validation=0.0, test=0.0))
    base = dict(t_in=2, t_out=2, patch_size=16, batch_size=4, split=split)
    base.update(sampler)
    return Config(data=DataConfig(events=tuple(events)), sampler=SamplerConfig(**base))


class CountingFrames:
    """Array-like (time, y, x) that records which frames are read."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.shape, self.dtype, self.ndim = values.shape, values.dtype, values.ndim
        self.frames_read: list[int] = []

    def __getitem__(self, key):
        out = self.values[key]
        if out.size:
            self.frames_read.extend(np.arange(self.shape[0])[key[0]].tolist())
        return out


def counting_archive(nt=400, ny=32, nx=32):
    import dask.array as dsa

    rng = np.random.default_rng(0)
    src = CountingFrames(rng.gamma(0.5, 2.0, size=(nt, ny, nx)).astype("float32"))
    data = dsa.from_array(src, chunks=(1, ny, nx), lock=False, asarray=False)
    da = xr.DataArray(
        data,
        dims=("time", "y", "x"),
        coords={
            "time": pd.date_range("2020", periods=nt, freq="5min"),
            "y": np.arange(ny) * 1e3,
            "x": np.arange(nx) * 1e3,
        },
        name="precipitation_rate",
        attrs={"units": "mm h-1"},
    )
    return da, src


def test_building_and_drawing_a_batch_reads_only_needed_chunks():
    da, src = counting_archive()
    pre = Preprocessor.from_config(PreprocessConfig())
    with TaskCounter() as counter:
        ds = build_datasets(config(), archives=[da], preprocessor=pre)
        assert src.frames_read == [] and counter.n == 0  # building computes nothing
        x, y, mask = ds.train[0]
    needed = {s.start + k for s in ds.train.samples(0) for k in range(4)}
    assert set(src.frames_read) == needed  # exactly the batch's frames, each once
    assert len(src.frames_read) == len(needed) <= 16
    assert counter.n <= 4 * len(needed)  # a handful of tasks, far below the 400 chunks
    assert x.shape == (4, 2, 16, 16, 1) and y.shape == mask.shape == (4, 2, 16, 16, 1)
    # a second batch re-uses cached frames: only frames not read before are read now
    before = set(src.frames_read)
    ds.train[1]
    new = src.frames_read[len(before) :]
    assert not (set(new) & before)


def test_preprocessor_fit_reads_only_the_train_block():
    da, src = counting_archive(nt=40)
    build_datasets(config(split=SplitConfig(validation=0.25, test=0.25)), archives=[da])
    assert sorted(set(src.frames_read)) == list(range(20))  # train = frames 0..19


def test_frame_cache_is_bounded():
    cache = FrameCache(10 * 400)
    for t in range(100):
        cache.put((0, t), np.zeros(100, dtype="float32"))  # 400 bytes each
        assert cache.nbytes <= cache.max_bytes
    assert len(cache) == 10
    assert cache.get((0, 99)) is not None and cache.get((0, 0)) is None
    assert (cache.hits, cache.misses) == (1, 1)
    clone = pickle.loads(pickle.dumps(cache))
    assert len(clone) == 0 and clone.max_bytes == cache.max_bytes


def test_no_cache_still_works_and_dataset_pickles():
    da, _ = counting_archive(nt=30)
    pre = Preprocessor.from_config(PreprocessConfig())
    ds = build_datasets(
        config(), archives=[da], preprocessor=pre, cache_mb=0, workers=2, use_multiprocessing=True
    )
    assert (ds.train.workers, ds.train.use_multiprocessing) == (2, True)
    a = ds.train[0]
    assert len(ds.train.cache) == 0
    clone = pickle.loads(pickle.dumps(ds.train))
    for u, v in zip(a, clone[0]):
        np.testing.assert_array_equal(u, v)


def test_keras_fit_takes_the_mask_as_sample_weight():
    import keras

    da, _ = counting_archive(nt=30)
    ds = build_datasets(config(batch_size=2), archives=[da])
    assert isinstance(ds.train, SequenceDataset)
    model = keras.Sequential([keras.Input((2, 16, 16, 1)), keras.layers.Conv3D(1, 1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(ds.train, epochs=2, steps_per_epoch=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert ds.train.epoch >= 2  # Keras called on_epoch_end: new order and crops each epoch


# --------------------------------------------------------------------------- real data


def test_knmi_coverage_nan_becomes_mask_zero(shared_data):
    archive = open_archive(shared_data / "radar" / "knmi-2010-08-26.nc")
    pre = Preprocessor.from_config(PreprocessConfig())
    cfg = config(patch_size=96, batch_size=3, seed=2)
    ds = build_datasets(cfg, archives=[archive], preprocessor=pre)
    x, y, mask = ds.train[0]
    assert not np.isnan(x).any() and not np.isnan(y).any()
    assert 0 < mask.mean() < 1  # the drawn crops include outside-coverage pixels
    for i, s in enumerate(ds.train.samples(0)):
        truth = archive.isel(
            time=slice(s.start + 2, s.start + 4), y=slice(s.oy, s.oy + 96), x=slice(s.ox, s.ox + 96)
        )
        nan = np.isnan(truth.values)
        np.testing.assert_array_equal(mask[i, ..., 0] == 0, nan)
        assert (y[i, ..., 0][nan] == np.float32(pre.fill_value)).all()


def test_bom_missing_file_no_window_crosses_gap(shared_data, tmp_path):
    files = sorted((shared_data / "radar" / "bom-66-2020-10-31").glob("*.nc"))
    assert len(files) == 144
    for f in files[:70] + files[71:]:  # drop 66_20201031_114000 (index 70)
        shutil.copy(f, tmp_path / f.name)
    archive = open_archive(tmp_path)
    assert archive.sizes["time"] == 143
    cfg = config(t_in=3, t_out=3, patch_size=64)
    ds = build_datasets(
        cfg, archives=[archive], preprocessor=Preprocessor.from_config(PreprocessConfig())
    )
    times = archive.time.values
    windows = [
        int(t)
        for name in SPLITS
        if getattr(ds, name) is not None
        for _, t in getattr(ds, name).sampler.windows
    ]
    # frames 0..69 (70) and 70..142 (73 after the gap): (70 - 6 + 1) + (73 - 6 + 1) windows
    assert len(windows) == 65 + 68
    for t in windows:
        assert (np.diff(times[t : t + 6]) == np.timedelta64(10, "m")).all()
    x, y, mask = ds.train[0]
    assert np.isfinite(x).all() and np.isfinite(y).all()


def test_whole_chunks_are_read_once_and_cached():
    import dask.array as dsa

    src = CountingFrames(np.random.default_rng(1).random((40, 16, 16), dtype="float32"))
    da = xr.DataArray(
        dsa.from_array(src, chunks=(5, 16, 16), lock=False, asarray=False),
        dims=("time", "y", "x"),
        coords={
            "time": pd.date_range("2020", periods=40, freq="5min"),
            "y": np.arange(16.0),
            "x": np.arange(16.0),
        },
        attrs={"units": "mm h-1"},
    )
    ds = build_datasets(
        config(batch_size=1),
        archives=[da],
        preprocessor=Preprocessor.from_config(PreprocessConfig()),
    )
    (s,) = ds.train.samples(0)
    ds.train[0]
    first, last = (
        s.start // 5 * 5,
        (s.start + 3) // 5 * 5 + 5,
    )  # the chunks holding frames start..start+3
    assert sorted(src.frames_read) == list(range(first, last))
    assert len(ds.train.cache) == last - first  # the chunks' other frames are cached too
    read = len(src.frames_read)
    x, _, _ = ds.train.assemble([dataclasses.replace(s, start=first)])  # inside the cached chunks
    assert len(src.frames_read) == read
    expected = ds.preprocessor.encode(
        src.values[first : first + 2, s.oy : s.oy + 16, s.ox : s.ox + 16]
    )[0]
    np.testing.assert_allclose(x[0, ..., 0], expected, rtol=1e-6)


def test_steps_per_epoch_runs_on_through_shuffled_passes():
    da, _ = counting_archive(nt=12)  # 9 windows of 4 frames, batch 4 -> 3 batches per pass
    pre = Preprocessor.from_config(PreprocessConfig())
    ds = build_datasets(config(), archives=[da], preprocessor=pre, steps_per_epoch=7)
    assert (len(ds.train), ds.train.sampler.num_batches) == (7, 3)
    passes = [
        [s.start for i in range(3 * p, 3 * p + 3) for s in ds.train.samples(i)] for p in range(2)
    ]
    assert sorted(passes[0]) == sorted(passes[1]) == list(range(9)) and passes[0] != passes[1]
    assert ds.train.samples(6) == ds.train.sampler.batch(0, 2)  # third pass
    ds.train.on_epoch_end()
    assert ds.train.epoch == 3  # the next epoch starts on a fresh pass
    with pytest.raises(IndexError, match=r"batch 7 out of range \(0 \.\. 6\)"):
        ds.train.samples(7)


@pytest.mark.parametrize("all_frames_valid", [False, True])
def test_mark_and_gather_split_mask_and_fill_every_non_finite_value(all_frames_valid):
    rng = np.random.default_rng(0)
    records = [rng.normal(size=(5, 4, 6)).astype(np.float32) for _ in range(3)]
    records[0][0, 1, 2] = np.nan  # an input frame
    records[1][3, 0, 0] = np.inf  # a target frame
    records[2][4, 2, :] = -np.inf
    records[2][1:, 3, 5] = np.nan
    stack = np.stack(records)[..., None]
    finite = np.isfinite(stack)
    windows = [r.copy() for r in records]
    valids = [mark_window(w, -7.0) for w in windows]
    x, y, mask = gather_batch(windows, valids, 2, all_frames_valid=all_frames_valid)
    assert x.shape == (3, 2, 4, 6, 1) and y.shape == mask.shape == (3, 3, 4, 6, 1)
    np.testing.assert_array_equal(x, np.where(finite[:, :2], stack[:, :2], -7.0))
    np.testing.assert_array_equal(y, np.where(finite[:, 2:], stack[:, 2:], -7.0))
    expected = finite.all(axis=1, keepdims=True) if all_frames_valid else finite[:, 2:]
    np.testing.assert_array_equal(mask, np.broadcast_to(expected, mask.shape).astype(np.float32))
    assert mask[0].all() != all_frames_valid  # only the whole-window mask sees the input's NaN
    assert np.isnan(records[0][0, 1, 2])  # the records are not modified (copies were marked)
    for w, v, r in zip(windows, valids, records):  # marked in place, the valid mask returned
        np.testing.assert_array_equal(v, np.isfinite(r))
        np.testing.assert_array_equal(w, np.where(np.isfinite(r), r, -7.0))
