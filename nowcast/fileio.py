"""Safe outputs: atomic writes, no output over an input, no silent overwrite.

Every file, store and folder nowcast writes goes through :func:`atomic_output`: it is
built under a temporary name in a private scratch folder beside the target
(``.{name}.XXXXXXXX``) and renamed into place when complete, so readers never see a partial
output; on an error or an interrupt (Ctrl-C) the scratch folder is removed and the target is
left as it was. Outputs get the user's umask like any normal file. :func:`check_output` is
the one rule for where a command may write (see its docstring and the README's "Safety").
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from nowcast.errors import NowcastError
from nowcast.interrupts import check_interrupted

#: The one Zarr layout nowcast writes (archives by ``convert``, forecasts): format 2 with
#: consolidated metadata, which xarray opens without a warning.
ZARR_OPTIONS = {"zarr_format": 2, "consolidated": True}

#: Errors that say the output cannot be written, whichever file raised them.
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _cannot_write(path: Path, exc: OSError) -> NowcastError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return NowcastError(f"cannot write {path}: {reason}")


#: Free space (bytes) below which a write that failed is taken to have filled the disk.
_NEARLY_FULL = 1 << 20


def disk_full(path: str | os.PathLike) -> bool:
    """Whether the file system of ``path`` (or of its nearest existing parent) has (almost)
    no space left for this user: what a library's unspecific write error then means."""
    missing = _missing_folders(Path(path))
    try:
        st = os.statvfs(missing[-1].parent if missing else path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _NEARLY_FULL


def _is_write_error(exc: OSError, scratch: Path, path: Path) -> bool:
    name = os.fspath(exc.filename) if exc.filename is not None else ""
    mine = name.startswith(os.fspath(scratch)) or name == os.fspath(path)
    return mine or exc.errno in _WRITE_ERRNOS


#: ``link`` errors that say this file system cannot hard-link (then an exclusive create claims).
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV}


def _exists_error(path: Path) -> NowcastError:
    return NowcastError(f"{path} exists: pass --overwrite to replace it")


def _place_new(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst`` only if nothing is at ``dst``, without a race.

    A file is hard-linked (``link`` fails when ``dst`` appeared meanwhile), or, where the
    file system has no hard links, ``dst`` is claimed with an exclusive create and replaced;
    a folder claims ``dst`` with ``mkdir`` (which fails when it exists) and is renamed onto
    its own empty claim. Two writers of the same new output: exactly one wins, the other
    gets a :class:`NowcastError` saying that ``dst`` exists.
    """
    if src.is_dir() and not src.is_symlink():
        try:
            os.mkdir(dst)
        except FileExistsError:
            raise _exists_error(dst) from None
        try:
            os.rename(src, dst)  # onto our own empty claim
        except BaseException:
            with contextlib.suppress(OSError):
                os.rmdir(dst)
            raise
        return
    try:
        os.link(src, dst)
        return
    except FileExistsError:
        raise _exists_error(dst) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    try:  # no hard links here: claim the name, then replace the claim
        os.close(os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise _exists_error(dst) from None
    try:
        os.replace(src, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(dst)
        raise


def _replace(src: Path, dst: Path, aside: Path) -> None:
    """Rename ``src`` onto ``dst``; an existing folder is moved to ``aside`` first."""
    if dst.is_dir() and not dst.is_symlink():  # a folder cannot be renamed over
        os.replace(dst, aside)
        try:
            os.replace(src, dst)
        except BaseException:
            os.replace(aside, dst)
            raise
    else:
        os.replace(src, dst)


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike, *, merge: bool = False, exclusive: bool = False
) -> Iterator[Path]:
    """Yield a temporary path to build ``path`` (a file, or a folder such as a Zarr store) at.

    The temporary path has the same name, in a scratch folder beside ``path``; it is not
    created. When the block ends, it replaces ``path`` (an existing folder is moved aside
    first and deleted only once the new output is in place); with ``merge``, a folder built
    there is moved into an existing folder ``path`` entry by entry instead (other entries
    stay). On any exception, including ``KeyboardInterrupt``, the scratch folder is removed
    and ``path`` is untouched. An ``OSError`` writing the output (read-only folder, full disk)
    becomes a :class:`NowcastError` naming ``path``. With ``exclusive`` (a command without
    ``--overwrite``) the output is placed only if nothing is at ``path`` at that moment:
    the check and the rename are one step (:func:`_place_new`), so of two writers started
    together exactly one wins and the other gets ``PATH exists``. Folders above ``path``
    that did not exist are created, and removed again when nothing was placed; a leading
    ``~`` is the home folder (as for inputs).
    """
    path = Path(path).expanduser()
    check_interrupted()  # a Ctrl-C a library swallowed: no new output
    created = _missing_folders(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        _remove_empty(created)
        raise _cannot_write(path, exc) from None
    failed = True
    try:
        tmp = scratch / path.name
        try:
            yield tmp
            check_interrupted()  # not placed when a Ctrl-C came (and was swallowed) meanwhile
            if exclusive:
                _place_new(tmp, path)
            elif merge and path.is_dir() and tmp.is_dir():
                for i, entry in enumerate(sorted(tmp.iterdir())):
                    _replace(entry, path / entry.name, scratch / f"previous-{i}")
            else:
                _replace(tmp, path, scratch / "previous")
        except OSError as exc:
            if not _is_write_error(exc, scratch, path):  # e.g. an input that failed to read
                raise
            raise _cannot_write(path, exc) from None
        except (RuntimeError, ValueError) as exc:  # a library's own error for a full disk
            if not disk_full(scratch):  # (netCDF4: "RuntimeError: NetCDF: HDF error")
                raise
            raise _cannot_write(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) from exc
        failed = False
    finally:
        if failed:  # chunk writes still in flight would recreate what is removed
            settle_zarr_writes()
        shutil.rmtree(scratch, ignore_errors=True)
        if failed:
            _remove_empty(created)


def _missing_folders(folder: Path) -> list[Path]:
    """The folders of ``folder``'s chain (itself included) that do not exist, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) where they are empty; others stay."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def settle_zarr_writes(timeout: float = 10.0) -> None:
    """Wait (at most ``timeout`` s) for the chunk writes still in Zarr's IO loop: when one
    chunk fails (a full disk) the others go on and would write into a removed temporary
    output, and report "Task exception was never retrieved" at exit (collected here)."""
    sync = sys.modules.get("zarr.core.sync")
    loop = getattr(sync, "loop", [None])[0] if sync is not None else None
    if loop is None or not loop.is_running():
        return

    async def pending() -> None:
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: not reported at exit

    import asyncio

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(pending(), loop).result(timeout + 1.0)


@contextlib.contextmanager
def folder_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the folder to fill with a command's own files (maps, series).

    A folder that does not exist yet is built under a temporary name and appears in one
    step when the block ends (nothing of it on an error or a Ctrl-C); into an existing
    folder each file is written in place, atomically, and other files stay. Map what the
    block wrote back with ``path / written.relative_to(yielded)``.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        yield path
        return
    with atomic_output(path, merge=True) as tmp:
        tmp.mkdir()
        yield tmp


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` so readers never see a partial file."""
    path = Path(path).expanduser()
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def remove_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove what an interrupted :func:`atomic_output` for ``path`` left beside it.

    Only for outputs no other process is writing (e.g. after a batch's workers were
    stopped); returns what was removed.
    """
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        return []
    removed = []
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def _is_within(inner: str, outer: str) -> bool:
    return inner != outer and inner.startswith(outer.rstrip(os.sep) + os.sep)


def _local(entry) -> str | None:
    """``entry`` as an absolute real local path, or None for a URL other than ``file://``."""
    text = os.fspath(entry) if isinstance(entry, os.PathLike) else str(entry)
    if "://" in text:
        if not text.startswith("file://"):
            return None
        text = text[len("file://") :]
    return os.path.realpath(os.path.expanduser(text))


def check_output(
    output: str | os.PathLike,
    inputs: Iterable[str | os.PathLike] = (),
    *,
    overwrite: bool = True,
    replaces: bool = True,
    option: str = "--output",
) -> None:
    """Refuse to write ``output`` where it would destroy or change an input.

    ``inputs`` are what the command reads (files, folders, Zarr stores; globs already
    expanded; URLs other than ``file://`` are skipped). Refused, with one line: ``output``
    is an input (the same file or folder, also through links), or lies inside an input
    folder or store; with ``replaces`` (the output replaces whatever is at its path: a file
    or store) also an output folder that holds an input. With ``overwrite=False`` an
    existing ``output`` is refused too (the command's ``--overwrite`` allows it); with
    ``overwrite`` and ``replaces``, an existing ``output`` is replaced only when it is a
    previous output of the same kind: a Zarr store for a ``.zarr`` output, a NetCDF file
    otherwise (never a plain folder or another file, which may be the user's).
    """
    out = _local(output)
    if out is None:
        return
    sources = [(entry, src) for entry in inputs if (src := _local(entry)) and os.path.exists(src)]
    exists = os.path.exists(out)
    for entry, src in sources:
        if out == src or (exists and os.path.samefile(out, src)):
            raise NowcastError(f"{option} {output} is the input {entry}: choose another output")
    for entry, src in sources:
        if _is_within(out, src):
            raise NowcastError(
                f"{option} {output} is inside the input {entry}: choose an output outside it"
            )
        if replaces and _is_within(src, out):
            raise NowcastError(f"{option} {output} holds the input {entry}: choose another output")
    if not os.path.lexists(out):
        return
    if not overwrite:
        raise NowcastError(f"{output} exists: pass --overwrite to replace it")
    if replaces:
        want = "a Zarr store" if _wants_zarr(output) else "a NetCDF file"
        found = _output_format(out)
        if found != want:
            raise NowcastError(
                f"{option} {output} is {found}, not {want}: --overwrite replaces only a "
                "previous output of that kind; choose another output"
            )


#: The files that make a folder a Zarr store (format 2: group, array, consolidated; format 3).
_ZARR_MARKERS = (".zgroup", ".zarray", ".zmetadata", "zarr.json")
#: The first bytes of a NetCDF file: classic/64-bit (CDF) or NetCDF-4 (HDF5).
_NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")


def _wants_zarr(output) -> bool:
    text = os.fspath(output) if isinstance(output, os.PathLike) else str(output)
    return text.rstrip("/").endswith(".zarr")


def _output_format(path: str) -> str:
    """What is at ``path``, in words: a Zarr store, a NetCDF file, or something else."""
    if os.path.isdir(path):
        if any(os.path.isfile(os.path.join(path, m)) for m in _ZARR_MARKERS):
            return "a Zarr store"
        return "a folder (not a Zarr store)"
    if not os.path.isfile(path):
        return "not a regular file"
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if any(head.startswith(magic) for magic in _NETCDF_MAGIC):
        return "a NetCDF file"
    return "a file that is not NetCDF"
