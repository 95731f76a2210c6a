"""The training windows both loader benchmarks draw (``bench_loader``, ``bench_stream``).

Batches of ``BATCH`` windows of ``T_IN + T_OUT`` frames x ``PATCH`` x ``PATCH`` pixels from
the six shared 5-minute radar ``EVENTS`` (KNMI, MCH x2, FMI x2, RMI), and xbatcher's
``BatchGenerator`` windows over the same arrays (:func:`xbatcher_batches`).
"""

from __future__ import annotations

from harness import SHARED

DATA = SHARED / "radar"
EVENTS = [
    "knmi-2010-08-26.nc",
    "mch-2015-05-15.nc",
    "mch-2016-07-11.nc",
    "fmi-2016-09-28.nc",
    "fmi-2017-05-09.nc",
    "rmi-2021-07-04.nc",
]
VARIABLE = "precipitation_rate"
T_IN, T_OUT, PATCH, BATCH = 6, 12, 128, 16


def xbatcher_batches(arrays, encode=None):
    """``(next_batch, windows)``: ``next_batch()`` stacks the next ``BATCH`` xbatcher windows
    (``T_IN + T_OUT`` frames of ``PATCH x PATCH``, stride one frame) of each array in turn
    and returns their number; ``windows``: the windows of one pass over all arrays.
    ``encode``: called on each batch's list of windows (e.g. to make training batches)."""
    import numpy as np
    import xbatcher

    gens = [
        xbatcher.BatchGenerator(
            da,
            input_dims={"time": T_IN + T_OUT, "y": PATCH, "x": PATCH},
            input_overlap={"time": T_IN + T_OUT - 1},
        )
        for da in arrays
    ]
    iters = [iter(g) for g in gens]
    state = {"k": 0}

    def window(e):
        try:
            return next(iters[e])
        except StopIteration:
            iters[e] = iter(gens[e])
            return next(iters[e])

    def next_batch() -> int:
        e = state["k"] % len(gens)
        state["k"] += 1
        windows = [np.asarray(window(e).values) for _ in range(BATCH)]
        if encode is not None:
            x, y, mask = encode(windows)
            assert x.shape == (BATCH, T_IN, PATCH, PATCH, 1) and mask.shape == y.shape
            return BATCH
        batch = np.stack(windows)
        assert batch.shape == (BATCH, T_IN + T_OUT, PATCH, PATCH)
        return BATCH

    return next_batch, sum(len(g) for g in gens)
