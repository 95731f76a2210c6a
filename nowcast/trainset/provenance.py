"""What identifies a prepared store's inputs: the source files' names, sizes and a cheap
digest of their content (:func:`content_digest`), never their paths or times.

:func:`store_key` digests a store's provenance without the paths, so the same data in
another folder, or copied with new modification times, has the same key and its stores are
found again. A rebuild follows a change of a file's name, its size, or its bytes where the
digest reads them (the first and last MiB, where NetCDF/HDF5 keep their metadata, and 16
blocks spread over the rest; a file up to 4 MiB is read whole), and a change of the
preprocessing, the grid, the time range, the layout's options or the store format.
"""

from __future__ import annotations

import hashlib
import json
import os

import xarray as xr

from nowcast.archive.reader import source_files

#: :func:`content_digest` reads whole files up to this size, else samples of them.
DIGEST_WHOLE = 4 * 2**20
#: The samples: the first and last :data:`DIGEST_EDGE` bytes (a NetCDF/HDF5 file's header
#: and its metadata at the end) and :data:`DIGEST_SAMPLES` blocks of :data:`DIGEST_BLOCK`
#: bytes spread evenly between them.
DIGEST_EDGE = 2**20
DIGEST_SAMPLES = 16
DIGEST_BLOCK = 64 * 2**10


def content_digest(path: str | os.PathLike) -> str:
    """A cheap digest of a file's content: BLAKE2b of its size and its bytes (whole up to
    :data:`DIGEST_WHOLE`, else its first and last MiB and 16 evenly spread 64 KiB blocks:
    at most 3 MiB read, whatever the file's size)."""
    size = os.path.getsize(path)
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as f:
        if size <= DIGEST_WHOLE:
            h.update(f.read())
        else:
            offsets = [0, size - DIGEST_EDGE]
            span = size - 2 * DIGEST_EDGE - DIGEST_BLOCK
            offsets[1:1] = [
                DIGEST_EDGE + span * (i + 1) // (DIGEST_SAMPLES + 1) for i in range(DIGEST_SAMPLES)
            ]
            for offset in offsets:
                f.seek(offset)
                h.update(f.read(DIGEST_EDGE if offset in (0, size - DIGEST_EDGE) else DIGEST_BLOCK))
    return h.hexdigest()


def source_stats(data: xr.DataArray) -> list[dict]:
    """The files an archive was read from: name, size, :func:`content_digest` and path
    (the path is left out of the store's key)."""
    out = []
    for f in source_files(data):
        try:
            out.append(
                {
                    "name": os.path.basename(str(f)),
                    "size": os.path.getsize(f),
                    "digest": content_digest(f),
                    "path": str(f),
                }
            )
        except (OSError, TypeError, ValueError):
            out.append({"name": os.path.basename(str(f)), "path": str(f)})
    return out


def store_key(provenance: dict) -> str:
    """The store's key: a digest of its provenance without the source files' paths."""
    identity = dict(provenance)
    identity["sources"] = [
        {k: v for k, v in src.items() if k != "path"} for src in provenance.get("sources", ())
    ]
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
