"""Which archive steps a trained model takes, and how many input frames it needs at one.

An Eulerian model takes only its training step. A Lagrangian model (``frame: lagrangian``)
takes any step whose ratio to its training step is in :data:`STEP_RATIOS`; its inputs are
interpolated in time to its own step (:mod:`nowcast.methods.lagrangian`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from nowcast.errors import NowcastError

#: Input steps a Lagrangian model accepts, as ratios to its training step (e.g. 2.5 to
#: 15 min for a 5-minute model).
STEP_RATIOS = (0.5, 3.0)


def check_ratio(ratio: float, describe: Callable[[], str]) -> None:
    """A :class:`NowcastError` (``describe()`` says why) when ``ratio`` is out of range."""
    lo, hi = STEP_RATIOS
    if not lo - 1e-9 <= ratio <= hi + 1e-9:
        raise NowcastError(describe())


def input_frames(t_in: int, flow_frames: int, ratio: float) -> int:
    """Archive frames needed: the flow's, and enough to cover ``(t_in - 1)`` model steps."""
    return max(flow_frames, int(math.ceil((t_in - 1) / ratio - 1e-9)) + 1)
