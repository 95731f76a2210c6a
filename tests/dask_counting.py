"""Test helper: count the Dask tasks that run while a block is active."""

from __future__ import annotations

from dask.callbacks import Callback


class TaskCounter(Callback):
    """``with TaskCounter() as c: ...`` then ``c.n`` is the number of tasks started."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def _pretask(self, key, dsk, state):
        self.n += 1
