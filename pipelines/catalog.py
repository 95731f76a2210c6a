"""What a batch can read: the archive's usable files and times, and unreadable files.

:func:`build_catalog` opens the archive once on the client (metadata only). When
:func:`nowcast.archive.open_archive` rejects the whole archive because of a broken file (a
truncated file fails when it is opened, before any pixel is read), each file is opened
on its own: the readable files form the archive the workers use, and every unreadable
file is kept with its one-line error and the time gap it probably filled (between its
readable neighbours in name order, for archives of one file per time). An issue time
whose input frames fall into such a gap then fails with that file's error, and only
those issue times fail.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nowcast.archive import expand_paths, open_archive
from nowcast.archive.timeaxis import issue_range
from nowcast.errors import DataError, one_line


@dataclass(frozen=True)
class BadFile:
    """A file that cannot be opened, and the open interval of times it probably holds."""

    path: str
    error: str
    after: pd.Timestamp | None  # last time of the previous readable file (None: none before)
    before: pd.Timestamp | None  # first time of the next readable file (None: none after)

    def may_hold(self, t: pd.Timestamp) -> bool:
        return (self.after is None or t > self.after) and (self.before is None or t < self.before)


@dataclass(frozen=True)
class Catalog:
    """The readable files (``sources``) with their stat stamps, the archive's times and step."""

    sources: tuple[str, ...]
    stamps: tuple[tuple[int, int], ...]
    times: pd.DatetimeIndex
    step: pd.Timedelta
    bad_files: tuple[BadFile, ...] = ()

    def missing_frame_error(
        self, issue: pd.Timestamp, needed: Sequence[pd.Timestamp]
    ) -> str | None:
        """The one-line error for an issue time with frames in an unreadable file, else None."""
        if not self.bad_files:
            return None
        present = self.times
        for t in needed:
            if t in present:
                continue
            for bad in self.bad_files:
                if bad.may_hold(t):
                    return f"input frame {t} is in an unreadable file: {bad.error}"
        return None


def file_stamps(paths: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """``(mtime_ns, size)`` per file: part of each worker's archive cache key."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append((st.st_mtime_ns, st.st_size))
    return tuple(out)


def _times_and_step(archive) -> tuple[pd.DatetimeIndex, pd.Timedelta]:
    times = pd.DatetimeIndex(archive["time"].values)
    if len(times) < 2:
        raise DataError("the archive holds fewer than two frames; a batch needs the time step")
    diffs = pd.Series(np.diff(times.values)).value_counts()
    return times, pd.Timedelta(diffs.index[0])


def build_catalog(inputs: Sequence[str], *, variable: str | None, kind: str) -> Catalog:
    """Scan the archive named by ``inputs`` (files, folders, globs) on the client.

    Raises :class:`DataError` when nothing usable is left (one broken file that is the
    whole archive, no readable file, or readable files that do not fit together).
    """
    files = [str(p) for p in expand_paths(list(inputs))]
    try:
        archive = open_archive(files, variable=variable, kind=kind)
    except DataError:
        if len(files) == 1:
            raise
        archive = None
    if archive is not None:
        times, step = _times_and_step(archive)
        return Catalog(tuple(files), file_stamps(files), times, step)

    good: list[tuple[int, str, pd.DatetimeIndex]] = []
    bad: list[tuple[int, str, str]] = []
    for i, path in enumerate(files):
        try:
            one = open_archive([path], variable=variable, kind=kind)
        except DataError as exc:
            bad.append((i, path, one_line(exc)))
            continue
        good.append((i, path, pd.DatetimeIndex(one["time"].values)))
    if not good:
        raise DataError(f"no readable file in the archive (first error: {bad[0][2]})")
    sources = [p for _, p, _ in good]
    archive = open_archive(
        sources, variable=variable, kind=kind
    )  # grid/units mismatches raise here
    times, step = _times_and_step(archive)
    bad_files = []
    for i, path, error in bad:
        prev = [t for j, _, t in good if j < i]
        nxt = [t for j, _, t in good if j > i]
        bad_files.append(
            BadFile(
                path=path,
                error=error,
                after=prev[-1].max() if prev else None,
                before=nxt[0].min() if nxt else None,
            )
        )
    return Catalog(tuple(sources), file_stamps(sources), times, step, tuple(bad_files))


def issue_times(
    catalog: Catalog,
    *,
    start: str | None,
    end: str | None,
    every: str | None,
    t_in: int,
) -> pd.DatetimeIndex:
    """The batch's issue times: ``start`` to ``end`` (inclusive) every ``every``.

    Defaults: ``start`` = the first archive time with ``t_in`` frames before it (by the
    archive's step), ``end`` = the last archive time, ``every`` = the archive's step.
    """
    return issue_range(
        catalog.times, start=start, end=end, every=every, t_in=t_in, step=catalog.step
    )
