"""Forecast files: CF layout on disk, round trip, atomic writes, clear errors."""

from __future__ import annotations

import warnings

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
                    "latitude_of_projection_origin": 90.0,
                    "standard_parallel": 60.0,
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
        assert var.dimensions == ("issue_time", "lead_time", "y", "x")  # one issue time: length 1
        assert var.units == "mm h-1" and var.grid_mapping == "crs"
        assert set(var.coordinates.split()) >= {"valid_time", "latitude", "longitude"}
        assert nc["crs"].grid_mapping_name == "polar_stereographic"
        assert nc["issue_time"].standard_name == "forecast_reference_time"
        assert nc["issue_time"].dimensions == ("issue_time",)
        assert nc["lead_time"].standard_name == "forecast_period"
        assert list(nc["lead_time"][:]) == [5, 10, 15] and nc["lead_time"].units == "minutes"
        # xarray decodes minutes as a timedelta only with its dtype attribute: always [ns]
        assert (
            nc["lead_time"].dtype == np.int32
            and nc["lead_time"].getncattr("dtype") == "timedelta64[ns]"
        )
        assert nc["valid_time"].dimensions == ("issue_time", "lead_time")
        assert nc["latitude"].dimensions == ("y", "x") and nc["latitude"].units == "degrees_north"
        assert nc.Conventions == "CF-1.8" and "KNMI" in nc.references
    with xr.open_dataset(path) as ds:  # what a user does with it
        one = ds["precipitation_rate"].sel(issue_time=arc.time.values[4], lead_time="10min")
        assert one.dims == ("y", "x") and one["valid_time"].values == arc.time.values[6]
        # polar stereographic around the pole: the grid's corner cells are at 90 N
        assert np.isclose(ds.latitude.values[0, 0], 90.0) and (ds.latitude.values < 90.0).sum()
        assert int(ds["precipitation_rate"].where(ds.latitude < 90.0).count()) == 3 * (4 * 5 - 1)


def test_lead_time_encoding_does_not_depend_on_the_step_type(tmp_path):
    """A model's step (``Timedelta(seconds=300.0)``, microseconds) and an archive's agree."""
    arc = _archive()
    attrs = []
    for i, step in enumerate([pd.Timedelta(seconds=300.0), STEP, np.timedelta64(5, "m")]):
        fc = forecast_array(
            np.zeros((1, 2, 4, 5)), issue_times=arc.time.values[[4]], step=step, template=arc
        )
        path = write_forecast(fc, tmp_path / f"f{i}.nc", method="m")
        with netCDF4.Dataset(path) as nc:
            attrs.append(
                (nc["lead_time"].__dict__, nc["lead_time"].dtype, list(nc["lead_time"][:]))
            )
        with xr.open_dataset(path) as ds:
            assert ds.lead_time.dtype == np.dtype("timedelta64[ns]")
    assert attrs[0] == attrs[1] == attrs[2]


def test_per_issue_time_files_combine_with_open_mfdataset(tmp_path):
    arc = _archive()
    for i in (3, 4, 5):
        fc = forecast_array(
            np.full((1, 2, 4, 5), i), issue_times=arc.time.values[[i]], step=STEP, template=arc
        )
        write_forecast(fc, tmp_path / f"p_{i}.nc", method="persistence")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FutureWarning about combine defaults either
        with xr.open_mfdataset(str(tmp_path / "p_*.nc")) as ds:
            assert ds["precipitation_rate"].dims == ("issue_time", "lead_time", "y", "x")
            assert list(ds.issue_time.values) == list(arc.time.values[3:6])
            assert ds["crs"].dims == () and ds.latitude.dims == ("y", "x")
            assert float(ds["precipitation_rate"].sel(issue_time=arc.time.values[5]).mean()) == 5
            assert ds.valid_time.shape == (3, 2)


def test_zarr_is_format_2_consolidated_and_opens_without_warnings(tmp_path):
    import zarr

    arc = _archive()
    fc = forecast_array(
        np.ones((2, 2, 4, 5)), issue_times=arc.time.values[[3, 4]], step=STEP, template=arc
    )
    path = write_forecast(fc, tmp_path / "f.zarr", method="persistence")
    assert (path / ".zmetadata").is_file()
    assert zarr.open_group(str(path), mode="r").metadata.zarr_format == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with xr.open_zarr(path) as ds:
            assert ds.precipitation_rate.sel(issue_time=arc.time.values[4]).shape == (2, 4, 5)
        with xr.open_dataset(path, engine="zarr") as ds:
            assert ds.issue_time.attrs["standard_name"] == "forecast_reference_time"


@pytest.mark.parametrize("n_issue", [1, 2])
def test_reads_files_of_the_earlier_layout(tmp_path, n_issue):
    """(lead_time, y, x) with a scalar forecast_reference_time; or issue_time without a coord."""
    arc = _archive()
    lead = np.array([5, 10], dtype="timedelta64[m]").astype("timedelta64[ns]")
    issue = arc.time.values[3 : 3 + n_issue]
    values = np.arange(n_issue * 2 * 20, dtype="float32").reshape(n_issue, 2, 4, 5)
    var = arc.attrs | {"grid_mapping": "crs"}
    if n_issue == 1:
        ds = xr.Dataset(
            {"precipitation_rate": (("lead_time", "y", "x"), values[0], var)},
            coords={"forecast_reference_time": issue[0], "lead_time": lead},
        )
    else:
        ds = xr.Dataset(
            {"precipitation_rate": (("issue_time", "lead_time", "y", "x"), values, var)},
            coords={"forecast_reference_time": ("issue_time", issue), "lead_time": lead},
        )
    ds = ds.assign_coords(y=arc.y, x=arc.x)
    ds["crs"] = arc.crs.drop_vars([c for c in arc.crs.coords])
    ds.to_netcdf(tmp_path / "old.nc")
    back = read_forecast(tmp_path / "old.nc")
    assert back.dims == ("issue_time", "lead_time", "y", "x")
    assert list(back.issue_time.values) == list(issue)
    np.testing.assert_array_equal(back.values, values)


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


def test_real_batch_outputs_open_as_one_dataset(tmp_path, shared_data):
    """Per-issue-time files of a real radar archive: open_mfdataset, sel, lat/lon masks."""
    from nowcast.archive import open_archive
    from nowcast.methods import forecast_and_write, get_method

    arc = open_archive(shared_data / "radar" / "mch-2016-07-11.nc")
    issues = arc.time.values[[10, 12]]
    for issue in issues:
        stamp = f"{pd.Timestamp(issue):%H%M}"
        forecast_and_write(get_method("persistence"), arc, [issue], 3, tmp_path / f"p_{stamp}.nc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with xr.open_mfdataset(str(tmp_path / "p_*.nc")) as ds:
            rain = ds["precipitation_rate"]
            assert rain.dims == ("issue_time", "lead_time", "y", "x") and rain.shape[:2] == (2, 3)
            one = rain.sel(issue_time=issues[1], lead_time="15min")
            np.testing.assert_array_equal(one.values, arc.sel(time=issues[1]).values)
            # the Swiss composite: about 43.6-49.5 N, 2.7-12.5 E on WGS 84
            lat, lon = ds.latitude.values, ds.longitude.values
            assert 43.5 < lat.min() < 43.8 and 49.3 < lat.max() < 49.6
            assert 2.6 < lon.min() < 2.8 and 12.3 < lon.max() < 12.6
            north = rain.isel(issue_time=0, lead_time=0).where(ds.latitude > 47.0)
            assert 0 < int(north.notnull().sum()) < int(one.notnull().sum())
            assert ds["crs"].attrs["grid_mapping_name"] == "oblique_mercator"
