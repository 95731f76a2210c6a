"""The quantile model's distribution: its quantile function, exceedance probabilities and
Gaussian-copula members checked against a known (Gaussian) distribution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import ndtr, ndtri

from nowcast.methods.quantile import (
    QuantileDistribution,
    exceedance_scores,
    quantile_function,
)
from nowcast.products import lead_array

LEVELS = np.array([0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95])


def _gaussian(mu: np.ndarray, sigma: float, *, members=0, seed=None, rho=0.8):
    """A distribution whose network values are N(mu, sigma) quantiles; identity decoding."""
    n, ny, nx = mu.shape
    values = mu[..., None] + sigma * ndtri(LEVELS)
    past = xr.DataArray(
        np.zeros((2, ny, nx), "float32"),
        dims=("time", "y", "x"),
        coords={
            "time": pd.date_range("2020-01-01", periods=2, freq="5min"),
            "y": np.arange(ny) * 1000.0,
            "x": np.arange(nx) * 1000.0,
        },
        name="t",
        attrs={"units": "K"},
    )
    template = lead_array(np.zeros((n, ny, nx)), past, pd.Timedelta("5min"))
    pattern = np.random.default_rng(3).normal(size=(ny, nx))
    return QuantileDistribution(
        values,
        LEVELS,
        decode=lambda v: np.asarray(v, dtype=np.float64),
        finish=lambda f: np.asarray(f, dtype=np.float32),
        template=template,
        pattern=pattern,
        rho=rho,
        members=members,
        seed=seed,
    )


def test_quantile_function_hits_the_knots_and_extends_linearly():
    knots = ndtri(LEVELS)
    values = 2.0 + 3.0 * knots  # a Gaussian: linear in z everywhere
    for z in (-3.0, -1.0, 0.0, 0.3, 2.5):
        assert quantile_function(knots, values[None], np.array([z]))[0] == pytest.approx(
            2.0 + 3.0 * z
        )
    assert quantile_function(knots, values[None], np.array([9.0]))[0] == pytest.approx(
        2.0 + 3.0 * 3.5
    )  # clipped at Z_MAX


def test_exceedance_scores_invert_the_quantile_function():
    rng = np.random.default_rng(0)
    knots = ndtri(LEVELS)
    values = np.sort(rng.normal(size=(50, len(LEVELS))), axis=1)
    z = rng.uniform(-3, 3, size=50)
    level = quantile_function(knots, values, z)
    np.testing.assert_allclose(exceedance_scores(knots, values, level), z, atol=1e-9)


def test_products_of_a_gaussian():
    mu = np.random.default_rng(1).normal(size=(3, 4, 5))
    dist = _gaussian(mu, 2.0)
    np.testing.assert_allclose(dist.median().values, mu, atol=1e-5)
    q = dist.quantiles([0.1, 0.9])
    assert q.dims == ("quantile", "lead_time", "y", "x")
    np.testing.assert_allclose(q.values[1], mu + 2.0 * ndtri(0.9), atol=1e-4)
    p = dist.exceedance([0.0, 1.0])
    assert p.dims == ("threshold", "lead_time", "y", "x") and p.attrs["units"] == "1"
    np.testing.assert_allclose(p.values[1], 1 - ndtr((1.0 - mu) / 2.0), atol=1e-3)
    with pytest.raises(Exception, match="members"):
        dist.members()


def test_members_are_draws_from_each_pixels_distribution():
    """Pooled over pixels, (member - mu) / sigma is standard normal (within Z_MAX), whatever
    the copula; members are reproducible with a seed and coherent from lead to lead."""
    mu = np.random.default_rng(2).normal(size=(4, 32, 32)) * 5
    dist = _gaussian(mu, 2.0, members=12, seed=7, rho=0.9)
    m = dist.members()
    assert m.dims == ("realization", "lead_time", "y", "x") and m.sizes["realization"] == 12
    assert m["realization"].attrs["standard_name"] == "realization"
    z = ((m.values - mu) / 2.0).ravel()
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1.0) < 0.1
    for q in (0.1, 0.5, 0.9):
        assert np.mean(z <= ndtri(q)) == pytest.approx(q, abs=0.05)
    again = _gaussian(mu, 2.0, members=12, seed=7, rho=0.9).members()
    np.testing.assert_array_equal(again.values, m.values)
    other = _gaussian(mu, 2.0, members=12, seed=8, rho=0.9).members()
    assert not np.allclose(other.values, m.values)
    za = (m.values - mu) / 2.0
    lag1 = np.corrcoef(za[:, 0].ravel(), za[:, 1].ravel())[0, 1]
    assert lag1 == pytest.approx(0.9, abs=0.1)  # AR(1) from lead to lead


def test_sharp_keeps_the_pooled_distribution():
    mu = np.zeros((1, 40, 40))
    mu[0, :, 20:] = 4.0
    dist = _gaussian(mu, 1.0)
    sharp = dist.sharp().values[0]
    assert np.all(sharp[:, 20:].mean() > sharp[:, :20].mean())  # the mean's pattern
    # the values span the predictive spread, not just the medians' two values
    assert sharp.max() > 4.0 + 1.0 and sharp.min() < -1.0
