"""The probabilistic parts of a forecast file, and how one method's are scored at one lead.

A forecast file may hold, next to the deterministic variable ``{name}``, ensemble members
``{name}_members`` ``(issue_time, realization, lead_time, y, x)``, exceedance probabilities
``{name}_probability`` ``(issue_time, threshold, lead_time, y, x)`` and quantiles
``{name}_quantiles`` ``(issue_time, quantile, lead_time, y, x)``, read by
:func:`nowcast.probabilistic.read_probabilistic`. :class:`ProbabilisticForecast`
holds them; :class:`ProbabilisticSums` accumulates one method's CRPS, probability counts
and rank histogram (:mod:`nowcast.verify.probabilistic`), choosing the source as the module
doc of :mod:`nowcast.verify.probabilistic` says: the CRPS from the members, else the
quantiles, else the deterministic forecast (its MAE); probabilities from the probability
variable at the thresholds it holds (the method's own product: a quantile model's comes
from its predictive distribution, finer than the fraction of its members), at the others
from the members, else the quantiles, else 0/1 from the deterministic forecast.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.conventions import ISSUE_TIME, LEAD_TIME, X, Y
from nowcast.distribution import QUANTILE, REALIZATION, THRESHOLD
from nowcast.errors import NowcastError
from nowcast.probabilistic import read_probabilistic
from nowcast.products import read_forecast
from nowcast.verify.probabilistic import (
    DEFAULT_PROBABILITY_BINS,
    CRPSSums,
    ProbabilityCounts,
    RankCounts,
    ensemble_levels,
    exceedance_from_members,
    exceedance_from_quantiles,
)

__all__ = [
    "ProbabilisticForecast",
    "ProbabilisticSums",
    "concat_probabilistic",
    "read_forecast_file",
]

#: Most bytes of one part read at a time (a block of leads of one issue time).
BLOCK_BYTES = 256 * 2**20

_PARTS = {"members": REALIZATION, "probability": THRESHOLD, "quantiles": QUANTILE}


@dataclass(frozen=True)
class ProbabilisticForecast:
    """The probabilistic variables of one method's forecast (any may be None)."""

    members: xr.DataArray | None = None
    probability: xr.DataArray | None = None
    quantiles: xr.DataArray | None = None
    _blocks: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for part, dim in _PARTS.items():
            da = getattr(self, part)
            if da is None:
                continue
            if ISSUE_TIME not in da.dims:
                da = da.expand_dims(ISSUE_TIME)
            if set(da.dims) != {ISSUE_TIME, dim, LEAD_TIME, Y, X}:
                raise NowcastError(
                    f"{part} must have dims (issue_time, {dim}, lead_time, y, x), got {da.dims}"
                )
            object.__setattr__(self, part, da.transpose(ISSUE_TIME, dim, LEAD_TIME, Y, X))

    def __bool__(self) -> bool:
        return any(getattr(self, p) is not None for p in _PARTS)

    @property
    def crps_source(self) -> str:
        return (
            "members"
            if self.members is not None
            else ("quantiles" if self.quantiles is not None else "deterministic")
        )

    @property
    def probability_source(self) -> str:
        for part in ("probability", "members", "quantiles"):
            if getattr(self, part) is not None:
                return part
        return "deterministic"

    @property
    def n_members(self) -> int:
        return 0 if self.members is None else int(self.members.sizes[REALIZATION])

    def parts(self) -> dict[str, xr.DataArray]:
        return {p: getattr(self, p) for p in _PARTS if getattr(self, p) is not None}

    def sel_issues(self, times) -> ProbabilisticForecast:
        """The parts at the issue times ``times`` only."""
        return replace(self, **{p: da.sel({ISSUE_TIME: times}) for p, da in self.parts().items()})

    def check_covers(self, name: str, forecast: xr.DataArray) -> None:
        """Every issue and lead time of ``forecast`` must be in each part, on its grid."""
        issues = pd.DatetimeIndex(forecast[ISSUE_TIME].values)
        for part, da in self.parts().items():
            if not issues.isin(pd.DatetimeIndex(da[ISSUE_TIME].values)).all():
                raise NowcastError(f"forecast {name!r}: its {part} lack some of its issue times")
            if not np.isin(forecast[LEAD_TIME].values, da[LEAD_TIME].values).all():
                raise NowcastError(f"forecast {name!r}: its {part} lack some of its lead times")
            if da.sizes[Y] != forecast.sizes[Y] or da.sizes[X] != forecast.sizes[X]:
                raise NowcastError(f"forecast {name!r}: its {part} are on another grid")

    def at(self, issue, lead) -> dict[str, np.ndarray]:
        """The parts' values at one issue time and lead: ``{part: (n, y, x)}``.

        Leads are read in blocks of the file's chunks along ``lead_time`` (at most
        :data:`BLOCK_BYTES`), the last block kept, so a compressed chunk of several leads
        is decompressed once, not once per lead.
        """
        out = {}
        for part, da in self.parts().items():
            i = int(pd.DatetimeIndex(da[ISSUE_TIME].values).get_loc(pd.Timestamp(issue)))
            j = int(np.flatnonzero(da[LEAD_TIME].values == lead)[0])
            size = _lead_chunk(da)
            one = da.dtype.itemsize * da.size // max(da.sizes[ISSUE_TIME] * da.sizes[LEAD_TIME], 1)
            size = max(1, min(size, BLOCK_BYTES // max(one, 1)))
            start = j - j % size
            key, block = self._blocks.get(part, (None, None))
            if key != (i, start, size):
                sel = {ISSUE_TIME: i, LEAD_TIME: slice(start, start + size)}
                block = np.asarray(da.isel(sel).values, dtype=np.float32)
                self._blocks[part] = ((i, start, size), block)
            out[part] = block[:, j - start]
        return out

    def levels(self) -> np.ndarray:
        return np.asarray(self.quantiles[QUANTILE].values, dtype=np.float64)


def read_forecast_file(path: str | os.PathLike) -> tuple[xr.DataArray, ProbabilisticForecast]:
    """A forecast file's deterministic forecast (:func:`nowcast.products.read_forecast`) and
    its members, probabilities and quantiles (:func:`nowcast.probabilistic.read_probabilistic`),
    read lazily."""
    return read_forecast(path), ProbabilisticForecast(**read_probabilistic(path))


def concat_probabilistic(parts: Sequence[ProbabilisticForecast]) -> ProbabilisticForecast:
    """Per-issue-time parts (e.g. a batch's files) joined along ``issue_time``, lazily: each
    file's part becomes Dask chunks of one issue time and its file's leads per chunk, so
    nothing is read before :meth:`ProbabilisticForecast.at`."""
    out = {}
    for part in _PARTS:
        das = [getattr(p, part) for p in parts]
        if all(da is not None for da in das) and das:
            das = [da.chunk({ISSUE_TIME: 1, LEAD_TIME: _lead_chunk(da)}) for da in das]
            out[part] = xr.concat(das, dim=ISSUE_TIME, coords="minimal", compat="override")
        elif any(da is not None for da in das):
            raise NowcastError(f"some files of one method hold {part} and some do not")
    return ProbabilisticForecast(**out)


def _lead_chunk(da: xr.DataArray) -> int:
    """Leads per chunk: Dask's, else the file's (1 when neither says)."""
    if da.chunks is not None:
        return int(da.chunksizes[LEAD_TIME][0])
    return int((da.encoding.get("preferred_chunks") or {}).get(LEAD_TIME, 1))


def valid_mask(values: dict[str, np.ndarray]) -> np.ndarray | None:
    """Pixels where every part is finite (None: no part)."""
    mask = None
    for v in values.values():
        finite = np.isfinite(v).all(axis=0)
        mask = finite if mask is None else mask & finite
    return mask


@dataclass
class ProbabilisticSums:
    """One method's probabilistic accumulators (see the module doc for the sources)."""

    crps: CRPSSums
    probs: ProbabilityCounts
    ranks: RankCounts | None
    source: ProbabilisticForecast

    @classmethod
    def zeros(
        cls,
        source: ProbabilisticForecast | None,
        n_thresholds: int,
        n_leads: int,
        n_bins: int = DEFAULT_PROBABILITY_BINS,
    ) -> ProbabilisticSums:
        source = source or ProbabilisticForecast()
        ranks = RankCounts.zeros(source.n_members, n_leads) if source.n_members else None
        return cls(
            CRPSSums.zeros(n_leads),
            ProbabilityCounts.zeros(n_thresholds, n_leads, n_bins),
            ranks,
            source,
        )

    def add(
        self,
        forecast: np.ndarray,
        values: dict[str, np.ndarray],
        obs: np.ndarray,
        valid: np.ndarray,
        thresholds: Sequence[float],
        *,
        lead: int,
        rng: np.random.Generator,
        rank_min: float | None = None,
    ) -> None:
        """Add one lead's ``(y, x)`` forecast, parts ``{part: (n, y, x)}`` (from
        :meth:`ProbabilisticForecast.at`) and observations at the ``valid`` pixels."""
        o = obs[valid].astype(np.float64)
        members = quantiles = None
        if "members" in values:
            members = np.sort(values["members"][:, valid], axis=0)
            self.crps.add_values(members, o, ensemble_levels(members.shape[0]), lead=lead)
            if self.ranks is not None:
                self.ranks.add(members, o, rng, lead=lead, min_value=rank_min)
        if "quantiles" in values:
            quantiles = values["quantiles"][:, valid]
            if members is None:
                self.crps.add_values(quantiles, o, self.source.levels(), lead=lead)
        if members is None and quantiles is None:
            self.crps.add_deterministic(forecast[valid], o, lead=lead)
        self.probs.add(
            self._probabilities(forecast, values, valid, members, quantiles, thresholds),
            o,
            thresholds,
            lead=lead,
        )

    def _probabilities(self, forecast, values, valid, members, quantiles, thresholds):
        n = int(np.count_nonzero(valid))
        probs = np.full((len(thresholds), n), np.nan)
        todo = list(range(len(thresholds)))
        if "probability" in values:
            have = np.asarray(self.source.probability[THRESHOLD].values, dtype=np.float64)
            for k in list(todo):
                match = np.flatnonzero(np.isclose(have, thresholds[k], rtol=1e-6, atol=1e-9))
                if match.size:
                    probs[k] = values["probability"][match[0]][valid]
                    todo.remove(k)
        if todo and members is not None:
            probs[todo] = exceedance_from_members(members, [thresholds[k] for k in todo])
        elif todo and quantiles is not None:
            thr = [thresholds[k] for k in todo]
            probs[todo] = exceedance_from_quantiles(quantiles, self.source.levels(), thr)
        elif todo and not self.source:
            f = forecast[valid]
            for k in todo:
                probs[k] = f >= thresholds[k]
        return probs
