"""Zarr stores and fsspec URLs through open_archive; write_archive round trips; nowcast convert."""

from __future__ import annotations

import uuid

import dask.array
import fsspec
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from dask_counting import TaskCounter

from nowcast.archive import open_archive, time_step
from nowcast.archive.cf import attrs_equal
from nowcast.archive.sources import expand_sources
from nowcast.archive.synthetic import synthetic_rain, write_synthetic_archive
from nowcast.archive.writer import write_archive
from nowcast.cli import main
from nowcast.errors import DataError


@pytest.fixture
def memfs():
    """fsspec's (process-wide) memory filesystem and a fresh folder in it, removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = f"/t{uuid.uuid4().hex[:8]}"
    fs.mkdir(root)
    yield fs, root
    fs.rm(root, recursive=True)


def assert_same_archive(a: xr.DataArray, b: xr.DataArray):
    """Same values (NaN where NaN), coordinates, attrs and grid mapping; returns both values."""
    assert a.dims == b.dims == ("time", "y", "x") and a.name == b.name
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(a.time.values, b.time.values)
    np.testing.assert_array_equal(a.y.values, b.y.values)
    np.testing.assert_array_equal(a.x.values, b.x.values)
    for c in ("time", "y", "x"):
        assert a[c].attrs == b[c].attrs, c
    assert a.attrs == b.attrs
    gm = a.attrs["grid_mapping"]
    assert b.coords[gm].ndim == 0 and attrs_equal(a.coords[gm].attrs, b.coords[gm].attrs)
    a_values, b_values = a.values, b.values
    np.testing.assert_array_equal(a_values, b_values)  # NaN compare equal here
    return a_values, b_values


# --------------------------------------------------------------------------- real data


def test_bom_folder_to_zarr_reads_back_identically(shared_data, tmp_path):
    nc = open_archive(shared_data / "radar" / "bom-66-2020-10-31")
    path = write_archive(nc, tmp_path / "bom.zarr")
    assert path == tmp_path / "bom.zarr" and (path / ".zmetadata").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["bom.zarr"]  # no temporary left behind
    z = open_archive(path)
    assert z.chunks == ((1,) * 144, (512,), (512,))
    assert z.encoding["source_files"] == (str(path),)
    assert z.attrs["units"] == "mm h-1" and z.attrs["units_original"] == "kg m-2"
    assert (
        z.y.values[0] == -127750.0
        and z.y.attrs["units"] == "m"
        and time_step(z) == pd.Timedelta("10min")
    )
    np.testing.assert_allclose(z.coords["proj"].attrs["standard_parallel"], [-26.2, -29.3])
    assert isinstance(z.coords["proj"].attrs["standard_parallel"], np.ndarray)  # as from NetCDF
    assert "Bureau of Meteorology" in z.attrs["attribution"]
    nc_values, z_values = assert_same_archive(nc, z)
    assert 0 < np.isnan(z_values).sum() == np.isnan(nc_values).sum()  # BOM fill values


def test_knmi_to_zarr_and_netcdf_keeps_nan_coverage(shared_data, tmp_path):
    nc = open_archive(shared_data / "radar" / "knmi-2010-08-26.nc").isel(time=slice(40, 44))
    for name in ("knmi.zarr", "knmi.nc"):
        back = open_archive(write_archive(nc, tmp_path / name))
        assert back.coords["crs"].attrs["grid_mapping_name"] == "polar_stereographic"
        nc_values, values = assert_same_archive(nc, back)
        assert 0.70 < np.isnan(values).mean() < 0.78
        assert np.isnan(values).mean() == np.isnan(nc_values).mean()


# --------------------------------------------------------------------------- URLs


def test_file_and_memory_urls_read_like_paths(tmp_path, memfs):
    fs, root = memfs
    one = write_synthetic_archive(tmp_path / "one.nc", n_times=5, ny=12, nx=16, nan_fraction=0.2)[0]
    ref = open_archive(one)
    assert_same_archive(ref, open_archive(f"file://{one}"))

    fs.put(str(one), f"{root}/one.nc")
    remote = open_archive(f"memory://{root}/one.nc")
    assert remote.encoding["source_files"] == (f"memory://{root}/one.nc",)
    assert_same_archive(ref, remote)

    store = write_archive(ref, tmp_path / "one.zarr")
    fs.put(str(store), f"{root}/one.zarr", recursive=True)
    assert_same_archive(ref, open_archive(f"memory://{root}/one.zarr"))
    assert_same_archive(ref, open_archive(f"file://{store}"))


def test_globs_and_folders_over_urls(tmp_path, memfs):
    fs, root = memfs
    files = write_synthetic_archive(
        tmp_path / "frames", one_file_per_time=True, n_times=4, ny=8, nx=10
    )
    for f in files:
        fs.put(str(f), f"{root}/frames/{f.name}")
    fs.pipe(f"{root}/frames/notes.txt", b"not data")
    ref = open_archive(tmp_path / "frames")
    by_glob = open_archive(f"memory://{root}/frames/*.nc")
    by_folder = open_archive(f"memory://{root}/frames")
    assert len(by_glob.encoding["source_files"]) == len(by_folder.encoding["source_files"]) == 4
    assert_same_archive(ref, by_glob)
    assert_same_archive(ref, by_folder)
    assert expand_sources(f"file://{tmp_path}/frames/*.nc") == files


def test_write_archive_to_memory_urls(memfs):
    fs, root = memfs
    ref = synthetic_rain(n_times=3, ny=6, nx=7, nan_fraction=0.1)
    for name in ("a.zarr", "a.nc"):
        url = f"memory://{root}/{name}"
        assert write_archive(ref, url) == url
        assert_same_archive(ref, open_archive(url))
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls(root, detail=False)) == ["a.nc", "a.zarr"]


# --------------------------------------------------------------------------- CF handling


def test_descending_km_packed_accumulation_zarr(tmp_path):
    """y descending and x/y in km, int16-packed accumulations with a fill value -> rates in m."""
    rate = synthetic_rain(n_times=3, ny=9, nx=11, nan_fraction=0.2)
    amount = rate.values * (5 / 60)  # mm in 5 minutes
    y_km = rate.y.values[::-1] / 1000
    ds = xr.Dataset(
        {
            "acc": (
                ("time", "y", "x"),
                amount[:, ::-1],
                {"units": "kg m-2", "grid_mapping": "crs", "standard_name": "precipitation_amount"},
            ),
            "crs": ((), 0, dict(rate.coords["crs"].attrs)),
        },
        coords={
            "time": rate.time.values,
            "y": ("y", y_km, {"units": "km", "standard_name": "projection_y_coordinate"}),
            "x": (
                "x",
                rate.x.values / 1000,
                {"units": "km", "standard_name": "projection_x_coordinate"},
            ),
        },
        attrs={"accumulation_minutes": 5, "institution": "Test Institute"},
    )
    enc = {"acc": {"dtype": "int16", "scale_factor": 0.01, "_FillValue": np.int16(-1)}}
    ds.to_zarr(
        tmp_path / "acc.zarr", encoding=enc, zarr_format=3, consolidated=False
    )  # v3, unlike ours

    da = open_archive(tmp_path / "acc.zarr")
    np.testing.assert_array_equal(da.y.values, rate.y.values)  # ascending again, metres
    np.testing.assert_array_equal(da.x.values, rate.x.values)
    assert da.y.attrs["units"] == "m" and da.x.attrs["units"] == "m"
    assert da.attrs["units"] == "mm h-1" and da.attrs["units_original"] == "kg m-2"
    assert da.attrs["cell_methods"] == "time: mean (interval: 5 minutes)"
    assert da.attrs["attribution"] == "Test Institute" and da.attrs["grid_mapping"] == "crs"
    expected = np.round(amount / 0.01) * 0.01 * 12  # packed to 0.01 mm, then per hour
    values = da.values
    np.testing.assert_array_equal(np.isnan(values), np.isnan(rate.values))
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.nanmax(np.abs(values - rate.values)) <= 0.01 * 12 / 2 + 1e-4


def test_open_zarr_is_lazy_and_chunked_like_the_store(tmp_path):
    ref = synthetic_rain(n_times=6, ny=10, nx=12)
    store = write_archive(ref, tmp_path / "s.zarr", chunks=2)
    with TaskCounter() as counter:
        da = open_archive(store)
        auto = open_archive(store, chunks="auto")
    assert counter.n == 0
    assert isinstance(da.data, dask.array.Array)
    assert da.chunks == ((1,) * 6, (10,), (12,)) and auto.chunks == ((6,), (10,), (12,))
    with TaskCounter() as counter:
        frame = da.isel(time=3).values
    assert counter.n > 0
    np.testing.assert_array_equal(frame, ref.values[3])


def test_netcdf_and_zarr_sources_combine_in_time_order(tmp_path):
    ref = synthetic_rain(n_times=6, ny=8, nx=9, nan_fraction=0.1)
    late = write_archive(ref.isel(time=slice(3, 6)), tmp_path / "late.zarr")
    early = write_synthetic_archive(tmp_path / "early.nc", data=ref.isel(time=slice(0, 3)))[0]
    da = open_archive([late, early])
    assert da.encoding["source_files"] == (str(late), str(early))
    np.testing.assert_array_equal(da.time.values, ref.time.values)
    np.testing.assert_array_equal(da.values, ref.values)


def test_rewriting_a_store_replaces_it(tmp_path):
    first = synthetic_rain(n_times=2, ny=5, nx=5, seed=1)
    second = synthetic_rain(n_times=3, ny=5, nx=5, seed=2)
    path = tmp_path / "s.zarr"
    write_archive(first, path)
    write_archive(open_archive(path), path)  # in place: read completely before the swap
    assert_same_archive(first, open_archive(path))
    write_archive(second, path)
    assert_same_archive(second, open_archive(path))
    assert [p.name for p in tmp_path.iterdir()] == ["s.zarr"]


# --------------------------------------------------------------------------- bad input


def _one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(DataError, match=r"^[^\n]+$") as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_stores_and_urls(tmp_path):
    assert "Zarr store not found" in _one_line_error(open_archive, tmp_path / "missing.zarr")
    store = write_archive(synthetic_rain(n_times=2, ny=4, nx=4), tmp_path / "s.zarr")
    msg = _one_line_error(open_archive, store, variable="rain")
    assert "no variable 'rain'" in msg and "crs, precipitation_rate, time, x, y" in msg
    holed = synthetic_rain(n_times=2, ny=4, nx=4).to_dataset()
    holed["x"] = holed.x.where(holed.x < 1000)  # the last x is NaN
    holed.to_zarr(tmp_path / "holed.zarr", zarr_format=2, consolidated=False)
    assert "missing values in coordinate 'x'" in _one_line_error(
        open_archive, tmp_path / "holed.zarr"
    )
    (tmp_path / "empty.zarr").mkdir()
    assert "not a readable Zarr store" in _one_line_error(open_archive, tmp_path / "empty.zarr")
    assert "Protocol not known" in _one_line_error(open_archive, "nosuchprotocol://a/b.nc")
    assert "path not found" in _one_line_error(
        open_archive, f"memory://nope-{uuid.uuid4().hex}/x.nc"
    )
    assert "output must end in .zarr" in _one_line_error(
        write_archive, synthetic_rain(n_times=1, ny=2, nx=2), tmp_path / "x.txt"
    )


# --------------------------------------------------------------------------- CLI


def test_cli_convert_folder_to_zarr(tmp_path):
    write_synthetic_archive(tmp_path / "frames", one_file_per_time=True, n_times=5, ny=8, nx=10)
    out = tmp_path / "out.zarr"
    result = CliRunner().invoke(
        main, ["convert", str(tmp_path / "frames"), "-o", str(out), "--frames-per-chunk", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "5 frames of 8 x 10 from 5 source(s)" in result.output
    assert_same_archive(open_archive(tmp_path / "frames"), open_archive(out))
    assert open_archive(out, chunks=2).chunks[0] == (2, 2, 1)
    bad = CliRunner().invoke(
        main, ["convert", str(tmp_path / "none.zarr"), "-o", str(tmp_path / "x.zarr")]
    )
    assert bad.exit_code == 1 and bad.output.startswith("Error: Zarr store not found")
