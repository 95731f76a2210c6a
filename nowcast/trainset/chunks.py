"""Read boxes of a prepared store's Zarr array chunk by chunk, without Zarr's per-read machinery.

A training loader reads many small boxes (one window's crops: a few dozen chunks of a few
hundred kB). Through ``zarr.Array.__getitem__`` each read pays about a millisecond of
fixed cost on top of decoding (its async event loop, selection objects, buffer
prototypes): more than the decoding itself. :class:`ChunkReader` reads the chunk objects'
bytes directly (a local file, or ``fs.cat_file`` on an fsspec root), decodes them with
numcodecs and copies the wanted part of each into the output.

Contract: Zarr v3 arrays with a ``regular`` chunk grid, the ``default`` chunk key encoding,
a ``bytes`` codec in this machine's byte order and at most one compressor out of ``zstd``,
``blosc`` and ``gzip`` (what :mod:`nowcast.trainset.prepared` writes). A missing chunk is the
fill value, as in Zarr. :func:`chunk_reader` returns ``None`` for any other array, and the
caller reads it through Zarr; the result is the same either way (tested).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from itertools import product

import numpy as np

from nowcast.trainset.roots import StoreRoot

Decoder = Callable[[bytes], bytes]


def _decoder(codecs: list[dict]) -> Decoder | None:
    """The decoding of a v3 codec chain, or ``None`` when it is not one this module reads."""
    if not codecs or codecs[0].get("name") != "bytes":
        return None
    endian = (codecs[0].get("configuration") or {}).get("endian", sys.byteorder)
    if endian != sys.byteorder or len(codecs) > 2:
        return None
    if len(codecs) == 1:
        return bytes
    name = codecs[1].get("name")
    if name == "zstd":
        from numcodecs.zstd import decompress as zstd

        return zstd
    if name == "blosc":
        from numcodecs.blosc import decompress as blosc

        return blosc
    if name == "gzip":
        import gzip

        return gzip.decompress
    return None


class ChunkReader:
    """Boxes of one Zarr v3 array of a store under ``root``, read chunk by chunk."""

    def __init__(self, root: StoreRoot, path: str, meta: dict, decode: Decoder) -> None:
        self.root = root
        self.path = path
        self.shape = tuple(int(n) for n in meta["shape"])
        self.chunks = tuple(int(n) for n in meta["chunk_grid"]["configuration"]["chunk_shape"])
        self.dtype = np.dtype(meta["data_type"])
        fill = meta.get("fill_value")
        self.fill = np.nan if fill in ("NaN", None) else fill
        self.sep = (meta["chunk_key_encoding"].get("configuration") or {}).get("separator", "/")
        self.decode = decode

    def _chunk(self, index: tuple[int, ...]) -> np.ndarray | None:
        key = f"{self.path}/c{self.sep}{self.sep.join(str(i) for i in index)}"
        raw = self.root.read_bytes(key)
        if raw is None:
            return None
        return np.frombuffer(self.decode(raw), dtype=self.dtype).reshape(self.chunks)

    def read(self, box: tuple[slice, ...], *, out: np.ndarray | None = None) -> np.ndarray:
        """The values in ``box`` (one ``slice(start, stop)`` per dimension, in bounds),
        written into ``out`` (of the box's shape, cast to its dtype) when given."""
        lo = [s.start for s in box]
        hi = [s.stop for s in box]
        shape = tuple(b - a for a, b in zip(lo, hi, strict=True))
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        elif out.shape != shape:
            raise ValueError(f"out has shape {out.shape}, the box {shape}")
        ranges = [range(a // c, -(-b // c)) for a, b, c in zip(lo, hi, self.chunks, strict=True)]
        for index in product(*ranges):
            src, dst = [], []
            for i, a, b, c in zip(index, lo, hi, self.chunks, strict=True):
                c0, c1 = max(a, i * c), min(b, (i + 1) * c)
                src.append(slice(c0 - i * c, c1 - i * c))
                dst.append(slice(c0 - a, c1 - a))
            chunk = self._chunk(index)
            if chunk is None:
                out[tuple(dst)] = self.fill
            else:
                out[tuple(dst)] = chunk[tuple(src)]
        return out


def chunk_reader(root: StoreRoot, store: str, array: str) -> ChunkReader | None:
    """A :class:`ChunkReader` for ``store/array`` under ``root``, or ``None`` when the array's
    layout or codecs are not ones it reads (see the module doc)."""
    raw = root.read_bytes(f"{store}/{array}/zarr.json")
    if raw is None:
        return None
    meta = json.loads(raw)
    grid = meta.get("chunk_grid", {})
    keys = meta.get("chunk_key_encoding", {})
    if (
        meta.get("zarr_format") != 3
        or grid.get("name") != "regular"
        or keys.get("name") != "default"
        or meta.get("storage_transformers")
    ):
        return None
    decode = _decoder(meta.get("codecs", []))
    if decode is None:
        return None
    return ChunkReader(root, f"{store}/{array}", meta, decode)
