"""Verification metrics: sums accumulated over issue times, and scores computed from them.

Scores aggregated over many issue times are computed from sums accumulated over all of
them (pooled), never as averages of per-issue-time scores: e.g. CSI over two issue
times is ``(H1 + H2) / ((H1 + M1 + F1) + (H2 + M2 + F2))``. Only pixels valid (finite)
in both the forecast and the observation are counted.

Accumulators hold one value per lead time (arrays shaped ``(..., lead)``), and every
metric is a small class with one method, ``compute(sums) -> value`` (WeatherBench-2
style), vectorised over those arrays.

Conventions
-----------
* An *event* is ``value >= threshold`` (as pySTEPS' FSS; note pySTEPS' ``det_cat_fct``
  uses ``>``).
* Undefined scores are NaN: MAE/RMSE/bias with no valid pixel; correlation when either
  field has zero variance; POD with no observed event (H + M = 0); FAR with no forecast
  event (H + F = 0); CSI with neither (H + M + F = 0); ETS when H + M + F - H_random = 0
  (which includes no events at all); FSS when neither field has an event anywhere.
* FSS (Roberts & Lean 2008): fractions are the mean of the event indicator over a
  ``scale x scale`` window, the indicator being 0 at invalid pixels and outside the domain
  (zero padding, as pySTEPS), and the sums run over the valid pixels only. Invalid pixels
  are so treated exactly like the outside of the domain: they hold no events and are not
  scored. On a field without NaN this is pySTEPS' ``fss``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter

# --------------------------------------------------------------------------- accumulators


@dataclass
class ContinuousSums:
    """Pooled sums for the continuous scores, per lead time.

    ``sum_f`` .. ``sum_fo`` are of ``f - shift`` and ``o - shift`` (a constant taken from
    the first observations seen) to keep the variance sums well conditioned.
    """

    n: np.ndarray
    sum_err: np.ndarray
    sum_abs_err: np.ndarray
    sum_sq_err: np.ndarray
    sum_f: np.ndarray
    sum_o: np.ndarray
    sum_ff: np.ndarray
    sum_oo: np.ndarray
    sum_fo: np.ndarray
    shift: float | None = None

    @classmethod
    def zeros(cls, n_leads: int) -> ContinuousSums:
        z = lambda: np.zeros(n_leads)  # noqa: E731
        return cls(
            n=z(),
            sum_err=z(),
            sum_abs_err=z(),
            sum_sq_err=z(),
            sum_f=z(),
            sum_o=z(),
            sum_ff=z(),
            sum_oo=z(),
            sum_fo=z(),
        )

    def add(
        self, forecast: np.ndarray, obs: np.ndarray, valid: np.ndarray, *, lead: int | None = None
    ) -> None:
        """Add ``(lead, y, x)`` fields (or the ``(y, x)`` fields of lead index ``lead``);
        only ``valid`` pixels count."""
        if lead is None:
            for j in range(forecast.shape[0]):
                self.add(forecast[j], obs[j], valid[j], lead=j)
            return
        f = forecast[valid].astype(np.float64)
        o = obs[valid].astype(np.float64)
        if f.size == 0:
            return
        if self.shift is None:
            self.shift = float(o.mean())
        err = f - o
        self.n[lead] += f.size
        self.sum_err[lead] += err.sum()
        self.sum_abs_err[lead] += np.abs(err).sum()
        self.sum_sq_err[lead] += _dot(err, err)
        f -= self.shift
        o -= self.shift
        self.sum_f[lead] += f.sum()
        self.sum_o[lead] += o.sum()
        self.sum_ff[lead] += _dot(f, f)
        self.sum_oo[lead] += _dot(o, o)
        self.sum_fo[lead] += _dot(f, o)


@dataclass
class ContingencyTable:
    """Pooled 2x2 contingency counts, shaped ``(threshold, lead)``."""

    hits: np.ndarray
    misses: np.ndarray
    false_alarms: np.ndarray
    correct_negatives: np.ndarray

    @classmethod
    def zeros(cls, n_thresholds: int, n_leads: int) -> ContingencyTable:
        z = lambda: np.zeros((n_thresholds, n_leads), dtype=np.int64)  # noqa: E731
        return cls(z(), z(), z(), z())

    def add(
        self,
        forecast: np.ndarray,
        obs: np.ndarray,
        valid: np.ndarray,
        thresholds,
        *,
        lead: int | None = None,
    ) -> None:
        """Add ``(lead, y, x)`` fields (or lead index ``lead``'s ``(y, x)``) at each threshold."""
        if lead is None:
            for j in range(forecast.shape[0]):
                self.add(forecast[j], obs[j], valid[j], thresholds, lead=j)
            return
        f, o = forecast[valid], obs[valid]
        for k, thr in enumerate(thresholds):
            fe, oe = f >= thr, o >= thr
            hits = int(np.count_nonzero(fe & oe))
            n_f, n_o = int(np.count_nonzero(fe)), int(np.count_nonzero(oe))
            self.hits[k, lead] += hits
            self.misses[k, lead] += n_o - hits
            self.false_alarms[k, lead] += n_f - hits
            self.correct_negatives[k, lead] += f.size - n_f - n_o + hits


@dataclass
class FSSSums:
    """Pooled FSS sums Σ Ff², Σ Ff Fo, Σ Fo², shaped ``(threshold, scale, lead)``."""

    sum_ff: np.ndarray
    sum_fo: np.ndarray
    sum_oo: np.ndarray

    @classmethod
    def zeros(cls, n_thresholds: int, n_scales: int, n_leads: int) -> FSSSums:
        shape = (n_thresholds, n_scales, n_leads)
        return cls(np.zeros(shape), np.zeros(shape), np.zeros(shape))

    def add(
        self,
        forecast: np.ndarray,
        obs: np.ndarray,
        valid: np.ndarray,
        thresholds,
        scales,
        *,
        lead: int | None = None,
        cache: dict | None = None,
    ) -> None:
        """Add ``(lead, y, x)`` fields (or lead index ``lead``'s ``(y, x)``) for every
        threshold and (odd, pixel) scale.

        ``cache``: a dict shared by the forecasts verified against the same observations
        (one valid time), so the observed fractions are computed once per threshold and
        scale (reused only where observations and mask are equal).
        """
        if lead is None:
            for j in range(forecast.shape[0]):
                self.add(forecast[j], obs[j], valid[j], thresholds, scales, lead=j)
            return
        if cache is not None:  # reuse only for the same observations and mask
            same = (
                "obs" in cache
                and np.array_equal(cache["valid"], valid)
                and np.array_equal(cache["obs"], obs, equal_nan=True)
            )
            if not same:
                cache.clear()
                cache.update(obs=obs, valid=valid)
        for k, thr in enumerate(thresholds):
            fi = _indicator(forecast, thr, valid)
            oi = None
            for j, scale in enumerate(scales):
                frac_f = _fractions(fi, scale, valid)
                key = (float(thr), int(scale))
                frac_o = cache.get(key) if cache is not None else None
                if frac_o is None:
                    oi = _indicator(obs, thr, valid) if oi is None else oi
                    frac_o = _fractions(oi, scale, valid)
                    if cache is not None:
                        cache[key] = frac_o
                self.sum_ff[k, j, lead] += _dot(frac_f, frac_f)
                self.sum_fo[k, j, lead] += _dot(frac_f, frac_o)
                self.sum_oo[k, j, lead] += _dot(frac_o, frac_o)


def _indicator(values: np.ndarray, threshold: float, valid: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return ((values >= threshold) & valid).astype(np.float64)


def _fractions(indicator: np.ndarray, scale: int, valid: np.ndarray) -> np.ndarray:
    """Window means of ``indicator`` (zero padding), zeroed at invalid pixels."""
    if scale == 1:
        return indicator

    out = uniform_filter(indicator, size=scale, mode="constant", cval=0.0)
    np.multiply(out, valid, out=out)
    return out


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Σ a*b without a temporary product array.

    ``einsum``'s own loop, not BLAS ``ddot``: a multi-threaded OpenBLAS on a busy machine
    can be 100x slower for these one-off dot products.
    """
    return float(np.einsum("i,i->", a.ravel(), b.ravel()))


# --------------------------------------------------------------------------- metrics


def _ratio(num, den) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


class Metric:
    """A score: its ``name`` (in the scores table) and ``compute(sums) -> values``."""

    name: str
    #: Whether values are in the data's units (MAE, RMSE, bias) or unitless.
    in_data_units = False


class MAE(Metric):
    """Mean absolute error, Σ|f - o| / n."""

    name = "MAE"
    in_data_units = True

    def compute(self, s: ContinuousSums) -> np.ndarray:
        return _ratio(s.sum_abs_err, s.n)


class RMSE(Metric):
    """Root mean squared error, sqrt(Σ(f - o)² / n)."""

    name = "RMSE"
    in_data_units = True

    def compute(self, s: ContinuousSums) -> np.ndarray:
        return np.sqrt(_ratio(s.sum_sq_err, s.n))


class Bias(Metric):
    """Mean error (additive bias), Σ(f - o) / n."""

    name = "bias"
    in_data_units = True

    def compute(self, s: ContinuousSums) -> np.ndarray:
        return _ratio(s.sum_err, s.n)


class Correlation(Metric):
    """Pearson correlation of the pooled valid pairs; NaN if either variance is 0."""

    name = "corr"

    def compute(self, s: ContinuousSums) -> np.ndarray:
        n = np.asarray(s.n, dtype=np.float64)
        mf, mo = _ratio(s.sum_f, n), _ratio(s.sum_o, n)
        cov = _ratio(s.sum_fo, n) - mf * mo
        vf = np.maximum(_ratio(s.sum_ff, n) - mf * mf, 0.0)
        vo = np.maximum(_ratio(s.sum_oo, n) - mo * mo, 0.0)
        return np.clip(_ratio(cov, np.sqrt(vf * vo)), -1.0, 1.0)


class CSI(Metric):
    """Critical success index (threat score), H / (H + M + F)."""

    name = "CSI"

    def compute(self, t: ContingencyTable) -> np.ndarray:
        return _ratio(t.hits, t.hits + t.misses + t.false_alarms)


class POD(Metric):
    """Probability of detection, H / (H + M)."""

    name = "POD"

    def compute(self, t: ContingencyTable) -> np.ndarray:
        return _ratio(t.hits, t.hits + t.misses)


class FAR(Metric):
    """False alarm ratio, F / (H + F)."""

    name = "FAR"

    def compute(self, t: ContingencyTable) -> np.ndarray:
        return _ratio(t.false_alarms, t.hits + t.false_alarms)


class ETS(Metric):
    """Equitable threat score (Gilbert skill score), (H - Hr) / (H + M + F - Hr),
    Hr = (H + M)(H + F) / N."""

    name = "ETS"

    def compute(self, t: ContingencyTable) -> np.ndarray:
        h, m, f = (np.asarray(a, dtype=np.float64) for a in (t.hits, t.misses, t.false_alarms))
        n = h + m + f + np.asarray(t.correct_negatives, dtype=np.float64)
        h_random = _ratio((h + m) * (h + f), n)
        return _ratio(h - h_random, h + m + f - h_random)


class FSS(Metric):
    """Fractions skill score, 1 - Σ(Ff - Fo)² / (Σ Ff² + Σ Fo²)."""

    name = "FSS"

    def compute(self, s: FSSSums) -> np.ndarray:
        num = s.sum_ff - 2.0 * s.sum_fo + s.sum_oo
        return 1.0 - _ratio(num, s.sum_ff + s.sum_oo)


CONTINUOUS_METRICS = (MAE(), RMSE(), Bias(), Correlation())
CATEGORICAL_METRICS = (CSI(), POD(), FAR(), ETS())
SPATIAL_METRICS = (FSS(),)

#: Score names in report order, per kind (continuous, categorical, spatial).
CONTINUOUS = tuple(m.name for m in CONTINUOUS_METRICS)
CATEGORICAL = tuple(m.name for m in CATEGORICAL_METRICS)
SPATIAL = tuple(m.name for m in SPATIAL_METRICS)
#: Scores in the data's units.
IN_DATA_UNITS = tuple(
    m.name for m in CONTINUOUS_METRICS + CATEGORICAL_METRICS + SPATIAL_METRICS if m.in_data_units
)
