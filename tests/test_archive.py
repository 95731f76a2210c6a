"""open_archive on the real archives (BOM, KNMI, MCH, ERA5) and on bad input; the time axis."""

from __future__ import annotations

import shutil
import warnings

import dask.array
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from dask_counting import TaskCounter

import nowcast.archive.reader as archive_mod
from nowcast.archive import contiguous_segments, find_gaps, open_archive, time_step
from nowcast.archive.cf import precipitation_units
from nowcast.archive.synthetic import synthetic_rain, write_synthetic_archive
from nowcast.errors import DataError

BOM_FILE = "66_20201031_{}.prcp-c10.nc"


@pytest.fixture(scope="module")
def bom_dir(shared_data):
    return shared_data / "radar" / "bom-66-2020-10-31"


@pytest.fixture(scope="module")
def bom(bom_dir):
    return open_archive(bom_dir)


def _bom_raw(path):
    """(decoded accumulation, raw packed ints, y km, x km, valid time) straight from netCDF4."""
    with netCDF4.Dataset(path) as ds:
        acc = ds["precipitation"][:]
        var = ds["precipitation"]
        var.set_auto_maskandscale(False)
        raw = var[:]
        t = pd.Timestamp(int(ds["valid_time"][...]), unit="s")
        return acc, raw, ds["y"][:].data, ds["x"][:].data, t


# --------------------------------------------------------------------------- real data


def test_bom_grid_time_and_metadata(bom):
    assert bom.dims == ("time", "y", "x")
    assert bom.sizes["time"] == 144 and bom.shape[1:] == (512, 512)
    assert bom.dtype == np.float32
    assert time_step(bom) == pd.Timedelta("10min")
    assert bom.time.values[0] == np.datetime64("2020-10-31T00:00")
    assert find_gaps(bom) == []
    # km -> m, y flipped to ascending (the file's y runs 127.75 .. -127.75 km)
    assert np.all(np.diff(bom.y.values) == 500.0) and np.all(np.diff(bom.x.values) == 500.0)
    assert (
        bom.y.values[0] == -127750.0 and bom.x.attrs["units"] == "m" and bom.y.attrs["units"] == "m"
    )
    assert bom.attrs["units"] == "mm h-1" and bom.attrs["units_original"] == "kg m-2"
    assert bom.attrs["grid_mapping"] == "proj"
    proj = bom.coords["proj"]
    assert proj.ndim == 0
    assert proj.attrs["grid_mapping_name"] == "albers_conical_equal_area"
    np.testing.assert_allclose(proj.attrs["standard_parallel"], [-26.2, -29.3])
    assert "Bureau of Meteorology" in bom.attrs["attribution"]
    assert "licence" in bom.attrs["attribution"]


def test_bom_rate_is_accumulation_times_six(bom, bom_dir):
    acc, raw, y_km, x_km, t = _bom_raw(bom_dir / BOM_FILE.format("014000"))
    i, j = np.unravel_index(np.ma.argmax(acc), acc.shape)
    assert acc[i, j] > 5  # a pixel with rain: 9.6 mm in 10 min
    value = bom.sel(time=t, y=y_km[i] * 1000, x=x_km[j] * 1000).values
    np.testing.assert_allclose(value, acc[i, j] * 6, rtol=1e-6)
    # whole frame: flipped in y, scaled by 6, fill -> NaN
    frame = bom.sel(time=t).values
    np.testing.assert_allclose(frame, (acc.filled(np.nan) * 6)[::-1], rtol=1e-6)


def test_bom_fill_is_nan_and_negative_is_zero(bom, bom_dir):
    acc, raw, y_km, x_km, t = _bom_raw(bom_dir / BOM_FILE.format("004000"))
    assert raw[301, 216] == -1 and raw[302, 217] == -2  # _FillValue, and a packed -0.1 mm
    frame = bom.sel(time=t)
    assert np.isnan(frame.sel(y=y_km[301] * 1000, x=x_km[216] * 1000).values)
    assert frame.sel(y=y_km[302] * 1000, x=x_km[217] * 1000).values == 0.0


def test_open_is_lazy(bom_dir, monkeypatch):
    reads = []
    real = archive_mod.read_block
    monkeypatch.setattr(archive_mod, "read_block", lambda *a, **k: reads.append(a) or real(*a, **k))
    with TaskCounter() as counter:
        da = open_archive(bom_dir)
    assert counter.n == 0 and reads == []
    assert isinstance(da.data, dask.array.Array)
    assert da.chunks == ((1,) * 144, (512,), (512,))
    with TaskCounter() as counter:
        da.isel(time=3).compute()
    assert counter.n > 0 and len(reads) == 1  # one frame, one file read


def test_knmi_keeps_nan_coverage(shared_data):
    path = shared_data / "radar" / "knmi-2010-08-26.nc"
    da = open_archive(path)
    assert da.sizes["time"] == 92 and time_step(da) == pd.Timedelta("5min")
    np.testing.assert_array_equal(da.time.values, xr.open_dataset(path).time.values)
    assert da.attrs["units"] == "mm h-1" and da.attrs["units_original"] == "mm h-1"
    assert da.coords["crs"].attrs["grid_mapping_name"] == "polar_stereographic"
    assert "crs_wkt" in da.coords["crs"].attrs
    frame = da.isel(time=40).values
    with netCDF4.Dataset(path) as ds:
        raw = np.ma.filled(ds["precipitation_rate"][40], np.nan)
    assert 0.70 < np.isnan(frame).mean() < 0.78
    np.testing.assert_array_equal(np.isnan(frame), np.isnan(raw))  # y already ascending
    np.testing.assert_array_equal(frame[~np.isnan(frame)], raw[~np.isnan(raw)])


def test_era5_latitude_ascending_and_values(shared_data):
    path = shared_data / "era5" / "era5-t2m-2019-03-uk.nc"
    da = open_archive(path, kind="temperature")
    assert da.y.values[0] == 50.0 and da.y.values[-1] == 58.0 and np.all(np.diff(da.y) > 0)
    assert da.y.attrs["standard_name"] == "latitude" and da.x.attrs["standard_name"] == "longitude"
    assert da.attrs["units"] == "K" and da.attrs["units_original"] == "K"
    assert time_step(da) == pd.Timedelta("1h") and da.sizes["time"] == 744
    np.testing.assert_array_equal(da.time.values, xr.open_dataset(path).time.values)
    assert da.coords["crs"].attrs["grid_mapping_name"] == "latitude_longitude"
    assert da.attrs["grid_mapping"] == "crs"
    with netCDF4.Dataset(path) as ds:
        lat, lon = ds["latitude"][:], ds["longitude"][:]
        i, j = int(np.flatnonzero(lat == 55.0)[0]), int(np.flatnonzero(lon == -3.0)[0])
        expected = ds["t2m"][9 * 24 + 12, i, j]  # 2019-03-10 12:00
    got = da.sel(time="2019-03-10T12:00", y=55.0, x=-3.0).values
    assert got == pytest.approx(float(expected))
    # dask slicing of the lazy reader (steps, reversed, lists, ints) matches xarray's own read
    ref = xr.open_dataset(path)["t2m"].isel(latitude=slice(None, None, -1)).values
    for key in [
        (5, slice(3, 10), slice(2, 40, 3)),
        (slice(10, 20), 4),
        (slice(0, 30), slice(30, 2, -2), [1, 5, 7]),
    ]:
        np.testing.assert_array_equal(da.data[key].compute(), ref[key])


def test_two_events_sorted_with_one_gap(shared_data):
    radar = shared_data / "radar"
    da = open_archive([radar / "mch-2016-07-11.nc", str(radar / "mch-2015-*.nc")])
    assert da.sizes["time"] == 80 and np.all(np.diff(da.time.values) > np.timedelta64(0))
    assert find_gaps(da) == [(pd.Timestamp("2015-05-15T19:00"), pd.Timestamp("2016-07-11T20:45"))]
    assert contiguous_segments(da) == [slice(0, 40), slice(40, 80)]


def test_missing_bom_file_is_a_gap(bom_dir, tmp_path):
    removed = BOM_FILE.format("120000")
    for f in sorted(bom_dir.glob("*.nc")):
        if f.name != removed:
            shutil.copy(f, tmp_path / f.name)
    da = open_archive(tmp_path)
    assert da.sizes["time"] == 143
    assert time_step(da) == pd.Timedelta("10min")
    assert find_gaps(da) == [(pd.Timestamp("2020-10-31T11:50"), pd.Timestamp("2020-10-31T12:10"))]
    assert contiguous_segments(da) == [slice(0, 72), slice(72, 143)]


# --------------------------------------------------------------------------- bad input


def test_empty_glob_missing_path_empty_dir(tmp_path):
    with pytest.raises(DataError, match="no files match"):
        open_archive(str(tmp_path / "*.nc"))
    with pytest.raises(DataError, match="path not found"):
        open_archive(tmp_path / "nope.nc")
    with pytest.raises(DataError, match="no NetCDF files"):
        open_archive(tmp_path)
    with pytest.raises(DataError, match="no input paths"):
        open_archive([])


def test_missing_variable_lists_variables(shared_data):
    with pytest.raises(DataError, match="'rain'") as err:
        open_archive(shared_data / "radar" / "knmi-2010-08-26.nc", variable="rain")
    msg = str(err.value)
    assert "'rain'" in msg and "precipitation_rate" in msg and "crs" in msg and "\n" not in msg


def test_truncated_and_text_files_are_named(shared_data, tmp_path):
    good = write_synthetic_archive(tmp_path / "a_good.nc", n_times=2, ny=8, nx=8)[0]
    trunc = tmp_path / "b_truncated.nc"
    trunc.write_bytes((shared_data / "radar" / "knmi-2010-08-26.nc").read_bytes()[:1000])
    with pytest.raises(DataError, match="b_truncated.nc"):
        open_archive(tmp_path)
    text = tmp_path / "notes.nc"
    text.write_text("this is not NetCDF\n")
    with pytest.raises(DataError, match="notes.nc: not a readable NetCDF"):
        open_archive([good, text])


def test_mismatched_grid_names_first_differing_file(tmp_path):
    write_synthetic_archive(tmp_path / "a.nc", n_times=2, ny=8, nx=8)
    write_synthetic_archive(tmp_path / "b.nc", n_times=2, ny=8, nx=8, start="2021-06-01T13:00")
    write_synthetic_archive(tmp_path / "c.nc", n_times=2, ny=8, nx=8, spacing=2000.0)
    write_synthetic_archive(tmp_path / "d.nc", n_times=2, ny=9, nx=8)
    with pytest.raises(DataError, match=r"c\.nc: grid differs from .*a\.nc"):
        open_archive(tmp_path)
    moved = synthetic_rain(n_times=2, ny=8, nx=8)
    moved.coords["crs"].attrs["latitude_of_projection_origin"] = 40.0
    write_synthetic_archive(tmp_path / "e.nc", data=moved)
    with pytest.raises(DataError, match="e.nc: grid differs .*grid mapping"):
        open_archive([tmp_path / "a.nc", tmp_path / "e.nc"])


def test_duplicate_times_warn_and_keep_first(tmp_path):
    a = synthetic_rain(n_times=4, ny=8, nx=8, seed=1)
    b = synthetic_rain(n_times=4, ny=8, nx=8, seed=2, start="2021-06-01T12:10")
    write_synthetic_archive(tmp_path / "a.nc", data=a)
    write_synthetic_archive(tmp_path / "b.nc", data=b)
    with pytest.warns(UserWarning, match="2 duplicate time"):
        da = open_archive(tmp_path)
    assert da.sizes["time"] == 6 and time_step(da) == pd.Timedelta("5min")
    np.testing.assert_array_equal(da.sel(time="2021-06-01T12:10").values, a.isel(time=2).values)
    np.testing.assert_array_equal(da.sel(time="2021-06-01T12:25").values, b.isel(time=3).values)


def test_no_time_and_ambiguous_variable(tmp_path):
    ds = xr.Dataset(
        {
            "a": (("y", "x"), np.ones((3, 4), np.float32)),
            "b": (("y", "x"), np.zeros((3, 4), np.float32)),
        },
        coords={
            "y": ("y", [0.0, 1.0, 2.0], {"units": "m"}),
            "x": ("x", np.arange(4.0), {"units": "m"}),
        },
    )
    ds["a"].attrs["units"] = "mm h-1"
    ds.to_netcdf(tmp_path / "f.nc")
    with pytest.raises(DataError, match="several data variables .*a, b"):
        open_archive(tmp_path / "f.nc")
    with pytest.raises(DataError, match="f.nc: no time information"):
        open_archive(tmp_path / "f.nc", variable="a")


# --------------------------------------------------------------------------- units


def _accumulation_file(path, units, *, bounds=True, minutes_attr=None):
    da = synthetic_rain(n_times=3, ny=6, nx=5, step="5min")
    ds = da.to_dataset(name="rain")
    ds["rain"].attrs = {
        "units": units,
        "standard_name": "precipitation_amount",
        "grid_mapping": "crs",
    }
    if bounds:
        t = ds.time.values
        ds["time_bnds"] = (("time", "nv"), np.stack([t - np.timedelta64(5, "m"), t], axis=1))
        ds.time.attrs["bounds"] = "time_bnds"
    if minutes_attr is not None:
        ds.attrs["accumulation_minutes"] = minutes_attr
    units = {"units": "seconds since 2021-01-01", "dtype": "int64"}
    ds.to_netcdf(path, encoding={"time": units, **({"time_bnds": units} if bounds else {})})
    return da


def test_accumulation_with_time_bounds_becomes_rate(tmp_path, monkeypatch):
    monkeypatch.setenv("NOWCAST_MAX_RAIN", "inf")  # synthetic amounts as rates exceed 500 mm/h
    da = _accumulation_file(tmp_path / "acc.nc", "kg m-2")
    out = open_archive(tmp_path / "acc.nc")
    np.testing.assert_allclose(out.values, da.values * 12, rtol=1e-6)  # 5 min -> x12
    assert out.attrs["units"] == "mm h-1" and out.attrs["units_original"] == "kg m-2"
    assert out.attrs["standard_name"] == "precipitation_rate"
    assert out.attrs["cell_methods"] == "time: mean (interval: 5 minutes)"


def test_accumulation_minutes_attr_and_flux_units(tmp_path, monkeypatch):
    monkeypatch.setenv("NOWCAST_MAX_RAIN", "inf")  # synthetic amounts as rates exceed 500 mm/h
    da = _accumulation_file(tmp_path / "acc.nc", "mm", bounds=False, minutes_attr=15.0)
    np.testing.assert_allclose(open_archive(tmp_path / "acc.nc").values, da.values * 4, rtol=1e-6)
    da = _accumulation_file(tmp_path / "flux.nc", "kg m-2 s-1", bounds=False)
    np.testing.assert_allclose(
        open_archive(tmp_path / "flux.nc").values, da.values * 3600, rtol=1e-6
    )


def test_precipitation_unit_table():
    assert precipitation_units("mm/h") == ("rate", 1.0)
    assert precipitation_units("mm h**-1") == ("rate", 1.0)
    assert precipitation_units("kg m-2 s-1") == ("rate", 3600.0)
    assert precipitation_units("kg m-2") == ("amount", 1.0)
    assert precipitation_units("m") == ("amount", 1000.0)
    with pytest.raises(ValueError, match="units 'K' are not precipitation rate or amount units"):
        precipitation_units("K")


# --------------------------------------------------------------------------- time axis


def test_time_axis_helpers_by_hand():
    t = pd.DatetimeIndex([f"2020-01-01 00:{m:02d}" for m in (0, 5, 10, 20, 25, 27, 32)])
    assert time_step(t) == pd.Timedelta("5min")
    ts = [pd.Timestamp(f"2020-01-01 00:{m:02d}") for m in (10, 20, 25, 27)]
    assert find_gaps(t) == [(ts[0], ts[1]), (ts[2], ts[3])]
    assert contiguous_segments(t) == [slice(0, 3), slice(3, 5), slice(5, 7)]
    assert contiguous_segments(t[:1]) == [slice(0, 1)] and find_gaps(t[:1]) == []
    tie = pd.DatetimeIndex(["2020-01-01 00:00", "2020-01-01 00:05", "2020-01-01 00:15"])
    assert time_step(tie) == pd.Timedelta("5min")  # tie -> the smaller step
    with pytest.raises(DataError, match="cannot find a time step from 1 time"):
        time_step(t[:1])


def test_synthetic_gap_via_directory(tmp_path):
    da = synthetic_rain(n_times=6, ny=8, nx=8)
    write_synthetic_archive(tmp_path, one_file_per_time=True, data=da.isel(time=[0, 1, 2, 4, 5]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = open_archive(tmp_path)
    assert out.chunks[0] == (1,) * 5
    assert contiguous_segments(out) == [slice(0, 3), slice(3, 5)]
    assert find_gaps(out) == [(pd.Timestamp(da.time.values[2]), pd.Timestamp(da.time.values[4]))]
