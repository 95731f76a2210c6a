"""Where prepared training stores live: a local folder or an fsspec URL (:class:`StoreRoot`).

The same code serves local disks and object storage: on a URL (``file://``, ``s3://``,
``gs://``, ``memory://`` for an in-process fake) the stores are opened through
:class:`zarr.storage.FsspecStore`, on a plain path through Zarr's local store.
"""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
import numpy as np

from nowcast.archive.sources import is_url
from nowcast.errors import DataError


def default_store_dir() -> Path:
    """Where prepared stores go without ``data.cache_dir``: the user's cache folder,
    ``$XDG_CACHE_HOME/nowcast`` (or ``~/.cache/nowcast``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nowcast"


class StoreRoot:
    """The folder that holds prepared stores: a local path or an fsspec URL."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.text = str(root)
        self.remote = is_url(self.text)
        if self.remote:
            protocol = self.text.split("://", 1)[0].lower()
            self.options = {"auto_mkdir": True} if protocol in ("file", "local") else {}
            try:
                self.fs, base = fsspec.core.url_to_fs(self.text, **self.options)
            except (ImportError, ValueError) as exc:  # unknown protocol, its package missing
                raise DataError(f"cannot use {self.text} for prepared stores: {exc}") from None
            self.base = base.rstrip("/")
        else:
            self.options = {}
            self.base = str(Path(self.text).expanduser())

    @property
    def shared(self) -> bool:
        """Whether other processes see what this one writes (not so for ``memory://``)."""
        return not self.remote or "memory" not in np.atleast_1d(self.fs.protocol)

    def location(self, name: str) -> Path | str:
        """Where store ``name`` lives: a ``Path``, or a URL for remote roots."""
        if not self.remote:
            return Path(self.base) / name
        return self.fs.unstrip_protocol(f"{self.base}/{name}")

    def exists(self, name: str) -> bool:
        return (
            self.fs.exists(f"{self.base}/{name}") if self.remote else self.location(name).exists()
        )

    def names(self) -> list[str]:
        """Names of the ``*.zarr`` entries of the root."""
        if self.remote:
            if not self.fs.exists(self.base):
                return []
            return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.glob(f"{self.base}/*.zarr")]
        base = Path(self.base)
        return sorted(p.name for p in base.glob("*.zarr")) if base.is_dir() else []

    def remove(self, name: str) -> None:
        if self.remote:
            if self.fs.exists(f"{self.base}/{name}"):
                self.fs.rm(f"{self.base}/{name}", recursive=True)
            return
        import shutil

        shutil.rmtree(self.location(name), ignore_errors=True)

    def nbytes(self, name: str) -> int:
        """Bytes the store takes (compressed)."""
        if self.remote:
            return int(self.fs.du(f"{self.base}/{name}"))
        return sum(f.stat().st_size for f in self.location(name).rglob("*") if f.is_file())

    def read_bytes(self, key: str) -> bytes | None:
        """The bytes of object ``key`` (``<store>/<path>``) under the root; ``None`` if absent."""
        try:
            if self.remote:
                return self.fs.cat_file(f"{self.base}/{key}")
            with open(os.path.join(self.base, key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def open(self, name: str, mode: str = "r"):
        """The Zarr group of store ``name``."""
        import zarr  # imported here: only prepared stores need it

        if not self.remote:
            if mode != "r":
                Path(self.base).mkdir(parents=True, exist_ok=True)
            return zarr.open_group(str(self.location(name)), mode=mode)
        from zarr.storage import FsspecStore

        store = FsspecStore.from_url(
            str(self.location(name)), storage_options=self.options or None, read_only=mode == "r"
        )
        return zarr.open_group(store, mode=mode)
