"""A quantile model's calibration: the probabilities its levels' values really have, per lead.

A quantile model trained on the pinball loss predicts values at levels ``tau_1 < ... < tau_K``;
on data it was not fitted to, the value it gives for ``tau_k`` at lead ``j`` is exceeded
less or more often than ``1 - tau_k`` (the shipped radar model's spread is too narrow at
long leads: its 98 % value holds 92 % of the observations at 60 minutes).
``calibration.json`` in the model's run directory stores, per model step ``s = 1 .. S``,
the coverage ``G_s(tau_k)``: the fraction of observations whose randomised probability
integral transform (PIT) is at most ``tau_k`` (:mod:`nowcast.verify.calibration`
computes it). Forecasting then takes the level of the ``k``-th value at lead ``j`` to be
``G(tau_k)`` (a recalibration of the levels, Kuleshov et al. 2018), so every product
(quantiles, exceedance probabilities, members) is read off the recalibrated distribution.

``anchor: median`` (the default) keeps each lead's median where the network puts it and
recalibrates only the spread: the scores ``Phi^-1(G(tau_k))`` are shifted so that level 0.5
stays at score 0. The centre's error is the part that changes most from event to event (on
the held-out MeteoSwiss event the network's median is too low where on the calibration
events it is too high), the widening of the spread with lead is common to them; ``none``
uses the coverage as measured.

File contents: ``levels`` (K), ``step_seconds`` (the model's step), ``coverage``
(``S x K``, increasing along each row), ``anchor``, ``source`` (what it was computed on,
free form).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from nowcast.errors import NowcastError
from nowcast.fileio import atomic_output

#: The calibration's file in a model's run directory.
CALIBRATION_FILE = "calibration.json"
#: How the measured coverage is used (module doc).
ANCHORS = ("median", "none")
#: Smallest gap kept between the coverages of neighbouring levels (knots stay increasing).
MIN_GAP = 1e-3


@dataclass(frozen=True)
class Calibration:
    """Coverage ``(S, K)`` of ``levels`` at model steps ``1 .. S`` of ``step_seconds``."""

    levels: tuple[float, ...]
    step_seconds: float
    coverage: np.ndarray
    source: dict[str, Any] = field(default_factory=dict)
    anchor: str = "median"

    def __post_init__(self) -> None:
        cov = np.asarray(self.coverage, dtype=float)
        if cov.ndim != 2 or cov.shape[1] != len(self.levels) or cov.shape[0] < 1:
            raise NowcastError(
                f"calibration: coverage must be steps x {len(self.levels)} levels, not {cov.shape}"
            )
        object.__setattr__(self, "coverage", increasing(cov))
        if self.anchor not in ANCHORS:
            raise NowcastError(
                f"calibration: unknown anchor {self.anchor!r}; valid: {', '.join(ANCHORS)}"
            )

    def at_leads(self, ratio: float, n_leads: int) -> np.ndarray:
        """``(n_leads, K)`` the levels' probabilities at leads ``1 .. n_leads`` of ``ratio``
        model steps each: the coverage, linear between model steps, the first step's before
        it, the last step's after; shifted in score to keep the median (``anchor``)."""
        steps = np.arange(1, len(self.coverage) + 1, dtype=float)
        at = ratio * np.arange(1, n_leads + 1, dtype=float)
        cols = [np.interp(at, steps, self.coverage[:, k]) for k in range(len(self.levels))]
        cov = increasing(np.stack(cols, axis=-1))
        if self.anchor == "median":
            scores = ndtri(cov)
            nominal = ndtri(np.asarray(self.levels, dtype=float))
            centre = np.array([np.interp(0.0, nominal, row) for row in scores])
            cov = increasing(ndtr(scores - centre[:, None]))
        return cov

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": list(self.levels),
            "step_seconds": self.step_seconds,
            "coverage": np.round(self.coverage, 6).tolist(),
            "anchor": self.anchor,
            "source": self.source,
        }


def increasing(coverage: np.ndarray) -> np.ndarray:
    """``coverage`` ``(..., K)`` made strictly increasing along K within ``(0, 1)``."""
    cov = np.clip(np.asarray(coverage, dtype=float), MIN_GAP, 1.0 - MIN_GAP)
    k = np.arange(cov.shape[-1])
    cov = np.maximum.accumulate(cov - k * MIN_GAP, axis=-1) + k * MIN_GAP
    return np.minimum(cov, 1.0 - MIN_GAP * (cov.shape[-1] - k))


def read_calibration(model_dir: str | Path, levels: tuple[float, ...]) -> Calibration | None:
    """The run directory's calibration, ``None`` without one; an error for one that does not
    fit the model's ``levels``."""
    path = Path(model_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        cal = Calibration(
            levels=tuple(float(q) for q in data["levels"]),
            step_seconds=float(data["step_seconds"]),
            coverage=np.asarray(data["coverage"], dtype=float),
            source=dict(data.get("source") or {}),
            anchor=str(data.get("anchor", "median")),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NowcastError(f"{path}: not a calibration file ({exc})") from None
    if len(cal.levels) != len(levels) or not np.allclose(cal.levels, levels):
        raise NowcastError(
            f"{path}: its levels {list(cal.levels)} are not the model's {list(levels)}"
        )
    return cal


def write_calibration(model_dir: str | Path, calibration: Calibration) -> Path:
    """Write ``calibration.json`` into ``model_dir`` (atomically, replacing an older one)."""
    path = Path(model_dir) / CALIBRATION_FILE
    if path.exists() and not path.is_file():  # never replace a folder or a device
        raise NowcastError(f"{path} exists and is not a calibration file: move it away first")
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(calibration.to_dict(), indent=1) + "\n")
    return path
