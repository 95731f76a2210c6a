"""Regions (nowcast.region, predict --region, a batch's region): parsing, placing on a real
grid, forecasts of a part of a composite on enough context, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from nowcast.archive import open_archive
from nowcast.errors import ConfigError, NowcastError
from nowcast.geo import lonlat_grid
from nowcast.methods import get_method
from nowcast.methods.regions import check_region, locate_region
from nowcast.region import MIN_MARGIN_PIXELS, margin_pixels, parse_region
from tests.safety_helpers import ISSUE, listing, one_line_error, predict

#: Bern to Lucerne, inside the MeteoSwiss composite
BOX = "7.0,46.6,8.4,47.2"


@pytest.fixture(scope="module")
def mch(shared_data):
    return open_archive(shared_data / "radar" / "mch-2016-07-11.nc")


def test_parse_region_spellings():
    r = parse_region(" 5.9, 45.8 ,10.5,47.8 ")
    assert (r.west, r.south, r.east, r.north, r.units) == (5.9, 45.8, 10.5, 47.8, "degrees")
    assert parse_region("5.9,45.8,10.5,47.8deg").geographic
    km = parse_region("480,75,840,300km")
    assert (km.units, km.west, km.north) == ("km", 480.0, 300.0) and not km.geographic
    assert parse_region("-1e5,2e5,3.5e5,4e5 m").units == "m"


@pytest.mark.parametrize(
    "text, message",
    [
        ("5,45,10", "give WEST,SOUTH,EAST,NORTH"),
        ("a,b,c,d", "give WEST,SOUTH,EAST,NORTH"),
        ("5,45,5,47", "is empty"),
        ("10,45,5,47", "is inverted"),
        ("5,47,10,45", "is inverted"),
        ("480000,75000,840000,300000", "longitudes must be in -180..360"),
        ("5,45,10,47miles", "unknown units 'miles'"),
        ("nan,45,10,47", "give WEST,SOUTH,EAST,NORTH"),
    ],
)
def test_parse_region_errors(text, message):
    with pytest.raises(NowcastError, match=message) as info:
        parse_region(text)
    assert "\n" not in str(info.value)


def test_region_on_the_mch_grid(mch):
    """A lon/lat box covers the pixels whose centres are in it; the same box in the grid's
    coordinates, in m or km, gives the same pixels; the context grows by the motion margin."""
    method = get_method("extrapolation")
    window = locate_region(method, mch, parse_region(BOX), 12)
    ys, xs = window.region
    lon, lat = lonlat_grid(mch.coords["crs"].attrs, mch.x.values, mch.y.values)
    inside = (lon >= 7.0) & (lon <= 8.4) & (lat >= 46.6) & (lat <= 47.2)
    rows, cols = np.nonzero(inside)
    assert ys.start <= rows.min() and rows.max() < ys.stop
    assert xs.start <= cols.min() and cols.max() < xs.stop
    assert 50 < window.shape[0] < 120 and 80 < window.shape[1] < 150
    # (12 leads + 3 inputs) x 5 min at 100 km/h over 1 km pixels
    margin = margin_pixels(1000.0, 15 * 5 / 60)
    assert margin == 125
    assert window.context[1].start == max(0, xs.start - margin)
    x0, x1 = mch.x.values[xs.start], mch.x.values[xs.stop - 1]
    y0, y1 = mch.y.values[ys.start], mch.y.values[ys.stop - 1]
    for text in (f"{x0},{y0},{x1},{y1}m", f"{x0 / 1000},{y0 / 1000},{x1 / 1000},{y1 / 1000}km"):
        again = locate_region(method, mch, parse_region(text), 12)
        assert again.region == window.region
    assert margin_pixels(2000.0, 0.1) == MIN_MARGIN_PIXELS
    assert margin_pixels(1000.0, 1.0, extra=76) == 176


@pytest.mark.parametrize(
    "box, message",
    [
        ("150,-30,152,-28", "is outside the grid, which covers x"),
        ("7.5,46.9,7.5001,46.9001", "holds no grid cell centre"),
    ],
)
def test_region_errors_on_the_grid(mch, box, message):
    with pytest.raises(NowcastError, match=message):
        check_region(mch, parse_region(box))


def test_grid_coordinates_in_the_wrong_units_get_a_hint(mch):
    x, y = mch.x.values, mch.y.values
    km_as_m = f"{x[100] / 1000},{y[100] / 1000},{x[200] / 1000},{y[200] / 1000}m"
    with pytest.raises(NowcastError, match=r"outside the grid.*are its numbers in km\?"):
        check_region(mch, parse_region(km_as_m))


def test_lonlat_grid_takes_degrees_only(shared_data):
    era5 = open_archive(shared_data / "era5" / "era5-t2m-2019-03-uk.nc")
    check_region(era5, parse_region("-3,51,0,53"))
    with pytest.raises(NowcastError, match="grid's coordinates are longitude/latitude"):
        check_region(era5, parse_region("-3,51,0,53km"))


def test_predict_region_persistence_is_the_full_forecast_cut(mch, tmp_path):
    """Persistence moves nothing: the region's forecast is the whole grid's, cut out; the
    file holds the region's grid (coordinates, grid mapping) and says what was read."""
    out = tmp_path / "region.nc"
    res = predict(mch.encoding["source"], out, "--method", "persistence", "--issue-time", ISSUE,
                  "--leads", "2", "--region", BOX)  # fmt: skip
    assert res.exit_code == 0, res.output
    with xr.open_dataset(out) as ds:
        fc = ds["precipitation_rate"].load()
        window = locate_region(get_method("persistence"), mch, parse_region(BOX), 2)
        ys, xs = window.region
        np.testing.assert_array_equal(fc.x.values, mch.x.values[xs])
        np.testing.assert_array_equal(fc.y.values, mch.y.values[ys])
        last = mch.sel(time=ISSUE).values[ys, xs]
        np.testing.assert_array_equal(fc.isel(issue_time=0, lead_time=1).values, last)
        assert ds.attrs["nowcast_region"] == BOX
        context = json.loads(ds.attrs["nowcast_region_context"])
        assert context == [window.context[0].start, window.context[0].stop,
                           window.context[1].start, window.context[1].stop]  # fmt: skip
        assert fc.attrs["grid_mapping"] in ds.variables


def test_a_region_with_empty_leads_is_warned_about_even_when_its_context_has_values(mch, tmp_path):
    """A box just outside the MeteoSwiss radars' reach (all NaN) whose context reaches into
    it: the region's forecast holds no value, so the warning is said for the region, not
    judged on the context the forecast was made on; the file is written."""
    box = "520,450,540,470km"
    window = locate_region(get_method("persistence"), mch, parse_region(box), 2)
    last = mch.sel(time=ISSUE).values
    assert np.isfinite(last[window.context[0], window.context[1]]).any()
    assert not np.isfinite(last[window.region[0], window.region[1]]).any()
    out = tmp_path / "edge.nc"
    res = predict(mch.encoding["source"], out, "--method", "persistence", "--issue-time", ISSUE,
                  "--leads", "2", "--region", box)  # fmt: skip
    assert res.exit_code == 0, res.output
    warning = [line for line in res.output.splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1 and "no value at lead(s) 5, 10 min" in warning[0], res.output
    with xr.open_dataset(out) as ds:
        assert ds["precipitation_rate"].shape == (1, 2, 20, 20)


@pytest.mark.slow
def test_region_extrapolation_matches_the_whole_grid(mch):
    """The flow estimated on the region's context: the region's extrapolation is the whole
    grid's to within a small part of the rain (the flow differs slightly on less context)."""
    from nowcast.methods.run import forecast_many, forecast_region

    method = get_method("extrapolation")
    region = parse_region(BOX)
    part, _, window = forecast_region(method, mch, [ISSUE], 6, region)
    whole = forecast_many(method, mch, [ISSUE], 6).isel(y=window.region[0], x=window.region[1])
    a, b = part.values, whole.values
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    rain = np.nanmean(b)
    assert rain > 0.1
    assert np.nanmean(np.abs(a - b)) < 0.1 * rain


@pytest.mark.parametrize(
    "options, needles",
    [
        (["--method", "persistence", "--region", "150,-30,152,-28"], ["outside the grid"]),
        (["--method", "persistence", "--region", "8,47,7,48"], ["--region", "inverted"]),
        (["--method", "persistence", "--region", "7,47,7,48"], ["--region", "empty"]),
        (["--method", "persistence", "--region", "480000,75000,840000,300000"],
         ["longitudes must be", "add their units"]),
        (["--method", "extrapolation", "--tile", "256"], ["--tile is for the trained model"]),
        (["--model", "radar-5min-deterministic", "--tile", "32"],
         ["32 pixels is smaller than", "halo (76 pixels"]),
        (["--model", "radar-5min-deterministic", "--tile", "wide"], ["tile: 'wide' is not auto"]),
    ],
)  # fmt: skip
def test_bad_region_and_tile_are_one_line_errors(mch, tmp_path, options, needles):
    out = tmp_path / "out" / "fc.nc"
    out.parent.mkdir()
    res = predict(mch.encoding["source"], out, "--issue-time", ISSUE, *options)
    one_line_error(res, *needles)
    assert listing(out.parent) == []


def test_batch_config_region_and_tile(tmp_path, shared_data):
    from nowcast.config import load_batch_config

    src = shared_data / "radar" / "mch-2016-07-11.nc"
    cfg = load_batch_config(None, [f"inputs=[{src}]", f"region='{BOX}'", "methods=[persistence]"])
    assert cfg.region == BOX and cfg.tile == "auto"
    for override, message in [
        ("region='8,47,7,48'", "region: '8,47,7,48' is inverted"),
        ("tile=big", "tile: 'big' is not auto, none"),
        ("tile=512", "tile is set but methods has no convlstm"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_batch_config(None, [f"inputs=[{src}]", "methods=[persistence]", override])
    ok = load_batch_config(
        None, [f"inputs=[{src}]", "methods=[convlstm]", "model=radar-5min", "tile=512"]
    )
    assert ok.tile == 512


def test_batch_issue_time_with_a_region(tmp_path, shared_data):
    """A batch task with a region writes the region's forecast and maps beside the region's
    observations; a region off the grid stops the batch before any work."""
    from nowcast.config import load_batch_config
    from nowcast.products import read_forecast
    from pipelines.catalog import build_catalog
    from pipelines.outputs import forecast_path
    from pipelines.runner import _max_t_in, plan
    from pipelines.tasks import run_issue_time

    src = shared_data / "radar" / "mch-2016-07-11.nc"
    base = [f"inputs=[{src}]", "methods=[persistence]", "n_leads=2", f"output={tmp_path / 'b'}",
            f"start={ISSUE}", f"end={ISSUE}", "render.enabled=false"]  # fmt: skip
    cfg = load_batch_config(None, [*base, f"region='{BOX}'"])
    catalog = build_catalog(cfg.inputs, variable=None, kind="auto")
    _, tasks, _, _ = plan(cfg, catalog, _max_t_in(cfg, catalog))
    assert len(tasks) == 1 and tasks[0].region == parse_region(BOX)
    res = run_issue_time(tasks[0])
    assert res.status == "done", res.error
    fc = read_forecast(forecast_path(cfg.output, "persistence", tasks[0].issue_time))
    assert fc.sizes["y"] < 150 and fc.sizes["x"] < 160
    off = load_batch_config(None, [*base, "region='150,-30,152,-28'"])
    with pytest.raises(NowcastError, match="outside the grid"):
        _max_t_in(off, catalog)
    assert not (tmp_path / "b" / "batch-summary.json").exists()
