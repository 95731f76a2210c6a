"""`nowcast render --point`: time series at a place, on the real MeteoSwiss and ERA5 archives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image
from safety_helpers import cli

ISSUES = ["2016-07-11T21:30", "2016-07-11T21:45"]


@pytest.fixture(scope="module")
def mch(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("point")
    src = shared_data / "radar" / "mch-2016-07-11.nc"
    paths = []
    for method in ("persistence", "extrapolation"):
        path = root / f"{method}.nc"
        times = [a for t in ISSUES for a in ("--issue-time", t)]
        res = cli("predict", "--method", method, "-i", src, *times, "--leads", "6", "-o", path)
        assert res.exit_code == 0, res.output
        paths.append(path)
    return src, paths


def _nearest(ds: xr.Dataset, lat: float, lon: float) -> tuple[int, int]:
    """The pixel nearest (lat, lon) by the file's own 2-D latitude/longitude."""
    d = (ds.latitude.values - lat) ** 2 + (
        (ds.longitude.values - lon) * np.cos(np.radians(lat))
    ) ** 2
    return np.unravel_index(np.argmin(d), d.shape)


def test_point_series_csv_and_plot(mch, tmp_path):
    src, paths = mch
    out = tmp_path / "series"
    res = cli("render", *paths, "--truth", src, "--point", "Zurich", "--point", "47.0,7.3",
               "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert res.output.split() == [str(out / n) for n in (
        "point_Zurich.png", "point_Zurich.csv", "point_47.00-N-7.30-E.png",
        "point_47.00-N-7.30-E.csv", "index.html",
    )]  # fmt: skip
    table = pd.read_csv(out / "point_47.00-N-7.30-E.csv", parse_dates=["issue_time", "valid_time"])
    fc = table[table.method != "observed"]
    assert len(fc) == 2 * 2 * 6 and set(fc.method) == {"persistence", "extrapolation"}
    with xr.open_dataset(paths[1]) as ds:
        iy, ix = _nearest(ds, 47.0, 7.3)
        want = ds.precipitation_rate.isel(y=iy, x=ix).values  # (issue, lead)
    got = fc[fc.method == "extrapolation"].sort_values(["issue_time", "lead_minutes"]).value
    np.testing.assert_allclose(got.to_numpy(), want.ravel(), rtol=1e-3, atol=1e-4)
    # observations from one horizon (30 min) before the first issue time to the last valid time
    obs = table[table.method == "observed"]
    assert obs.valid_time.min() == pd.Timestamp("2016-07-11T21:00Z")
    assert obs.valid_time.max() == pd.Timestamp("2016-07-11T22:15Z") and len(obs) == 16
    with xr.open_dataset(src) as truth:
        assert float(obs.value.iloc[-1]) == pytest.approx(
            float(truth.precipitation_rate.sel(time="2016-07-11T22:15").isel(y=iy, x=ix)), rel=1e-3
        )
    with Image.open(out / "point_Zurich.png") as im:
        assert im.size == (800, 420)


def test_neighbourhood_mean(mch, tmp_path):
    _, paths = mch
    res = cli("render", paths[0], "--point", "47.0,7.3", "--neighbourhood", "3", "-o", tmp_path)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "point_47.00-N-7.30-E.csv")
    with xr.open_dataset(paths[0]) as ds:
        iy, ix = _nearest(ds, 47.0, 7.3)
        box = ds.precipitation_rate.isel(issue_time=0, lead_time=0).values[
            iy - 1 : iy + 2, ix - 1 : ix + 2
        ]
    assert table.value.iloc[0] == pytest.approx(np.nanmean(box), rel=1e-3)
    res = cli("render", paths[0], "--point", "47.0,7.3", "--neighbourhood", "2", "-o", tmp_path)
    assert res.exit_code == 1 and "odd number of pixels" in res.output


def test_points_outside_the_grid_or_coverage_are_one_line_errors(mch, tmp_path):
    _, paths = mch
    with xr.open_dataset(paths[0]) as ds:
        field = ds.precipitation_rate.isel(issue_time=0, lead_time=0).values
        lat, lon = float(ds.latitude[0, 0]), float(ds.longitude[0, 0])  # a corner: no radar
    assert np.isnan(field[0, 0])
    out = tmp_path / "none"
    for point, message in (
        ("60.2,24.9", "point 60.20°N 24.90°E is outside the persistence forecast's grid"),
        (f"{lat},{lon}", "is outside the data coverage (NaN in every forecast)"),
        ("Atlantis", "is neither LAT,LON nor a known place"),
        ("95,10", "latitude must be in -90..90"),
    ):
        res = cli("render", paths[0], "--point", point, "-o", out)
        assert res.exit_code == 1, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0]
    assert not out.exists()


def test_places_csv(mch, tmp_path):
    _, paths = mch
    places = tmp_path / "places.csv"
    places.write_text("name,lat,lon\nThun,46.758,7.628\n")
    res = cli("render", paths[0], "--places", places, "--point", "thun", "-o", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "point_thun.csv").is_file()
    places.write_text("town,x\nThun,1\n")
    res = cli("render", paths[0], "--places", places, "--point", "Thun", "-o", tmp_path / "o")
    assert res.exit_code == 1 and "columns name,latitude,longitude" in res.output


def test_temperature_point_on_a_lat_lon_grid(shared_data, tmp_path):
    src = shared_data / "era5" / "era5-t2m-2019-03-uk.nc"
    fc = tmp_path / "t2m.nc"
    res = cli("predict", "--method", "persistence", "-i", src, "--issue-time",
               "2019-03-20T12:00", "--leads", "3", "-o", fc)  # fmt: skip
    assert res.exit_code == 0, res.output
    res = cli("render", fc, "--truth", src, "--point", "London", "-o", tmp_path)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "point_London.csv")
    with xr.open_dataset(src) as ds:  # latitude descending in the file, 0.25 degree grid
        want = float(ds.t2m.sel(time="2019-03-20T12:00").sel(latitude=51.5074, longitude=-0.1278,
                                                             method="nearest"))  # fmt: skip
    np.testing.assert_allclose(table[table.method == "persistence"].value, want, rtol=1e-5)
