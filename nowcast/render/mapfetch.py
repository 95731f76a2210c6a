"""Getting the map layers once: what ``nowcast mapdata`` does.

:func:`get_map_data` fills a folder (default :func:`nowcast.render.mapdata.cache_dir`,
``~/.cache/nowcast/maps``, where maps look for them) with the Natural Earth coastlines,
lakes and country borders at 10m, 50m and 110m, laid out as Cartopy's
``pre_existing_data_dir`` (``shapefiles/natural_earth/{physical,cultural}/ne_<res>_*.shp``):
copied from an offline folder laid out the same way (``source``, e.g. the shared
``../shared/data/maps``, which also brings its GSHHS coastlines), else downloaded once by
Cartopy from naturalearthdata.com. Layers already there are kept; each file is placed
atomically, so an interrupted run leaves whole files only. Without a network and without
a source, one line says what to do.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nowcast.errors import NowcastError
from nowcast.fileio import atomic_output
from nowcast.render.mapdata import _NE, NE_RESOLUTIONS, _ne_path, cache_dir

#: The files of one shapefile layer (``.cpg`` where the data set has one).
SUFFIXES = (".shp", ".shx", ".dbf", ".prj", ".cpg")


@dataclass(frozen=True)
class Fetched:
    """What :func:`get_map_data` did: the folder, and how many layers it copied,
    downloaded or found there already."""

    folder: Path
    copied: int = 0
    downloaded: int = 0
    present: int = 0
    source: str = ""

    def describe(self) -> str:
        done = []
        if self.copied:
            done.append(f"{self.copied} layers copied from {self.source}")
        if self.downloaded:
            done.append(f"{self.downloaded} layers downloaded from naturalearthdata.com")
        if self.present:
            done.append(f"{self.present} already there")
        return f"map data in {self.folder}: " + ", ".join(done or ["nothing to do"])


def _layers(resolutions: Sequence[str]) -> list[tuple[str, str]]:
    for res in resolutions:
        if res not in NE_RESOLUTIONS:
            raise NowcastError(f"map data resolution {res!r}: expected {', '.join(NE_RESOLUTIONS)}")
    return [(layer, res) for res in resolutions for layer in _NE]


def _place(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(dest) as tmp:
        shutil.copyfile(src, tmp)


def _copy_layer(source: Path, target: Path, layer: str, res: str) -> bool:
    shp = _ne_path(source, layer, res)
    if not shp.is_file():
        return False
    for suffix in SUFFIXES:
        if shp.with_suffix(suffix).is_file():
            _place(shp.with_suffix(suffix), _ne_path(target, layer, res).with_suffix(suffix))
    return True


def _copy_gshhs(source: Path, target: Path) -> None:
    folder = source / "shapefiles" / "gshhs"
    if folder.is_dir():
        for src in sorted(p for p in folder.rglob("*") if p.is_file()):
            dest = target / src.relative_to(source)
            if not dest.exists():
                _place(src, dest)


def cartopy_download(scratch: Path, layer: str, res: str) -> None:
    """Download one Natural Earth layer with Cartopy into ``scratch`` (its ``data_dir``)."""
    # Cartopy costs start-up time: imported when map data is fetched
    import cartopy
    from cartopy.io.shapereader import natural_earth

    category, name = _NE[layer]
    before = cartopy.config["data_dir"]
    cartopy.config["data_dir"] = str(scratch)
    try:
        natural_earth(resolution=res, category=category, name=name)
    finally:
        cartopy.config["data_dir"] = before


def get_map_data(
    target: str | os.PathLike | None = None,
    *,
    source: str | os.PathLike | None = None,
    resolutions: Sequence[str] = NE_RESOLUTIONS,
    download: Callable[[Path, str, str], None] | None = None,
) -> Fetched:
    """Fill ``target`` with the Natural Earth layers (see the module doc); what was done.

    ``source``: an offline map-data folder to copy from (its GSHHS too); without it the
    missing layers are downloaded (``download(scratch, layer, resolution)``, default
    :func:`cartopy_download`). A source that
    holds no Natural Earth coastlines, or a download that fails (no network), is a one-line
    :class:`NowcastError` saying what to do.
    """
    folder = Path(target).expanduser() if target is not None else cache_dir()
    download = download or cartopy_download
    wanted = _layers(resolutions)
    todo = [(lay, r) for lay, r in wanted if not _ne_path(folder, lay, r).is_file()]
    present = len(wanted) - len(todo)
    if source is not None:
        src = Path(source).expanduser()
        if not any(_ne_path(src, "coastlines", r).is_file() for r in NE_RESOLUTIONS):
            raise NowcastError(
                f"map data {src} holds no Natural Earth coastlines (expected "
                "shapefiles/natural_earth/physical/ne_<res>_coastline.shp)"
            )
        copied = sum(_copy_layer(src, folder, lay, r) for lay, r in todo)
        _copy_gshhs(src, folder)
        return Fetched(folder, copied=copied, present=present, source=str(src))
    if not todo:
        return Fetched(folder, present=present)
    folder.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".mapdata.", dir=folder))
    try:
        for layer, res in todo:
            try:
                download(scratch, layer, res)
            except Exception as exc:  # urllib's URLError, a DNS or TLS failure, a bad zip
                reason = (
                    str(getattr(exc, "reason", "") or exc).splitlines()[0] or type(exc).__name__
                )
                raise NowcastError(
                    f"cannot download the Natural Earth layers ({reason}): copy them from an "
                    "offline folder instead, `nowcast mapdata --from DIR` (a folder holding "
                    "shapefiles/natural_earth/..., e.g. ../shared/data/maps), or point "
                    "NOWCAST_MAP_DATA at one"
                ) from None
            _copy_layer(scratch, folder, layer, res)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Fetched(folder, downloaded=len(todo), present=present)
