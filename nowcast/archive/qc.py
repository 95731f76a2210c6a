"""Input quality control: a plausible range for rain, the same for every command and method.

A radar archive can hold clutter (a few pixels of 1e6 mm/h) that every method would
otherwise spread. When an archive is read as precipitation (:func:`nowcast.archive.reader.
open_archive`), rates above the plausible maximum (:data:`DEFAULT_MAX_RAIN` mm/h, or
``NOWCAST_MAX_RAIN``, or ``nowcast --max-rain``; ``inf`` turns the check off) become NaN
(missing) and negative rates become 0, frame by frame as they are read. Each frame's counts
are kept (once per frame and region, however often it is read) so that a command can say in
one line how many values it masked: :func:`take_report`.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np

from nowcast.errors import DataError

#: The largest plausible rain rate (mm h-1): above the heaviest rain rates measured
#: (~300 mm/h over 5-10 min), far below clutter and artefacts (1e3-1e6 mm/h).
DEFAULT_MAX_RAIN = 500.0
#: The environment variable that sets it (``nowcast --max-rain`` sets it for the command).
MAX_RAIN_VARIABLE = "NOWCAST_MAX_RAIN"

_lock = threading.Lock()
_seen: dict[tuple, tuple[int, int]] = {}


def max_rain() -> float:
    """The plausible maximum rain rate in mm h-1 (``NOWCAST_MAX_RAIN``, else the default)."""
    text = os.environ.get(MAX_RAIN_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_RAIN
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:  # also NaN
        raise DataError(
            f"{MAX_RAIN_VARIABLE}={text!r}: the plausible maximum rain rate must be a positive "
            "number of mm/h (inf: no maximum)"
        )
    return value


def check_rain(block: np.ndarray, key: tuple, limit: float | None = None) -> np.ndarray:
    """Mask rates above the plausible maximum (NaN) and set negative ones to 0, in place;
    the counts are recorded under ``key`` (a frame and region). Returns ``block``."""
    limit = max_rain() if limit is None else limit
    with np.errstate(invalid="ignore"):
        high = block > limit
        negative = block < 0
    n_high, n_negative = int(high.sum()), int(negative.sum())
    if n_high:
        block[high] = np.nan
    if n_negative:
        block[negative] = 0.0
    if n_high or n_negative:
        with _lock:
            _seen[key] = (n_high, n_negative)
    return block


def take_counts() -> tuple[int, int]:
    """(values above the maximum, negative values) in the frames read since the last call;
    forgets them."""
    with _lock:
        n_high = sum(v[0] for v in _seen.values())
        n_negative = sum(v[1] for v in _seen.values())
        _seen.clear()
    return n_high, n_negative


def masked() -> dict[tuple, int]:
    """The values masked so far by frame and region (a batch worker sends them to the
    client, which counts each frame once)."""
    with _lock:
        return {key: v[0] for key, v in _seen.items() if v[0]}


def take_report() -> str | None:
    """One line about the implausible values read since the last call (None: none), and
    forget them. Negative rates (e.g. packed -0.1 mm values) are set to 0 without a word
    here; ``nowcast info`` reports them."""
    return report(take_counts()[0])


def report(n_high: int) -> str | None:
    """The warning about ``n_high`` masked values (None for none)."""
    if not n_high:
        return None
    return (
        f"{n_high} input value(s) above the plausible maximum of {max_rain():g} mm/h (radar "
        f"clutter?) were masked as missing; set it with nowcast --max-rain or "
        f"{MAX_RAIN_VARIABLE}"
    )


def describe_counts(n_high: int, n_negative: int) -> str:
    """What ``nowcast info`` says about an archive's implausible values."""
    return (
        f"{n_high} above {max_rain():g} mm/h (masked as missing), {n_negative} negative (set to 0)"
    )
