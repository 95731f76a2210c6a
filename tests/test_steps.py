"""The ``steps`` baseline (pySTEPS' STEPS ensemble) and the probabilistic-method protocol."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nowcast.distribution import REALIZATION, Distribution, EnsembleDistribution
from nowcast.errors import NowcastError
from nowcast.methods import available_methods, get_method, probabilistic_methods
from nowcast.methods.steps import km_per_pixel


@pytest.fixture(scope="module")
def past(shared_data):
    """Four real MeteoSwiss frames, a 128 x 128 crop with rain (and its edge of no data)."""
    from nowcast.archive import open_archive

    archive = open_archive(shared_data / "radar" / "mch-2016-07-11.nc")
    crop = archive.isel(time=slice(16, 20), y=slice(200, 328), x=slice(250, 378)).load()
    crop[-1, :10, :10] = np.nan  # some no-data in the last frame, as at a radar's edge
    return crop


@pytest.fixture(scope="module")
def ensemble(past):
    return get_method("steps").predict_distribution(past, 3, members=4, seed=7)


def test_steps_is_a_registered_probabilistic_method():
    assert "steps" in available_methods()
    assert "steps" in probabilistic_methods()
    assert "sprog" not in probabilistic_methods()
    steps = get_method("steps", members=6, seed=1, t_in=4)
    assert steps.probabilistic and steps.members == 6 and steps.seed == 1
    assert steps.flow == get_method("sprog", t_in=4).flow  # sprog's flow and transform
    assert steps.describe()["method_options"]["members"] == 6
    for bad in ({"members": 0}, {"members": -2}, {"seed": -1}, {"noise": "white"}):
        with pytest.raises(NowcastError):
            get_method("steps", **bad)


def test_deterministic_methods_refuse_a_distribution(past):
    for name in ("persistence", "extrapolation", "sprog"):
        method = get_method(name)
        assert not method.probabilistic
        with pytest.raises(NowcastError, match=f"method {name} is deterministic.*steps"):
            method.predict_distribution(past, 2, members=3)


def test_members_shape_coords_and_plausible_range(past, ensemble):
    assert isinstance(ensemble, EnsembleDistribution) and isinstance(ensemble, Distribution)
    members = ensemble.members()
    assert members.dims == (REALIZATION, "lead_time", "y", "x")
    assert members.shape == (4, 3, 128, 128) and members.dtype == np.float32
    assert members[REALIZATION].attrs["standard_name"] == "realization"
    assert list(members[REALIZATION].values) == [0, 1, 2, 3]
    assert members.name == past.name and members.attrs["units"] == "mm h-1"
    assert list(members.lead_time.values) == [np.timedelta64(5 * k, "m") for k in (1, 2, 3)]
    values = members.values[np.isfinite(members.values)]
    inputs_max = float(np.nanmax(past.values))
    assert values.min() >= 0 and values.max() <= 1.2 * inputs_max
    assert ((values == 0) | (values >= 0.1)).all()  # below the rain threshold: 0
    assert (values > 0).mean() > 0.05  # it rains in this crop


def test_members_are_reproducible_with_a_seed_and_differ_across_seeds(past, ensemble):
    steps = get_method("steps")
    again = steps.predict_distribution(past, 3, members=4, seed=7).members().values
    np.testing.assert_array_equal(again, ensemble.members().values)
    other = steps.predict_distribution(past, 3, members=4, seed=8).members().values
    finite = np.isfinite(other)
    assert np.abs(other[finite] - again[finite]).max() > 1.0
    # members of one ensemble differ from each other too
    m = ensemble.members().values
    assert np.nanmax(np.abs(m[0] - m[1])) > 1.0


def test_nan_exactly_where_sprog_is_nan(past, ensemble):
    sprog = get_method("sprog").predict(past, 3).values
    assert np.isnan(sprog).any()  # the no-data corner and what comes in from outside
    for member in ensemble.members().values:
        np.testing.assert_array_equal(np.isnan(member), np.isnan(sprog))
    np.testing.assert_array_equal(np.isnan(ensemble.median().values), np.isnan(sprog))


def test_predict_is_the_ensemble_median(past, ensemble):
    fc = get_method("steps", members=4, seed=7).predict(past, 3)
    assert fc.dims == ("lead_time", "y", "x") and fc.name == past.name
    np.testing.assert_array_equal(fc.values, ensemble.median().values)
    # members=0: the method's own ensemble size
    dist = get_method("steps", members=3).predict_distribution(past, 2, members=0, seed=1)
    assert dist.members().sizes[REALIZATION] == 3


def test_dry_and_missing_inputs(past):
    steps = get_method("steps")
    dry = past.copy(data=np.zeros(past.shape, dtype=np.float32))
    members = steps.predict_distribution(dry, 2, members=3, seed=0).members().values
    assert members.shape == (3, 2, 128, 128) and np.nanmax(members) == 0
    gone = past.copy(data=np.full(past.shape, np.nan, dtype=np.float32))
    assert np.isnan(steps.predict_distribution(gone, 2, members=2).members().values).all()


def test_steps_refuses_temperature():
    times = pd.date_range("2019-03-01", periods=3, freq="1h")
    da = xr.DataArray(
        np.full((3, 8, 8), 280.0, dtype=np.float32),
        dims=("time", "y", "x"),
        coords={"time": times, "y": np.arange(8.0), "x": np.arange(8.0)},
        attrs={"units": "K"},
    )
    with pytest.raises(NowcastError, match="precipitation method"):
        get_method("steps").predict_distribution(da, 2, members=2)


def test_km_per_pixel():
    def grid(step, units):
        coords = np.arange(4) * step
        return xr.DataArray(
            np.zeros((4, 4)),
            dims=("y", "x"),
            coords={"y": ("y", coords, {"units": units}), "x": ("x", coords, {"units": units})},
        )

    assert km_per_pixel(grid(1000.0, "m")) == pytest.approx(1.0)
    assert km_per_pixel(grid(0.5, "km")) == pytest.approx(0.5)
    assert km_per_pixel(grid(0.25, "degrees_east")) == pytest.approx(27.8)
