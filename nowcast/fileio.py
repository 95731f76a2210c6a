"""Atomic file writes: a temporary sibling, flushed, then renamed over the target."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: The one Zarr layout nowcast writes (archives by ``convert``, forecasts): format 2 with
#: consolidated metadata, which xarray opens without a warning.
ZARR_OPTIONS = {"zarr_format": 2, "consolidated": True}


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` so readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
