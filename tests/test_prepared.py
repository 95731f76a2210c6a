"""Prepared training stores and the streaming loader: the same batches as the archive loader
on real data, fsspec roots (file:// and an in-process memory://), resumable builds, stale
inputs, several crops per read, the shuffle buffer, training end to end, `nowcast prepare`."""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from small_configs import small_config

from nowcast.archive import open_archive
from nowcast.archive.synthetic import write_synthetic_archive
from nowcast.cli import main
from nowcast.config import load_config
from nowcast.config.experiment import PreprocessConfig
from nowcast.errors import ConfigError, DataError
from nowcast.motion import FlowOptions
from nowcast.trainset.build import build_datasets
from nowcast.trainset.lagrangian_windows import LagrangianStore, lagrangian_window
from nowcast.trainset.prepared import FrameStore
from nowcast.trainset.preprocess import Preprocessor
from nowcast.trainset.sampler import EventData, WindowSampler
from nowcast.trainset.streaming import PreparedDataset


def _cfg(event, cache, *extra):
    return small_config(
        event,
        cache,
        "sampler.patch_size=64",
        "sampler.batch_size=4",
        "sampler.prepared=true",
        *extra,
    )


def test_prepared_loader_gives_the_archive_loaders_batches(shared_data, tmp_path):
    """Real MeteoSwiss event (30 % outside coverage): the batches streamed from the prepared
    frames are the archive loader's, bit for bit (mask and fill included)."""
    event = shared_data / "radar" / "mch-2016-07-11.nc"
    cfg = _cfg(event, tmp_path / "cache")
    prepared = build_datasets(cfg)
    assert isinstance(prepared.train, PreparedDataset) and prepared.stores[0].missing() == []
    direct = build_datasets(
        dataclasses.replace(cfg, sampler=dataclasses.replace(cfg.sampler, prepared=False)),
        preprocessor=prepared.preprocessor,
    )
    assert not isinstance(direct.train, PreparedDataset)
    for split in ("train", "validation"):
        ours, theirs = getattr(prepared, split), getattr(direct, split)
        assert len(ours) == len(theirs) >= 2
        for index in (0, len(ours) - 1):
            a, b = ours[index], theirs[index]
            for u, v in zip(a, b):
                np.testing.assert_array_equal(u, v)
    x, y, mask = prepared.train[0]
    assert 0 < mask.mean() < 1 and np.isfinite(x).all()
    assert prepared.summary["prepared_cache"] == [str(prepared.stores[0].path)]


@pytest.mark.slow
def test_frame_store_resumes_and_rebuilds_stale_inputs(shared_data, tmp_path):
    """An interrupted build redoes only its unfinished chunks, an interrupted creation is
    rebuilt, the same input with a new time or in another folder is the same store, a
    changed input file (its content) is another store, and the stale one goes."""
    event = tmp_path / "mch.nc"
    shutil.copy(shared_data / "radar" / "mch-2015-05-15.nc", event)
    da = open_archive(event)
    store = FrameStore(tmp_path / "cache", "mch", da, length=6, frame_chunk=8)
    assert store.units() == 5 and store.build(workers=1) == 5 and store.build() == 0
    np.testing.assert_array_equal(
        store.read(7, 100, 200, 40, 30), da.values[7:13, 100:140, 200:230]
    )
    import zarr

    zarr.open_group(str(store.path), mode="r+")["done"][3] = False
    again = FrameStore(tmp_path / "cache", "mch", da, length=6, frame_chunk=8)
    assert again.key == store.key and again.build() == 1
    group = zarr.open_group(str(store.path), mode="r+")
    del group.attrs["provenance"]  # as if the creation had been interrupted
    assert again.missing() == list(range(5)) and again.build() == 5
    st = os.stat(event)  # a new modification time, or a copy elsewhere: the same store
    os.utime(event, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched = FrameStore(tmp_path / "cache", "mch", open_archive(event), length=6)
    assert touched.key == store.key and touched.missing() == []
    (tmp_path / "copy").mkdir()
    shutil.copy(event, tmp_path / "copy" / "mch.nc")
    copied = FrameStore(tmp_path / "cache", "mch", open_archive(tmp_path / "copy" / "mch.nc"),
                        length=6)  # fmt: skip
    assert copied.key == store.key and copied.missing() == [] and copied.build() == 0
    with xr.open_dataset(event) as ds:  # new content: another store, the stale one goes
        ds = ds.load()
    ds["precipitation_rate"][0, 10, 10] = 7.0
    ds.to_netcdf(event)
    changed = FrameStore(tmp_path / "cache", "mch", open_archive(event), length=6)
    assert changed.key != store.key and changed.missing() == list(range(5))
    changed.build()
    assert not store.path.exists() and changed.path.exists()
    # float16 halves the bytes before compression: ~3 significant digits
    half = FrameStore(tmp_path / "half", "mch", da, length=6, dtype="float16")
    half.build()
    np.testing.assert_allclose(
        half.read(0, 0, 0, 640, 710), da.values[:6], rtol=1e-3, atol=1e-4, equal_nan=True
    )
    assert half.nbytes() < changed.nbytes()
    # LZ4 chunks (faster to decode): the same values, another key, read chunk by chunk
    lz4 = FrameStore(tmp_path / "lz4", "mch", da, length=6, codec="lz4")
    assert lz4.key != FrameStore(tmp_path / "lz4", "mch", da, length=6).key
    lz4.build()
    assert lz4._array().metadata.codecs[1].cname.value == "lz4"
    np.testing.assert_array_equal(lz4.read(9, 50, 60, 128, 300), da.values[9:15, 50:178, 60:360])
    assert lz4._reader  # not Zarr's reader
    with pytest.raises(DataError, match="codec must be one of zstd, lz4: 'gzip'"):
        FrameStore(tmp_path / "x", "mch", da, length=6, codec="gzip")


@pytest.mark.parametrize(
    "root",
    [
        "memory://nowcast-test/cache",
        pytest.param("file://{tmp}/cache", marks=pytest.mark.slow),  # worker processes
    ],
)
def test_stores_on_fsspec_urls(shared_data, tmp_path, root):
    """The same stores on an fsspec URL: an in-process fake (memory://, built in this
    process) and file:// (built by two worker processes)."""
    root = root.format(tmp=tmp_path)
    da = open_archive(shared_data / "radar" / "mch-2016-07-11.nc")
    da = da.isel(time=slice(0, 12), y=slice(200, 328), x=slice(250, 378)).load()
    frames = FrameStore(root, "mch", da, length=5)
    assert isinstance(frames.path, str) and frames.path.startswith(root.split("://")[0])
    assert frames.build(workers=2) == 2 and frames.missing() == []
    np.testing.assert_array_equal(frames.read(4, 5, 6, 30, 40), da.values[4:9, 5:35, 6:46])
    windows = LagrangianStore(root, "mch", da, [0, 6], t_in=3, t_out=2, flow=FlowOptions())
    assert windows.build(workers=2) == 2
    ref = lagrangian_window(da.values[6:11], t_in=3, flow=FlowOptions(), units="mm h-1")
    np.testing.assert_array_equal(windows.read(6, 10, 20, 32, 40), ref[:, 10:42, 20:60])
    assert frames.root.names() == sorted([frames.store_name, windows.store_name])
    assert pickle.loads(pickle.dumps(frames)).read(4, 0, 0, 2, 2).shape == (5, 2, 2)
    frames.root.remove(frames.store_name)
    frames.root.remove(windows.store_name)
    assert frames.root.names() == []


class ConstantStore:
    """A store whose windows are filled with their start frame (to trace samples)."""

    name, length, all_frames_valid = "const", 6, False

    def __init__(self) -> None:
        self.reads = []

    def read(self, start, oy, ox, py, px, *, out=None):
        self.reads.append((start, oy, ox, py, px))
        return np.full((self.length, py, px), float(start), dtype=np.float32)


def _identity() -> Preprocessor:
    return Preprocessor.from_config(PreprocessConfig(transform="none", normalise=False))


def _sampler(**kw) -> WindowSampler:
    import xarray as xr

    data = xr.DataArray(np.zeros((200, 100, 90), np.float32), dims=("time", "y", "x"))
    event = EventData("const", data, np.zeros(200, np.int8))
    windows = np.array([(0, t) for t in range(0, 190)], dtype=np.int64)
    base = dict(t_in=3, t_out=3, patch=(16, 16), batch_size=8, crops=4, tile=32, seed=1)
    base.update(kw)
    return WindowSampler([event], windows, **base)


def test_crops_per_read_share_one_read_and_one_tile_block():
    """Each window's 4 crops are one store read, inside the 2 x 2 tiles around the first."""
    store = ConstantStore()
    ds = PreparedDataset(_sampler(), _identity(), [store])
    for index in range(20):
        samples = ds.samples(index)
        assert len(samples) == 8 and len({s.start for s in samples}) == 2
        before = len(store.reads)
        x, y, mask = ds[index]
        assert len(store.reads) - before == 2  # one read per window
        for start in {s.start for s in samples}:
            oy = [s.oy for s in samples if s.start == start]
            ox = [s.ox for s in samples if s.start == start]
            assert max(oy) // 32 - min(oy) // 32 <= 1 and max(ox) // 32 - min(ox) // 32 <= 1
            assert max(oy) + 16 - min(oy) <= 64 and max(ox) + 16 - min(ox) <= 64
    assert x.shape == (8, 3, 16, 16, 1) and mask.all()


def test_shuffle_buffer_mixes_windows_is_bounded_and_reproducible():
    plain = PreparedDataset(_sampler(), _identity(), [ConstantStore()])
    mixed = [PreparedDataset(_sampler(), _identity(), [ConstantStore()], shuffle_buffer=32)]
    mixed.append(pickle.loads(pickle.dumps(mixed[0])))
    distinct = {"plain": [], "mixed": []}
    for index in range(len(plain)):
        distinct["plain"].append(len(np.unique(plain[index][0][:, 0, 0, 0, 0])))
        a, b = (ds[index] for ds in mixed)
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)  # one worker: fixed by the seed
        assert a[0].shape[0] == 8 and len(mixed[0]._pool) == 32
        distinct["mixed"].append(len(np.unique(a[0][:, 0, 0, 0, 0])))
    assert set(distinct["plain"]) == {2}  # 2 windows x 4 crops
    assert np.mean(distinct["mixed"]) > 5  # the crops of a window spread over batches
    assert pickle.loads(pickle.dumps(mixed[0]))._pool == []


def test_training_streams_from_a_file_url_cache(tmp_path, torch_single_thread):
    """`train` with the prepared frames under a file:// URL, 4 crops per read, a shuffle
    buffer and two loader processes (Keras PyDataset workers)."""
    from nowcast.training import train

    archive = write_synthetic_archive(tmp_path / "rain.nc", n_times=40, ny=48, nx=48, seed=3)[0]
    cfg = _cfg(
        archive,
        f"file://{tmp_path}/cache",
        "sampler.patch_size=16",
        "sampler.crops_per_read=4",
        "sampler.shuffle_buffer=16",
        "sampler.workers=2",
        "sampler.multiprocessing=true",
        "model.filters=[4]",
        "model.downsample=2",
        "train.epochs=2",
        "train.steps_per_epoch=3",
        "train.validation_steps=1",
    )
    messages = []
    result = train(cfg, run_dir=tmp_path / "run", verbose=0, echo=messages.append)
    assert result.epochs_run == 2 and np.isfinite(result.best_val_loss)
    assert any("prepared frames (time chunks) of rain: computing" in m for m in messages)
    stores = list((tmp_path / "cache").glob("rain-frames-*.zarr"))
    assert len(stores) == 1
    datasets = build_datasets(cfg)
    assert datasets.stores[0].missing() == [] and datasets.train.workers == 2


def test_prepare_command(tmp_path):
    archive = write_synthetic_archive(tmp_path / "rain.nc", n_times=30, ny=40, nx=40, seed=2)[0]
    config = tmp_path / "exp.yaml"
    config.write_text(
        f"data:\n  events: [{archive}]\n  cache_dir: cache\n  cache_workers: 1\n"
        "sampler:\n  t_in: 3\n  t_out: 3\n  patch_size: 16\n  batch_size: 4\n"
    )
    runner = CliRunner()
    refused = runner.invoke(main, ["prepare", str(config)])
    assert refused.exit_code == 1 and "Error: nothing to prepare" in refused.output
    args = ["prepare", str(config), "--set", "sampler.prepared=true"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "computing 4 of 4" in first.output and "1 prepared stores" in first.output
    second = runner.invoke(main, args)
    assert second.exit_code == 0 and "computing" not in second.output
    assert len(list((tmp_path / "cache").glob("rain-frames-*.zarr"))) == 1
    with pytest.raises(ConfigError, match="crops_per_read=3 must divide"):
        load_config(config, ["sampler.crops_per_read=3"])
    bad = runner.invoke(main, [*args, "--set", "data.cache_dir=nosuchprotocol://bucket/cache"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert bad.output.strip().splitlines() == [
        "Error: cannot use nosuchprotocol://bucket/cache for prepared stores: "
        "Protocol not known: nosuchprotocol"
    ]


class PatternStore(ConstantStore):
    """Windows with a position pattern and NaN where ``(start + y + x) % 5 == 0``."""

    def read(self, start, oy, ox, py, px, *, out=None):
        self.reads.append((start, oy, ox, py, px))
        t, y, x = np.meshgrid(
            np.arange(self.length), np.arange(oy, oy + py), np.arange(ox, ox + px), indexing="ij"
        )
        values = (start * 1000 + t * 100 + y + x / 100).astype(np.float32)
        values[(start + y + x) % 5 == 0] = np.nan
        return values


def test_reused_sample_buffers_give_the_same_batches_as_fresh_ones():
    """Sample buffers go back to a free list and are reused: no value or mask of an earlier
    batch survives in a later one, and the free list stays at what was in flight."""
    pre = _identity()
    pre.fill_value = -9.0
    reused = PreparedDataset(_sampler(crops=2), pre, [PatternStore()], shuffle_buffer=16)
    for index in (0, 1, 2, 3, 1):
        fresh = PreparedDataset(_sampler(crops=2), pre, [PatternStore()])
        x, y, mask = reused.assemble(reused.samples(index))
        for got, want in zip((x, y, mask), fresh.assemble(reused.samples(index))):
            np.testing.assert_array_equal(got, want)
        assert 0 < mask.mean() < 1 and (x == -9.0).any() and np.isfinite(x).all()
        assert len(reused._free) == 8  # one batch's buffers, reused batch after batch
    for index in range(6):
        reused[index]
    assert len(reused._pool) == 16 and len(reused._free) <= 16 + 8


def test_content_digest_and_key_ignore_paths_and_times(tmp_path):
    """The key holds names, sizes and a content digest: not the folder, not the time; a
    large file is sampled (its first and last MiB and 16 blocks between)."""
    from nowcast.trainset import provenance

    big = tmp_path / "a" / "big.nc"
    big.parent.mkdir()
    data = np.random.default_rng(0).bytes(9 * 2**20)
    big.write_bytes(data)
    digest = provenance.content_digest(big)
    (tmp_path / "b").mkdir()
    shutil.copy(big, tmp_path / "b" / "big.nc")
    assert provenance.content_digest(tmp_path / "b" / "big.nc") == digest
    st = os.stat(big)
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert provenance.content_digest(big) == digest

    def flipped(offset: int) -> str:
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        big.write_bytes(bytes(changed))
        return provenance.content_digest(big)

    assert flipped(10) != digest and flipped(len(data) - 10) != digest  # header, tail
    assert flipped(2**20 + 2**19) == digest  # between the samples: not seen (documented)
    big.write_bytes(data + b"x")
    assert provenance.content_digest(big) != digest  # the size

    def prov(folder: str) -> dict:
        return {"sources": [{"name": "big.nc", "size": 1, "digest": "d",
                             "path": f"/{folder}/big.nc"}], "grid": [2, 3]}  # fmt: skip

    assert provenance.store_key(prov("x")) == provenance.store_key(prov("y"))
    assert provenance.store_key(prov("x")) != provenance.store_key({**prov("x"), "grid": [3, 2]})
