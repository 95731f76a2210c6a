"""Ctrl-C in a command: remembered, held over a write, ignored by worker processes.

:func:`catch_interrupts` (the CLI calls it first) remembers every Ctrl-C, also one a library
swallows; :func:`check_interrupted` raises it again (:func:`nowcast.fileio.atomic_output`
calls it before and after each output); :func:`interrupts_held` holds it over a write that
must not stop halfway; :func:`children_ignore_interrupts` and :func:`start_workers` keep it
from worker processes, whose parent stops them.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

#: Set by :func:`_on_sigint` (installed by :func:`catch_interrupts`): a Ctrl-C was received.
_interrupted = threading.Event()


def _on_sigint(signum, frame) -> None:
    """Ctrl-C: remembered, then raised as ``KeyboardInterrupt`` (as Python's own handler)."""
    _interrupted.set()
    raise KeyboardInterrupt


def catch_interrupts() -> None:
    """Remember every Ctrl-C of this command (the CLI calls it first).

    Python raises ``KeyboardInterrupt`` in whatever code runs when the signal arrives; in
    a finaliser or a garbage-collection callback (Matplotlib's, PIL's, a library's
    ``__del__``) it is printed as "Exception ignored" and lost, and the command would go
    on. Remembered, it is raised again at the next output (:func:`check_interrupted`, in
    :func:`atomic_output`) and when the command ends. Only where Ctrl-C raises
    ``KeyboardInterrupt`` now (not where it is ignored, as in batch workers)."""
    _interrupted.clear()
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        signal.signal(signal.SIGINT, _on_sigint)
        if not getattr(sys.unraisablehook, "_nowcast", False):
            sys.unraisablehook = _quiet_about_interrupts(sys.unraisablehook)


def _quiet_about_interrupts(hook):
    """``sys.unraisablehook`` without the "Exception ignored ... KeyboardInterrupt" traceback
    of a Ctrl-C raised in a finaliser: it is remembered and ends the command anyway."""

    def quiet(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _interrupted.is_set():
            return
        hook(unraisable)

    quiet._nowcast = True
    return quiet


def interrupted() -> bool:
    """Whether a Ctrl-C was received since :func:`catch_interrupts`."""
    return _interrupted.is_set()


def check_interrupted() -> None:
    """``KeyboardInterrupt`` when a Ctrl-C was received (and perhaps swallowed) earlier."""
    if _interrupted.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def children_ignore_interrupts() -> Iterator[None]:
    """Worker processes started in this block ignore Ctrl-C (an ignored SIGINT stays ignored
    in a child, also one started with ``spawn``): the Ctrl-C is this process's, which stops
    its pool, instead of every worker printing a ``KeyboardInterrupt`` traceback. This
    process ignores it meanwhile (a Ctrl-C then is lost: keep the block to the start of
    the workers). Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def start_workers(pool, n: int) -> None:
    """Start the ``n`` processes of a ``ProcessPoolExecutor`` now, ignoring Ctrl-C
    (:func:`children_ignore_interrupts`); ``spawn`` pools start them one per task."""
    with children_ignore_interrupts():  # only while they are started, not while they load
        futures = [pool.submit(int) for _ in range(n)]
    for future in futures:
        future.result()


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, then raise ``KeyboardInterrupt``.

    For a write that must not be interrupted halfway: a ``KeyboardInterrupt`` raised inside
    xarray's NetCDF writer can leave its file lock held, and the writer (and its cleanup)
    then waits for that lock forever. The block runs to its end (a forecast in memory is
    written in seconds), then the interrupt is raised as if it came at that point, so the
    caller's :func:`atomic_output` removes the temporary. Only in the main thread and only
    where Ctrl-C raises ``KeyboardInterrupt`` (elsewhere, e.g. in batch workers that ignore
    it, the block just runs).
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(
        signal.SIGINT
    ) not in (signal.default_int_handler, _on_sigint):
        yield
        return
    received: list[int] = []

    def hold(signum, frame) -> None:
        _interrupted.set()
        received.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
