"""Where a training batch is made: a planned sample -> its window -> ``(x, y, mask)``.

The route of one batch, whichever loader reads it:

1. :meth:`nowcast.trainset.sampler.WindowSampler.batch` plans the batch's samples
   (:class:`~nowcast.trainset.sampler.Sample`: event, first frame, crop, augmentation); no I/O.
2. The loader reads each sample's window ``(t_in + t_out, P, P)``: from the archives through
   the in-memory frame cache (:class:`nowcast.trainset.dataset.SequenceDataset`), or from a
   prepared store, one read per window (:class:`nowcast.trainset.streaming.PreparedDataset`,
   :meth:`nowcast.trainset.prepared.PreparedStore.read`), and normalises it
   (:class:`~nowcast.trainset.preprocess.Preprocessor`).
3. Here: :func:`augment_window` turns and flips it, :func:`mark_window` sets its missing
   values to the fill value and records where it was valid, and :func:`gather_batch`
   stacks the windows into ``x`` ``(B, t_in, P, P, 1)``, ``y`` ``(B, t_out, P, P, 1)`` and
   ``mask`` (``y``'s shape, 1 where the truth is valid; Keras' ``sample_weight``), float32.
   NaN never reaches ``x``/``y``.
"""

from __future__ import annotations

import numpy as np


def augment_window(window: np.ndarray, rot: int, flip: bool) -> np.ndarray:
    """Rotate ``rot`` quarter turns and optionally flip the last two axes (y, x) of ``window``."""
    if rot:
        window = np.rot90(window, k=rot, axes=(-2, -1))
    if flip:
        window = window[..., ::-1]
    return window


def mark_window(window: np.ndarray, fill_value: float, *, valid: np.ndarray | None = None):
    """Set every non-finite value (NaN, +-inf) of ``window`` to ``fill_value`` in place and
    return where it was finite (bool, ``window``'s shape; written into ``valid`` if given)."""
    valid = np.isfinite(window, out=valid)
    np.copyto(window, np.float32(fill_value), where=~valid)
    return valid


def gather_batch(
    windows: list[np.ndarray], valids: list[np.ndarray], t_in: int, *, all_frames_valid=False
):
    """Marked ``(t_in + t_out, P, P)`` windows (:func:`mark_window`) -> ``(x, y, mask)``.

    ``mask`` is 1 where the truth is valid: per target frame, or, with ``all_frames_valid``
    (the Lagrangian frame), where every frame of the window is.
    """
    length, py, px = windows[0].shape
    n, t_out = len(windows), length - t_in
    # filled through flat (n, t, py * px) views: NumPy copies a trailing axis of 1 slowly
    x = np.empty((n, t_in, py, px, 1), dtype=np.float32)
    y = np.empty((n, t_out, py, px, 1), dtype=np.float32)
    mask = np.empty_like(y)
    xs, ys, ms = (a.reshape(n, -1, py * px) for a in (x, y, mask))
    for i, (window, valid) in enumerate(zip(windows, valids, strict=True)):
        flat = window.reshape(length, py * px)
        xs[i] = flat[:t_in]
        ys[i] = flat[t_in:]
        valid = valid.reshape(length, py * px)
        ms[i] = valid.all(axis=0) if all_frames_valid else valid[t_in:]
    return x, y, mask
