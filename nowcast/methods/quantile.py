"""The predictive distribution of a quantile model, and its ensemble members (a Gaussian copula).

A quantile model (``model.quantiles``, :mod:`nowcast.model.quantiles`) gives, per pixel and
lead, the network values ``v_1 < ... < v_K`` (normalised) at levels ``q_1 < ... < q_K``.
:class:`QuantileDistribution` reads every product off them (the contract is
:mod:`nowcast.distribution`):

* the **quantile function** of a pixel is piecewise linear in the standard-normal score
  ``z = Phi^-1(u)`` through the knots ``(Phi^-1(q_k), v_k)`` (the knots of each lead move to
  the levels' calibrated probabilities when the model has a calibration), constant below
  the first knot (levels below ``q_1`` take ``v_1``) and, above the last knot, its last
  segment continued up to a ceiling (the upper tail: the local maximum of the inputs, so
  heavy rain keeps a probability where ``v_K`` falls short of it), then decoded to physical
  units (rain clipped at 0: a zero-inflated distribution). Quantiles at any level,
  exceedance probabilities (the same function inverted: ``P = 1`` at or below ``v_1``,
  ``0`` above the ceiling) and members all use it.
* **members** (a Gaussian copula with equidistant quantiles, ECC-Q, Schefzik et al. 2013):
  the template is ``M`` standard-normal fields ``z_m,j`` with a power-law spectrum fitted to
  the last observed frame (FFT-filtered noise, as STEPS' parametric noise) evolved from
  lead to lead as AR(1), ``z_j = rho z_{j-1} + sqrt(1 - rho^2) e_j``. At each pixel and lead
  the ``M`` members are the quantile function at the levels ``(k - 0.5) / M``, ``k = 1 ..
  M``, given to the members in the order of their ``z`` there (:func:`ranked_scores`): the
  member with the highest noise gets the highest level. The fields are made in the frame
  where the network works (the Lagrangian frame for a Lagrangian model) and moved forward
  with the forecast's own displacements (``finish``), so the noise moves with the rain.
  Each pixel's members are its predicted distribution's quantiles, whatever ``rho`` and the
  spectrum (the copula shapes the members' coherence, not their calibration); unlike
  independent draws they carry no sampling noise, so the ensemble's CRPS is the
  distribution's without the ``E|X - X'| / 2M`` penalty of ``M`` random draws. One member is
  the median.
  Cost: no network pass and no flow computation per member, one noise field and one warp
  per member and lead.
* **sharp**: the distribution's mean pattern (the mean of the quantile function at
  :data:`SHARP_DRAWS` evenly spaced levels) with the value distribution of the last
  observed frame (probability matching, as pySTEPS' S-PROG and STEPS match theirs): it
  keeps the rain area and the heavy rain of the issue time at every lead, where the
  median and the mean smooth them away. The predictive distribution's own pool is not
  used: the network learned the average decay of its training events, and on held-out
  events whose rain grew the pooled distribution lost heavy rain with lead (docs/skill.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr
from scipy.special import ndtr, ndtri

from nowcast.distribution import (
    MEMBERS_KIND,
    QUANTILE,
    REALIZATION,
    THRESHOLD,
    check_levels,
    check_thresholds,
    match_values,
    probability_attrs,
    quantile_coord,
    realization_coord,
    stacked,
    threshold_coord,
)
from nowcast.errors import NowcastError

#: How the members were made: their :data:`~nowcast.distribution.MEMBERS_KIND` (``nowcast
#: info`` shows it) and CF ``comment``.
MEMBERS_ATTRS = {
    MEMBERS_KIND: "equidistant quantiles",
    "comment": "each pixel's N members are its predictive distribution's quantiles at levels "
    "(k - 0.5) / N, ordered by correlated noise (ensemble copula coupling, ECC-Q)",
}
#: Evenly spaced levels per pixel whose mean is the sharp product's pattern.
SHARP_DRAWS = 10


def quantile_function(
    knots: np.ndarray, values: np.ndarray, z: np.ndarray, ceiling: np.ndarray | None = None
) -> np.ndarray:
    """``values`` ``(..., K)`` at the standard-normal scores ``z`` (broadcast against
    ``values[..., 0]``, e.g. ``(members, y, x)`` against ``(1, y, x, K)``): piecewise linear
    through ``(knots, values)``, constant below the first knot; above the last knot constant
    too, or, given a ``ceiling`` (broadcast likewise), the last segment continued up to
    it (the upper tail, :func:`tail_slope`); in ``values``' dtype."""
    knots = np.asarray(knots, dtype=values.dtype)
    n_knots = len(knots)
    shape = np.broadcast_shapes(np.shape(z), values.shape[:-1])
    z = np.broadcast_to(np.asarray(z, dtype=values.dtype), shape)
    inner = np.clip(z, knots[0], knots[-1])
    k = np.clip(np.searchsorted(knots, inner, side="right") - 1, 0, n_knots - 2)
    # each pixel's knot values gathered by flat index (faster than take_along_axis)
    flat = np.ascontiguousarray(values).reshape(-1)
    first = np.arange(flat.size // n_knots, dtype=np.intp).reshape(values.shape[:-1]) * n_knots
    at = first + k
    lo, hi = flat[at], flat[at + 1]
    w = (inner - knots[k]) / (knots[k + 1] - knots[k])
    out = (lo + w * (hi - lo)).astype(values.dtype, copy=False)
    if ceiling is None:
        return out
    above = np.nonzero(z > knots[-1])  # the tail, computed where it is reached only
    last = np.broadcast_to(first, shape)[above] + n_knots - 1
    ends = np.stack([flat[last - 1], flat[last]], axis=-1)
    tail = ends[:, 1] + tail_slope(knots, ends) * (z[above] - knots[-1])
    tail = np.minimum(tail, np.broadcast_to(ceiling, shape)[above])
    out[above] = np.maximum(tail, ends[:, 1])
    return out


def tail_slope(knots: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The upper tail's slope per pixel: that of the last segment (value per unit score)."""
    return (values[..., -1] - values[..., -2]) / (knots[-1] - knots[-2])


def exceedance_scores(
    knots: np.ndarray, values: np.ndarray, level: np.ndarray, ceiling: np.ndarray | None = None
) -> np.ndarray:
    """The standard-normal score ``z`` where :func:`quantile_function` (with the same
    ``ceiling``) reaches ``level`` (per pixel; ``values`` increasing along the last axis):
    ``-inf`` at or below the first knot's value, ``+inf`` above the last one's (or, with a
    ceiling, above the ceiling or where the tail is flat)."""
    count = (values < level[..., None]).sum(axis=-1)  # knots strictly below the level
    k = np.clip(count - 1, 0, len(knots) - 2)
    lo = np.take_along_axis(values, k[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(values, k[..., None] + 1, axis=-1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(hi > lo, (level - lo) / (hi - lo), 0.0)
    z = knots[k] + np.clip(w, 0.0, 1.0) * (knots[k + 1] - knots[k])
    z = np.where(count == 0, -np.inf, z)
    above = np.inf
    if ceiling is not None:
        slope = tail_slope(knots, values)
        with np.errstate(divide="ignore", invalid="ignore"):
            reach = knots[-1] + (level - values[..., -1]) / slope
        above = np.where((slope > 0) & (level <= ceiling), reach, np.inf)
    return np.where(count == len(knots), above, z)


#: Bounds of the fitted spectral slope of the noise (power ~ wavenumber ** -beta).
BETA_RANGE = (1.0, 3.5)


def ranked_scores(z: np.ndarray) -> np.ndarray:
    """``(M, y, x)`` noise fields -> the standard-normal scores of the levels ``(k - 0.5) / M``
    in the order of ``z`` at each pixel (ECC-Q): the member with the ``k``-th smallest value
    at a pixel gets ``Phi^-1((k - 0.5) / M)`` there; float32 like ``z``."""
    m = z.shape[0]
    scores = ndtri((np.arange(m) + 0.5) / m).astype(z.dtype)
    flat = np.ascontiguousarray(z.reshape(m, -1).T)  # (pixels, M): sort along the last axis
    out = np.empty_like(flat)
    np.put_along_axis(out, np.argsort(flat, axis=1), scores[None, :], axis=1)
    return out.T.reshape(z.shape)


def noise_filter(field: np.ndarray) -> np.ndarray:
    """An isotropic power-law FFT filter (amplitudes for ``np.fft.rfft2``) whose slope is
    fitted to ``field``'s radially averaged power spectrum (NaN as its minimum), the slope
    kept within :data:`BETA_RANGE` (a flat or odd spectrum gets a bounded one)."""
    finite = np.isfinite(field)
    filled = np.where(finite, field, np.nanmin(field) if finite.any() else 0.0)
    filled = filled - filled.mean()
    ny, nx = filled.shape
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(ny) * ny, np.fft.rfftfreq(nx) * nx, indexing="ij"))
    power = np.abs(np.fft.rfft2(filled)) ** 2
    bins = np.rint(k).astype(int)
    counts = np.bincount(bins.ravel())
    radial = np.bincount(bins.ravel(), power.ravel()) / np.maximum(counts, 1)
    use = np.arange(len(radial))
    use = use[(use >= 2) & (use <= max(3, min(ny, nx) // 4)) & (radial[: len(use)] > 0)]
    beta = BETA_RANGE[1] if len(use) < 2 else -np.polyfit(np.log(use), np.log(radial[use]), 1)[0]
    beta = float(np.clip(beta, *BETA_RANGE))
    with np.errstate(divide="ignore"):
        amplitude = np.where(k > 0, k ** (-beta / 2.0), 0.0)
    return amplitude


def noise_fields(
    fft_filter: np.ndarray, shape: tuple[int, int], n: int, rng: np.random.Generator
) -> np.ndarray:
    """``(n, y, x)`` standard-normal fields with ``fft_filter``'s spectrum (each of mean 0,
    variance 1): white noise filtered in Fourier space, float32."""
    from scipy import fft  # threaded FFTs over the stack

    white = fft.rfft2(rng.standard_normal((n, *shape), dtype=np.float32), workers=-1)
    fields = fft.irfft2(white * fft_filter.astype(np.float32), s=shape, workers=-1)
    fields -= fields.mean(axis=(-2, -1), keepdims=True)
    std = fields.std(axis=(-2, -1), keepdims=True)
    return (fields / np.where(std > 0, std, 1.0)).astype(np.float32)


class QuantileDistribution:
    """The distribution of one issue time from a quantile model (see the module doc).

    ``values``: ``(n_leads, y, x, K)`` network values at ``levels`` in the network's frame
    and grid; ``decode``: network values -> physical; ``finish``: ``(n_leads, y, x)``
    physical fields in the network's frame -> the forecast grid (moved along the flow,
    coarsening undone, NaN outside the valid area), ``finish_members`` the same for
    ``(members, n_leads, y, x)`` (it may write over its input, which is not used again);
    ``template``: the deterministic forecast
    (its coordinates and attributes); ``pattern``: the field whose power spectrum the noise
    takes (network values, e.g. the last input frame); ``rho``: the AR(1) coefficient of the
    noise from one lead to the next; ``members``/``seed``: the ensemble asked for;
    ``ceiling``: ``(y, x)`` network values the upper tail may reach (else no tail);
    ``coverage``: ``(n_leads, K)`` the probabilities the levels' values really have (a
    calibration, :mod:`nowcast.trained.calibration`; default: the levels at every lead),
    whose standard-normal scores are then the knots of each lead; ``observed``: ``(y, x)``
    the last observed frame in the network's frame and values (NaN where missing), whose
    value distribution the sharp product takes.
    """

    probabilistic = True

    def __init__(
        self,
        values: np.ndarray,
        levels: Sequence[float],
        *,
        decode: Callable[[np.ndarray], np.ndarray],
        finish: Callable[[np.ndarray], np.ndarray],
        finish_members: Callable[[np.ndarray], np.ndarray],
        template: xr.DataArray,
        pattern: np.ndarray,
        rho: float,
        members: int = 0,
        seed: int | None = None,
        ceiling: np.ndarray | None = None,
        coverage: np.ndarray | None = None,
        observed: np.ndarray | None = None,
    ) -> None:
        self.levels = check_levels(levels)
        self.values = np.asarray(values, dtype=np.float32)
        shape = (self.values.shape[0], len(self.levels))
        probs = np.broadcast_to(self.levels if coverage is None else coverage, shape)
        #: ``(n_leads, K)`` the knots' standard-normal scores at each lead
        self.knots = ndtri(np.clip(np.asarray(probs, dtype=float), 1e-4, 1 - 1e-4))
        self.median_index = int(np.argmin(np.abs(self.levels - 0.5)))
        self._decode, self._finish, self._finish_members = decode, finish, finish_members
        self.template = template
        self.pattern = pattern
        self.rho = float(np.clip(rho, 0.0, 0.999))
        self.n_members = int(members)
        self.seed = seed
        self.ceiling = None if ceiling is None else np.asarray(ceiling, dtype=np.float32)
        self.observed = None if observed is None else np.asarray(observed, dtype=np.float32)
        self._members: xr.DataArray | None = None

    # ------------------------------------------------------------------ helpers
    def _field(self, physical: np.ndarray) -> xr.DataArray:
        return self.template.copy(data=np.asarray(self._finish(physical), dtype=np.float32))

    def _at_scores(self, z: np.ndarray) -> np.ndarray:
        """Physical ``(n_leads, y, x)`` values of the quantile function at scores ``z``."""
        z = np.broadcast_to(z, self.values.shape[:-1])
        values = [
            quantile_function(self.knots[j], self.values[j], z[j], self.ceiling)
            for j in range(len(self.values))
        ]
        return np.asarray(self._decode(np.stack(values)))

    # ------------------------------------------------------------------ products
    def median(self) -> xr.DataArray:
        return self._field(self._at_scores(np.zeros(self.values.shape[:-1])))

    def quantiles(self, levels: Sequence[float]) -> xr.DataArray:
        levels = check_levels(levels)
        out = np.stack([self._field(self._at_scores(np.full(1, ndtri(q)))).values for q in levels])
        return stacked(out, self.template, QUANTILE, *quantile_coord(levels))

    def exceedance(self, thresholds: Sequence[float]) -> xr.DataArray:
        thresholds = check_thresholds(thresholds)
        out = []
        for t in thresholds:
            level = np.full(self.values.shape[1:-1], self._encoded(t))
            z = [
                exceedance_scores(self.knots[j], self.values[j], level, self.ceiling)
                for j in range(len(self.values))
            ]
            p = 1.0 - ndtr(np.stack(z))
            out.append(np.clip(self._finish(p), 0.0, 1.0))
        units = self.template.attrs.get("units")
        coord = threshold_coord(thresholds, units)
        result = stacked(np.stack(out), self.template, THRESHOLD, *coord)
        result.attrs = probability_attrs(self.template)
        return result

    def _encoded(self, threshold: float) -> float:
        """The network value whose decoding is ``threshold`` (bisection: decode is monotonic)."""
        lo, hi = -50.0, 50.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if float(np.asarray(self._decode(np.array([mid])))[0]) < threshold:
                lo = mid
            else:
                hi = mid
        return hi

    def sharp(self) -> xr.DataArray:
        if self.observed is None:
            raise NowcastError("the sharp forecast needs the last observed frame")
        u = (np.arange(SHARP_DRAWS) + 0.5) / SHARP_DRAWS
        mean = np.mean([self._at_scores(np.full(1, ndtri(q))) for q in u], axis=0)
        seen = np.isfinite(self.observed)
        observed = np.asarray(self._decode(self.observed[seen]))
        # ranked where observed (the pool's pixels), the same mapping elsewhere: else the
        # pixels outside the radar's coverage would take a share of the observed rain
        out = np.stack([match_values(field, observed, ranked=seen) for field in mean])
        return self._field(out)

    def members(self) -> xr.DataArray:
        if self.n_members < 1:
            raise NowcastError(
                "this forecast was made without members: ask for them with --members N"
            )
        if self._members is None:
            self._members = self._make_members()
        return self._members

    def _make_members(self) -> xr.DataArray:
        rng = np.random.default_rng(self.seed)
        fft_filter = noise_filter(self.pattern)
        n_leads, shape = self.values.shape[0], self.values.shape[1:3]
        scale = np.float32(np.sqrt(1.0 - self.rho**2))
        fields = np.empty((self.n_members, n_leads) + shape, dtype=np.float32)
        z = noise_fields(fft_filter, shape, self.n_members, rng)
        for j in range(n_leads):  # all members of a lead at once; AR(1) from lead to lead
            if j:
                z = np.float32(self.rho) * z + scale * noise_fields(
                    fft_filter, shape, self.n_members, rng
                )
            scores = ranked_scores(z)
            values = quantile_function(self.knots[j], self.values[j][None], scores, self.ceiling)
            fields[:, j] = self._decode(values)
        out = self._finish_members(fields)
        members = stacked(out, self.template, REALIZATION, *realization_coord(self.n_members))
        return members.assign_attrs(MEMBERS_ATTRS)
