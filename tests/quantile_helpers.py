"""A :class:`~nowcast.methods.quantile.QuantileDistribution` over given network values, for
tests: identity decoding, no moving (``finish`` is the identity), a 5-minute template."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from nowcast.methods.quantile import QuantileDistribution
from nowcast.products import lead_array


def identity_distribution(values, levels, *, units="K", rho=0.8, **options):
    """The distribution of ``values`` ``(n_leads, y, x, K)`` at ``levels``, in ``units``;
    ``options`` (members, seed, ceiling, coverage, observed) go to the distribution."""
    n, ny, nx = np.shape(values)[:3]
    past = xr.DataArray(
        np.zeros((2, ny, nx), "float32"),
        dims=("time", "y", "x"),
        coords={
            "time": pd.date_range("2020-01-01", periods=2, freq="5min"),
            "y": np.arange(ny) * 1000.0,
            "x": np.arange(nx) * 1000.0,
        },
        name="t",
        attrs={"units": units},
    )
    return QuantileDistribution(
        values,
        levels,
        decode=lambda v: np.asarray(v, dtype=np.float64),
        finish=lambda f: np.asarray(f, dtype=np.float32),
        finish_members=lambda f: np.asarray(f, dtype=np.float32),
        template=lead_array(np.zeros((n, ny, nx)), past, pd.Timedelta("5min")),
        pattern=np.random.default_rng(3).normal(size=(ny, nx)),
        rho=rho,
        **options,
    )
