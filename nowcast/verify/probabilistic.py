"""Probabilistic verification: CRPS, Brier score and skill, reliability, ROC, rank histogram.

Like :mod:`nowcast.verify.metrics`, scores come from sums accumulated per lead time over
all issue times (pooled), and every accumulator can be ``merge``\\ d with another of the
same shape (partial sums of a batch), so the in-memory and the batch paths share one core.

Definitions (``y`` the observation, ``x_(1) <= ... <= x_(M)`` the sorted members):

* **CRPS of an ensemble**: the standard (not the "fair") form, the CRPS of the ensemble's
  empirical distribution, ``mean_i |x_i - y| - 1/(2 M²) Σ_ij |x_i - x_j|`` (pySTEPS'
  ``probscores.CRPS``, Hersbach 2000, and properscoring's ``crps_ensemble``). It is
  computed from the sorted members in O(M log M) as twice the mean pinball loss at the
  levels ``(i - ½) / M``, which is this CRPS exactly. One member: the absolute error.
  ``fair=True`` (:func:`crps_ensemble` only) subtracts ``1/(2 M (M-1)) Σ_ij |x_i - x_j|``
  instead (unbiased for the CRPS of the distribution the members are drawn from).
* **CRPS from quantiles** ``q_k`` at levels ``τ_k``: ``2/K Σ_k ρ_τk(y - q_k)``, with
  ``ρ_τ(u) = u (τ - 1{u < 0})`` (the pinball loss). Since ``CRPS = 2 ∫₀¹ ρ_τ(y - F⁻¹(τ)) dτ``
  this is the midpoint rule of that integral: exact for levels ``(k - ½)/K`` of an
  ensemble, an approximation otherwise, the better the denser and more even the levels
  (levels 0.1 ... 0.9 ignore the outer tails; compare methods on the same levels).
* **CRPS of a deterministic forecast**: its absolute error (a one-member ensemble), so the
  pooled CRPS is its MAE.
* **Probabilities** ``P(value >= threshold)``: the forecast's own (its probability variable);
  else the fraction of members at or above it; or
  from quantiles, ``1 - F(t)`` with ``F`` interpolated linearly between the points
  ``(q_k, τ_k)`` (quantiles sorted first) and held at ``τ_1`` / ``τ_K`` outside them, so
  such probabilities lie in ``[1 - τ_K, 1 - τ_1]``; a deterministic forecast is a 0/1
  probability.
* **Brier score** ``BS = Σ (p - o)² / n`` (``o`` = 1 where the observation is an event);
  **Brier skill score** against the sample climatology of the same pixels,
  ``BSS = 1 - BS / (ō (1 - ō))``, ``ō`` the pooled observed frequency (NaN when ``ō`` is 0
  or 1).
* **Reliability**: probabilities fall into ``n_bins + 1`` classes: ``[k/n_bins,
  (k+1)/n_bins)`` for ``k < n_bins``, and ``p = 1`` (within 1e-6, for float32 files); per
  class the count, the events and the sum of ``p`` (its mean is the diagram's x).
* **ROC**: from those classes, the hit rate (POD) and false-alarm rate (POFD) of the
  warnings ``p >= k/n_bins`` for ``k = 0 ... n_bins``; the area is the trapezoid rule
  through them, (1, 1) and (0, 0) (pySTEPS' ``ROC_curve`` with ``n_prob_thrs = n_bins + 1``).
* **Rank histogram**: the observation's rank among the members, 0 ... M; ties are broken
  at random, uniformly among the tied positions (pySTEPS' ``rankhist`` convention), with
  a seeded generator so reports are reproducible. With ``min_value`` (pySTEPS' ``X_min``),
  pixels where the observation and every member are below it are skipped and values
  below it count as tied.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from nowcast.verify.metrics import Metric, _ratio

#: Probability classes of the reliability diagram and ROC (plus one for p = 1).
DEFAULT_PROBABILITY_BINS = 10
_EDGE_TOLERANCE = 1e-6

# --------------------------------------------------------------------------- pixel scores


def pinball_crps(values: np.ndarray, levels, obs: np.ndarray) -> np.ndarray:
    """``2/K Σ_k ρ_τk(obs - values[k])`` per pixel: ``values`` ``(K, ...)``, ``obs`` ``(...)``."""
    levels = np.asarray(levels, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    out = np.zeros(obs.shape)
    for tau, q in zip(levels, values):
        u = obs - q
        out += u * (tau - (u < 0))
    return out * (2.0 / len(levels))


def ensemble_levels(m: int) -> np.ndarray:
    """The levels ``(i - ½) / M`` at which sorted members are the ensemble's quantiles."""
    return (np.arange(m) + 0.5) / m


def crps_ensemble(members: np.ndarray, obs: np.ndarray, *, fair: bool = False) -> np.ndarray:
    """CRPS per pixel of an ensemble ``(M, ...)`` against ``obs`` ``(...)`` (module doc)."""
    x = np.sort(np.asarray(members, dtype=np.float64), axis=0)
    m = x.shape[0]
    crps = pinball_crps(x, ensemble_levels(m), obs)
    if fair:
        if m < 2:
            raise ValueError("the fair CRPS needs at least two members")
        w = (2.0 * np.arange(1, m + 1) - m - 1).reshape((m,) + (1,) * (x.ndim - 1))
        spread = 2.0 * (w * x).sum(axis=0)  # Σ_ij |x_i - x_j|
        crps -= spread / (2.0 * m * m * (m - 1))
    return crps


def crps_quantiles(quantiles: np.ndarray, levels, obs: np.ndarray) -> np.ndarray:
    """CRPS per pixel from quantile fields ``(K, ...)`` at ``levels`` (2 x mean pinball loss)."""
    return pinball_crps(np.asarray(quantiles, dtype=np.float64), levels, obs)


def exceedance_from_members(members: np.ndarray, thresholds) -> np.ndarray:
    """``P(value >= t)`` ``(T, ...)``: the fraction of members ``(M, ...)`` at or above ``t``."""
    x = np.asarray(members)
    out = np.zeros((len(thresholds),) + x.shape[1:], dtype=np.int32)
    for k, t in enumerate(thresholds):
        for member in x:  # member by member: no (M, ...) temporaries
            out[k] += member >= t
    return out / x.shape[0]


def exceedance_from_quantiles(quantiles: np.ndarray, levels, thresholds) -> np.ndarray:
    """``P(value >= t)`` ``(T, ...)`` from quantiles ``(K, ...)``: 1 - the interpolated CDF."""
    q = np.sort(np.asarray(quantiles, dtype=np.float64), axis=0)
    tau = np.asarray(levels, dtype=np.float64)
    k_max = len(tau)
    out = []
    for t in thresholds:
        k = (q < t).sum(axis=0)  # q[k-1] < t <= q[k]
        lo_i = np.clip(k - 1, 0, k_max - 1)[None]
        hi_i = np.clip(k, 0, k_max - 1)[None]
        lo = np.take_along_axis(q, lo_i, axis=0)[0]
        hi = np.take_along_axis(q, hi_i, axis=0)[0]
        span = np.where(hi > lo, hi - lo, 1.0)
        frac = np.clip((t - lo) / span, 0.0, 1.0)
        cdf = tau[lo_i[0]] + (tau[hi_i[0]] - tau[lo_i[0]]) * frac
        cdf = np.where(k == 0, tau[0], np.where(k == k_max, tau[-1], cdf))
        out.append(1.0 - cdf)
    return np.stack(out)


def observation_ranks(
    members: np.ndarray, obs: np.ndarray, rng: np.random.Generator, min_value=None
) -> np.ndarray:
    """The rank 0 ... M of each observation among its members ``(M, n)`` (module doc).

    Pixels skipped for ``min_value`` are left out of the returned ranks.
    """
    x = np.asarray(members)
    y = np.asarray(obs).astype(x.dtype)
    below = np.zeros(y.shape, dtype=np.int32)  # members < obs
    ties = np.zeros(y.shape, dtype=np.int32)  # members == obs
    for member in x:  # member by member: no (M, n) temporaries
        below += member < y
        ties += member == y
    if min_value is not None:  # values below min_value all tie (pySTEPS' X_min)
        dry_obs = y < min_value
        dry = np.zeros(y.shape, dtype=np.int32)
        wet_member = np.zeros(y.shape, dtype=bool)
        for member in x:
            dry += member < min_value
            wet_member |= member >= min_value
        below = np.where(dry_obs, 0, below)
        ties = np.where(dry_obs, dry, ties)
        keep = ~dry_obs | wet_member
        below, ties = below[keep], ties[keep]
    return below + np.floor(rng.random(below.shape) * (ties + 1)).astype(np.int64)


def probability_classes(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Class 0 ... n_bins of each probability (module doc: the last is p = 1)."""
    k = np.floor(np.asarray(p, dtype=np.float64) * n_bins + _EDGE_TOLERANCE * n_bins)
    return np.clip(k, 0, n_bins).astype(np.int64)


# --------------------------------------------------------------------------- accumulators


class _Mergeable:
    def merge(self, other) -> None:
        """Add ``other``'s sums (same shape) to these."""
        for f in fields(self):
            mine = getattr(self, f.name)
            if isinstance(mine, np.ndarray):
                mine += getattr(other, f.name)
            elif getattr(other, f.name) != mine:
                raise ValueError(f"cannot merge sums with different {f.name}")


@dataclass
class CRPSSums(_Mergeable):
    """Pooled Σ CRPS and pixel counts, per lead time."""

    n: np.ndarray
    sum_crps: np.ndarray

    @classmethod
    def zeros(cls, n_leads: int) -> CRPSSums:
        return cls(np.zeros(n_leads), np.zeros(n_leads))

    def add_values(self, values: np.ndarray, obs: np.ndarray, levels, *, lead: int) -> None:
        """Members (sorted; ``levels = ensemble_levels(M)``) or quantiles ``(K, n)``
        against ``obs`` ``(n,)``, valid pixels only."""
        if obs.size:
            self.n[lead] += obs.size
            self.sum_crps[lead] += float(pinball_crps(values, levels, obs).sum())

    def add_deterministic(self, forecast: np.ndarray, obs: np.ndarray, *, lead: int) -> None:
        if obs.size:
            self.n[lead] += obs.size
            self.sum_crps[lead] += float(np.abs(forecast.astype(np.float64) - obs).sum())


@dataclass
class ProbabilityCounts(_Mergeable):
    """Pooled Brier sums and probability-class counts per threshold (and class) and lead.

    ``sum_sq``, ``events``: ``(threshold, lead)``; ``counts``, ``class_events``,
    ``sum_p``: ``(threshold, class, lead)`` with ``n_bins + 1`` classes.
    """

    n: np.ndarray
    sum_sq: np.ndarray
    events: np.ndarray
    counts: np.ndarray
    class_events: np.ndarray
    sum_p: np.ndarray
    n_bins: int = DEFAULT_PROBABILITY_BINS

    @classmethod
    def zeros(
        cls, n_thresholds: int, n_leads: int, n_bins: int = DEFAULT_PROBABILITY_BINS
    ) -> ProbabilityCounts:
        shape = (n_thresholds, n_bins + 1, n_leads)
        return cls(
            n=np.zeros(n_leads, dtype=np.int64),
            sum_sq=np.zeros((n_thresholds, n_leads)),
            events=np.zeros((n_thresholds, n_leads), dtype=np.int64),
            counts=np.zeros(shape, dtype=np.int64),
            class_events=np.zeros(shape, dtype=np.int64),
            sum_p=np.zeros(shape),
            n_bins=n_bins,
        )

    def add(self, probs: np.ndarray, obs: np.ndarray, thresholds, *, lead: int) -> None:
        """``probs`` ``(threshold, n)`` (NaN rows: no probability at that threshold) against
        ``obs`` ``(n,)``, valid pixels only."""
        if not obs.size:
            return
        self.n[lead] += obs.size
        nb = self.n_bins + 1
        for k, thr in enumerate(thresholds):
            p = np.asarray(probs[k], dtype=np.float64)
            o = obs >= thr
            self.events[k, lead] += int(np.count_nonzero(o))
            self.sum_sq[k, lead] += float(np.einsum("i,i->", p - o, p - o))
            cls = probability_classes(p, self.n_bins) if np.isfinite(p).all() else None
            if cls is None:  # a threshold this forecast gives no probability for
                self.sum_sq[k, lead] = np.nan
                continue
            self.counts[k, :, lead] += np.bincount(cls, minlength=nb)
            self.class_events[k, :, lead] += np.bincount(cls[o], minlength=nb)
            self.sum_p[k, :, lead] += np.bincount(cls, weights=p, minlength=nb)


@dataclass
class RankCounts(_Mergeable):
    """Pooled rank-histogram counts ``(M + 1, lead)``."""

    counts: np.ndarray

    @classmethod
    def zeros(cls, n_members: int, n_leads: int) -> RankCounts:
        return cls(np.zeros((n_members + 1, n_leads), dtype=np.int64))

    def add(self, sorted_members, obs, rng, *, lead: int, min_value=None) -> None:
        ranks = observation_ranks(sorted_members, obs, rng, min_value)
        self.counts[:, lead] += np.bincount(ranks, minlength=self.counts.shape[0])


# --------------------------------------------------------------------------- metrics


def climatology_brier(c: ProbabilityCounts) -> np.ndarray:
    """``ō (1 - ō)`` per threshold and lead: the Brier score of the sample climatology."""
    obar = _ratio(c.events, np.broadcast_to(c.n, c.events.shape))
    return obar * (1.0 - obar)


def reliability(c: ProbabilityCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean forecast probability, observed frequency, count)`` per class
    ``(threshold, class, lead)``; NaN in empty classes."""
    return _ratio(c.sum_p, c.counts), _ratio(c.class_events, c.counts), c.counts


def roc_curve(c: ProbabilityCounts) -> tuple[np.ndarray, np.ndarray]:
    """``(POFD, POD)`` of the warnings ``p >= k/n_bins``, ``k = 0 ... n_bins``, shaped
    ``(threshold, k, lead)``."""
    hits = np.cumsum(c.class_events[:, ::-1], axis=1)[:, ::-1]
    warned = np.cumsum(c.counts[:, ::-1], axis=1)[:, ::-1]
    events = c.events[:, None, :]
    non_events = np.broadcast_to(c.n, c.events.shape)[:, None, :] - events
    return _ratio(warned - hits, non_events), _ratio(hits, events)


def roc_area(c: ProbabilityCounts) -> np.ndarray:
    """Area under the ROC curve (trapezoids through (1, 1), the points and (0, 0))."""
    pofd, pod = roc_curve(c)
    t, _, lead = pofd.shape
    one, zero = np.ones((t, 1, lead)), np.zeros((t, 1, lead))
    x = np.concatenate([one, pofd, zero], axis=1)
    y = np.concatenate([one, pod, zero], axis=1)
    return np.sum((x[:, :-1] - x[:, 1:]) * (y[:, :-1] + y[:, 1:]) / 2.0, axis=1)


class CRPS(Metric):
    """Continuous ranked probability score (module doc); a deterministic forecast's is its MAE."""

    name = "CRPS"
    in_data_units = True

    def compute(self, s: CRPSSums) -> np.ndarray:
        return _ratio(s.sum_crps, s.n)


class BrierScore(Metric):
    """Brier score, Σ (p - o)² / n."""

    name = "BS"

    def compute(self, c: ProbabilityCounts) -> np.ndarray:
        return _ratio(c.sum_sq, np.broadcast_to(c.n, c.sum_sq.shape))


class BrierSkillScore(Metric):
    """Brier skill score against the pooled sample climatology, 1 - BS / (ō (1 - ō))."""

    name = "BSS"

    def compute(self, c: ProbabilityCounts) -> np.ndarray:
        return 1.0 - _ratio(BrierScore().compute(c), climatology_brier(c))


class ROCArea(Metric):
    """Area under the ROC curve of the warnings p >= k / n_bins."""

    name = "ROC_area"

    def compute(self, c: ProbabilityCounts) -> np.ndarray:
        area = roc_area(c)
        return np.where(np.isfinite(c.sum_sq), area, np.nan)


CRPS_METRICS = (CRPS(),)
PROBABILITY_METRICS = (BrierScore(), BrierSkillScore(), ROCArea())
#: Score names: CRPS (no threshold), the probability scores (per threshold).
PROBABILISTIC_CONTINUOUS = tuple(m.name for m in CRPS_METRICS)
PROBABILISTIC = tuple(m.name for m in PROBABILITY_METRICS)
