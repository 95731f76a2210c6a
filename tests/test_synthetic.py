"""Synthetic rain archives: conventions, determinism, advection, coverage, NetCDF round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr

from nowcast.archive import open_archive, time_step
from nowcast.archive.synthetic import synthetic_rain, write_synthetic_archive


def test_conventions():
    da = synthetic_rain(n_times=5, ny=20, nx=30, step="10min", spacing=2000.0)
    assert da.dims == ("time", "y", "x") and da.shape == (5, 20, 30) and da.dtype == np.float32
    assert time_step(da) == pd.Timedelta("10min")
    assert np.all(np.diff(da.y.values) == 2000.0) and np.all(np.diff(da.x.values) == 2000.0)
    assert (
        da.x.values.mean() == 0.0 and da.y.values.mean() == 0.0
    )  # centred on the projection origin
    assert da.attrs["units"] == "mm h-1" and da.attrs["grid_mapping"] == "crs"
    crs = da.coords["crs"]
    assert crs.ndim == 0 and crs.attrs["grid_mapping_name"] == "lambert_azimuthal_equal_area"
    parsed = pyproj.CRS.from_wkt(crs.attrs["crs_wkt"])
    lon, lat = pyproj.Transformer.from_crs(parsed, "EPSG:4326", always_xy=True).transform(0.0, 0.0)
    assert lon == pytest.approx(5.0) and lat == pytest.approx(52.0)


def test_deterministic_by_seed():
    a, b, c = synthetic_rain(seed=3), synthetic_rain(seed=3), synthetic_rain(seed=4)
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a.values, c.values)


def test_wet_and_dry_areas():
    da = synthetic_rain()
    wet = (da > 0).mean(("y", "x")).values
    assert 0 < wet.mean() < 0.6  # rain somewhere, dry elsewhere
    assert float(da.min()) == 0.0 and 1.0 < float(da.max()) <= 30.0 * 1.5
    assert not np.isnan(da.values).any()
    assert np.all((da.values == 0) | (da.values >= 0.1))  # below the threshold is exactly dry


def test_pure_advection_shifts_the_field():
    # integer velocity and no growth/decay: frame t+1 is frame t moved by (u, v) pixels
    da = synthetic_rain(n_times=6, ny=40, nx=50, velocity=(2, 1), lifetime=1e9, seed=5, n_cells=10)
    f = da.values
    assert f[3].max() > 1
    np.testing.assert_allclose(f[4, 1:, 2:], f[3, :-1, :-2], atol=1e-4)
    assert not np.allclose(f[4], f[3], atol=1e-2)  # it does move


def test_nan_border_outside_coverage():
    da = synthetic_rain(n_times=3, ny=40, nx=50, nan_fraction=0.25)
    nan = np.isnan(da.values)
    assert nan[0].mean() == pytest.approx(0.25, abs=1 / (40 * 50))
    assert (nan == nan[0]).all()  # same coverage in every frame
    assert nan[0, 0, 0] and nan[0, -1, -1] and not nan[0, 20, 25]  # corners out, centre in


def test_round_trip_single_file(tmp_path):
    da = synthetic_rain(n_times=6, ny=16, nx=12, nan_fraction=0.1, seed=2)
    files = write_synthetic_archive(tmp_path / "syn.nc", data=da)
    assert files == [tmp_path / "syn.nc"]
    back = open_archive(files)
    xr.testing.assert_identical(back.compute(), da)
    assert back.coords["crs"].attrs["crs_wkt"] == da.coords["crs"].attrs["crs_wkt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["syn.nc"]  # no temporary left behind


def test_round_trip_one_file_per_time(tmp_path):
    files = write_synthetic_archive(
        tmp_path / "frames", one_file_per_time=True, n_times=4, ny=8, nx=8
    )
    assert [p.name for p in files] == [f"synthetic_20210601T12{m:02d}00.nc" for m in (0, 5, 10, 15)]
    back = open_archive(tmp_path / "frames")
    assert back.chunks[0] == (1, 1, 1, 1)
    xr.testing.assert_identical(back.compute(), synthetic_rain(n_times=4, ny=8, nx=8))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"nan_fraction must be in \[0, 1\)"):
        synthetic_rain(nan_fraction=1.0)
    with pytest.raises(TypeError, match="pass either data or synthetic_rain keyword arguments"):
        write_synthetic_archive("unused", data=synthetic_rain(n_times=1), seed=1)


def test_evolving_cells_grow_decay_and_change_speed():
    """The demo's weather: a cell's total rain changes as it lives (no motion, so nothing
    leaves the grid), the wind that carries the cells changes speed, and the grid lies on a
    real projection centred where it is asked to be."""
    from nowcast.archive.synthetic import evolving_rain

    kw = dict(n_times=30, ny=48, nx=48, velocity=(0, 0), speed_spread=0.0, n_cells=1)
    still = evolving_rain(**kw, stratiform=0.0, seed=2)
    total = still.sum(("y", "x")).values  # a cell or two, staying in view
    peak = int(total.argmax())
    assert 0 < peak < 29 and total[:peak].min() < total[peak] / 5  # it grew
    assert total[peak:].min() < 0.7 * total[peak]  # and decays
    xr.testing.assert_identical(still, evolving_rain(**kw, stratiform=0.0, seed=2))
    moving = evolving_rain(n_times=4, ny=20, nx=30, centre=(51.35, 3.6))
    crs = pyproj.CRS.from_wkt(moving.coords["crs"].attrs["crs_wkt"])
    to_lonlat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(moving.x.values.mean(), moving.y.values.mean())
    assert lon == pytest.approx(3.6, abs=0.02) and lat == pytest.approx(51.35, abs=0.02)
    assert moving.attrs["units"] == "mm h-1" and np.diff(moving.x.values)[0] == 1000.0
