"""The quantile model's distribution: its quantile function, exceedance probabilities and
Gaussian-copula members checked against a known (Gaussian) distribution."""

from __future__ import annotations

import numpy as np
import pytest
from quantile_helpers import identity_distribution
from scipy.special import ndtr, ndtri

from nowcast.errors import NowcastError
from nowcast.methods.quantile import (
    exceedance_scores,
    quantile_function,
    ranked_scores,
)

LEVELS = np.array([0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95])


def _gaussian(mu: np.ndarray, sigma: float, *, members=0, seed=None, rho=0.8):
    """A distribution whose network values are N(mu, sigma) quantiles; identity decoding."""
    values = mu[..., None] + sigma * ndtri(LEVELS)
    return identity_distribution(values, LEVELS, rho=rho, members=members, seed=seed)


def test_quantile_function_hits_the_knots_and_stays_within_them():
    knots = ndtri(LEVELS)
    values = 2.0 + 3.0 * knots  # a Gaussian: linear in z between the knots
    for z in (-1.6, -1.0, 0.0, 0.3, 1.6):
        assert quantile_function(knots, values[None], np.array([z]))[0] == pytest.approx(
            2.0 + 3.0 * z
        )
    for z, edge in ((9.0, -1), (-9.0, 0)):  # no tail beyond the predicted levels
        assert quantile_function(knots, values[None], np.array([z]))[0] == pytest.approx(
            values[edge]
        )


def test_exceedance_scores_invert_the_quantile_function():
    rng = np.random.default_rng(0)
    knots = ndtri(LEVELS)
    values = np.sort(rng.normal(size=(50, len(LEVELS))), axis=1)
    z = rng.uniform(knots[0], knots[-1], size=50)
    level = quantile_function(knots, values, z)
    np.testing.assert_allclose(exceedance_scores(knots, values, level), z, atol=1e-9)
    outside = exceedance_scores(knots, values[:2], np.array([values[0, 0], values[1, -1] + 1]))
    assert outside[0] == -np.inf and outside[1] == np.inf  # P = 1 at v_1, 0 above v_K


def test_products_of_a_gaussian():
    mu = np.random.default_rng(1).normal(size=(3, 4, 5))
    dist = _gaussian(mu, 2.0)
    np.testing.assert_allclose(dist.median().values, mu, atol=1e-5)
    q = dist.quantiles([0.1, 0.9])
    assert q.dims == ("quantile", "lead_time", "y", "x")
    np.testing.assert_allclose(q.values[1], mu + 2.0 * ndtri(0.9), atol=1e-4)
    p = dist.exceedance([0.0, 1.0])
    assert p.dims == ("threshold", "lead_time", "y", "x") and p.attrs["units"] == "1"
    z = (1.0 - mu) / 2.0
    inside = np.abs(z) < ndtri(0.95)
    np.testing.assert_allclose(p.values[1][inside], 1 - ndtr(z[inside]), atol=1e-3)
    np.testing.assert_array_equal(p.values[1][~inside], (z[~inside] < 0).astype(float))
    with pytest.raises(Exception, match="members"):
        dist.members()


def test_ranked_scores_give_each_member_its_ranks_level():
    z = np.array([[[0.3, -2.0]], [[-1.0, 5.0]], [[2.0, 0.0]], [[0.0, 1.0]]], "float32")  # (4,1,2)
    out = ranked_scores(z)
    levels = ndtri((np.arange(4) + 0.5) / 4)
    # pixel 0: z = 0.3, -1, 2, 0 -> ranks 2, 0, 3, 1; pixel 1: -2, 5, 0, 1 -> 0, 3, 1, 2
    np.testing.assert_allclose(out[:, 0, 0], levels[[2, 0, 3, 1]], rtol=1e-6)
    np.testing.assert_allclose(out[:, 0, 1], levels[[0, 3, 1, 2]], rtol=1e-6)
    assert out.dtype == np.float32 and out.shape == z.shape
    np.testing.assert_array_equal(ranked_scores(z[:1]), np.zeros((1, 1, 2), "float32"))


def test_members_are_each_pixels_equidistant_quantiles():
    """At every pixel and lead the 12 members are the N(mu, sigma) quantiles at levels
    (k - 0.5) / 12 (ECC-Q: no sampling noise), clamped to the outer levels, in the order of
    the copula's noise; members are reproducible with a seed and coherent from lead to lead."""
    mu = np.random.default_rng(2).normal(size=(4, 32, 32)) * 5
    dist = _gaussian(mu, 2.0, members=12, seed=7, rho=0.9)
    m = dist.members()
    assert m.dims == ("realization", "lead_time", "y", "x") and m.sizes["realization"] == 12
    assert m["realization"].attrs["standard_name"] == "realization"
    expected = np.clip(ndtri((np.arange(12) + 0.5) / 12), ndtri(0.05), ndtri(0.95))
    z = (np.sort(m.values, axis=0) - mu) / 2.0
    np.testing.assert_allclose(z, np.broadcast_to(expected[:, None, None, None], z.shape),
                               atol=1e-4)  # fmt: skip
    again = _gaussian(mu, 2.0, members=12, seed=7, rho=0.9).members()
    np.testing.assert_array_equal(again.values, m.values)
    other = _gaussian(mu, 2.0, members=12, seed=8, rho=0.9).members()
    assert not np.allclose(other.values, m.values)
    za = (m.values - mu) / 2.0
    lag1 = np.corrcoef(za[:, 0].ravel(), za[:, 1].ravel())[0, 1]
    assert lag1 == pytest.approx(0.9, abs=0.1)  # AR(1) from lead to lead


def test_sharp_has_the_mean_pattern_and_the_observed_values():
    # two leads of a distribution whose mean rises from left to right; the last observation
    # holds 3 % heavy rain (9) that the predictive distribution never reaches
    mu = np.zeros((2, 40, 40))
    mu[:, :, 20:] = 4.0
    mu[1] -= 2.0  # a decaying second lead: the sharp field keeps the observed values
    observed = np.zeros((40, 40))
    observed[:, 30:] = 2.0
    observed[:12, 38:] = 9.0
    observed[0, 0] = np.nan  # missing: left out of the values
    values = mu[..., None] + ndtri(LEVELS)
    dist = identity_distribution(values, LEVELS, observed=observed)
    sharp = dist.sharp().values
    for field in sharp:
        assert field[:, 20:].mean() > field[:, :20].mean()  # the mean's pattern
        # the observed value distribution (its 1599 values at 1600 ranks)
        assert field.min() == 0.0 and field.max() == 9.0
        for low, high, count in ((0, 0, 1199), (2, 2, 376), (9, 9, 24)):
            assert np.sum((field >= low) & (field <= high)) == pytest.approx(count, abs=2)


def test_sharp_needs_the_last_observation():
    dist = _gaussian(np.zeros((1, 4, 4)), 1.0)
    with pytest.raises(NowcastError, match="last observed frame"):
        dist.sharp()


def test_sharp_puts_the_observed_rain_where_it_was_observed():
    # a radar seeing only the right 60 % of the grid, dry inputs (low values) outside it: the
    # observed wet share (25 %) goes to the observed pixels, not the rain of all 2500 pixels
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(1, 50, 50))
    mu[:, :, :20] = -3.0
    observed = np.where(rng.random((50, 50)) < 0.25, 5.0, 0.0)
    observed[:, :20] = np.nan
    dist = identity_distribution(mu[..., None] + ndtri(LEVELS), LEVELS, observed=observed)
    sharp = dist.sharp().values[0]
    assert np.mean(sharp[:, 20:] >= 5.0) == pytest.approx(0.25, abs=0.03)
    # outside, the same monotonic mapping of the mean pattern: dry there
    assert np.isfinite(sharp).all() and np.all(sharp[:, :20] == 0.0)
    inside = np.argsort(mu[0][:, 20:].ravel())
    assert np.all(np.diff(sharp[:, 20:].ravel()[inside]) >= 0)
