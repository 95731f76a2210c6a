"""Maps (nowcast.render): real data in every shared projection, truth panels, GIF, offline, CLI."""

from __future__ import annotations

import shutil
import socket
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr
from click.testing import CliRunner
from PIL import Image

from nowcast import products
from nowcast.archive.reader import open_archive
from nowcast.conventions import ISSUE_TIME, LEAD_TIME, TIME
from nowcast.errors import DataError, NowcastError
from nowcast.render import colours
from nowcast.render.animate import render_gif
from nowcast.render.figure import figure_layout
from nowcast.render.mapdata import MissingMapDataWarning, find_map_data
from nowcast.render.maps import forecast_figure, prepare, render_field, render_forecast
from nowcast.render.options import RenderOptions
from nowcast.render.parallel import plan_tasks, render_many
from nowcast.render.projection import lonlat_crs

# key -> (paths under shared/data, kind, frame index with rain / a mid-month hour)
EVENTS = {
    "bom": (
        [
            "radar/bom-66-2020-10-31/66_20201031_04*.nc",
            "radar/bom-66-2020-10-31/66_20201031_05*.nc",
        ],
        "precipitation",
        6,
    ),
    "knmi": (["radar/knmi-2010-08-26.nc"], "precipitation", 0),
    "mch": (["radar/mch-2015-05-15.nc"], "precipitation", 0),
    "fmi": (["radar/fmi-2016-09-28.nc"], "precipitation", 32),
    "rmi": (["radar/rmi-2021-07-04.nc"], "precipitation", 0),
    "era5": (["era5/era5-t2m-2019-03-uk.nc"], "temperature", 300),
}
DPI, FIGSIZE = 60, (6.0, 5.0)  # -> 360 x 300 px


@pytest.fixture(scope="module")
def maps_dir(shared_data) -> Path:
    return shared_data / "maps"


@pytest.fixture(scope="module")
def archives(shared_data):
    cache = {}

    def get(key):
        if key not in cache:
            paths, kind, _ = EVENTS[key]
            cache[key] = open_archive([str(shared_data / p) for p in paths], kind=kind)
        return cache[key]

    return get


def persistence(archive: xr.DataArray, index: int, n_leads: int) -> xr.DataArray:
    """Forecast by hand: the frame at ``index`` repeated for ``n_leads`` leads."""
    frame = archive.isel({TIME: index}).values
    step = archive[TIME].values[1] - archive[TIME].values[0]
    values = np.repeat(frame[None, None], n_leads, axis=1)
    return products.forecast_array(
        values, issue_times=[archive[TIME].values[index]], step=step, template=archive
    )


def edges(archive):
    x, y = archive["x"].values, archive["y"].values
    dx, dy = x[1] - x[0], y[1] - y[0]
    return (x[0] - dx / 2, x[-1] + dx / 2, y[0] - dy / 2, y[-1] + dy / 2)


def map_box(extent, n_panels, size, figsize, dpi, panel=0):
    """Pixel slices (rows, cols) of one map panel in the PNG."""
    x0, y0, w, h = figure_layout(extent, n_panels, figsize=figsize, dpi=dpi).maps[panel]
    W, H = size
    return slice(int(H * (1 - y0 - h)) + 2, int(H * (1 - y0)) - 2), slice(
        int(W * x0) + 2, int(W * (x0 + w)) - 2
    )


def pixel(fig, png: bytes, ax, x, y):
    """RGB of the PNG pixel where data point (x, y) is drawn on ``ax``."""
    px, py = ax.transData.transform((x, y))
    arr = np.asarray(Image.open(__import__("io").BytesIO(png)).convert("RGB"))
    return tuple(int(v) for v in arr[arr.shape[0] - 1 - int(py), int(px)])


@pytest.mark.parametrize("key", list(EVENTS))
def test_map_for_each_shared_dataset(key, archives, maps_dir, tmp_path):
    archive = archives(key)
    index = EVENTS[key][2]
    fc = persistence(archive, index, 2)
    if key != "era5":
        assert float((fc.values[0, 0] > 0.1).mean()) > 0.05  # a frame with rain
    paths = render_forecast(
        fc,
        outdir=tmp_path,
        options=RenderOptions(leads=[2], map_data=maps_dir, dpi=DPI, figsize=FIGSIZE),
    )
    issue = pd.Timestamp(archive[TIME].values[index])
    minutes = int((archive[TIME].values[1] - archive[TIME].values[0]) / np.timedelta64(1, "m")) * 2
    assert [p.name for p in paths] == [
        f"{archive.name}_forecast_{issue:%Y%m%dT%H%M}_lead{minutes:03d}.png"
    ]
    im = Image.open(paths[0]).convert("RGB")
    assert im.size == (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))
    area = np.asarray(im)[map_box(edges(archive), 1, im.size, FIGSIZE, DPI)].astype(int)
    assert area.std() > 10
    colourful = (area.max(axis=2) - area.min(axis=2)) > 60  # data colours, not land/grey/lines
    assert colourful.mean() > 0.01
    assert not list(tmp_path.glob(".*"))  # no temp files left behind

    # the map's extent in its projection is the grid's outer cell edges
    _, fig = forecast_figure(
        fc, lead=1, options=RenderOptions(map_data=maps_dir, dpi=DPI, figsize=FIGSIZE)
    )
    ax = fig.axes[0]
    crs = ax.projection
    want = edges(archive)
    span = max(want[1] - want[0], want[3] - want[2])
    np.testing.assert_allclose(ax.get_extent(crs), want, atol=1e-6 * span)
    assert ax.get_images()[0].get_extent() == pytest.approx(list(want))
    assert any(type(a).__name__ == "FeatureArtist" for a in ax.get_children())  # coastlines
    # a grid corner to lon/lat and back; and against pyproj from the file's WKT
    corner = (want[0], want[2])
    lon, lat = lonlat_crs().transform_point(*corner, crs)
    assert crs.transform_point(lon, lat, lonlat_crs()) == pytest.approx(corner, abs=1e-3)
    gm = archive.coords[archive.attrs["grid_mapping"]].attrs
    if "crs_wkt" in gm:
        ref = pyproj.Transformer.from_crs(
            pyproj.CRS.from_wkt(gm["crs_wkt"]), "EPSG:4326", always_xy=True
        )
        assert (lon, lat) == pytest.approx(ref.transform(*corner), abs=1e-6)
    else:  # BOM: 128 km west and south of the radar at 153.24E 27.72S
        assert (lon, lat) == pytest.approx((151.95, -28.87), abs=0.05)


@pytest.mark.filterwarnings(
    "ignore::nowcast.render.mapdata.MissingMapDataWarning"
)  # no coastlines wanted
@pytest.mark.parametrize(
    ("key", "lonlat", "flip"),
    [
        ("bom", (153.03, -27.47), False),
        ("bom", (153.03, -27.47), True),
        ("mch", (8.54, 47.37), False),
        ("era5", (-1.9, 52.48), False),
    ],
)
def test_field_lands_at_its_place_right_way_up(key, lonlat, flip, archives):
    """A rain block at a known place (Brisbane, Zurich, Birmingham) is drawn at that lon/lat."""
    archive = archives(key).isel({TIME: [0, 1]})
    if key == "era5":
        archive = archive.assign_attrs(units="mm h-1", standard_name="precipitation_rate")
    crs = prepare(persistence(archive, 0, 1)).crs
    mx, my = crs.transform_point(*lonlat, lonlat_crs())
    i = int(np.abs(archive["y"].values - my).argmin())
    j = int(np.abs(archive["x"].values - mx).argmin())
    values = np.zeros(archive.shape[1:], np.float32)
    values[i - 2 : i + 3, j - 2 : j + 3] = 60.0  # class 50-100 mm/h
    fc = products.forecast_array(
        values[None, None],
        issue_times=archive[TIME].values[:1],
        step=np.timedelta64(5, "m"),
        template=archive,
    )
    if flip:  # descending y must be drawn the same way
        fc = fc.isel(y=slice(None, None, -1))
    png, fig = forecast_figure(fc, options=RenderOptions(map_data=None, dpi=DPI, figsize=FIGSIZE))
    ax = fig.axes[0]
    rain = colours.precipitation_style()
    red = tuple(int(round(255 * c)) for c in rain.cmap(rain.norm(60.0))[:3])
    assert red == (200, 0, 0)
    at = pixel(fig, png, ax, archive["x"].values[j], archive["y"].values[i])
    assert np.abs(np.subtract(at, red)).max() <= 12  # (a gridline may cross it)
    # the point mirrored about the grid centre is not red (the field is not upside down)
    x0, x1, y0, y1 = edges(archive)
    mirrored = pixel(fig, png, ax, archive["x"].values[j], y0 + y1 - archive["y"].values[i])
    assert np.abs(np.subtract(mirrored, red)).max() > 60


def test_truth_panels_difference_and_missing_observation(archives, tmp_path):
    archive = archives("mch").isel({TIME: slice(0, 6), "x": slice(200, 500), "y": slice(150, 450)})
    fc = persistence(archive, 4, 3)  # lead 1 observed (index 5); leads 2, 3 beyond the archive
    size = (12.0, 4.5)
    paths = render_forecast(
        fc,
        outdir=tmp_path,
        truth=archive,
        options=RenderOptions(leads=[1, 2], map_data=None, dpi=40, figsize=size),
    )
    assert [p.name.rsplit("_", 1)[1] for p in paths] == ["lead005.png", "lead010.png"]
    assert Image.open(paths[0]).size == (480, 180)

    _, fig = forecast_figure(fc, lead=1, truth=archive, options=RenderOptions(dpi=40, figsize=size))
    maps = [ax for ax in fig.axes if hasattr(ax, "projection")]
    assert [ax.get_title() for ax in maps] == [
        "Observed",
        "Forecast (+5 min)",
        "Forecast − observed",
    ]
    obs, fcst, diff = (ax.get_images()[0].get_array() for ax in maps)
    want_obs = archive.isel({TIME: 5}).values
    np.testing.assert_array_equal(np.ma.filled(obs, np.nan), want_obs)
    np.testing.assert_array_equal(
        np.ma.filled(diff, np.nan), archive.isel({TIME: 4}).values - want_obs
    )
    assert not any("no observation" in t.get_text() for ax in maps for t in ax.texts)

    _, fig = forecast_figure(fc, lead=2, truth=archive, options=RenderOptions(dpi=40, figsize=size))
    maps = [ax for ax in fig.axes if hasattr(ax, "projection")]
    notes = [[t.get_text() for t in ax.texts] for ax in maps]
    assert notes[0] == ["no observation"] and notes[2] == ["no observation"]
    assert [len(ax.get_images()) for ax in maps] == [0, 1, 0]


def test_truth_on_another_grid_is_an_error(archives):
    fc = persistence(archives("mch").isel({TIME: [0, 1]}), 0, 1)
    with pytest.raises(NowcastError, match="not on the forecast's grid"):
        render_forecast(fc, outdir="unused", truth=archives("rmi"))


def test_gif_has_one_frame_per_lead(archives, maps_dir, tmp_path):
    archive = archives("rmi").isel({TIME: slice(0, 4), "x": slice(200, 400), "y": slice(250, 450)})
    fc = persistence(archive, 0, 3)
    path = render_gif(
        fc, outdir=tmp_path, options=RenderOptions(map_data=maps_dir, dpi=40), duration_ms=300
    )
    assert (
        path.name
        == f"precipitation_rate_forecast_{pd.Timestamp(archive[TIME].values[0]):%Y%m%dT%H%M}.gif"
    )
    with Image.open(path) as im:
        assert im.n_frames == 3 and im.info["loop"] == 0 and im.info["duration"] == 300
    path = render_gif(
        fc, path=tmp_path / "two.gif", truth=archive, options=RenderOptions(leads=[1, 3], dpi=40)
    )
    with Image.open(path) as im:
        assert im.n_frames == 2 and im.size[0] > 2 * im.size[1]  # three panels side by side


def test_offline_without_map_data_warns_once_and_never_uses_network(
    archives, tmp_path, monkeypatch
):
    import cartopy
    import cartopy.io

    calls = []

    def no_network(*args, **kwargs):
        calls.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(cartopy.io, "urlopen", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    empty = tmp_path / "no-maps"
    empty.mkdir()
    monkeypatch.setenv("NOWCAST_MAP_DATA", str(empty))  # the implicit search finds nothing
    monkeypatch.setattr("nowcast.render.mapdata.SYSTEM_DIRS", ())
    for key in ("pre_existing_data_dir", "data_dir"):
        monkeypatch.setitem(cartopy.config, key, "")
    fc = persistence(
        archives("knmi").isel({TIME: [0, 1], "x": slice(300, 400), "y": slice(300, 400)}), 0, 2
    )
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        first = render_forecast(fc, outdir=tmp_path / "a", options=RenderOptions(dpi=40))
        second = render_forecast(fc, outdir=tmp_path / "b", options=RenderOptions(dpi=40))
    assert len(first) == len(second) == 2 and all(p.is_file() for p in first + second)
    missing = [w for w in seen if issubclass(w.category, MissingMapDataWarning)]
    assert len(missing) == 1 and "without coastlines" in str(missing[0].message)
    assert calls == []


def test_find_map_data_picks_natural_earth_by_extent(maps_dir, tmp_path, monkeypatch):
    from nowcast.render.mapdata import ne_resolution

    monkeypatch.setenv("NOWCAST_MAP_DATA", str(maps_dir))
    ne = maps_dir / "shapefiles" / "natural_earth"
    swiss = (2.7, 43.6, 12.5, 49.5)  # the MeteoSwiss composite, about 800 km
    europe = (-30.0, 30.0, 45.0, 72.0)  # OPERA, about 4700 km
    assert [ne_resolution(b) for b in (swiss, europe, (-180, -90, 180, 90))] == [
        "10m", "50m", "110m",
    ]  # fmt: skip
    found = find_map_data(bbox=swiss)
    assert found.coastlines == ne / "physical/ne_10m_coastline.shp"
    assert found.lakes == ne / "physical/ne_10m_lakes.shp" and found.land is None
    assert found.borders == ne / "cultural/ne_10m_admin_0_boundary_lines_land.shp"
    assert found.describe() == (
        f"map data: coastlines, lakes, borders from Natural Earth 10m ({maps_dir})"
    )
    assert find_map_data(bbox=europe).source == "Natural Earth 50m"
    with pytest.raises(DataError, match="holds no coastline shapefiles"):
        find_map_data(tmp_path)  # an explicit folder is the only one used, and must hold data
    # only 110m at hand: used for a radar map rather than nothing (finer ones come first)
    only = tmp_path / "coarse" / "shapefiles" / "natural_earth" / "physical"
    only.mkdir(parents=True)
    for f in (ne / "physical").glob("ne_110m_coastline.*"):
        (only / f.name).write_bytes(f.read_bytes())
    found = find_map_data(tmp_path / "coarse", bbox=swiss)
    assert found.source == "Natural Earth 110m" and found.lakes is None and found.borders is None


def test_gshhs_is_the_fallback_and_tints_the_land(maps_dir, tmp_path):
    for scale, level in (("c", 1), ("l", 2)):
        folder = tmp_path / "shapefiles" / "gshhs" / scale
        folder.mkdir(parents=True)
        for f in (maps_dir / "shapefiles" / "gshhs" / scale).glob(f"GSHHS_{scale}_L{level}.*"):
            (folder / f.name).write_bytes(f.read_bytes())
    found = find_map_data(tmp_path, bbox=(2.7, 43.6, 12.5, 49.5))
    assert found.source == "GSHHS (c)" and found.land == found.coastlines
    assert found.lakes.name == "GSHHS_l_L2.shp" and found.borders is None


def test_download_is_an_explicit_choice(tmp_path, monkeypatch):
    import cartopy.io.shapereader as shapereader

    asked = []

    def fake_natural_earth(resolution, category, name):
        asked.append((resolution, category, name))
        return str(tmp_path / "dl" / "shapefiles" / "natural_earth" / category / f"ne_{name}.shp")

    monkeypatch.setattr(shapereader, "natural_earth", fake_natural_earth)
    empty = tmp_path / "none"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no coastline shapefiles"):
        find_map_data(empty, bbox=(2.7, 43.6, 12.5, 49.5))
    assert not asked
    found = find_map_data(empty, bbox=(2.7, 43.6, 12.5, 49.5), download=True)
    assert [a[0] for a in asked] == ["10m"] * 3 and {a[2] for a in asked} == {
        "coastline", "lakes", "admin_0_boundary_lines_land",
    }  # fmt: skip
    assert found.source == "Natural Earth 10m (downloaded by Cartopy)"


def test_swiss_map_draws_natural_earth_borders_lakes_and_says_what_it_shows(archives, maps_dir):
    fc = persistence(archives("mch"), 0, 1)
    _, fig = forecast_figure(
        fc, truth=archives("mch"), options=RenderOptions(map_data=maps_dir, dpi=40)
    )
    for ax in fig.axes[::2][:3]:  # the three map panels (each followed by its colour bar)
        features = [a for a in ax.get_children() if type(a).__name__ == "FeatureArtist"]
        assert len(features) == 3  # coastlines, lakes, borders; no land tint
    text = " ".join(t.get_text() for t in fig.texts)
    assert "Data: MeteoSwiss (via the pySTEPS example archive)" in text
    assert "Map: Natural Earth 10m" in text
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert labels == ["no data (outside coverage)", "dry (< 0.1 mm h$^{-1}$)"]


def test_era5_map_credits_copernicus_and_scales_with_the_data(archives, maps_dir):
    era5 = archives("era5")
    fc = persistence(era5, 300, 1)
    _, fig = forecast_figure(fc, truth=era5, options=RenderOptions(map_data=maps_dir, dpi=40))
    text = " ".join(t.get_text() for t in fig.texts)
    assert "Data: Copernicus Climate Change Service (C3S) ERA5" in text
    image = fig.axes[0].get_images()[0]
    levels = image.norm.boundaries
    celsius = era5.isel(time=[300, 301]).values - 273.15
    lo, hi = np.nanpercentile(celsius, [2, 98])
    assert levels[0] <= lo < levels[1] and levels[-2] < hi <= levels[-1]  # the data's range
    assert 6 <= len(levels) - 1 <= 15  # a handful of classes, not three shades of one colour


def test_render_field_and_bom_km_grid(archives, shared_data, maps_dir, tmp_path):
    era5 = archives("era5")
    path = render_field(
        era5.isel({TIME: 10}),
        path=tmp_path / "t2m.png",
        options=RenderOptions(map_data=maps_dir, dpi=40),
    )
    assert Image.open(path).size[0] > 100
    # BOM straight from one file: x/y in km, y descending -> same extent in metres as the archive
    raw = xr.open_dataset(shared_data / "radar/bom-66-2020-10-31/66_20201031_050000.prcp-c10.nc")
    da = raw["precipitation"].expand_dims(
        {ISSUE_TIME: [raw["valid_time"].values], LEAD_TIME: [np.timedelta64(10, "m")]}
    )
    da = da.assign_coords(proj=raw["proj"]).assign_attrs(grid_mapping="proj", units="mm h-1")
    assert prepare(da).extent == pytest.approx(edges(archives("bom")))


def test_colour_scales():
    rain = colours.precipitation_style()
    assert rain.cmap(rain.norm(0.05))[3] == 0.0  # dry: transparent
    assert rain.cmap(rain.norm(0.15)) == pytest.approx(rain.cmap(0))
    assert rain.ticklabels[:4] == ("0.1", "0.2", "0.5", "1") and rain.ticklabels[-1] == "100"
    assert rain.cmap(rain.norm(np.ma.masked_invalid([np.nan]))[0])[3] > 0  # NaN: grey, visible
    temp = colours.temperature_style(4.2, 11.7)  # a 4-12 degC field: eight 1-degree classes
    levels = temp.norm.boundaries
    np.testing.assert_array_equal(levels, np.arange(4.0, 13.0))
    assert temp.cmap(temp.norm(4.5)) != temp.cmap(temp.norm(11.5))
    # an outlier (a hot pixel) and NaN do not stretch the scale
    assert colours.robust_range(np.r_[np.arange(100.0), 1e4, np.nan]) == (2.0, 98.0)
    convert, units = colours.to_display({"units": "K"})
    assert convert(np.array([273.15]))[0] == pytest.approx(0.0) and units == "°C"
    diff = colours.difference_style(3.0, kind="temperature", units="°C")
    b = diff.norm.boundaries
    np.testing.assert_allclose(b, -b[::-1])
    assert b[-1] == 5.0 and diff.cmap(diff.norm(0.0))[3] == 0.0  # 3 -> a 5-degree scale
    assert (
        colours.difference_style(None, kind="precipitation", units="mm").norm.boundaries[-1] == 20.0
    )


def test_plan_tasks_splits_leads_for_workers():
    assert plan_tasks([12], 1) == [[12]]
    assert plan_tasks([12], 2) == [[3, 3, 3, 3]]
    assert plan_tasks([2, 2, 2, 2], 2) == [[2], [2], [2], [2]]
    assert plan_tasks([2, 3], 2) == [[1, 1], [2, 1]]


@pytest.mark.slow
def test_render_many_two_workers_same_maps(archives, maps_dir, tmp_path):
    archive = archives("mch").isel({TIME: slice(0, 4), "x": slice(300, 380), "y": slice(300, 360)})
    fc = persistence(archive, 0, 2)
    path = products.write_forecast(fc, tmp_path / "fc.nc", method="persistence")
    options = RenderOptions(map_data=maps_dir, dpi=40)
    one = render_many([path], outdir=tmp_path / "one", workers=1, options=options)
    two = render_many([path], outdir=tmp_path / "two", workers=2, options=options)
    assert [p.name for p in one] == [p.name for p in two] and len(one) == 2
    assert "persistence" in one[0].name
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]


# ----------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def small_forecast(archives, tmp_path_factory) -> Path:
    """A 2-lead persistence forecast on a crop of the MCH grid, written as CF NetCDF."""
    archive = archives("mch").isel({TIME: slice(0, 3), "x": slice(300, 364), "y": slice(300, 348)})
    path = tmp_path_factory.mktemp("fc") / "fc.nc"
    products.write_forecast(persistence(archive, 0, 2), path, method="persistence")
    return path


def _cli(args):
    from nowcast.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_render_with_truth_and_gif(small_forecast, shared_data, maps_dir, tmp_path):
    out = tmp_path / "maps"
    res = _cli(
        [
            "render",
            small_forecast,
            "--truth",
            shared_data / "radar/mch-2015-05-15.nc",
            "--leads",
            "1,2",
            "--gif",
            "--output",
            out,
            "--map-data",
            maps_dir,
            "--dpi",
            40,
        ]
    )
    assert res.exit_code == 0, res.output
    said, *lines = res.output.splitlines()
    assert said == f"map data: coastlines, lakes, borders from Natural Earth 10m ({maps_dir})"
    assert len(lines) == 4 and all(Path(p).is_file() for p in lines)
    assert lines[3] == str(out / "index.html")  # the folder's page
    assert lines[0].endswith("_lead005.png") and lines[2].endswith(".gif")
    with Image.open(lines[2]) as im:
        assert im.n_frames == 2


def test_cli_render_two_forecasts_of_one_method_keeps_both(small_forecast, maps_dir, tmp_path):
    # two runs of one method (e.g. its median and its sharp field): the maps are named by
    # their files, not the second over the first
    other = tmp_path / "fc-sharp.nc"
    shutil.copy(small_forecast, other)
    out = tmp_path / "maps"
    args = ["render", small_forecast, other, "--leads", "1", "--output", out]
    res = _cli([*args, "--map-data", maps_dir, "--dpi", 30])
    assert res.exit_code == 0, res.output
    stamp = "20150515T1545_lead005.png"
    assert {p.name for p in out.glob("*.png")} == {
        f"precipitation_rate_persistence-fc_{stamp}",
        f"precipitation_rate_persistence-fc-sharp_{stamp}",
    }


def _write_variant(src: Path, dst: Path, change) -> Path:
    with xr.open_dataset(src) as ds:
        change(ds.load()).to_netcdf(dst)
    return dst


@pytest.mark.parametrize(
    "case", ["no_grid_mapping", "wrong_dims", "not_netcdf", "lead_out_of_range"]
)
def test_cli_bad_forecast_is_one_line_error_and_writes_nothing(case, small_forecast, tmp_path):
    src = small_forecast
    args = []
    if case == "no_grid_mapping":

        def drop(ds):
            ds = ds.drop_vars("crs")
            ds["precipitation_rate"].attrs.pop("grid_mapping", None)
            ds["precipitation_rate"].encoding.pop("grid_mapping", None)
            return ds

        path, expect = _write_variant(src, tmp_path / "bad.nc", drop), "grid_mapping"
    elif case == "wrong_dims":
        path = _write_variant(
            src,
            tmp_path / "bad.nc",
            lambda ds: ds.assign(precipitation_rate=ds["precipitation_rate"].expand_dims(member=2)),
        )
        expect = "dims"
    elif case == "not_netcdf":
        path, expect = tmp_path / "bad.nc", "cannot read forecast"
        path.write_text("this is not NetCDF\n")
    else:
        path, args, expect = src, ["--leads", "1,5"], "lead 5 out of range"
    out = tmp_path / "out"
    res = _cli(["render", path, "--output", out, *args])
    assert res.exit_code == 1, res.output
    assert res.output.startswith("Error:") and len(res.output.strip().splitlines()) == 1
    assert expect in res.output
    assert not out.exists()


def test_cli_bad_leads_syntax(small_forecast, tmp_path):
    res = _cli(["render", small_forecast, "--leads", "1,x", "--output", tmp_path / "o"])
    assert res.exit_code == 2 and "--leads" in res.output
