"""The chunk-by-chunk reader of prepared stores gives what Zarr gives, for every box, codec and
root it takes, and declines (so the caller uses Zarr) what it does not take."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from nowcast.trainset.chunks import chunk_reader
from nowcast.trainset.roots import StoreRoot


def _values(shape, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.gamma(0.4, 2.0, size=shape).astype(np.float32)
    a[a < 0.3] = np.nan
    return a


def _store(root: StoreRoot, name: str, values, chunks, **codecs):
    group = root.open(name, "w")
    arr = group.create_array("v", shape=values.shape, chunks=chunks, dtype=values.dtype,
                             fill_value=np.nan, **codecs)  # fmt: skip
    arr[...] = values
    return arr


def _boxes(shape, rng, n=40):
    for _ in range(n):
        lo = [int(rng.integers(0, s)) for s in shape]
        yield tuple(slice(a, int(rng.integers(a + 1, s + 1))) for a, s in zip(lo, shape))


@pytest.mark.parametrize(
    "codecs",
    [
        {},  # Zarr's default: zstd
        {"compressors": None},
        {"compressors": zarr.codecs.BloscCodec(cname="lz4", shuffle="shuffle")},
        {"compressors": zarr.codecs.GzipCodec(level=1)},
    ],
    ids=["zstd", "none", "blosc-lz4", "gzip"],
)
def test_reader_equals_zarr_on_random_boxes(tmp_path, codecs):
    values = _values((19, 45, 70))
    values[8:16] = np.nan  # whole chunks equal to the fill value are not written
    root = StoreRoot(tmp_path)
    arr = _store(root, "a.zarr", values, (8, 16, 32), **codecs)
    reader = chunk_reader(root, "a.zarr", "v")
    assert reader is not None
    rng = np.random.default_rng(1)
    for box in _boxes(values.shape, rng):
        np.testing.assert_array_equal(reader.read(box), arr[box])
    np.testing.assert_array_equal(reader.read((slice(0, 19), slice(0, 45), slice(0, 70))), values)
    box = (slice(3, 17), slice(10, 40), slice(5, 69))
    out = np.full((14, 30, 64), 5.0, np.float32)
    assert reader.read(box, out=out) is out  # a caller's buffer, every value written
    np.testing.assert_array_equal(out, arr[box])
    with pytest.raises(ValueError, match="out has shape"):
        reader.read(box, out=np.empty((14, 30, 63), np.float32))


def test_reader_on_an_in_process_fsspec_root():
    root = StoreRoot("memory://chunks-test")
    values = _values((2, 9, 20, 20), seed=3)
    arr = _store(root, "w.zarr", values, (1, 9, 8, 8))
    reader = chunk_reader(root, "w.zarr", "v")
    for box in _boxes(values.shape, np.random.default_rng(2), n=10):
        np.testing.assert_array_equal(reader.read(box), arr[box])
    root.remove("w.zarr")


def test_reader_declines_what_it_does_not_read(tmp_path):
    root = StoreRoot(tmp_path)
    values = _values((4, 10, 10))
    _store(root, "t.zarr", values, (2, 5, 5), filters=[zarr.codecs.TransposeCodec(order=(2, 1, 0))])
    assert chunk_reader(root, "t.zarr", "v") is None  # a transpose codec: Zarr reads it
    assert chunk_reader(root, "t.zarr", "missing") is None
    group = zarr.open_group(str(tmp_path / "v2.zarr"), mode="w", zarr_format=2)
    group.create_array("v", shape=(4, 4), chunks=(2, 2), dtype="f4")
    assert chunk_reader(root, "v2.zarr", "v") is None  # Zarr v2 metadata
