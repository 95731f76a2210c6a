"""Forecast files: CF layout on disk, round trip, atomic writes, clear errors."""

from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nowcast.errors import DataError
from nowcast.products import forecast_array, read_forecast, truth_for, write_forecast

STEP = pd.Timedelta("5min")


def _archive(nt=10, ny=4, nx=5):
    t = pd.date_range("2020-01-01", periods=nt, freq=STEP)
    rng = np.random.default_rng(0)
    return xr.DataArray(
        rng.random((nt, ny, nx)).astype("float32"),
        dims=("time", "y", "x"),
        coords={
            "time": t,
            "y": (
                "y",
                np.arange(ny) * 1000.0,
                {"standard_name": "projection_y_coordinate", "units": "m"},
            ),
            "x": (
                "x",
                np.arange(nx) * 1000.0,
                {"standard_name": "projection_x_coordinate", "units": "m"},
            ),
            "crs": (
                (),
                0,
                {
                    "grid_mapping_name": "polar_stereographic",
                    "straight_vertical_longitude_from_pole": 0.0,
                },
            ),
        },
        name="precipitation_rate",
        attrs={
            "units": "mm h-1",
            "grid_mapping": "crs",
            "attribution": "KNMI",
            "units_original": "mm h-1",
        },
    )


@pytest.mark.parametrize("n_issue", [1, 3])
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_roundtrip(tmp_path, n_issue, suffix):
    arc = _archive()
    values = np.random.default_rng(1).random((n_issue, 2, 4, 5))
    fc = forecast_array(
        values, issue_times=arc.time.values[3 : 3 + n_issue], step=STEP, template=arc
    )
    path = write_forecast(
        fc,
        tmp_path / f"f{suffix}",
        method="persistence",
        metadata={"model": "m", "training": {"a": 1}},
    )
    back = read_forecast(path)
    assert back.dims == ("issue_time", "lead_time", "y", "x")
    np.testing.assert_allclose(back.values, values.astype("float32"))
    assert (back.valid_time.values == fc.valid_time.values).all()
    # lead 1 is one step after the issue time
    assert back.valid_time.values[0, 0] == arc.time.values[3] + np.timedelta64(5, "m")
    assert (
        back.attrs["grid_mapping"] == "crs"
        and back.crs.attrs["grid_mapping_name"] == "polar_stereographic"
    )
    assert back.attrs["units"] == "mm h-1" and "units_original" not in back.attrs
    assert back.attrs["nowcast_method"] == "persistence"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], (
        "temporary files left behind"
    )


def test_cf_layout_on_disk(tmp_path):
    arc = _archive()
    fc = forecast_array(
        np.zeros((1, 3, 4, 5)), issue_times=arc.time.values[[4]], step=STEP, template=arc
    )
    path = write_forecast(fc, tmp_path / "f.nc", method="convlstm")
    with netCDF4.Dataset(path) as nc:
        var = nc["precipitation_rate"]
        assert var.dimensions == ("lead_time", "y", "x")  # one issue time -> 3-D
        assert var.units == "mm h-1" and var.grid_mapping == "crs"
        assert nc["crs"].grid_mapping_name == "polar_stereographic"
        assert nc["forecast_reference_time"].standard_name == "forecast_reference_time"
        assert nc["lead_time"].standard_name == "forecast_period"
        assert list(nc["lead_time"][:]) == [5, 10, 15] and nc["lead_time"].units == "minutes"
        assert "valid_time" in nc.variables
        assert nc.Conventions == "CF-1.8" and "KNMI" in nc.references


def test_truth_for_aligns_valid_times():
    arc = _archive()
    fc = forecast_array(
        np.zeros((2, 3, 4, 5)), issue_times=arc.time.values[[2, 8]], step=STEP, template=arc
    )
    truth = truth_for(fc, arc)
    np.testing.assert_array_equal(truth.values[0, 0], arc.values[3])
    np.testing.assert_array_equal(truth.values[1, 0], arc.values[9])
    assert np.isnan(truth.values[1, 1]).all()  # valid time past the archive's end


def test_read_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_forecast(tmp_path / "missing.nc")
    bad = tmp_path / "bad.nc"
    bad.write_text("not netcdf")
    with pytest.raises(DataError, match="cannot read"):
        read_forecast(bad)
    arc = _archive()
    no_lead = tmp_path / "obs.nc"
    arc.to_dataset().to_netcdf(no_lead)
    with pytest.raises(DataError, match="lead_time"):
        read_forecast(no_lead)
    fc = forecast_array(
        np.zeros((1, 2, 4, 5)), issue_times=arc.time.values[[4]], step=STEP, template=arc
    )
    ds = xr.open_dataset(write_forecast(fc, tmp_path / "f.nc", method="p")).load()
    ds["precipitation_rate"].attrs.pop("grid_mapping", None)
    ds["precipitation_rate"].encoding.pop("grid_mapping", None)
    ds.drop_vars("crs").to_netcdf(tmp_path / "nogm.nc")
    with pytest.raises(DataError, match="grid_mapping"):
        read_forecast(tmp_path / "nogm.nc")


def test_nearest_indices_finds_a_sub_grid_or_nothing():
    from nowcast.products import nearest_indices

    coord = np.arange(10) * 1000.0  # 0, 1000, ..., 9000 m
    np.testing.assert_array_equal(
        nearest_indices(coord, [2000.4, 3000.0, 3999.6], atol=1.0), [2, 3, 4]
    )
    assert nearest_indices(coord, [2500.0], atol=1.0) is None  # between grid points
    assert nearest_indices(coord, [12000.0], atol=1.0) is None  # outside the grid
    assert (
        nearest_indices(coord[::-1], [2000.0], atol=1.0) is None
    )  # descending coordinates are not searched
